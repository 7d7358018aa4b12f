"""The study's experiment: train the three models on one data set, score them, compare them.

::

    from vegviz.experiment import run_experiment
    exp = run_experiment(Config.for_data("virtual_ucrb_small", max_epochs=20), name="demo")
    exp.table            # median NSE/KGE/RMSE per model and per vegetation type
    exp.predictions      # one (time, lat, lon) variable per model, with provenance

Layout of an experiment folder (under :func:`vegviz.training.runs_root` by default)::

    <name>/
      experiment.yaml      base configuration, models, per-model wall time, epochs, device (and, with
                           ``parallel``, the run's process: threads, GPU, log), and the
                           provenance (vegviz.provenance: version, git commit, seed, libraries, data hash);
                           ``vegviz experiment --config <name>/experiment.yaml --name NEW`` repeats it
      <model>/             one run directory per model (see vegviz.training.run); trained with ``parallel``,
                           also train.log (the output of the process that trained it, appended on resume)
      <model>-m<k>/        instead, with ``members=N`` > 1: one run per ensemble member k = 0..N-1
                           (seed + k; vegviz.training.ensemble)
      predictions.nc       the models' predictions combined (one variable per model; for an ensemble
                           <model> is the member mean and <model>_spread the std across members)
      scores_<period>.nc   per-cell NSE/KGE/RMSE of models and references (validation, test, and train
                           for the dashboards' Time series tab)
      series.zarr          the basin cells' daily series, cell-major, for the dashboards
                           (vegviz.evaluation.series_store; rebuilt when predictions.nc changes)
      comparison.md/.csv   the comparison table (test period), with the noise ceiling
      ensemble.md/.csv     ensembles only: skill of the ensemble mean and of each member (test period)
      figures/*.html|png|svg   the study's panels a-d (HTML to explore; PNG and SVG for papers)
      .vegviz.lock         locked by the process running the experiment (vegviz.training.lock); each run
                           folder has its own, locked by whichever process trains that run

``split`` in the configuration picks the temporal split or a differential split-sample
test (:mod:`vegviz.training.split`); the years are chosen once and recorded in
``experiment.yaml`` and every run's ``config.yaml``. :func:`compare_experiments` puts two
experiments' median test NSE side by side (e.g. temporal against DSST).

Every model is trained with the same configuration (only ``model`` changes, and the seed
between ensemble members), so the comparison isolates the architecture. Rerunning an
interrupted experiment resumes each run from its last checkpoint and skips finished ones,
so an interrupted ensemble trains only its missing members.

``parallel`` (``vegviz experiment --parallel [N]``) trains the runs (models x members)
concurrently, at most N at a time, each in its own Python process that writes its output
to ``<run>/train.log`` (see :func:`plan_parallel` for the defaults: one run per GPU, or on
the CPU N processes of ``cores // N`` threads each). Everything else is as above: finished
runs are skipped, unfinished ones resumed, the records, predictions and scores are the
same, and on the CPU with the same thread count (``num_threads``) the weights are identical
to the sequential path's. A run that fails does not stop the others: they finish and are
kept, and the error (:class:`RunsFailed`) names each failed run and its log, so a rerun
trains only what is missing.
"""
from __future__ import annotations

import json
import os
import pickle
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
import yaml

from .io import write_atomic, write_netcdf_atomic
from .training.checkpoint import vegviz_version
from .training.config import Config, ConfigError
from .training.data import open_data, prepare
from .training.ensemble import check_members, ensemble_mean_spread, member_config, member_name
from .training.inference import write_predictions
from .training.lock import RunLock, command_line
from .training.run import Run, runs_root, train
from .training.split import resolve_split
from .training.trainer import RESUMABLE_CHANGES

__all__ = ["DEFAULT_MODELS", "Experiment", "ParallelPlan", "RunsFailed", "combine_predictions",
           "compare_experiments", "ensemble_table", "plan_parallel", "run_experiment"]

DEFAULT_MODELS = ("convlstm", "convlstm_physics", "lstm")
EXPERIMENT_FILE = "experiment.yaml"
PREDICTIONS = "predictions.nc"
#: a run's log when the experiment trains it in a process of its own (``parallel``); appended to on resume
RUN_LOG = "train.log"


