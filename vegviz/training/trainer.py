"""The trainer: AdamW, truncated BPTT over windows, validation, early stopping, checkpoints.

One optimiser step per batch of windows. A window is ``burn_in + window`` days:

1. **burn-in** (no gradient): the model runs over the first ``burn_in`` days from a zero
   state, in chunks; only the final state is kept.
2. **scored window, truncated BPTT**: the ``window`` days are processed in chunks of
   ``chunk`` days. Each chunk runs from the carried state, its loss (the sum of the
   masked errors divided by the number of observed values in the *whole* window) is
   back-propagated at once, and the state is detached before the next chunk. The
   gradients of all chunks accumulate, so the step follows the gradient of the mean loss
   over the window, truncated at chunk boundaries.

Why: the backward pass of a ConvLSTM keeps every step's activations, about 11 MB per day
at the study scale (63 x 54 cells, 16 filters, batch 8). Measured with
``benchmarks/bench_training.py`` on the full virtual basin (CPU, 2 threads): holding the
training and validation arrays peaks at 1.3 GiB resident; training with 60-day chunks at
2.2 GiB (2.3 GiB for the physics-encoded model); back-propagating through the whole
365-day window at 5.9 GiB (and slower: 7.3 s against 5.5 s per batch). The state, and
with it the memory of past weather, is carried forward untruncated; only gradients stop
at chunk boundaries, and 60 days span the fast vegetation response.

Data are read out of core (:mod:`.reader`): each batch's windows (burn-in and scored days,
over the whole domain or a spatial patch, ``config.patch``) are read chunk-aligned from the
store through a cache of decoded blocks, one batch ahead in a background thread. Peak memory
is the cache plus a batch, whatever the length of the period or the size of the domain.

Several ranks started by ``torchrun`` train one model with DistributedDataParallel
(:mod:`.distributed`): each takes its share of every batch; rank 0 validates, checkpoints
and reports.

Validation runs the model over the validation period with its state carried from the
``burn_in`` days before it (no gradient, streamed in chunks, in tiles when ``config.tile``
is set; :mod:`.tiles`), and scores the loss on the observed target and the NSE per cell on
observed dates (median over the mask cells).

``setup`` writes ``config.yaml`` and ``provenance.yaml`` (:mod:`vegviz.provenance`: vegviz
version and git commit, seed, device and thread settings, library versions, the data set's
origin and a SHA-256 of the values used); every checkpoint carries the same record.

Every epoch ends with a checkpoint (``checkpoints/epoch_NNN.pt`` and ``last.pt``;
``best.pt`` when the validation loss improved); a stop request writes ``last.pt``
mid-epoch. :meth:`Trainer.fit` with ``resume=True`` continues from ``last.pt``: the
sample order of an epoch depends only on ``(seed, epoch)`` and the torch random state is
restored, so on the CPU a resumed run ends with the same weights as an uninterrupted one.

``last.pt`` is the one commit point of a state: it holds the history and the best epoch, and
is written (atomically) before the files derived from it, ``epoch_NNN.pt`` and ``best.pt``
(the same bytes) and ``history.csv``. A kill or a full disk at any instant therefore leaves
the previous state or the new one; a resume first removes the temporaries a killed writer
left and re-derives from ``last.pt`` the derived files that are missing or differ
(:meth:`Trainer.setup`).
"""
from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr

from ..provenance import keep_earlier_sessions, record, write_provenance
from .checkpoint import (CHECKPOINT_FORMAT, fsync_dir, load_checkpoint, remove_stale_temporaries, to_bytes,
                         vegviz_version, write_atomic)
from .config import PHYSICS_INPUT, PHYSICS_MODELS, Config
from .data import open_data, prepare
from .device import Hardware, resolve, settings
from .distributed import World, check_world, context, from_env
from .events import (BatchEvent, EndEvent, EpochEvent, ErrorEvent, EventBus, StartEvent, StopEvent, Subscriber)
from ..evaluation.periods import period_days, period_label
from .lock import RunLock
from .loss import masked_error_sum
from .split import resolve_split
from .reader import BlockCache, WindowReader, patch_origins, prefetched
from .tiles import stream
from .windows import DataError, Normalization, batches, epoch_windows, fit_normalization, training_bounds

log = logging.getLogger(__name__)

__all__ = ["HISTORY_COLUMNS", "Trainer", "build_model", "median_nse", "seed_everything"]

