"""Run directories and the one-call entry point :func:`train`.

Layout of a run directory (default ``$VEGVIZ_RUNS_DIR/<name>``, else
``platformdirs.user_data_dir("vegviz")/runs/<name>``)::

    <name>/
      config.yaml          the Config of the run (``vegviz train --config`` accepts it)
      provenance.yaml      vegviz version, git commit, seed, device, library versions, data origin and
                           content hash (see vegviz.provenance)
      history.csv          per-epoch metrics (epoch, train_loss, val_loss, val_nse_median, lr, seconds, best, device)
      checkpoints/
        epoch_001.pt ...   one per epoch
        last.pt            the latest state (end of an epoch, or where a stop request hit); the commit
                           point: it holds the history and the best epoch, and the files above and
                           below are derived from it (a resume re-derives any a kill left behind)
        best.pt            the epoch with the lowest validation loss
      predictions.nc       the best model over the whole data set (NetCDF, netcdf4)
      .vegviz.lock         locked by the process writing the run: one writer at a time (vegviz.training.lock)
"""
from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import pandas as pd
import xarray as xr

from .checkpoint import load_checkpoint
from .config import Config
from .data import open_data
from .inference import predict
from .lock import RunLock, command_line, held_here
from .trainer import Trainer, build_model, history_csv
from .windows import Normalization

__all__ = ["RUNS_ENV", "Run", "default_run_dir", "runs_root", "train"]

RUNS_ENV = "VEGVIZ_RUNS_DIR"
PREDICTIONS = "predictions.nc"


from ..paths import runs_root  # noqa: E402  ($VEGVIZ_RUNS_DIR, else the user data dir's runs folder)


def default_run_dir(config: Config) -> Path:
    """``runs_root()/<config.name>``, or a new ``<model>-<YYYYmmdd-HHMMSS>`` folder when unnamed."""
    root = runs_root()
    if config.name:
        return root / config.name
    base = f"{config.model}-{datetime.now():%Y%m%d-%H%M%S}"
    path, k = root / base, 1
    while path.exists():
        k += 1
        path = root / f"{base}-{k}"
    return path