@dataclass
class Experiment:
    """An experiment folder: member runs, combined predictions, scores and tables."""

    path: Path
    info: dict = field(default_factory=dict)

    @classmethod
    def open(cls, path) -> "Experiment":
        path = Path(path).expanduser()
        f = path / EXPERIMENT_FILE
        if not f.exists():
            raise FileNotFoundError(f"{path} is not a vegviz experiment (no {EXPERIMENT_FILE}). Fix: pass a folder "
                                    "written by `vegviz experiment` or run_experiment()")
        return cls(path, yaml.safe_load(f.read_text()) or {})

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def models(self) -> list[str]:
        return list(self.info.get("models", []))

    @property
    def config(self) -> Config:
        return Config.from_dict(self.info["config"])

    @property
    def n_members(self) -> int:
        """Ensemble members per model (1: no ensemble)."""
        return int(self.info.get("members", 1))

    def member_names(self, model: str) -> list[str]:
        """The run names of ``model``: ``[model]``, or ``model-m0 .. model-m<N-1>`` for an ensemble."""
        n = self.n_members
        return [model] if n == 1 else [member_name(model, k) for k in range(n)]

    def members(self, model: str) -> list[Run]:
        """The trained runs of ``model``, one per ensemble member (``[the model's run]`` without an
        ensemble), in member order; members not trained yet are left out."""
        if model not in self.models:
            raise ValueError(f"model {model!r} is not in experiment {self.name}; it has {self.models}")
        return [Run(self.path / n) for n in self.member_names(model) if (self.path / n / "config.yaml").exists()]

    @property
    def runs(self) -> dict[str, Run]:
        """Every trained run by run name (the model's name, or ``<model>-m<k>`` for ensemble members)."""
        return {run.name: run for m in self.models for run in self.members(m)}

    @property
    def predictions(self) -> xr.Dataset:
        return xr.open_dataset(self.path / PREDICTIONS, engine="netcdf4", chunks={})

    def scores(self, period: str = "test") -> xr.Dataset:
        with xr.open_dataset(self.path / f"scores_{period}.nc", engine="netcdf4") as ds:
            return ds.load()

    @property
    def table(self) -> pd.DataFrame:
        return pd.read_csv(self.path / "comparison.csv", index_col=0)

    def observations(self) -> xr.Dataset:
        return open_data(self.config.data, seed=self.config.seed)

    def __repr__(self) -> str:
        return f"Experiment({str(self.path)!r}: {', '.join(self.models)} on {self.info.get('config', {}).get('data')})"


def _run_prediction(model: str, run: Run) -> tuple[xr.DataArray, dict]:
    """A run's prediction of ``model`` (loaded) with the run's provenance on it, and the file's global attrs."""
    pred = run.predictions
    if pred is None:
        raise FileNotFoundError(f"run {run.path} has no predictions.nc. Fix: run.predict() or rerun the "
                                "experiment, which writes them")
    pred = pred.load()
    var = pred[model] if model in pred else pred[list(pred.data_vars)[0]].rename(model)
    var.attrs.update({f"run_{k}": v for k, v in pred.attrs.items()})
    var.attrs["run_dir"] = str(run.path)
    pred.close()
    return var.rename(model), dict(pred.attrs)


def combine_predictions(runs: dict[str, Run | list[Run]]) -> xr.Dataset:
    """The runs' predictions as one Dataset, one variable per model; provenance per variable.

    Each run's global provenance attributes (config, checkpoint hash, data source) move
    onto its variable, so nothing is lost in the merge. A model given a list of two or more
    runs (ensemble members) becomes its member mean ``<model>`` and spread ``<model>_spread``
    (:func:`vegviz.training.ensemble.ensemble_mean_spread`).
    """
    runs = {model: [group] if isinstance(group, Run) else list(group) for model, group in runs.items()}
    parts, attrs = [], {}
    for model, group in runs.items():
        loaded = [_run_prediction(model, run) for run in group]
        if not attrs:
            attrs = {k: v for k, v in loaded[0][1].items() if k.startswith("data_") or k in ("synthetic",)}
        if len(loaded) == 1:
            parts.append(loaded[0][0])
            continue
        mean, spread = ensemble_mean_spread([v for v, _ in loaded], model)
        # the first member's record (dashboards read the periods from run_config), and every member's folder
        mean.attrs.update({k: v for k, v in loaded[0][0].attrs.items() if k.startswith("run_") and k != "run_dir"})
        mean.attrs["run_dirs"] = ", ".join(str(r.path) for r in group)
        parts += [mean, spread]
    xr.align(*parts, join="exact")  # same grid and dates, or a clear error
    out = xr.Dataset({v.name: v for v in parts})
    out.attrs = {
        "title": "LAI simulated by the models of a vegviz experiment",
        "models": ", ".join(runs),
        "source": "vegviz.experiment: " + "; ".join(f"{m} <- {r.path}" for m, group in runs.items() for r in group),
        **attrs,
        "vegviz_version": vegviz_version(),
    }
    return out


def mark_finished(run_dir: Path) -> None:
    """Record that a run ended (max_epochs or early stopping) with its predictions written."""
    (Path(run_dir) / "finished").write_text(datetime.now(timezone.utc).isoformat(timespec="seconds") + "\n")


def train_or_resume(cfg: Config, run_dir: Path, data: xr.Dataset, *, progress: bool = True,
                    log=print, subscribers=()) -> tuple[Run, float | None]:
    """Train ``cfg`` into ``run_dir`` unless it finished earlier; resume an interrupted run.

    Returns the run and the seconds spent (None when it was already finished).
    ``subscribers`` receive the training events (:mod:`vegviz.training.events`).
    """
    label = f"[{run_dir.name}]"
    if _finished(run_dir, cfg):
        log(f"{label} finished earlier: {run_dir}")
        return Run(run_dir), None
    log(f"{label} training into {run_dir}")
    t0 = time.perf_counter()
    run = train(cfg, run_dir, data=data, resume=(run_dir / "checkpoints" / "last.pt").exists(), progress=progress,
                subscribers=subscribers)
    seconds = time.perf_counter() - t0
    if not run.predictions_path.exists():
        raise RuntimeError(f"{label} training ended without predictions (stopped?): {run_dir}")
    mark_finished(run_dir)
    log(f"{label} done in {seconds / 60:.1f} min, {len(run.history)} epochs")
    return run, seconds


