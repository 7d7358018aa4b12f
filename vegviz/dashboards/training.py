"""The training dashboard: pick data, model and hyperparameters, train in the background, watch it learn.

    dash = TrainingDashboard(model="convlstm_physics", max_epochs=5)
    dash                      # in a notebook; or dash.servable() under ``panel serve``
    dash.start(); dash.wait() # the same from code (``wait`` drains the events, see below)

How the pieces talk: the model trains in a background thread (:class:`vegviz.training.Trainer`,
then the best checkpoint's predictions, as :func:`vegviz.training.train` does). Training
events arrive on that thread, where nothing may touch the page, so they go into a
thread-safe queue. :meth:`TrainingDashboard.poll` drains the queue and updates the
page; a periodic callback calls it every ``poll_period`` ms while a run is active (in a
served session and in a Jupyter kernel), and code without an event loop (tests, scripts)
calls :meth:`poll` or :meth:`wait` itself.

The preview map is computed on the training thread right after each epoch (the model
is not being updated at that moment): the current model runs over the validation
period's burn-in and up to one satellite composite date, the cheapest day that still
shows what the network learned.

Security: the run folder is ``sources.safe_path(run_name)`` under the runs directory, so
no typed name leaves it; each dashboard instance (each browser session) gets its own
unique default name, so sessions that train at the same time never share a folder. A run's folder
is locked from Start (or Resume) until its job ends (:mod:`vegviz.training.lock`): another session,
or another process, that asks for the same name meanwhile is refused and told who writes it.
"""
from __future__ import annotations

import inspect
import os
import logging
import queue
import secrets
import threading
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the bokeh options used below)
import numpy as np
import pandas as pd
import panel as pn
import param
import xarray as xr

from .. import bokeh_setup  # noqa: F401  (frame-sized plots: no W-1005 per session)
from ..basemap import map_axes
from ..models import list_models
from ..training import Config, ConfigError, ModelConfig, OptimizerConfig, Run, Trainer, runs_root
from ..training.config import DEVICES
from ..training.device import settings as device_settings
from ..training.lock import LOCK_FILE, RunBusyError, RunLock, command_line
from ..training.run import PREDICTIONS
from ..training.tiles import stream
from ..training.trainer import HISTORY_COLUMNS, INFERENCE_CHUNK, RESUMABLE_CHANGES
from . import sources
from .jobs import poll_until_done, stop_periodic

log = logging.getLogger(__name__)

__all__ = ["TrainingDashboard", "RunNameError"]

LAI_CMAP = "YlGn"
#: width of the settings form (px); its widgets fit inside with their margins
#: what the plots' terms mean, for the tooltip beside them
LOSS_HELP = ("Loss: the mean squared error of the model's LAI against the satellite's on observed days, with LAI "
             "normalised (its training-years mean subtracted, divided by its standard deviation): about 1 for a "
             "model that always predicts the mean, 0 for a perfect one. Training (batch): each optimisation step; "
             "(epoch): their mean over an epoch; validation: the validation years, scored after each epoch. "
             "NSE (Nash-Sutcliffe efficiency) per cell: 1 is perfect, 0 is no better than the cell's own mean; "
             "the plot shows its median over the basin's cells.")
FORM_WIDTH = 300
#: days of the validation period searched for the preview's composite date (the first year)
PREVIEW_SEARCH_DAYS = 365
#: statuses of :attr:`TrainingDashboard.status`
STATUSES = ("idle", "starting", "training", "stopping", "predicting", "finished", "stopped", "failed")

_CFG = Config.__dataclass_fields__
_HP, _OPT = ModelConfig(), OptimizerConfig()


class RunNameError(ValueError):
    """The run name cannot be used (outside the runs folder, empty, or taken by another run)."""


@dataclass
class _Job:
    """What the dashboard knows about the run in progress (one per start/resume)."""

    token: int
    trainer: Trainer
    run_dir: Path
    resume: bool
    thread: threading.Thread | None = None
    error_shown: bool = False
    stopped_at: str = ""


def _auto_name(model: str) -> str:
    # timestamp for sorting, random suffix so two sessions in the same second still differ
    return f"{model}-{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def _holds_files(path: Path) -> bool:
    """Whether ``path`` holds anything but the (free or held) lock file of a run folder."""
    return path.is_dir() and any(p.name != LOCK_FILE for p in path.iterdir())


def _merge(settings: dict, extra: dict) -> dict:
    """``extra`` over ``settings``; nested sections (hparams, optimizer, periods) are merged key by key."""
    out = dict(settings)
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def _call(callback: Callable, run: Run):
    """``callback(run)`` when it requires a positional argument, else ``callback()``.

    So a dashboard's ``refresh(reload=False)`` is called bare, not with the run as ``reload``.
    """
    try:
        params = inspect.signature(callback).parameters.values()
    except (TypeError, ValueError):  # no signature (some builtins): assume it takes the run
        return callback(run)
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    wants_run = any((p.kind in positional and p.default is p.empty) or p.kind is p.VAR_POSITIONAL for p in params)
    return callback(run) if wants_run else callback()