class Run:
    """A run directory: its configuration, history, checkpoints, model and predictions."""

    def __init__(self, path):
        self.path = Path(path).expanduser()
        if not (self.path / "config.yaml").exists():
            raise FileNotFoundError(f"{self.path} is not a vegviz run directory (no config.yaml). Fix: pass a "
                                    f"folder under {runs_root()} or the run_dir given to train()")

    def __repr__(self) -> str:
        h = self.history
        best = f", best val_loss {h['val_loss'].min():.4g}" if len(h) else ""
        return f"Run({str(self.path)!r}: {self.config.model}, {len(h)} epochs{best})"

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config(self) -> Config:
        return Config.from_yaml(self.path / "config.yaml")

    @property
    def provenance(self) -> dict | None:
        """What the run was made of (``provenance.yaml``); None for runs written before it was recorded."""
        from ..provenance import read_provenance

        return read_provenance(self.path)

    @property
    def history(self) -> pd.DataFrame:
        """Per-epoch metrics (empty before the first epoch ends).

        Read from ``history.csv``, or from ``checkpoints/last.pt`` (the commit, which holds the
        history) when that is newer: a kill or a full disk came between the two writes."""
        from .trainer import HISTORY_COLUMNS

        f, last = self.path / "history.csv", self.checkpoint("last")
        if last.exists() and (not f.exists() or f.stat().st_mtime_ns < last.stat().st_mtime_ns):
            try:
                rows = load_checkpoint(last)["history"]
            except (OSError, ValueError, KeyError):  # unreadable: the csv is the best there is
                rows = None
            if rows is not None:
                return pd.read_csv(io.BytesIO(history_csv(rows)))
        return pd.read_csv(f) if f.exists() else pd.DataFrame(columns=list(HISTORY_COLUMNS))

    @property
    def best(self) -> pd.Series | None:
        """The history row of the best epoch (lowest validation loss); None before the first epoch ends."""
        h = self.history
        return h.loc[h["val_loss"].idxmin()] if len(h) else None

    def checkpoint(self, which: str | int = "best") -> Path:
        """Path of ``"best"``, ``"last"`` or an epoch number's checkpoint."""
        name = f"epoch_{which:03d}.pt" if isinstance(which, int) else f"{which}.pt"
        return self.path / "checkpoints" / name

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoint("best")

    def load_checkpoint(self, which: str | int = "best") -> dict:
        return load_checkpoint(self._stored(which))

    def _stored(self, which: str | int = "best") -> Path:
        """The file that holds checkpoint ``which``: :meth:`checkpoint`, except for ``"best"`` when a kill
        or a full disk came between the commit of ``last.pt`` and the rewrite of ``best.pt``: then
        ``last.pt`` when it is the best epoch's state, else the best epoch's ``epoch_NNN.pt`` if
        ``best.pt`` is missing (the next resume re-derives ``best.pt`` from them)."""
        path, last = self.checkpoint(which), self.checkpoint("last")
        if which != "best" or not last.exists():
            return path
        if path.exists() and path.stat().st_mtime_ns >= last.stat().st_mtime_ns:
            return path  # written after (with) the latest commit
        try:
            state = load_checkpoint(last)
        except (OSError, ValueError):
            return path
        epoch, batch, best = state.get("epoch", 0), state.get("batch", 0), state.get("best_epoch", 0)
        if best and best == epoch and not batch:
            return last
        if best and not path.exists() and self.checkpoint(int(best)).exists():
            return self.checkpoint(int(best))
        return path

    def normalization(self, which: str | int = "best") -> Normalization:
        return Normalization.from_dict(self.load_checkpoint(which)["normalization"])

    def model(self, which: str | int = "best"):
        """The trained model (on the CPU, in eval mode)."""
        ckpt = self.load_checkpoint(which)
        model = build_model(Config.from_dict(ckpt["config"]), Normalization.from_dict(ckpt["normalization"]).n_inputs)
        model.load_state_dict(ckpt["model"])
        return model.eval()

    @property
    def predictions_path(self) -> Path:
        return self.path / PREDICTIONS

    @property
    def predictions(self) -> xr.Dataset | None:
        """The stored predictions, lazily opened (None before :meth:`predict` has written them)."""
        p = self.predictions_path
        return xr.open_dataset(p, engine="netcdf4", chunks={}) if p.exists() else None

    def predict(self, data: xr.Dataset | None = None, which: str | int = "best", *, write: bool = True,
                device: str | None = None, threads: int | None = None) -> xr.Dataset:
        """Predictions of a checkpoint over ``data`` (default: the run's data).

        ``write``: stream them into ``predictions.nc`` and return that file lazily opened (memory stays
        bounded on any domain); otherwise return them in memory.

        ``threads``: CPU threads (default: the run's ``num_threads``).

        Writing takes the folder's lock (:mod:`.lock`) unless this process holds it already (``train()`` and
        the training dashboard predict inside their own): a run that another process trains is refused with
        ``RunBusyError``."""
        if write and not held_here(self.path):
            with RunLock(self.path, f"predicting {self.path.name} ({command_line()})"):
                return self.predict(data, which, write=write, device=device, threads=threads)
        source = self._stored(which)  # the file read is the one recorded, with its SHA-256
        ckpt = load_checkpoint(source)
        config = Config.from_dict(ckpt["config"])
        model = build_model(config, Normalization.from_dict(ckpt["normalization"]).n_inputs)
        model.load_state_dict(ckpt["model"])
        ds = data if data is not None else open_data(config.data, seed=config.seed)
        # written piece by piece (bounded memory), and returned lazily opened
        return predict(model, ds, config, Normalization.from_dict(ckpt["normalization"]),
                       checkpoint=source, device=device, threads=threads,
                       path=self.predictions_path if write else None)


def train(config: Config, run_dir=None, *, data: xr.Dataset | None = None, resume: bool = False,
          progress: bool = True, subscribers=(), predictions: bool = True) -> Run:
    """Train ``config`` into ``run_dir`` and return the :class:`Run`.

    ``data`` defaults to ``config.data`` (catalog entry or path). With ``predictions`` the
    best model is run over the whole data set and saved as ``predictions.nc``, unless
    training was stopped on request. Under ``torchrun`` every rank trains and rank 0 predicts.

    One writer per run folder: from the first read of its checkpoint to ``predictions.nc`` the folder
    is locked (:mod:`.lock`; rank 0 under torchrun), and another writer gets ``RunBusyError``.
    """
    trainer = Trainer(config, data, run_dir, progress=progress, subscribers=subscribers)
    with trainer.writing():  # fit() takes the same lock again, re-entrantly
        trainer.fit(resume=resume)
        run = Run(trainer.run_dir)
        if predictions and trainer.world.main and trainer.result != "stopped" and run.best_checkpoint.exists():
            run.predict(data)
    return run