def _finished(run_dir: Path, config: Config) -> bool:
    """True when the run ended under ``config`` (max_epochs or early stopping) and has current predictions.

    A larger ``max_epochs`` than the run was trained with makes it unfinished again, so
    rerunning an experiment with more epochs continues its models from their last checkpoints.
    """
    best, pred = run_dir / "checkpoints" / "best.pt", run_dir / PREDICTIONS
    if not (run_dir / "finished").exists() or not best.exists() or not pred.exists():
        return False
    if pred.stat().st_mtime < best.stat().st_mtime:
        return False
    run = Run(run_dir)
    epochs, best = len(run.history), run.best
    if epochs >= config.max_epochs:
        return True
    return epochs - (int(best["epoch"]) if best is not None else 0) >= config.patience  # stopped early


def _record_run(info: dict, run_name: str, run: Run, seconds: float, parallel: dict | None = None) -> None:
    """Note a run's epochs, best epoch, device and wall time in the experiment's info (and, when it was
    trained in a process of its own, that process's settings and log)."""
    h, best = run.history, run.best
    prev = info["runs"].get(run_name, {})
    info["runs"][run_name] = {
        "run_dir": str(run.path),
        "epochs": int(len(h)),
        "best_epoch": int(best["epoch"]) if best is not None else 0,
        "best_val_nse_median": float(best["val_nse_median"]) if best is not None else None,
        "device": str(h["device"].iloc[-1]) if len(h) else "",
        # wall time of all sessions that trained it (resumed runs add up)
        "wall_seconds": round(float(prev.get("wall_seconds", 0.0)) + seconds, 1),
        "epoch_seconds_median": float(np.median(h["seconds"])) if len(h) else None,
        **({"parallel": parallel} if parallel else {}),
    }


def _save_info(path: Path, info: dict) -> None:
    write_atomic(path / EXPERIMENT_FILE, yaml.safe_dump(info, sort_keys=False, default_flow_style=None).encode())


def _provenance(config: Config, ds: xr.Dataset, variables: list[str], old: dict | None, models, path: Path) -> dict:
    """The experiment's provenance, recorded once (its runs each write their own provenance.yaml too).

    Taken under the runs' device and thread settings; a resumed experiment keeps the earlier
    sessions' records.
    """
    from .provenance import keep_earlier_sessions, record
    from .training.device import resolve, settings

    hw = resolve(config)
    with settings(config, hw):
        prov = record(config, ds, hardware=hw, variables=variables)
    prov["reproduce"] = (f"vegviz experiment --config {path / EXPERIMENT_FILE} --models {','.join(models)} "
                         f"--name {path.name}-again --runs-dir {path.parent}")
    return keep_earlier_sessions(prov, old)