#: days per forward call when no gradient is needed (validation, prediction): bounds memory
INFERENCE_CHUNK = 365
#: config keys that may change when a run is resumed (they do not change the trained weights' meaning)
RESUMABLE_CHANGES = ("max_epochs", "patience", "device", "precision", "num_threads", "name", "cache_mb", "tile",
                     "halo")


def build_model(config: Config, n_inputs: int | None = None) -> torch.nn.Module:
    """The model of ``config`` from the :mod:`vegviz.models` registry, with the run's hyperparameters.

    ``n_inputs`` defaults to the daily channels; pass ``Normalization.n_inputs`` to count
    the static channels too (their number depends on the data, e.g. land-cover classes).
    """
    from .. import models

    channels = config.channels
    n_inputs = len(channels) if n_inputs is None else n_inputs
    accepted = models.hparams_of(config.model)
    h = config.hparams
    # the registry's names: ConvLSTMs take filters/kernel_size, the LSTM hidden (and no kernel)
    hp = {"filters" if "filters" in accepted else "hidden": h.filters, "layers": h.layers}
    for key in ("kernel_size", "kernel"):
        if key in accepted:
            hp[key] = h.kernel
            break
    hp.update(h.options)
    if config.model in PHYSICS_MODELS and "process_channel" in accepted:
        hp.setdefault("process_channel", channels.index(PHYSICS_INPUT))
    return models.build_model(config.model, n_inputs, **hp)


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) for model initialisation and any stochastic layers."""
    torch.manual_seed(seed)


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, 1]).generate_state(1)[0])


def _whole_domain(starts: np.ndarray) -> np.ndarray:
    """Samples (start day, first row, first column) over the whole domain."""
    return np.column_stack([starts, np.zeros((len(starts), 2), dtype=starts.dtype)])


def _patch_rng(seed: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(epoch), 2])


def median_nse(sim: np.ndarray, obs: np.ndarray, mask: np.ndarray, time, lat, lon) -> float:
    """Median over the mask cells of the per-cell NSE on observed dates (NaN when none can be scored)."""
    from ..evaluation import nse
    # only dates with an observation can count (pairwise-complete): dropping the rest first
    # keeps the float64 temporaries of the metric small
    keep = np.isfinite(obs).any(axis=(1, 2))
    sim, obs, time = sim[keep], obs[keep], np.asarray(time)[keep]
    coords = {"time": time, "lat": lat, "lon": lon}
    dims = ("time", "lat", "lon")
    score = nse(xr.DataArray(sim, coords, dims), xr.DataArray(obs, coords, dims),
                mask=xr.DataArray(mask.astype(bool), {"lat": lat, "lon": lon}, ("lat", "lon")))
    values = score.values[np.isfinite(score.values)]
    return float(np.median(values)) if values.size else math.nan


class Trainer:
    """Train the model of a :class:`~vegviz.training.Config` on a model-ready Dataset.

    Parameters
    ----------
    config : ~vegviz.training.Config
        The run's configuration.
    data
        The Dataset (default: opened from ``config.data``). It is validated against the
        contract; only the configured variables and periods are loaded, as float32.
    run_dir
        The run directory (config.yaml, checkpoints/, history.csv).
    progress
        Show a tqdm progress bar per epoch (notebook or terminal).
    subscribers
        Callables that receive the training events (:mod:`.events`).

    Notes
    -----
    ``fit()`` trains in the calling thread; ``start()`` in a background thread. Either ends
    early and cleanly after :meth:`request_stop` (from any thread).
    """

    def __init__(self, config: Config, data: xr.Dataset | None = None, run_dir=None, *, progress: bool = True,
                 subscribers: tuple[Subscriber, ...] | list[Subscriber] = ()):
        if not isinstance(config, Config):
            raise TypeError(f"config: expected a vegviz.training.Config, got {type(config).__name__}. "
                            "Fix: Config(...) or Config.from_yaml(path)")
        self.config = config.validate()
        if run_dir is None:
            from .run import default_run_dir

            run_dir = default_run_dir(config)
        self.run_dir = Path(run_dir).expanduser()
        self.lock = RunLock(self.run_dir)  # one writer per run folder (see writing())
        self._writers = 0
        self.progress = progress
        self.events = EventBus()
        for fn in subscribers:
            self.events.subscribe(fn)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._data = data
        self.world = World()  # this process's rank (set by fit() under torchrun)
        self.hardware: Hardware = resolve(config)
        self.model: torch.nn.Module | None = None
        self.stats: Normalization | None = None
        self.history: list[dict] = []
        self.provenance: dict = {}  # what this run is made of (vegviz.provenance.record), set by setup()
        self.result: str | None = None  # why the last fit ended
        self.error: BaseException | None = None  # what a background fit raised

    # ------------------------------------------------------------------ public API
    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def device(self) -> torch.device:
        return self.hardware.device

    def subscribe(self, fn: Subscriber):
        """Call ``fn(event)`` for every training event; returns a function that unsubscribes."""
        return self.events.subscribe(fn)

    def request_stop(self) -> None:
        """Ask training to stop after the current batch (thread-safe); a checkpoint is written."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def start(self, resume: bool = False) -> threading.Thread:
        """Run :meth:`fit` in a daemon thread and return the thread (errors land in ``self.error``)."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("this trainer is already running. Fix: request_stop() and join() it first")

        def target():
            try:
                self.fit(resume=resume)
            except BaseException as e:  # reported by an error event too
                self.error = e

        self._thread = threading.Thread(target=target, name=f"vegviz-train-{self.run_dir.name}", daemon=True)
        self._thread.start()
        return self._thread

    def fit(self, resume: bool = False) -> pd.DataFrame:
        """Train until ``max_epochs``, early stopping or a stop request; return the history.

        ``resume=True`` continues from ``checkpoints/last.pt`` when it exists (else starts
        afresh); the configuration must match the checkpoint's except for
        ``max_epochs``, ``patience``, ``device``, ``precision``, ``num_threads`` and ``name``.

        The run folder is locked meanwhile (:meth:`writing`): another writer of it, in this process
        or another, gets :class:`~vegviz.training.lock.RunBusyError`.
        """
        self._epoch = 0
        try:
            with self.writing(), settings(self.config, self.hardware), context(self.hardware.device.type) as world:
                self._join(world)
                return self._fit(resume)
        except BaseException as e:
            self.events.emit(ErrorEvent(run_dir=str(self.run_dir), epoch=self._epoch,
                                        error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc()))
            raise
        finally:
            # cleared at the end, not the start: a request made before fit() began is honoured
            self._stop.clear()

    @contextlib.contextmanager
    def writing(self, create: bool = False):
        """Hold the run folder's lock (:mod:`.lock`) for the block; re-entrant, let go when the outermost block ends.

        An existing folder is locked at once (before its checkpoint is read); a new one only when
        :meth:`setup` first writes to it (``create``), so a run refused by its checks leaves no folder.
        Under torchrun rank 0 alone locks: the other ranks write nothing. A lock taken before (the
        dashboard takes ``self.lock`` when it accepts a run) is used, and let go with the block.
        """
        self._writers += 1
        try:
            self._claim(create)
            yield self
        finally:
            self._writers -= 1
            if self._writers == 0:
                self.lock.release()

    def _claim(self, create: bool = False) -> None:
        """Inside :meth:`writing`: lock the folder now if it exists (or ``create``) and is not locked yet."""
        if self._writers and (create or self.run_dir.exists()) and not self.lock.held and from_env().main:
            self.lock.acquire()

    def _join(self, world: World) -> None:
        """Take this process's rank: its device, and silence on the ranks that do not report."""
        self.world = world
        if world.distributed:
            if self.hardware.device.type == "cuda":
                self.hardware = Hardware(torch.device("cuda", world.local_rank), self.hardware.precision)
            check_world(world, self.config.batch_size, self.hardware.device)
            if not world.main:
                self.progress = False
                self.events = EventBus()

    # ------------------------------------------------------------------ setup
    def setup(self, resume: bool = False) -> dict | None:
        """Open and validate the data, fit or restore the normalisation, load the arrays, build the
        model and optimiser, write config.yaml and provenance.yaml. Returns the checkpoint to resume
        from (or None).

        As the run's writer (rank 0), it first removes the temporary files an interrupted writer left;
        when resuming, it re-derives from ``last.pt`` the files of its state that a kill or a full disk
        left missing or stale (``epoch_NNN.pt``, ``best.pt``, ``history.csv``; :meth:`_repair`).
        """
        cfg = self.config
        source = self._data if self._data is not None else open_data(cfg.data, seed=cfg.seed)
        ds = prepare(source, cfg)
        # a differential split becomes year sets chosen from the data, once (config.yaml records them)
        cfg = self.config = resolve_split(cfg, source)
        ckpt = None
        last = self.checkpoint_dir / "last.pt"
        self._claim()  # a folder made since fit() began (by another writer?) is locked before it is touched
        if self.world.main:  # the run's one writer: what a killed writer left half-written goes
            for p in remove_stale_temporaries(self.run_dir):
                log.info("removed %s, left by an interrupted write", p)
        if resume and last.exists():
            ckpt = load_checkpoint(last)
            self._check_resumable(ckpt)
            if self.world.main:
                self._repair(last, ckpt)
            self.stats = Normalization.from_dict(ckpt["normalization"])
        else:
            if resume:
                log.info("no checkpoint in %s: training from scratch", self.checkpoint_dir)
            self.stats = fit_normalization(ds, cfg)
        # one cache for both readers: they share the input blocks of the days they have in common
        cache = BlockCache(cfg.cache_mb * 2**20)
        first, last_day = training_bounds(ds, cfg, "train")
        self.train_reader = WindowReader(ds, self.stats, first, last_day, target_period=cfg.periods.train,
                                         cache=cache)
        # days whose targets a sample may score (None: all, the temporal split)
        self._scored = period_days(self.train_reader.time, cfg.periods.train) if cfg.periods.year_sets else None
        v0, v1 = training_bounds(ds, cfg, "validation")
        self.val_reader = WindowReader(ds, self.stats, v0, v1, pad_before=cfg.burn_in,
                                       target_period=cfg.periods.validation, cache=cache)
        if not self._has_observations(self.val_reader):
            raise DataError(f"{period_label(cfg.periods.validation, 'periods.validation')}: no observed {cfg.target} inside the "
                            "mask, so there is nothing to validate on. Fix: choose a period with observations")
        self.mask = self.train_reader.mask
        self.coords = {k: ds[k].values for k in ("lat", "lon")}
        nlat, nlon = self.mask.shape
        self.patch_shape = (nlat, nlon) if cfg.patch is None else (min(cfg.patch, nlat), min(cfg.patch, nlon))
        if not patch_origins(self.mask, cfg.patch, cfg.patch_min_basin):
            raise DataError(f"patch {cfg.patch}: no {self.patch_shape[0]} x {self.patch_shape[1]} patch of the "
                            f"{nlat} x {nlon} grid holds {cfg.patch_min_basin:.0%} basin cells. Fix: a larger patch, or a "
                            "smaller patch_min_basin")

        seed_everything(cfg.seed)
        self.model = build_model(cfg, self.stats.n_inputs).to(self.device)
        self.net = self.model
        if self.world.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)
        o = cfg.optimizer
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=o.lr, weight_decay=o.weight_decay,
                                           betas=o.betas)
        self.scheduler = (torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, factor=o.lr_factor,
                                                                     patience=o.lr_patience)
                          if o.scheduler == "plateau" else None)
        self.scaler = self.hardware.grad_scaler()
        # rank 0 alone writes checkpoints: the others need no provenance (a pass over the data when uncached)
        self.provenance = self._provenance(source, list(ds.data_vars), ckpt) if self.world.main else {}
        if self.world.main:
            with self.writing(create=True):  # a new folder is locked here, before its first file
                self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
                write_atomic(self.run_dir / "config.yaml", cfg.to_yaml().encode())
                write_provenance(self.run_dir, self.provenance)
        return ckpt

    @staticmethod
    def _has_observations(reader: WindowReader) -> bool:
        n = reader.shape[0]
        return any(np.isfinite(reader.read_target(t0, min(t0 + 365, n))).any()
                   for t0 in range(reader.pad, n, 365))

    def _provenance(self, source: xr.Dataset, variables: list[str], ckpt: dict | None) -> dict:
        """This session's provenance (:mod:`vegviz.provenance`); a resumed run keeps its earlier sessions'."""
        prov = record(self.config, source, hardware=self.hardware, variables=variables)
        prov["reproduce"] = f"vegviz train --config {self.run_dir / 'config.yaml'} --name {self.run_dir.name}-again"
        old = (ckpt or {}).get("provenance")
        keep_earlier_sessions(prov, old)
        if old:
            before = old.get("data", {}).get("content_sha256")
            if before and before != prov["data"]["content_sha256"]:
                log.warning("resuming %s on data whose content hash differs from the earlier session's (%s -> %s); "
                            "see provenance.yaml", self.run_dir, before[:12], prov["data"]["content_sha256"][:12])
        return prov

    def _check_resumable(self, ckpt: dict) -> None:
        # through Config, so keys added since the checkpoint was written compare as their defaults
        old, new = Config.from_dict(ckpt["config"]).to_dict(), self.config.to_dict()
        diff = [k for k in new if k not in RESUMABLE_CHANGES and old.get(k) != new[k]]
        if diff:
            raise ValueError(f"cannot resume {self.run_dir}: the configuration differs from the checkpoint's in "
                             f"{', '.join(diff)} (checkpoint: {', '.join(f'{k}={old.get(k)!r}' for k in diff)}). "
                             "Fix: use the run's config.yaml (Config.from_yaml), or train into a new run directory")

    def _restore(self, ckpt: dict) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt.get("scheduler"):
            self.scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        torch.set_rng_state(ckpt["rng"])
        self.history = list(ckpt["history"])
        self._best = (ckpt["best_val_loss"], ckpt["best_epoch"])
        self._bad_epochs = ckpt["bad_epochs"]

    # ------------------------------------------------------------------ the loop
    def _fit(self, resume: bool) -> pd.DataFrame:
        cfg = self.config
        t_start = time.perf_counter()
        ckpt = self.setup(resume)
        self.history, self._best, self._bad_epochs = [], (math.inf, 0), 0
        epoch, batch_done, partial = 1, 0, (0.0, 0)
        if ckpt is not None:
            self._restore(ckpt)
            epoch, batch_done = ckpt["epoch"], ckpt["batch"]
            partial = (ckpt["partial_loss"], ckpt["partial_count"])
            if batch_done == 0:  # the checkpoint closed an epoch
                epoch += 1
        reason = self._finished_reason()
        n_batches = len(self.epoch_plan(epoch))
        self.events.emit(StartEvent(run_dir=str(self.run_dir), epoch=epoch, max_epochs=cfg.max_epochs,
                                    batches_per_epoch=n_batches, device=str(self.device),
                                    precision=self.hardware.precision, resumed=ckpt is not None,
                                    config=cfg.to_dict()))
        from tqdm.auto import tqdm

        # one bar over epochs that stays, one over the batches of the current epoch that goes
        bar = tqdm(total=cfg.max_epochs, initial=len(self.history), desc="training", unit="epoch",
                   disable=not self.progress)
        try:
            while reason is None:
                self._epoch = epoch
                if batch_done == 0:
                    torch.manual_seed(_epoch_seed(cfg.seed, epoch))
                stopped = self._train_epoch(epoch, batch_done, partial)
                if stopped:
                    reason = "stopped"
                    break
                h = self.history[-1]
                bar.update(1)
                bar.set_postfix(train=f"{h['train_loss']:.4f}", val=f"{h['val_loss']:.4f}",
                                nse=f"{h['val_nse_median']:.3f}", best=self._best[1])
                batch_done, partial = 0, (0.0, 0)
                reason = self._finished_reason()
                epoch += 1
        finally:
            bar.close()
        self.result = reason
        best_loss, best_epoch = self._best
        best = self.checkpoint_dir / "best.pt"
        self.events.emit(EndEvent(run_dir=str(self.run_dir), reason=reason, epochs=len(self.history),
                                  best_epoch=best_epoch, best_val_loss=best_loss,
                                  best_checkpoint=str(best) if best.exists() else "",
                                  seconds=time.perf_counter() - t_start))
        return self.history_frame()

    def _finished_reason(self) -> str | None:
        if self._bad_epochs >= self.config.patience:
            return "early_stopping"
        if len(self.history) >= self.config.max_epochs:
            return "max_epochs"
        return None

    def history_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.history, columns=list(HISTORY_COLUMNS))

    def _train_epoch(self, epoch: int, skip: int, partial: tuple[float, int]) -> bool:
        """One epoch (from batch ``skip`` on); True when it ended on a stop request."""
        from tqdm.auto import tqdm

        cfg = self.config
        t0 = time.perf_counter()
        plan = self.epoch_plan(epoch)
        loss_sum, count = partial
        bar = tqdm(total=len(plan), initial=skip, desc=f"epoch {epoch}/{cfg.max_epochs}", disable=not self.progress,
                   leave=False, unit="batch")
        # the next batches are read while this one trains; leaving the loop early cancels the reads
        reads = prefetched(plan[skip:], self._read_batch)
        try:
            for b, batch in enumerate(reads, start=skip):
                tb = time.perf_counter()
                loss, n = self._step(batch)
                loss_sum, count = loss_sum + loss * n, count + n
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}")
                self.events.emit(BatchEvent(run_dir=str(self.run_dir), epoch=epoch, batch=b + 1, batches=len(plan),
                                            loss=loss, seconds=time.perf_counter() - tb, device=str(self.device)))
                if self._stop.is_set() and b + 1 < len(plan):
                    path = self._save(epoch, b + 1, (loss_sum, count))
                    self.events.emit(StopEvent(run_dir=str(self.run_dir), epoch=epoch, batch=b + 1,
                                               checkpoint=str(path)))
                    return True
        finally:
            reads.close()
            bar.close()
        train_loss = loss_sum / count if count else math.nan
        val_loss, val_nse = self.validate()
        if self.scheduler is not None:
            self.scheduler.step(val_loss)
        best_loss, best_epoch = self._best
        improved = val_loss < best_loss
        if improved:
            self._best, self._bad_epochs = (val_loss, epoch), 0
        else:
            self._bad_epochs += 1
        seconds = time.perf_counter() - t0
        lr = self.optimizer.param_groups[0]["lr"]
        self.history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                             "val_nse_median": val_nse, "lr": lr, "seconds": seconds, "best": improved,
                             "device": str(self.device)})
        path = self._save(epoch, 0, (0.0, 0))  # last.pt, then epoch_NNN.pt, best.pt (if improved), history.csv
        self.events.emit(EpochEvent(run_dir=str(self.run_dir), epoch=epoch, train_loss=train_loss,
                                    val_loss=val_loss, val_nse_median=val_nse, seconds=seconds,
                                    device=str(self.device), lr=lr, checkpoint=str(path), improved=improved,
                                    best_epoch=self._best[1], best_val_loss=self._best[0]))
        if self._stop.is_set():
            self.events.emit(StopEvent(run_dir=str(self.run_dir), epoch=epoch, batch=len(plan), checkpoint=str(path)))
            return True
        return False

    def epoch_plan(self, epoch: int) -> list[np.ndarray]:
        """The batches of samples of ``epoch``: int arrays of rows ``(start day, first row, first column)``.

        Start days index the training reader (burn-in included); with ``config.patch`` every
        start is paired with every patch of the epoch (:func:`~.reader.patch_origins`, offset
        drawn from ``(seed, epoch)``) and the pairs are shuffled; without, each start covers
        the whole domain and the order is :func:`~.windows.epoch_windows`'s.
        """
        cfg = self.config
        starts = epoch_windows(self.train_reader.shape[0], cfg.burn_in, cfg.window, cfg.seed, epoch, cfg.stride,
                               self._scored)
        if cfg.patch is None:
            samples = _whole_domain(starts)
        else:
            rng = _patch_rng(cfg.seed, epoch)
            origins = np.array(patch_origins(self.mask, cfg.patch, cfg.patch_min_basin, rng), dtype=np.int64)
            samples = np.column_stack([np.repeat(starts, len(origins)), np.tile(origins, (len(starts), 1))])
            rng.shuffle(samples)
        return batches(samples.astype(np.int64), cfg.batch_size)

    def _read_batch(self, samples: np.ndarray) -> dict:
        """This rank's share of a batch, read: inputs, targets and the basin cells of its patches.

        A rank whose share is empty (a batch smaller than the world) runs the batch's first
        sample with weight 0, so that every rank takes part in each gradient all-reduce.
        """
        cfg = self.config
        samples = np.asarray(samples).reshape(-1, 3)
        shard, weight = self.world.shard(samples), 1.0
        if len(shard) == 0:
            shard, weight = samples[:1], 0.0
        h, w = self.patch_shape
        days = cfg.sample_days
        x = np.empty((len(shard), days, self.train_reader.n_channels, h, w), dtype=np.float32)
        y = np.empty((len(shard), days, h, w), dtype=np.float32)
        cells = np.zeros((h, w), dtype=bool)
        for k, (s, r, c) in enumerate(shard):
            self.train_reader.read(int(s), int(s) + days, slice(r, r + h), slice(c, c + w), out=(x[k], y[k]))
            cells |= self.mask[r:r + h, c:c + w]
        return {"x": x, "y": y, "cells": cells, "weight": weight}

    def train_step(self, samples: np.ndarray) -> tuple[float, int]:
        """One optimiser step on a batch of samples (rows of :meth:`epoch_plan`, or start days for the
        whole domain); (mean loss, observed values)."""
        samples = np.asarray(samples)
        if samples.ndim == 1:
            samples = _whole_domain(samples)
        return self._step(self._read_batch(samples))

    def _step(self, batch: dict) -> tuple[float, int]:
        cfg, hw, model, world = self.config, self.hardware, self.model, self.world
        model.train()
        self.optimizer.zero_grad(set_to_none=True)
        burn, total = cfg.burn_in, cfg.sample_days
        xs, ys = batch["x"], batch["y"]
        # the loss is the error sum over the *global* batch's observed values: one count per step
        n_local = int(np.isfinite(ys[:, burn:]).sum()) if batch["weight"] else 0
        n_obs = int(world.sum(n_local, self.device))
        # DDP averages the ranks' gradients: world / n makes that average the single-process gradient
        scale = batch["weight"] * world.world / n_obs if n_obs else 0.0
        kw = {"cells": torch.from_numpy(batch["cells"]).to(self.device)} if getattr(model, "per_cell", False) else {}
        state = None
        with torch.no_grad():
            for t0 in range(0, burn, cfg.chunk):
                with hw.autocast():
                    _, state = model(self._tensor(xs[:, t0:min(t0 + cfg.chunk, burn)]), state, **kw)
        loss_sum = 0.0
        chunks = range(burn, total, cfg.chunk)
        for t0 in chunks:
            t1 = min(t0 + cfg.chunk, total)
            last = t0 == chunks[-1]
            x, y = self._tensor(xs[:, t0:t1]), self._tensor(ys[:, t0:t1])
            valid = torch.isfinite(y)  # the reader masks y outside the basin and the period
            # under DDP the last chunk's backward (which all-reduces the gradients) runs on every rank
            if not bool(valid.any()) and not (last and world.distributed):
                with torch.no_grad(), hw.autocast():  # nothing to score: just carry the state forward
                    _, state = model(x, state, **kw)
                continue
            sync = contextlib.nullcontext() if last or not world.distributed else self.net.no_sync()
            with sync:
                with hw.autocast():
                    pred, state = self.net(x, state, **kw)
                err = masked_error_sum(pred, y, valid, cfg.loss) * scale
                self.scaler.scale(err).backward()
            loss_sum += float(err.detach())
            state = [(h.detach(), c.detach()) for h, c in state]
        if n_obs == 0:
            return 0.0, 0
        if cfg.optimizer.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optimizer.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        # each rank's sum is scaled by world: their mean is the global batch's mean loss
        return world.sum(loss_sum, self.device) / world.world, n_obs

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device, non_blocking=True)

    # ------------------------------------------------------------------ validation
    def validate(self) -> tuple[float, float]:
        """(loss on observed validation targets, median per-cell NSE) of the current model (rank 0's, on
        every rank)."""
        result = self._validate() if self.world.main else None
        return tuple(self.world.broadcast(result))

    def _validate(self) -> tuple[float, float]:
        cfg, v, s = self.config, self.val_reader, self.stats
        pad = v.pad
        loss_sum, count = 0.0, 0
        # only the observed dates (8-day composites) are kept for the NSE
        pieces: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for t0, t1, tile, p in stream(self.model, v, self.hardware, chunk=INFERENCE_CHUNK, tile=cfg.tile,
                                      halo=cfg.halo):
            lo = max(t0, pad)
            if lo >= t1:
                continue
            p = p[lo - t0:]
            y = v.read_target(lo, t1, tile.rows, tile.cols)
            valid = np.isfinite(y)
            err = masked_error_sum(torch.from_numpy(p), torch.from_numpy(y), torch.from_numpy(valid), cfg.loss)
            loss_sum, count = loss_sum + float(err), count + int(valid.sum())
            for k in np.flatnonzero(valid.any(axis=(1, 2))):
                day = lo + int(k)
                if day not in pieces:
                    pieces[day] = (np.full(v.shape[1:], np.nan, np.float32), np.full(v.shape[1:], np.nan, np.float32))
                pieces[day][0][tile.rows, tile.cols] = p[k]
                pieces[day][1][tile.rows, tile.cols] = y[k]
        days = sorted(pieces)
        loss = loss_sum / max(count, 1)
        if not days:
            return loss, math.nan
        sim = np.stack([pieces[d][0] for d in days])
        obs = np.stack([pieces[d][1] for d in days])
        sim = np.where(self.mask, s.denormalize(sim), np.nan)
        nse = median_nse(sim, s.denormalize(obs), self.mask, v.time[days], self.coords["lat"], self.coords["lon"])
        return loss, nse

    # ------------------------------------------------------------------ checkpoints
    def _state(self, epoch: int, batch: int, partial: tuple[float, int]) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "vegviz_version": vegviz_version(),
            "model_name": self.config.model,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else {},
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "epoch": epoch,
            "batch": batch,
            "partial_loss": float(partial[0]),
            "partial_count": int(partial[1]),
            "best_val_loss": float(self._best[0]),
            "best_epoch": int(self._best[1]),
            "bad_epochs": int(self._bad_epochs),
            "history": [dict(h) for h in self.history],
            "normalization": self.stats.to_dict(),
            "config": self.config.to_dict(),
            "provenance": self.provenance,
            "rng": torch.get_rng_state(),
        }

    def _save(self, epoch: int, batch: int, partial) -> Path:
        """Commit the state (rank 0) and return the path of the checkpoint that names it.

        ``last.pt`` is written first: it is the commit (it holds the history and the best epoch).
        Then the files derived from it: at the end of an epoch ``epoch_NNN.pt`` and, when this
        epoch is the best, ``best.pt`` (the same bytes), and ``history.csv``; then the folders
        are synced, so the derived files are durable before the next commit can need them.
        """
        d = self.checkpoint_dir
        name = d / ("last.pt" if batch else f"epoch_{epoch:03d}.pt")
        if not self.world.main:
            return name
        data = to_bytes(self._state(epoch, batch, partial))
        write_atomic(d / "last.pt", data)
        if not batch:
            write_atomic(name, data)
            if self._best[1] == epoch:
                write_atomic(d / "best.pt", data)
        write_atomic(self.run_dir / "history.csv", history_csv(self.history))
        fsync_dir(d)
        fsync_dir(self.run_dir)
        return name

    def _repair(self, last: Path, ckpt: dict) -> None:
        """Re-derive from ``last.pt`` (contents ``ckpt``) the files that a kill or a full disk left missing or
        stale: this state's ``epoch_NNN.pt`` and ``best.pt``, and ``history.csv`` (rank 0, before resuming)."""
        d = self.checkpoint_dir
        epoch, batch, best_epoch = int(ckpt["epoch"]), int(ckpt["batch"]), int(ckpt["best_epoch"])
        data = last.read_bytes()
        wanted = {self.run_dir / "history.csv": lambda: history_csv(ckpt["history"])}
        if not batch:  # last.pt closed an epoch: its epoch file, and best.pt when it was the best, are copies
            wanted[d / f"epoch_{epoch:03d}.pt"] = lambda: data
        if best_epoch and best_epoch == epoch and not batch:
            wanted[d / "best.pt"] = lambda: data
        elif best_epoch and (d / f"epoch_{best_epoch:03d}.pt").exists():
            # an earlier best: its epoch file was derived before the commits that followed it
            wanted[d / "best.pt"] = (d / f"epoch_{best_epoch:03d}.pt").read_bytes
        elif best_epoch and not (d / "best.pt").exists():
            log.warning("%s: best.pt (epoch %d) and its epoch file are missing; they cannot be re-derived",
                        self.run_dir, best_epoch)
        repaired = []
        for path, content in wanted.items():
            content = content()
            if not (path.exists() and path.stat().st_size == len(content) and path.read_bytes() == content):
                write_atomic(path, content)
                repaired.append(path.name)
        if repaired:
            fsync_dir(d)
            fsync_dir(self.run_dir)
            log.warning("%s: re-derived %s from checkpoints/last.pt (epoch %d): the previous session was "
                        "interrupted while writing them", self.run_dir, ", ".join(repaired), epoch)


HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "val_nse_median", "lr", "seconds", "best", "device")


def history_csv(rows: list[dict]) -> bytes:
    """``history.csv`` of the history rows (as kept in checkpoints): the same bytes for the same rows."""
    return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS)).to_csv(index=False).encode()