def _round_up(x: float, step: float = 0.5) -> float:
    return float(np.ceil(max(x, step) / step) * step)


class TrainingDashboard(pn.viewable.Viewer):
    """Train a model interactively: settings, Start / Stop / Resume, live losses, NSE and a map preview.

    Parameters are the main :class:`vegviz.training.Config` settings; ``extra`` takes any
    other Config key (e.g. ``{"num_threads": 1, "patience": 3}``). Read-only outputs:
    ``status``, ``running``, ``device_used``, ``run_dir``, ``history``.
    """

    # ------------------------------------------------------------------ settings
    preset = param.Selector(default="custom", objects=["custom", "quick", "study"], label="Preset",
                            doc="fills the fields below (vegviz.presets): quick = minutes on this CPU (the small "
                                "virtual basin, 8 filters, 90-day windows, 3 epochs), study = the study's settings; "
                                "custom = as edited")
    data = param.Selector(default="virtual_ucrb_small", objects=["virtual_ucrb_small"], check_on_set=False,
                          doc="model-ready catalog entry (every one is listed: each domain's virtual basins, "
                              "prepared data), or a Zarr/NetCDF path inside the data directory")
    model = param.Selector(default="convlstm", objects=list_models(),
                           doc="convlstm: learns space and time from the climate maps; convlstm_physics: the same, "
                               "also fed the process model's LAI; lstm: each cell on its own (no neighbours)")
    filters = param.Integer(default=_HP.filters, bounds=(1, 512),
                            doc="hidden channels (ConvLSTM filters, LSTM units): the model's memory per cell; more "
                                "fit more detail and cost time roughly in proportion")
    max_epochs = param.Integer(default=10, bounds=(1, 100_000), label="Epochs (max)",
                               doc="an epoch is one pass over every training window; training stops after this many "
                                   "(the best epoch on the validation years is kept)")
    lr = param.Number(default=_OPT.lr, bounds=(0, 1), label="Learning rate",
                      doc="the size of each optimisation step (Adam): too large and the loss jumps about, too "
                          "small and it falls slowly")
    batch_size = param.Integer(default=_CFG["batch_size"].default, bounds=(1, 1024), label="Batch size",
                               doc="windows per optimisation step: larger is smoother and uses more memory")
    window = param.Integer(default=_CFG["window"].default, bounds=(1, None), label="Window (days scored)",
                           doc="each training sample is this many days of maps whose LAI is compared with the "
                               "satellite's (after the burn-in)")
    burn_in = param.Integer(default=_CFG["burn_in"].default, bounds=(0, None), label="Burn-in (days)",
                            doc="days run before each window and not scored: the model's memory (soil water, "
                                "leaves) fills up from the climate before it is judged")
    stride = param.Integer(default=_CFG["stride"].default, bounds=(0, None), label="Stride (days, 0 = window)",
                           doc="days between the starts of two training windows: smaller than the window gives "
                               "overlapping, more numerous samples (slower epochs); 0 = no overlap")
    chunk = param.Integer(default=_CFG["chunk"].default, bounds=(1, None), label="BPTT chunk (days)",
                          doc="backpropagation through time in pieces of this many days: the memory a step needs "
                              "grows with it; the model's state still runs through the whole window")
    device = param.Selector(default="auto", objects=list(DEVICES), label="Device",
                            doc="auto: the GPU when torch sees one, else the CPU")
    # half the cores by default: torch would take them all, and the page (and a second
    # user's run) then waits for compute
    threads = param.Integer(default=max(1, (os.cpu_count() or 2) // 2), bounds=(1, os.cpu_count() or 1),
                            label="CPU threads", doc="torch threads of a run on the CPU (Config.num_threads)")
    run_name = param.String(default="", label="Run name",
                            doc="folder under the runs directory; a fresh unique name per session by default")
    extra = param.Dict(default={}, precedence=-1, doc="further Config settings, e.g. {'num_threads': 1}")
    poll_period = param.Integer(default=300, bounds=(50, 5000), precedence=-1,
                                doc="ms between two drains of the event queue while a run is active")

    # ------------------------------------------------------------------ outputs (not widgets)
    status = param.Selector(default="idle", objects=list(STATUSES), precedence=-1)
    running = param.Boolean(default=False, precedence=-1, doc="a run is active (until its events are drained)")
    device_used = param.String(default="", precedence=-1, doc="device and precision of the current run")
    run_dir = param.String(default="", precedence=-1, doc="folder of the current or last run")
    history = param.DataFrame(default=None, precedence=-1, doc="per-epoch metrics of the current run")

    _SETTINGS = ("preset", "data", "model", "filters", "max_epochs", "lr", "batch_size", "window", "burn_in", "stride",
                 "chunk", "device", "threads", "run_name")

    def __init__(self, **params):
        from ..demo import dashboard_defaults, demo_mode, fits_demo  # $VEGVIZ_DEMO (Binder): smaller defaults

        super().__init__(**{**dashboard_defaults(), **params})
        try:
            choices = sources.data_choices()
        except Exception as e:  # no catalog: the page still opens and says why
            log.warning("no data choices: %s", e)
            choices = []
        if demo_mode():  # a full-period virtual basin, or a domain larger than the UCRB, does not fit 2 GB
            choices = [c for c in choices if not (c.startswith("virtual_") and not c.endswith("_small"))]
            choices = [c for c in choices if (d := sources.data_domain(c)) is None or fits_demo(d)]
        self._choices = choices
        self._domains: dict = {}
        self._previewed = None
        self.param.data.objects = choices + ([self.data] if self.data not in choices else [])
        self._auto = ""
        if not self.run_name:
            self._auto = self.run_name = _auto_name(self.model)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._poll_lock = threading.Lock()
        self._job: _Job | None = None
        self._tokens = 0
        self._callbacks: list[Callable] = []
        self._periodic = None
        self.history = self._empty_history()
        self._build()

    # ------------------------------------------------------------------ public API
    def on_finished(self, callback: Callable) -> Callable:
        """Call ``callback(run)`` (``callback()`` if it needs no argument) when a run has written its predictions.

        Called from :meth:`poll`, i.e. on the page's thread, so a callback may update other
        dashboards (e.g. ``train.on_finished(skill.refresh)``). Returns ``callback``.
        """
        if not callable(callback):
            raise TypeError(f"on_finished needs a callable, got {callback!r}")
        self._callbacks.append(callback)
        return callback

    def start(self, resume: bool = False) -> bool:
        """Start training (``resume``: continue the run ``run_name`` from its last checkpoint).

        Returns False, with the reason shown in the page, when the settings or the run
        name are invalid or a run is already active; nothing is written then.
        """
        if self.running:
            self._show_error("A run is already active. Fix: stop it, or wait until it ends.")
            return False
        self._hide_error()
        lock = None
        try:
            run_dir = self._run_dir(resume)
            # the folder's lock, held from here until the job ends (the training thread lets it go): another
            # session or process is refused meanwhile, also before the run has written a file. An existing
            # folder is locked first, so that a refusal names who writes it; a new one is made (claimed) only
            # once the settings are good, so a refused start writes nothing
            lock = RunLock(run_dir, f"training dashboard ({command_line()})")
            if run_dir.exists():
                lock.acquire()
            self._check_free(run_dir, resume)
            config = self._resume_config(run_dir) if resume else self.config(run_dir)
            trainer = Trainer(config, None, run_dir, progress=False)
            if not lock.held:
                lock.acquire()
                self._check_free(run_dir, resume)  # again, now that no one else can write there
            trainer.lock = lock
        except BaseException as e:
            if lock is not None:
                lock.release()
            if not isinstance(e, (ValueError, OSError, RunBusyError)):  # ConfigError, RunNameError, DataError, ...
                raise
            self._show_error(str(e), title="Cannot start")
            return False
        self._tokens += 1
        job = _Job(self._tokens, trainer, run_dir, resume)
        trainer.subscribe(self._subscriber(job))
        self._reset_views(job)
        self._job = job
        job.thread = threading.Thread(target=self._work, args=(job,), name=f"vegviz-dashboard-{run_dir.name}",
                                      daemon=True)
        job.thread.start()
        self._start_polling()
        return True

    def resume(self) -> bool:
        """Continue the run named ``run_name`` from ``checkpoints/last.pt`` (epochs up to ``max_epochs``)."""
        return self.start(resume=True)

    def stop(self) -> None:
        """Ask the run to stop after the current batch; it writes ``last.pt`` so it can be resumed."""
        job = self._job
        if job is None or not self.running:
            return
        job.trainer.request_stop()
        if self.status in ("starting", "training"):
            self.status = "stopping"
            self._message("Stopping after the current batch (a checkpoint is written, Resume continues) ...")

    def poll(self) -> int:
        """Apply the queued training events to the page (thread-safe); returns how many were applied."""
        if not self._poll_lock.acquire(blocking=False):
            return 0  # another caller is draining already
        try:
            return self._drain()
        finally:
            self._poll_lock.release()

    def wait(self, timeout: float | None = None, interval: float = 0.1) -> str:
        """Poll until the active run has ended; returns the final status (TimeoutError after ``timeout`` s)."""
        poll_until_done(self.poll, lambda: self.running, f"the run {self.run_dir}", timeout, interval)
        return self.status

    def config(self, run_dir: Path | None = None) -> Config:
        """The :class:`Config` the current settings describe (ConfigError when invalid)."""
        data = self._data_source()
        settings = {
            "model": self.model,
            "hparams": {"filters": int(self.filters)},
            "optimizer": {"lr": float(self.lr)},
            "max_epochs": int(self.max_epochs),
            "batch_size": int(self.batch_size),
            "window": int(self.window),
            "burn_in": int(self.burn_in),
            "stride": int(self.stride) or None,
            "chunk": int(self.chunk),
            "device": self.device,
            "num_threads": int(self.threads),
        }
        if run_dir is not None:
            settings["name"] = run_dir.relative_to(self._runs_root()).as_posix()
        return Config.for_data(data, **_merge(settings, self.extra))

    # ------------------------------------------------------------------ names and paths
    @staticmethod
    def _runs_root() -> Path:
        return runs_root().expanduser().resolve()

    def _data_source(self) -> str:
        """A catalog entry name, or a path resolved inside the data (or runs) directory."""
        name = str(self.data or "").strip()
        if not name:
            raise ConfigError("data: no data set chosen. Fix: pick one of " + ", ".join(self._choices))
        if name in self._choices:
            return name
        from ..paths import cache_dir

        roots = [cache_dir().expanduser().resolve(), self._runs_root()]
        try:
            path = sources.safe_path(name, roots=roots)
        except sources.PathOutsideRoots:
            raise ConfigError(f"data: {name!r} is outside the folders this app may read ({roots[0]}, {roots[1]}). "
                              f"Fix: choose one of {', '.join(self._choices)}, or put the data in {roots[0]}") from None
        if not path.exists():
            raise ConfigError(f"data: {name!r} is neither a model-ready catalog entry "
                              f"({', '.join(self._choices)}) nor an existing Zarr/NetCDF path in "
                              f"{roots[0]}. Fix: choose one of the entries")
        return str(path)

    def _run_dir(self, resume: bool) -> Path:
        """The run folder for ``run_name``, inside the runs directory (:meth:`_check_free` says whether it is free)."""
        root = self._runs_root()
        name = (self.run_name or "").strip()
        if not name:
            raise RunNameError("Run name is empty. Fix: type a name for the run folder")
        try:
            path = sources.safe_path(name, roots=[root])
        except sources.PathOutsideRoots:
            raise RunNameError(f"Run name {name!r} points outside the runs folder {root}. Fix: use a plain name "
                               "such as 'convlstm-test'") from None
        depth = len(path.relative_to(root).parts)
        if depth == 0 or depth > 2:
            raise RunNameError(f"Run name {name!r} must name a folder (or a folder/sub-folder) inside {root}. "
                               "Fix: use a plain name such as 'convlstm-test'")
        if not resume and name == self._auto and _holds_files(path):
            # our own default name was used by the last run: take a fresh one
            self._auto = self.run_name = _auto_name(self.model)
            return self._run_dir(resume)
        return path

    def _check_free(self, path: Path, resume: bool) -> None:
        """RunNameError unless ``path`` can take a new run (nothing in it), or has a run to resume.

        The lock file alone does not count: a folder being written is refused by its lock (:meth:`start`).
        """
        name = (self.run_name or "").strip()
        if resume:
            if not (path / "checkpoints" / "last.pt").exists():
                raise RunNameError(f"Run {name!r} has no checkpoint to resume from ({path / 'checkpoints'}). "
                                   "Fix: press Start to train it from the beginning, or type the name of a "
                                   "stopped run")
            return
        if _holds_files(path):
            what = "a run" if (path / "config.yaml").exists() else "other files"
            raise RunNameError(f"Run name {name!r} already holds {what} ({path}). Fix: choose another name, "
                               "or press Resume to continue that run")

    def _resume_config(self, run_dir: Path) -> Config:
        """The run's own configuration (resuming requires it), with this page's epochs and device."""
        config = Config.from_yaml(run_dir / "config.yaml")
        source = str(config.data)
        if Path(source).expanduser().is_absolute():
            sources.safe_path(source)  # a path must still lie inside the allowed folders
        # only settings that do not change what the weights mean may differ from the checkpoint's
        changes = {k: v for k, v in (self.extra or {}).items() if k in RESUMABLE_CHANGES and k != "name"}
        return config.replace(**{"num_threads": int(self.threads), **changes, "max_epochs": int(self.max_epochs),
                                 "device": self.device})

    @param.depends("data", watch=True)
    def _list_path(self):
        # a path given from code shows in the selector too (it is checked when training starts)
        if self.data not in self.param.data.objects:
            self.param.data.objects = self._choices + [self.data]

    @property
    def domain(self):
        """The :class:`~vegviz.domains.Domain` of the chosen data (None when it cannot be told yet)."""
        key = str(self.data or "")
        if key not in self._domains:
            self._domains[key] = sources.data_domain(key)
        return self._domains[key]

    def domain_text(self) -> str:
        """One line naming the chosen data's domain, its size and window."""
        d = self.domain
        if d is None:
            return f"**Domain:** not known until `{self.data}` is opened (when training starts)"
        w, e, s, n = d.extent
        return (f"**Domain:** {d.title} · {d.grid.nlat} x {d.grid.nlon} cells · "
                f"{s:.2f}..{n:.2f} N, {w:.2f}..{e:.2f} E")

    @param.depends("data", watch=True)
    def _on_data(self):
        self._domain_text.object = self.domain_text()
        if not self.running:  # the empty maps show the chosen data's window until a run starts
            self._previewed = None
            self._predicted_pipe.send(None)
            self._satellite_pipe.send(None)

    @param.depends("preset", watch=True)
    def _apply_preset(self):
        """Fill the fields with the chosen preset, on the chosen data's domain; the data only where it is offered."""
        from ..presets import dashboard_settings

        if self.preset == "custom" or self.running:
            return
        d = self.domain
        settings = dashboard_settings(self.preset, d.name if d is not None else None)
        if settings["data"] not in self.param.data.objects:  # e.g. the full basin on Binder: keep the data
            settings.pop("data")
        settings["extra"] = {**self.extra, **settings["extra"]}
        self.param.update(**settings)

    @param.depends("model", watch=True)
    def _rename_on_model(self):
        # the default name carries the model; a typed name is the user's and stays
        if self.run_name == self._auto and not self.running:
            self._auto = self.run_name = _auto_name(self.model)

    # ------------------------------------------------------------------ the training thread
    def _subscriber(self, job: _Job):
        """The trainer's event callback: queue the event, and on start/epoch the preview map."""
        ctx: dict = {}

        def on_event(event) -> None:
            self._queue.put((job.token, "event", event))
            if event.kind == "start" or event.kind == "epoch":
                try:
                    # at the start only the satellite map: the predicted one follows each epoch
                    item = self._preview(job.trainer, ctx, predicted=event.kind == "epoch", epoch=event.epoch)
                except Exception as e:  # a failed preview must not end the run
                    log.exception("preview failed")
                    item = {"error": f"{type(e).__name__}: {e}"}
                if item is not None:
                    self._queue.put((job.token, "preview", item))

        return on_event

    @staticmethod
    def _preview(trainer: Trainer, ctx: dict, predicted: bool, epoch: int) -> dict | None:
        """Satellite LAI on one validation composite date and (``predicted``) the model's map that day."""
        v, stats = trainer.val_reader, trainer.stats
        if "k" not in ctx:
            obs = v.read_target(v.pad, min(v.pad + PREVIEW_SEARCH_DAYS, v.shape[0]))
            counts = np.isfinite(obs).sum(axis=(1, 2))
            k = int(np.argmax(counts))  # the best-observed composite of the first validation year
            ctx.update(k=k, day=pd.Timestamp(v.time[v.pad + k]),
                       satellite=stats.denormalize(obs[k]).astype(np.float32))
        k = ctx["k"]
        item = {"day": ctx["day"], "satellite": ctx["satellite"], "epoch": epoch, "model": trainer.config.model,
                "lat": trainer.coords["lat"], "lon": trainer.coords["lon"], "predicted": None}
        if predicted:
            # burn-in days plus the validation days up to the preview day: no more than needed
            for *_, y in stream(trainer.model, v, trainer.hardware, chunk=INFERENCE_CHUNK, days=v.pad + k + 1):
                p = y[-1]  # the whole domain, chunk by chunk: the last chunk ends on the preview day
            item["predicted"] = np.where(trainer.mask, stats.denormalize(p), np.nan).astype(np.float32)
        return item

    def _work(self, job: _Job) -> None:
        """Thread body: train, then write the best model's predictions (as vegviz.training.train)."""
        trainer, result, error = job.trainer, None, None
        try:
            with trainer.writing():  # the lock start() took: let go when the job ends (done, stopped or failed)
                trainer.fit(resume=job.resume)
                result = trainer.result
                run = Run(job.run_dir)
                if result != "stopped" and run.best_checkpoint.exists():
                    self._queue.put((job.token, "predicting", None))
                    with device_settings(trainer.config, trainer.hardware):  # the run's thread count applies too
                        run.predict()
        except BaseException as e:  # shown in the page by poll()
            log.debug("training run %s failed", job.run_dir, exc_info=True)
            error = e
        self._queue.put((job.token, "done", {"result": result, "error": error}))

    # ------------------------------------------------------------------ applying events (page thread)
    def _drain(self) -> int:
        n, batches, epochs = 0, [], []
        while True:
            try:
                token, kind, payload = self._queue.get_nowait()
            except queue.Empty:
                break
            job = self._job
            if job is None or token != job.token:
                continue  # left over from an earlier run
            n += 1
            if kind == "event":
                ev = payload
                if ev.kind == "batch":
                    batches.append({"epoch": ev.epoch - 1 + ev.batch / ev.batches, "loss": ev.loss})
                    self._on_batch(ev)
                elif ev.kind == "epoch":
                    epochs.append(ev)
                    self._on_epoch(ev)
                else:
                    getattr(self, f"_on_{ev.kind}")(job, ev)
            elif kind == "preview":
                self._on_preview(payload)
            elif kind == "predicting":
                self.status = "predicting"
                self._message(f"Training ended; writing the predictions of the best epoch to "
                              f"`{job.run_dir / PREDICTIONS}` ...")
            elif kind == "done":
                self._flush(batches, epochs)
                batches, epochs = [], []
                self._on_done(job, **payload)
        self._flush(batches, epochs)
        return n

    def _flush(self, batches: list, epochs: list) -> None:
        # one stream update per drain, not per event: the browser redraws once
        if batches:
            self._batch_buffer.send(pd.DataFrame(batches))
        if epochs:
            self._epoch_buffer.send(pd.DataFrame([{
                "epoch": e.epoch, "train_loss": e.train_loss, "val_loss": e.val_loss,
                "val_nse": e.val_nse_median} for e in epochs]))

    def _on_start(self, job: _Job, ev) -> None:
        self.device_used = f"{ev.device} ({ev.precision})"
        self.status = "stopping" if job.trainer.stop_requested else "training"
        self._max_epochs = ev.max_epochs
        self._progress.max = max(ev.max_epochs * ev.batches_per_epoch, 1)
        self._progress.value = min((ev.epoch - 1) * ev.batches_per_epoch, self._progress.max)
        self._progress_text.object = (f"epoch {min(ev.epoch, ev.max_epochs)}/{ev.max_epochs} · batch 0/"
                                      f"{ev.batches_per_epoch}")
        self._device_text.object = f"**Device:** {self.device_used}"
        if ev.resumed:  # the epochs before the checkpoint, so the curves show the whole run
            done = Run(job.run_dir).history
            done = done[done["epoch"] < ev.epoch]
            if len(done):
                self.history = done.reset_index(drop=True)
                self._epoch_buffer.send(done.rename(columns={"val_nse_median": "val_nse"})[
                    ["epoch", "train_loss", "val_loss", "val_nse"]])
        what = "Resumed" if ev.resumed else "Training"
        self._message(f"{what} `{job.run_dir.name}` from epoch {ev.epoch} ({ev.config['model']}, "
                      f"{ev.batches_per_epoch} batches per epoch) on **{self.device_used}**.")

    def _on_batch(self, ev) -> None:
        self._progress.max = max(self._max_epochs * ev.batches, 1)
        self._progress.value = min((ev.epoch - 1) * ev.batches + ev.batch, self._progress.max)
        self._progress_text.object = (f"epoch {ev.epoch}/{self._max_epochs} · batch {ev.batch}/{ev.batches} · "
                                      f"loss {ev.loss:.4f} · {ev.seconds:.2f} s/batch")

    def _on_epoch(self, ev) -> None:
        row = {"epoch": ev.epoch, "train_loss": ev.train_loss, "val_loss": ev.val_loss,
               "val_nse_median": ev.val_nse_median, "lr": ev.lr, "seconds": ev.seconds, "best": ev.improved,
               "device": ev.device}
        rows = [r for r in self.history.to_dict("records") if r["epoch"] != ev.epoch]
        self.history = pd.DataFrame(rows + [row], columns=list(self.history.columns))
        best = " (best so far)" if ev.improved else ""
        self._message(f"Epoch {ev.epoch}/{self._max_epochs}: train loss {ev.train_loss:.4f}, validation loss "
                      f"{ev.val_loss:.4f}, median validation NSE {ev.val_nse_median:.3f}{best}; "
                      f"{ev.seconds:.1f} s.")

    def _on_stop(self, job: _Job, ev) -> None:
        job.stopped_at = f"epoch {ev.epoch}, batch {ev.batch}"
        self._message(f"Stopped at {job.stopped_at}; checkpoint `{ev.checkpoint}`. Press Resume to continue.")

    def _on_end(self, job: _Job, ev) -> None:
        pass  # the run is over only when its predictions are written ("done")

    def _on_error(self, job: _Job, ev) -> None:
        log.error("training run %s failed: %s\n%s", job.run_dir, ev.error, ev.traceback)
        self._show_error(ev.error, title=f"Run {job.run_dir.name} failed")
        job.error_shown = True

    def _on_done(self, job: _Job, result: str | None, error: BaseException | None) -> None:
        self.running = False
        self._stop_polling()
        if error is not None:
            self.status = "failed"
            if not job.error_shown:
                self._show_error(f"{type(error).__name__}: {error}", title=f"Run {job.run_dir.name} failed")
            self._message(f"Run `{job.run_dir.name}` failed; change the settings and press Start again.")
            self._sync_buttons()
            return
        if result == "stopped":
            self.status = "stopped"
            self._message(f"Run `{job.run_dir.name}` stopped at {job.stopped_at or 'the end of an epoch'}; its "
                          "checkpoint is saved. Press Resume to continue it.")
            self._sync_buttons()
            return
        self.status = "finished"
        run = Run(job.run_dir)
        why = {"early_stopping": "early stopping", "max_epochs": "the last epoch"}.get(result, result)
        self._message(f"Run `{job.run_dir.name}` finished ({why}, {len(self.history)} epochs); predictions "
                      f"written to `{run.predictions_path}`. The other dashboards list it now.")
        self._sync_buttons()
        for cb in list(self._callbacks):
            try:
                _call(cb, run)
            except Exception as e:  # another dashboard's bug must not break this one
                log.exception("on_finished callback %r failed", cb)
                self._show_error(f"{type(e).__name__}: {e}", title="A dashboard failed to refresh",
                                 alert_type="warning")

    def _on_preview(self, item: dict) -> None:
        if "error" in item:
            self._preview_text.object = f"Preview unavailable: {item['error']}"
            return
        self._previewed = item
        coords = {"lat": item["lat"], "lon": item["lon"]}
        sat = xr.DataArray(item["satellite"], coords, ("lat", "lon"), name="LAI")
        values = sat.values[np.isfinite(sat.values)]
        clim = (0.0, _round_up(float(np.percentile(values, 98))) if values.size else 1.0)
        day = f"{item['day']:%Y-%m-%d}"
        self._satellite_pipe.send(sat.assign_attrs(clim=clim, title=f"satellite LAI composite {day}"))
        if item["predicted"] is not None:
            pred = xr.DataArray(item["predicted"], coords, ("lat", "lon"), name="LAI")
            self._predicted_pipe.send(pred.assign_attrs(clim=clim, title=f"{item['model']} LAI {day}, "
                                                                          f"epoch {item['epoch']}"))
        model = (f"the model after epoch {item['epoch']}" if item["predicted"] is not None
                 else "the model's map follows after each epoch")
        where = self.domain
        if where is None or not where.grid.matches(item["lat"], item["lon"]):
            where = sources.domain_of(xr.Dataset(coords=coords))
        self._preview_text.object = (f"**{where.title}**, **validation day {day}** (the best-observed satellite "
                                     f"composite of the first validation year); {model}.")

    # ------------------------------------------------------------------ polling
    def _start_polling(self) -> None:
        self.running = True
        self.status = "starting"
        self._sync_buttons()
        if self._periodic is None:
            # fires in a served session or a running kernel loop; elsewhere poll()/wait() drain
            self._periodic = pn.state.add_periodic_callback(self.poll, period=self.poll_period)

    def _stop_polling(self) -> None:
        stop_periodic(self._periodic)
        self._periodic = None

    # ------------------------------------------------------------------ page
    @staticmethod
    def _empty_history() -> pd.DataFrame:
        return pd.DataFrame(columns=list(HISTORY_COLUMNS))

    def _reset_views(self, job: _Job) -> None:
        self.history = self._empty_history()
        self.run_dir = str(job.run_dir)
        self.device_used = ""
        self._batch_buffer.clear()
        self._epoch_buffer.clear()
        self._progress.value = 0
        self._progress_text.object = "starting ..."
        self._device_text.object = "**Device:** resolving ..."
        self._max_epochs = int(self.max_epochs)
        self._message(f"{'Resuming' if job.resume else 'Starting'} `{job.run_dir.name}`: opening the data ...")

    def _message(self, text: str) -> None:
        self._status_text.object = text

    def _show_error(self, text: str, title: str = "Error", alert_type: str = "danger") -> None:
        self.alert.alert_type = alert_type
        self.alert.object = f"**{title}:** {text}"
        self.alert.visible = True

    def _hide_error(self) -> None:
        self.alert.visible = False
        self.alert.object = ""

    def _sync_buttons(self) -> None:
        self._start_button.disabled = self.running
        self._resume_button.disabled = self.running
        self._stop_button.disabled = not self.running

    def epoch_range(self) -> tuple[float, float]:
        """The x-range of the loss and NSE plots: 0 to the last epoch drawn (at least 1), padded on the right.

        From 0 because epoch 1's batch losses lie at (0, 1]; the same range for both plots
        (Panel links their epoch axes), computed from both buffers, so whichever plot is
        redrawn last cannot narrow it; the padding keeps the last epoch's marker whole.
        """
        last = 1.0
        for buffer in (self._batch_buffer, self._epoch_buffer):
            epochs = np.asarray(buffer.data["epoch"], dtype=float) if len(buffer.data) else np.empty(0)
            if np.isfinite(epochs).any():
                last = max(last, float(np.nanmax(epochs)))
        return 0.0, last * 1.04

    def _line_plot(self, buffer, column: str, label: str, ylabel: str, color: str, points: bool):
        def draw(data):
            d = data[["epoch", column]].rename(columns={column: ylabel})
            # framewise on the elements themselves: the overlay's option does not reach them, and the
            # axes then followed only some of the stream updates
            axes = {"xlim": self.epoch_range(), "framewise": True}
            curve = hv.Curve(d, "epoch", ylabel, label=label).opts(color=color, line_width=1 if not points else 2,
                                                                  **axes)
            if not points:
                return curve
            return curve * hv.Scatter(d, "epoch", ylabel, label=label).opts(color=color, size=6, **axes)

        return hv.DynamicMap(draw, streams=[buffer])

    def _empty_map(self, title: str) -> xr.DataArray:
        """An all-NaN map of the chosen data's domain window (CONUS, the NLDAS-2 domain, while it is unknown)."""
        from .. import domains

        d = self.domain or domains.get("conus")
        g = d.grid
        return xr.DataArray(np.full(g.shape, np.nan, np.float32), {"lat": g.lat, "lon": g.lon}, ("lat", "lon"),
                            name="LAI", attrs={"clim": (0.0, 1.0), "title": f"{title} · {d.title}",
                                               "domain": d.name})

    def _map_plot(self, pipe, empty_title: str):
        def draw(data):
            if data is None:  # nothing yet: an empty map of the chosen data's domain
                data = self._empty_map(empty_title)
            from ..basemap import basemap

            img = hv.Image(data, kdims=["lon", "lat"], vdims=["LAI"]).opts(
                cmap=LAI_CMAP, clim=tuple(data.attrs["clim"]), colorbar=True, tools=["hover"],
                title=data.attrs["title"], frame_width=330, **map_axes(data["lat"].values, value="LAI (m2 m-2)"),
            )
            with warnings.catch_warnings():  # a window beyond the legal state lines: said once in the log
                warnings.simplefilter("ignore", UserWarning)
                base = basemap(data)
            return (img * base).opts(framewise=True)

        return hv.DynamicMap(draw, streams=[pipe])

    def _form_widgets(self) -> dict[str, pn.widgets.Widget]:
        """The settings' widgets, each as wide as the form less its margins (so nothing sticks out)."""
        kinds = {
            "preset": pn.widgets.Select, "data": pn.widgets.Select, "model": pn.widgets.Select,
            "device": pn.widgets.RadioButtonGroup, "lr": pn.widgets.FloatInput, "run_name": pn.widgets.TextInput,
        }
        extra = {"lr": {"step": 1e-4, "format": "0.00000"}}
        out = {}
        for name in self._SETTINGS:
            kind = kinds.get(name, pn.widgets.IntInput)
            widget = kind.from_param(self.param[name], **extra.get(name, {}))
            margin = widget.margin if isinstance(widget.margin, tuple) else (widget.margin,) * 2
            side = margin[1] + margin[3 if len(margin) == 4 else 1]
            widget.width = FORM_WIDTH - side
            out[name] = widget
        return out

    def _build(self) -> None:
        self._batch_buffer = hv.streams.Buffer(pd.DataFrame({"epoch": [], "loss": []}), length=1_000_000,
                                               index=False)
        self._epoch_buffer = hv.streams.Buffer(
            pd.DataFrame({"epoch": [], "train_loss": [], "val_loss": [], "val_nse": []}), length=100_000, index=False)
        self._predicted_pipe = hv.streams.Pipe(data=None)
        self._satellite_pipe = hv.streams.Pipe(data=None)

        loss = (self._line_plot(self._batch_buffer, "loss", "training (batch)", "loss", "#bbbbbb", False)
                * self._line_plot(self._epoch_buffer, "train_loss", "training (epoch)", "loss", "#1b9e77", True)
                * self._line_plot(self._epoch_buffer, "val_loss", "validation", "loss", "#d95f02", True)).opts(
            title="Loss (normalised LAI)", frame_width=420, frame_height=220, legend_position="top_left",
            framewise=True, show_grid=True)
        nse = self._line_plot(self._epoch_buffer, "val_nse", "validation", "median NSE", "#7570b3", True).opts(
            title="Validation NSE (median over cells)", frame_width=300, frame_height=220, framewise=True,
            show_grid=True, show_legend=False)
        self.loss_plot, self.nse_plot = loss, nse
        self.predicted_map = self._map_plot(self._predicted_pipe, "predicted LAI (after the first epoch)")
        self.satellite_map = self._map_plot(self._satellite_pipe, "satellite LAI (when training starts)")

        self._start_button = pn.widgets.Button(label="Start", color="primary")
        self._stop_button = pn.widgets.Button(label="Stop", color="warning", disabled=True)
        self._resume_button = pn.widgets.Button(label="Resume", color="default")
        self._start_button.on_click(lambda _: self.start())
        self._stop_button.on_click(lambda _: self.stop())
        self._resume_button.on_click(lambda _: self.resume())
        self.alert = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self._status_text = pn.pane.Markdown("Choose the settings and press **Start**.", sizing_mode="stretch_width")
        self._progress = pn.indicators.Progress(value=0, max=1, width=300, bar_color="success")
        self._progress_text = pn.pane.Markdown("not started")
        try:
            import torch

            auto = "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:
            auto = "cpu"
        self._device_text = pn.pane.Markdown(f"**Device:** not started ('auto' would use {auto})")
        self._preview_text = pn.pane.Markdown("The preview map appears when training starts.")
        self._domain_text = pn.pane.Markdown(self.domain_text(), sizing_mode="stretch_width")

        self.form = self._form_widgets()
        device_label = pn.pane.Markdown("Device", margin=(5, 10, -10, 10))  # a button group shows no label
        fields = [w for name, w in self.form.items() if name != "device"]
        at = list(self.form).index("device")
        controls = pn.Column(
            "### Training", *fields[:at], device_label, self.form["device"], *fields[at:],
            pn.Row(self._start_button, self._stop_button, self._resume_button), width=FORM_WIDTH)
        monitor = pn.Column(
            self.alert, self._domain_text, self._status_text,
            pn.Row(self._progress, self._progress_text), self._device_text,
            pn.Row(pn.pane.HoloViews(loss), pn.pane.HoloViews(nse),
                   pn.widgets.TooltipIcon(value=LOSS_HELP, margin=(20, 0))),
            self._preview_text,
            pn.Row(pn.pane.HoloViews(self.predicted_map), pn.pane.HoloViews(self.satellite_map)),
            sizing_mode="stretch_width",
        )
        self._layout = pn.Row(controls, monitor, sizing_mode="stretch_width")

    def __panel__(self):
        return self._layout