def run_experiment(config: Config | None = None, *, models=DEFAULT_MODELS, name: str | None = None,
                   root=None, data: xr.Dataset | None = None, progress: bool = True,
                   figures: bool | str | Sequence[str] = True,
                   periods=("validation", "test"), members: int = 1, parallel: bool | int = False,
                   log=print) -> Experiment:
    """Train ``models`` with ``config`` (default: the study's), score them and write the comparison.

    ``name`` defaults to ``config.name`` or ``experiment-<timestamp>``; the folder is
    ``root/name`` (``root`` defaults to :func:`runs_root`). An existing folder is
    resumed: finished runs are skipped, interrupted ones continue from their last
    checkpoint. Its base configuration must match (``max_epochs`` and ``patience`` may
    change). ``members`` > 1 trains that many seeds of every model (an ensemble, see
    :mod:`vegviz.training.ensemble`). A differential ``config.split`` is resolved to year
    sets from the data first. Returns the :class:`Experiment`.

    ``parallel``: False trains the runs one after another in this process. True, or a
    number N, trains them concurrently, each in a process of its own that writes
    ``<run>/train.log`` (``progress`` bars are then left out): at most N at a time, by
    default one per GPU, or on the CPU as many as there are cores (and runs); each run gets
    ``cores // N`` threads unless ``config.num_threads`` says otherwise (:func:`plan_parallel`).
    When runs fail, the others still finish and are kept, and :class:`RunsFailed` names
    the failed runs and their logs (rerunning resumes them).
    """
    from .models import list_models

    config = config or Config()
    members = check_members(members)
    parallel = _check_parallel(parallel)
    models = [models] if isinstance(models, str) else list(models)
    unknown = [m for m in models if m not in list_models()]
    if unknown or not models:
        raise ConfigError(f"models: unknown {unknown or 'empty list'}; choose from {', '.join(list_models())}")
    name = name or config.name or f"experiment-{datetime.now():%Y%m%d-%H%M%S}"
    path = Path(root).expanduser() if root else runs_root()
    path = path / name
    # one writer per experiment folder (vegviz.training.lock); its runs lock their own folders, so the runs
    # trained in processes of their own (parallel) are not blocked by it. An existing folder is locked before
    # experiment.yaml is read; a new one once the checks below have passed (a refused experiment writes nothing).
    lock = RunLock(path, f"experiment {name} ({command_line()})")
    if path.exists():
        lock.acquire()
    try:
        ds = data if data is not None else open_data(config.data, seed=config.seed)
        # every model trains on the same year sets, recorded in experiment.yaml
        prepare(ds, config)  # validated before the years are ranked
        config = resolve_split(config, ds)
        info = {}
        if (path / EXPERIMENT_FILE).exists():
            info = yaml.safe_load((path / EXPERIMENT_FILE).read_text()) or {}
            old = Config.from_dict(info["config"]).to_dict()
            new = config.to_dict()
            diff = [k for k in new if k not in RESUMABLE_CHANGES and old.get(k) != new[k]]
            if diff:
                raise ConfigError(f"experiment {path} exists with a different configuration ({', '.join(diff)}). "
                                  "Fix: choose another --name, or rerun with the experiment's own configuration "
                                  f"(--config {path / EXPERIMENT_FILE})")
        used = {}  # the variables any model uses, in order
        for model in models:  # check the data for every model before anything is written
            used.update(dict.fromkeys(prepare(ds, config.replace(model=model)).data_vars))
        prov = _provenance(config, ds, list(used), info.get("provenance"), models, path)
        if not lock.held:  # a new folder: locked now, before its first file
            lock.acquire()
        info.update({
            "name": name,
            "models": models,
            "members": members,
            "config": config.to_dict(),
            "vegviz_version": vegviz_version(),
            "host": socket.gethostname(),
            "started": info.get("started") or datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "provenance": prov,
        })
        info.setdefault("runs", {})
        _save_info(path, info)

        exp = Experiment(path, info)
        jobs = []  # (run name, its configuration), models x members in order
        for model in models:
            for k, run_name in enumerate(exp.member_names(model)):
                cfg = config.replace(model=model, name=f"{name}/{run_name}")
                if members > 1:
                    cfg = member_config(cfg, k)
                jobs.append((run_name, cfg))
        if parallel:
            _train_parallel(jobs, path, ds, parallel, info, log, reopen=data is None)
        else:
            for run_name, cfg in jobs:
                run, seconds = train_or_resume(cfg, path / run_name, ds, progress=progress, log=log)
                if seconds is not None:
                    _record_run(info, run_name, run, seconds)
                    _save_info(path, info)
        runs = {model: [Run(path / run_name) for run_name in exp.member_names(model)] for model in models}

        log("combining predictions and scoring")
        combined = combine_predictions(runs)
        combined.attrs["experiment"] = name
        combined.attrs["data"] = str(config.data)
        write_predictions(combined, path / PREDICTIONS)
        evaluate_experiment(path, ds, periods=periods, figures=figures, log=log)
        info["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        _save_info(path, info)
        return Experiment.open(path)
    finally:
        lock.release()


class RunsFailed(RuntimeError):
    """Runs of a parallel experiment failed; ``failures`` maps each run's name to (error, log file).

    The other runs finished and were kept, so rerunning the experiment trains only the failed ones.
    """

    def __init__(self, experiment: Path, failures: dict[str, tuple[str, Path]], total: int):
        self.experiment, self.failures = Path(experiment), dict(failures)
        lines = [f"  [{run}] {error} (log: {log_file})" for run, (error, log_file) in self.failures.items()]
        super().__init__(
            f"{len(self.failures)} of {total} runs of experiment {self.experiment} failed:\n" + "\n".join(lines)
            + "\nThe other runs finished and are kept. Fix: read the logs named above, remove the cause and rerun "
            "the same command: finished runs are skipped, the failed ones resumed")


@dataclass(frozen=True)
class ParallelPlan:
    """How a parallel experiment trains its runs: ``processes`` at a time, ``threads`` each (the runs'
    ``num_threads``), and the GPU each process slot is pinned to (``CUDA_VISIBLE_DEVICES``; empty on the CPU)."""

    processes: int
    threads: int
    devices: tuple[str, ...] = ()

    def describe(self) -> str:
        where = (f"GPU {', '.join(dict.fromkeys(self.devices))} (CUDA_VISIBLE_DEVICES)" if self.devices
                 else "the CPU")
        return (f"{self.processes} process{'es' if self.processes != 1 else ''} at a time on {where}, "
                f"{self.threads} thread{'s' if self.threads != 1 else ''} each")


def _check_parallel(parallel) -> bool | int:
    """``parallel`` as False, True (the default number of processes) or a number >= 1."""
    if parallel is None or parallel is False:
        return False
    if parallel is True:
        return True
    if isinstance(parallel, (int, np.integer)) and int(parallel) >= 1:
        return int(parallel)
    raise ConfigError(f"parallel: expected True or a number of processes >= 1, got {parallel!r}. Fix: "
                      "--parallel alone (one run per GPU, or per core on the CPU) or --parallel N")


def _cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use (affinity, containers)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _visible_gpus() -> list[str]:
    """The CUDA devices this process sees, as ``CUDA_VISIBLE_DEVICES`` entries for child processes."""
    import torch

    n = torch.cuda.device_count()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:  # the children see a subset of ours: name our devices as we got them
        return [d.strip() for d in visible.split(",") if d.strip()][:n]
    return [str(k) for k in range(n)]


def plan_parallel(config: Config, runs: int, parallel: bool | int = True, *, cores: int | None = None) -> ParallelPlan:
    """Processes, threads and devices for training ``runs`` runs of ``config`` concurrently.

    * on GPUs (``config.device`` resolves to CUDA): by default one process per visible GPU,
      each pinned to its own through ``CUDA_VISIBLE_DEVICES``; a larger N shares the GPUs
      round-robin between the process slots.
    * on the CPU: by default one process per core; each gets ``cores // N`` threads (at
      least one), so together they do not oversubscribe the CPU.

    Never more processes than ``runs``. ``config.num_threads``, when set, is kept as the
    runs' thread count (the weights of a deterministic CPU run depend on it).
    """
    from .training.device import resolve

    parallel = _check_parallel(parallel) or 1
    cores = cores or _cpu_cores()
    devices: list[str] = []
    if resolve(config).device.type == "cuda":
        devices = _visible_gpus()
        n = len(devices) if parallel is True else parallel
    else:
        n = cores if parallel is True else parallel
    n = max(1, min(n, runs))
    threads = config.num_threads or max(1, cores // n)
    return ParallelPlan(n, threads, tuple(devices[slot % len(devices)] for slot in range(n)) if devices else ())


@dataclass
class _Child:
    """A run being trained in a process of its own."""

    run_name: str
    run_dir: Path
    slot: int
    process: subprocess.Popen
    log_file: Path
    result_file: Path
    settings: dict

    def outcome(self) -> tuple[float | None, str | None]:
        """(seconds trained, None) when the run ended well, else (None, what went wrong)."""
        rc = self.process.returncode
        try:
            result = json.loads(self.result_file.read_text())
        except (OSError, ValueError):
            result = {}
        if rc == 0 and "error" not in result:
            return result.get("seconds"), None
        if result.get("error"):
            return None, result["error"]
        if rc < 0:
            import signal

            try:
                name = signal.Signals(-rc).name
            except ValueError:
                name = f"signal {-rc}"
            why = f"its process was killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
        else:
            why = f"its process ended with exit code {rc}"
        return None, f"{why}; the log ends: {_log_tail(self.log_file)!r}"

    def stop(self) -> None:
        """End the process (its run keeps its last checkpoint and resumes from it on a rerun)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


def _start_child(run_name: str, cfg: Config, run_dir: Path, slot: int, plan: ParallelPlan, tmp: Path,
                 data_file: Path, experiment: str) -> _Child:
    """Start ``python -c '..._train_child(spec)'`` for one run, its output appended to ``run_dir/train.log``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    spec, result = tmp / f"{run_name}.spec.pkl", tmp / f"{run_name}.result.json"
    result.unlink(missing_ok=True)
    spec.write_bytes(pickle.dumps({"config": cfg, "run_dir": str(run_dir), "data": str(data_file),
                                   "result": str(result)}, protocol=pickle.HIGHEST_PROTOCOL))
    threads = str(cfg.num_threads or plan.threads)
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)  # a run of its own, never a rank of a torchrun job this process may be part of
    settings = {"processes": plan.processes, "threads": int(threads)}
    if plan.devices:
        env["CUDA_VISIBLE_DEVICES"] = settings["cuda_visible_devices"] = plan.devices[slot]
    log_file = run_dir / RUN_LOG
    settings["log"] = str(log_file)
    with open(log_file, "a") as f:
        f.write(f"\n=== {datetime.now().isoformat(sep=' ', timespec='seconds')} experiment {experiment}, run "
                f"{run_name}: process {slot + 1} of {plan.processes}, {threads} thread(s)"
                + (f", CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']}" if plan.devices else "") + " ===\n")
        f.flush()
        # the package this process runs, also where it is not installed (appended: an installed one wins)
        code = (f"import sys; sys.path.append({str(Path(__file__).resolve().parent.parent)!r}); "
                f"from {__name__} import _train_child; sys.exit(_train_child(sys.argv[1]))")
        process = subprocess.Popen([sys.executable, "-c", code, str(spec)], stdin=subprocess.DEVNULL, stdout=f,
                                   stderr=subprocess.STDOUT, env=env)
    return _Child(run_name, run_dir, slot, process, log_file, result, settings)


def _train_parallel(jobs: list[tuple[str, Config]], path: Path, data: xr.Dataset, parallel: bool | int,
                    info: dict, log=print, poll: float = 0.25, reopen: bool = False) -> None:
    """Train the unfinished runs of ``jobs`` in processes of their own, at most ``parallel`` at a time.

    ``data`` reaches the processes pickled (a lazily opened store as a small recipe, an in-memory
    data set as a copy per process); ``reopen``: when it cannot be pickled, they open ``config.data``
    themselves. Only this process writes ``experiment.yaml`` (as each run ends). A failed run does
    not stop the others; :class:`RunsFailed` is raised once they have all ended. Interrupted (an
    exception or Ctrl-C here), the processes are ended; each run resumes from its last checkpoint
    on a rerun.
    """
    from collections import deque

    order = [run_name for run_name, _ in jobs]
    pending = deque()
    for run_name, cfg in jobs:
        run_dir = path / run_name
        if _finished(run_dir, cfg):
            log(f"[{run_name}] finished earlier: {run_dir}")
        else:
            pending.append((run_name, cfg, run_dir))
    if not pending:
        return
    plan = plan_parallel(jobs[0][1], len(pending), parallel)
    cores = _cpu_cores()
    log(f"training {len(pending)} run{'s' if len(pending) != 1 else ''} in parallel: {plan.describe()}")
    if not plan.devices and plan.processes * plan.threads > cores:
        log(f"note: {plan.processes} processes x {plan.threads} threads (num_threads) on {cores} cores oversubscribe "
            "the CPU; leave num_threads unset to share the cores out")
    failures: dict[str, tuple[str, Path]] = {}
    running: dict[int, _Child] = {}
    free = list(range(plan.processes))
    with tempfile.TemporaryDirectory(prefix="vegviz-experiment-") as tmp:
        tmp = Path(tmp)
        # the data set the sequential path would pass (lazily opened stores pickle as a small recipe)
        data_file = tmp / "data.pkl"
        try:
            data_file.write_bytes(pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL))
        except Exception as e:  # whatever pickle raises for an object it cannot take
            if not reopen:
                raise ValueError(f"parallel: the data set cannot be passed to the runs' processes ({type(e).__name__}: "
                                 f"{e}). Fix: save it (to_zarr) and pass its path as config.data, or train the "
                                 "runs one after another (parallel=False)") from e
            data_file.write_bytes(pickle.dumps(None))  # each process opens config.data
        try:
            while pending or running:
                while pending and free:
                    run_name, cfg, run_dir = pending.popleft()
                    slot = free.pop(0)
                    child = _start_child(run_name, cfg.replace(num_threads=cfg.num_threads or plan.threads),
                                         run_dir, slot, plan, tmp, data_file, path.name)
                    running[slot] = child
                    gpu = f" on GPU {plan.devices[slot]}" if plan.devices else ""
                    log(f"[{run_name}] training into {run_dir} in a process of its own{gpu}; log: {child.log_file}")
                time.sleep(poll)
                for slot, child in list(running.items()):
                    if child.process.poll() is None:
                        continue
                    del running[slot]
                    free.append(slot)
                    free.sort()
                    seconds, error = child.outcome()
                    if error is not None:
                        failures[child.run_name] = (error, child.log_file)
                        log(f"[{child.run_name}] FAILED: {error} (log: {child.log_file})")
                        continue
                    run = Run(child.run_dir)
                    if seconds is not None:
                        _record_run(info, child.run_name, run, seconds, parallel=child.settings)
                        info["runs"] = {**{n: info["runs"][n] for n in order if n in info["runs"]}, **info["runs"]}
                        _save_info(path, info)
                        log(f"[{child.run_name}] done in {seconds / 60:.1f} min, {len(run.history)} epochs")
        except BaseException:
            for child in running.values():  # all at once, then wait for each
                if child.process.poll() is None:
                    child.process.terminate()
            for child in running.values():
                child.stop()
            raise
    if failures:
        raise RunsFailed(path, failures, len(jobs))


def _train_child(spec_file: str) -> int:
    """A child process of :func:`_train_parallel`: train (or resume) one run; stdout and stderr are its log.

    Writes ``{"seconds": ...}`` or ``{"error": ...}`` to the spec's result file; the exit code is 0 when
    the run ended with its predictions.
    """
    import faulthandler
    import logging
    import traceback

    faulthandler.enable()  # a crash in native code leaves its traceback in the log
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    spec = pickle.loads(Path(spec_file).read_bytes())
    cfg, run_dir = spec["config"], Path(spec["run_dir"])
    label = f"[{run_dir.name}]"

    def say(text: str) -> None:
        print(f"{datetime.now():%H:%M:%S} {text}", flush=True)

    def on_event(e) -> None:
        if e.kind == "start":
            say(f"{label} {'resuming at' if e.resumed else 'starting'} epoch {e.epoch} of {e.max_epochs} on "
                f"{e.device} ({e.precision}), {e.batches_per_epoch} batches per epoch, "
                f"{cfg.num_threads} thread(s)")
        elif e.kind == "epoch":
            say(f"{label} epoch {e.epoch}: train loss {e.train_loss:.4f}, val loss {e.val_loss:.4f}, median "
                f"validation NSE {e.val_nse_median:.3f}, {e.seconds:.1f} s" + (" (best so far)" if e.improved else ""))
        elif e.kind == "end":
            say(f"{label} training ended ({e.reason}) after {e.epochs} epochs; best epoch {e.best_epoch}")

    try:
        data = pickle.loads(Path(spec["data"]).read_bytes())
        if data is None:
            data = open_data(cfg.data, seed=cfg.seed)
        _, seconds = train_or_resume(cfg, run_dir, data, progress=False, log=say, subscribers=[on_event])
        out, code = {"seconds": seconds}, 0
    except BaseException as e:  # the parent reports it; KeyboardInterrupt and SystemExit too
        traceback.print_exc()
        out = {"error": f"{type(e).__name__}: {e}"}
        code = 130 if isinstance(e, KeyboardInterrupt) else 1
    write_atomic(Path(spec["result"]), json.dumps(out).encode())
    return code


def score_period(predictions: xr.Dataset, observations: xr.Dataset, config: Config, period: str,
                 out_dir: Path) -> tuple[xr.Dataset, pd.DataFrame]:
    """Per-cell scores on ``config``'s own ``period`` written to ``out_dir/scores_{period}.nc``, and their table.

    The run's own split is used, not the study's: they differ, e.g., on the small basin.
    """
    from .evaluation import comparison_table, score

    scores = score(predictions, observations, period=getattr(config.periods, period),
                   references=("process", "noise_ceiling", "climatology"), train_period=config.periods.train)
    scores.attrs["period"] = period
    write_netcdf_atomic(scores, Path(out_dir) / f"scores_{period}.nc")
    return scores, comparison_table(scores, observations["landcover"])


def evaluate_experiment(path, observations: xr.Dataset | None = None, *, periods=("validation", "test"),
                        figures: bool | str | Sequence[str] = True, log=print) -> pd.DataFrame:
    """Score an experiment's combined predictions; write scores, tables and figures. Returns the test table.

    ``figures``: True for every format of :data:`FIGURE_FORMATS`, False for none, or the formats to write.
    """
    from .evaluation import baseline_warning, markdown_table

    exp = Experiment.open(path)
    obs = observations if observations is not None else exp.observations()
    pred = exp.predictions
    scored = {period: score_period(pred, obs, exp.config, period, exp.path) for period in periods}
    tables = {period: table for period, (_, table) in scored.items()}
    main = "test" if "test" in tables else periods[-1]
    table = tables[main]
    write_atomic(exp.path / "comparison.csv", table.to_csv().encode())
    from .domains import of_dataset

    text = [f"# Experiment {exp.name}: {', '.join(exp.models)} on {exp.config.data} ({of_dataset(obs).title})", ""]
    for period, t in tables.items():
        text += [f"## {period} period (median per-cell skill over the basin mask)", "", markdown_table(t), ""]
        if warning := baseline_warning(t):
            text += [f"**Warning.** {warning}", ""]
    write_atomic(exp.path / "comparison.md", "\n".join(text).encode())
    if formats := figure_formats(figures):
        write_figures(exp, obs, scored[main][0], formats)
    log(period_report(scored[main][0], table))
    prepare_dashboards(exp, obs, done=set(periods), log=log)
    if exp.n_members > 1:
        ens = ensemble_table(exp, obs, main)
        write_atomic(exp.path / "ensemble.csv", ens.to_csv().encode())
        text = (f"# Experiment {exp.name}: skill of the ensemble mean vs its {exp.n_members} members "
                f"({main} period, median per-cell skill over the basin mask)\n\n{markdown_table(ens)}\n")
        write_atomic(exp.path / "ensemble.md", text.encode())
        log(f"\nensemble mean vs members ({main} period):\n" + markdown_table(ens))
    return table


def prepare_dashboards(exp: Experiment, observations: xr.Dataset, *, done=(), log=print) -> None:
    """What the dashboards would otherwise compute when first shown, made now: the scores of every
    period of the config not in ``done`` (the Time series tab offers the training period too: ~20 s
    to score on the full basin) and the series store (a cell's or region's series of any period in
    well under a second)."""
    from .evaluation.series_store import open_series_store

    t0 = time.perf_counter()
    pred = exp.predictions
    for period in ("train", "validation", "test"):
        if period not in done and getattr(exp.config.periods, period, None) is not None:
            score_period(pred, observations, exp.config, period, exp.path)
    store = open_series_store(pred, observations)
    if store is not None:
        log(f"prepared the dashboards' scores and series store ({time.perf_counter() - t0:.0f} s)")


def ensemble_table(exp: Experiment, observations: xr.Dataset, period: str = "test") -> pd.DataFrame:
    """Median per-cell NSE, KGE and RMSE of each model's ensemble mean and of each of its members.

    Rows ``(model, member)``: ``"ensemble mean"``, every member run (``convlstm-m0`` ...),
    then ``"members: mean"`` and ``"members: best"`` (of the members' medians). Models
    without an ensemble are left out. Scored on the experiment's own ``period``.
    """
    from .evaluation import score, summarize

    when = getattr(exp.config.periods, period)
    rows = {}

    def medians(pred: xr.Dataset) -> dict:
        s = summarize(score(pred, observations, period=when, references=()))
        return {f"median {metric.upper()}": float(s.loc[(s.index[0][0], metric), "median"])
                for metric in s.index.get_level_values(1)}

    combined = exp.predictions
    for model in exp.models:
        runs = exp.members(model)
        if len(runs) < 2:
            continue
        rows[(model, "ensemble mean")] = medians(combined[[model]])
        member_rows = [medians(_run_prediction(model, run)[0].to_dataset()) for run in runs]
        rows.update({(model, run.name): r for run, r in zip(runs, member_rows)})
        frame = pd.DataFrame(member_rows)
        rows[(model, "members: mean")] = frame.mean().to_dict()
        best = {c: (frame[c].min() if "RMSE" in c else frame[c].max()) for c in frame.columns}
        rows[(model, "members: best")] = best
    if not rows:
        raise ValueError(f"experiment {exp.name} has no ensemble (members = {exp.n_members}). Fix: run it with "
                         "--members 2 or more")
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index = pd.MultiIndex.from_tuples(table.index, names=["model", "member"])
    return table


def compare_experiments(a, b, column: str = "median NSE") -> pd.DataFrame:
    """Per model, ``column`` of the test tables of experiments ``a`` and ``b`` side by side, and b - a.

    E.g. a temporal-split experiment against its differential split-sample twin
    (``split: warm``): how much skill each model keeps in a climate it was not trained on.
    ``a`` and ``b`` are experiment folders, names under the runs directory or Experiments.
    """
    exps = [x if isinstance(x, Experiment) else Experiment.open(_experiment_path(x)) for x in (a, b)]
    tables = []
    for exp in exps:
        t = exp.table
        if column not in t.columns:
            raise ValueError(f"experiment {exp.name}'s comparison table has no column {column!r}; it has "
                             f"{[c for c in t.columns if not c.startswith('median NSE:')]}")
        tables.append(t)
    labels = [f"{exp.name} ({exp.config.split})" for exp in exps]
    if labels[0] == labels[1]:
        labels = [f"{label} [{k}]" for k, label in enumerate(labels, 1)]
    rows = [m for m in tables[0].index if m in tables[1].index] + [m for m in tables[1].index
                                                                   if m not in tables[0].index]
    out = pd.DataFrame(index=pd.Index(rows, name="model"))
    if "kind" in tables[0].columns:
        out["kind"] = [tables[0]["kind"].get(m, tables[1].get("kind", pd.Series()).get(m, "")) for m in rows]
    for label, t in zip(labels, tables):
        out[label] = [t[column].get(m, np.nan) for m in rows]
    out[f"{column}: difference"] = out[labels[1]] - out[labels[0]]
    return out


def _experiment_path(target) -> Path:
    path = Path(target).expanduser()
    if not (path / EXPERIMENT_FILE).exists() and (runs_root() / str(target) / EXPERIMENT_FILE).exists():
        path = runs_root() / str(target)
    return path


def period_report(scores: xr.Dataset, table: pd.DataFrame) -> str:
    """A period's comparison for a terminal: the overall columns of ``table`` (the files also have
    one per vegetation type) and, when some basin cells have no score, which and why."""
    from .evaluation import baseline_warning, markdown_table, unscored_cells

    text = markdown_table(table[[c for c in table.columns if not c.startswith("median NSE:")]])
    if warning := baseline_warning(table):
        text += f"\n\nwarning: {warning}"
    missing = unscored_cells(scores)
    if missing:
        text += (f"\n\ncells without a score in the {scores.attrs['period']} period (left out of the medians; "
                 f"NaN when none is left):\n{missing}")
    return text


#: the formats of an experiment's figures: interactive HTML (inline resources: it opens offline), PNG and SVG
FIGURE_FORMATS = ("html", "png", "svg")


def figure_formats(figures: bool | str | Sequence[str]) -> tuple[str, ...]:
    """``figures`` as formats: True -> all of :data:`FIGURE_FORMATS`, False -> none, "png,svg" -> those."""
    if figures is True:
        return FIGURE_FORMATS
    if not figures:
        return ()
    names = figures.split(",") if isinstance(figures, str) else figures
    formats = tuple(f.strip().lower().lstrip(".") for f in names)
    bad = [f for f in formats if f not in FIGURE_FORMATS]
    if bad or not formats:
        raise ValueError(f"unknown figure format(s) {', '.join(bad) or repr(figures)}. Fix: choose from "
                         f"{', '.join(FIGURE_FORMATS)}, comma-separated")
    return formats


def write_figures(exp: Experiment, obs: xr.Dataset, scores: xr.Dataset,
                  formats: Sequence[str] = FIGURE_FORMATS) -> list[Path]:
    """The study's panels a-d, each as a standalone HTML file (inline resources: it opens offline) and as
    PNG and SVG files drawn by matplotlib (:mod:`vegviz.figure_files`), or the ``formats`` asked for."""
    import holoviews as hv
    from bokeh.resources import INLINE

    from .figure_files import save_figure

    from .evaluation import lai_map_comparison, nse_boxplots, nse_map_and_density, vegetation_timeseries
    from .evaluation.summary import vegetation_groups

    out = exp.path / "figures"
    out.mkdir(exist_ok=True)
    models = exp.models
    pred = exp.predictions
    groups = vegetation_groups(scores, obs["landcover"])
    # the most common vegetation type for panel d; a summer day of the test period for panel c
    veg = max(groups, key=lambda k: groups[k].sum()) if groups else None
    test_end = exp.config.periods.bounds("test")[1]
    day = f"{min(test_end, pd.Timestamp(pred.time.values[-1])).year}-07-15"
    panels = {f"a_nse_map_{m}": lambda m=m: nse_map_and_density(scores, m) for m in models}
    panels["b_nse_boxplots"] = lambda: nse_boxplots(scores, obs["landcover"], models)
    panels[f"c_lai_map_{models[0]}"] = lambda: lai_map_comparison(pred, obs, day, models[0])
    if veg is not None:
        panels["d_timeseries"] = lambda: vegetation_timeseries(pred, obs, veg, models=models, period=exp.config.periods.test)
    written = []
    for stem, make in panels.items():
        panel = make()
        for fmt in figure_formats(formats):
            f = out / f"{stem}.{fmt}"
            if fmt == "html":
                hv.save(panel, f, resources=INLINE, backend="bokeh")
            else:
                save_figure(panel, f)
            written.append(f)
    return written
