"""What a run was made of: code, configuration, data, seed, software and hardware.

Every training run writes ``provenance.yaml`` next to its ``config.yaml`` (and the same
record into each checkpoint); an experiment keeps one in its ``experiment.yaml``. The
record answers "can I get this result again, and if not, what changed?"::

    vegviz_version: 0.1.0
    git_commit: 1008568...          # of the checkout vegviz is imported from; null if none
    git_dirty: true                 # tracked files differ from that commit; null if no git
    seed: 42
    device: cpu                     # resolved device, precision, threads, determinism
    data:
      name: virtual_ucrb_small      # the catalog entry (or path) of config.data
      content_sha256: 3f1c...       # SHA-256 of the values the run used (see content_hash)
      ...
    versions: {python: 3.12.3, numpy: ..., xarray: ..., torch: ..., panel: ...}

:func:`content_hash` hashes the model-ready inputs a run actually uses (its variables,
over the span of its train/validation/test periods), chunk by chunk so memory stays at
one chunk. Results for a vegviz-built Zarr store (the virtual basin, ``vegviz prepare``
output) are cached in a small sidecar file inside the store, keyed by the store's
completion marker and the size and modification time of every file in it, so an
unchanged store is hashed once and a changed or rebuilt one is hashed again.

:func:`compare_runs` measures how close two runs' predictions and validation losses are.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import subprocess
import time
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
import yaml

from .io import write_atomic

log = logging.getLogger(__name__)

__all__ = ["HASH_SIDECAR", "PROVENANCE_FILE", "compare_runs", "content_hash", "data_provenance", "git_info",
           "hash_variables", "keep_earlier_sessions", "library_versions", "read_provenance", "record",
           "write_provenance"]

PROVENANCE_FILE = "provenance.yaml"
#: sidecar cache of content hashes inside a vegviz-built Zarr store
HASH_SIDECAR = "vegviz_content_sha256.json"
#: bumped when the hashed byte stream changes (old cached digests are then ignored)
HASH_VERSION = 1
#: the libraries whose versions can change a result
LIBRARIES = ("numpy", "xarray", "dask", "zarr", "pandas", "torch", "panel")
#: data-set attributes that say where the data came from
DATA_ATTRS = ("title", "source", "synthetic", "generator", "generator_version", "seed", "period_start",
              "period_end", "history", "vegviz_prepared", "lai_process_calibration")
_VIRTUAL_MARKER = "vegviz_virtual_complete.json"  # vegviz.data.virtual.store.MARKER
_PREPARED_MARKER = "vegviz_prepared"  # vegviz.data.prepare.MARKER (a store attribute)


# ---------------------------------------------------------------------------- code and software

def git_info(path=None, timeout: float = 5.0) -> dict:
    """``{"git_commit": sha, "git_dirty": bool}`` of the checkout ``path`` (default: vegviz's own folder).

    Both are None when vegviz is not imported from a git checkout (an installed wheel), when
    there is no ``git`` binary, or when git fails for any reason: provenance never raises.
    A checkout counts only when it tracks vegviz's ``__init__.py`` (a virtual environment
    inside some other repository is not a checkout of vegviz). ``git_dirty`` says whether
    tracked files differ from the commit (untracked files are ignored).
    """
    none = {"git_commit": None, "git_dirty": None}
    pkg = Path(path) if path is not None else Path(__file__).resolve().parent
    # no optional locks: `git status` must not take the index lock of a checkout someone commits in
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}

    def git(*args) -> str:
        return subprocess.run(["git", "-C", str(pkg), *args], capture_output=True, text=True, timeout=timeout,
                              env=env, check=True).stdout.strip()

    try:
        if path is None:  # vegviz itself: is its __init__.py tracked by the enclosing repository?
            git("ls-files", "--error-unmatch", "--", "__init__.py")
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return none
    return {"git_commit": commit, "git_dirty": dirty}


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def library_versions() -> dict:
    """Python and the versions of the libraries that matter (None when one is not installed).

    Read from the installed metadata, so nothing heavy (Panel) is imported for it.
    """
    out = {"python": platform.python_version()}
    out.update({name: _version(name) for name in LIBRARIES})
    return out


def hardware_info(hardware=None) -> dict:
    """The device a run used and the torch settings that decide whether it repeats bit for bit."""
    import torch

    dev = hardware.device if hardware is not None else torch.device("cpu")
    info = {
        "device": str(dev),
        "precision": hardware.precision if hardware is not None else "fp32",
        "num_threads": int(torch.get_num_threads()),
        "deterministic_algorithms": bool(torch.are_deterministic_algorithms_enabled()),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cuda": None,
    }
    if dev.type == "cuda":
        info["cuda"] = {
            "version": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "gpu": torch.cuda.get_device_name(dev),
            "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        }
    return info


# ---------------------------------------------------------------------------- data

def _plain(value):
    """A YAML- and ``torch.load(weights_only=True)``-safe value (no numpy scalars)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if value is None or isinstance(value, (str, int, float)):
        return value
    return str(value)


def _store_path(ds: xr.Dataset) -> Path | None:
    """The Zarr store ``ds`` was opened from (xarray keeps it in ``encoding['source']``), else None."""
    src = ds.encoding.get("source")
    if not src:
        return None
    path = Path(src)
    return path if path.is_dir() else None


def _canonical(block: np.ndarray) -> np.ndarray:
    """A block in a fixed layout: C order, little-endian, one NaN bit pattern (hashed through its buffer)."""
    a = np.ascontiguousarray(block)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    if a.dtype.kind == "f":
        nan = np.isnan(a)
        if nan.any():  # NaNs carry a sign and a payload (x86 makes -nan); the value is what counts
            a = np.where(nan, np.array(np.nan, a.dtype), a)
    elif a.dtype.kind == "M":
        a = a.astype("datetime64[ns]")
    elif a.dtype.kind in "OU":  # text: its UTF-8 encoding
        return np.frombuffer("\x1f".join(map(str, a.ravel())).encode(), np.uint8)
    return a.reshape(-1).view(np.uint8)


def _digest(da: xr.DataArray, name: str, block_days: int = 365) -> str:
    """SHA-256 of one variable: its name, dims, dtype and shape, then its values block by block in time."""
    dtype = "<M8[ns]" if da.dtype.kind == "M" else da.dtype.newbyteorder("<").str  # as _canonical writes it
    h = hashlib.sha256(f"{name}|{','.join(da.dims)}|{dtype}|{da.shape}\n".encode())
    if "time" not in da.dims or da.sizes["time"] == 0:
        h.update(_canonical(da.values))
        return h.hexdigest()
    da = da.transpose("time", ...)
    # follow the dask chunks so each block is read once; numpy data in slices of a year
    sizes = da.chunks[0] if da.chunks else None
    bounds = np.cumsum([0, *(sizes or [block_days] * -(-da.sizes["time"] // block_days))])
    bounds[-1] = min(bounds[-1], da.sizes["time"])
    for a, b in zip(bounds[:-1], bounds[1:]):
        # the synchronous scheduler: variables are hashed in parallel threads already
        h.update(_canonical(da.isel(time=slice(int(a), int(b))).compute(scheduler="synchronous").values))
    return h.hexdigest()


def _fingerprint(store: Path, ds: xr.Dataset) -> str | None:
    """A key that changes whenever the store does: its completion marker and every file's size and mtime.

    None for stores without a vegviz completion marker (not ours, or not finished): those
    are not cached.
    """
    marker_file = store / _VIRTUAL_MARKER
    if marker_file.exists():
        marker = marker_file.read_text()
    elif ds.attrs.get(_PREPARED_MARKER):
        marker = str(ds.attrs[_PREPARED_MARKER])
    else:
        return None
    h = hashlib.sha256(f"v{HASH_VERSION}\n{marker}\n".encode())
    for root, dirs, files in os.walk(store):
        dirs.sort()
        for name in sorted(files):
            if name == HASH_SIDECAR or name.startswith(f".{HASH_SIDECAR}."):
                continue
            p = Path(root) / name
            st = p.stat()
            h.update(f"{p.relative_to(store)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _read_cache(store: Path, fingerprint: str) -> dict:
    try:
        doc = json.loads((store / HASH_SIDECAR).read_text())
    except (OSError, ValueError):
        return {}
    return doc.get("digests", {}) if isinstance(doc, dict) and doc.get("fingerprint") == fingerprint else {}


def _write_cache(store: Path, fingerprint: str, digests: dict) -> None:
    try:
        write_atomic(store / HASH_SIDECAR, json.dumps({"fingerprint": fingerprint, "hash_version": HASH_VERSION,
                                                       "digests": digests}, indent=1).encode())
    except OSError as e:  # a read-only store: hash again next time
        log.debug("content hash not cached in %s: %s", store, e)


def hash_variables(ds: xr.Dataset, variables, period=None, *, cache: bool = True) -> dict:
    """Per-variable SHA-256 of ``variables`` of ``ds`` over ``period`` (``(start, end)``, inclusive).

    Returns ``{"variables": {name: hex}, "coords": hex, "period": [first, last], "days": n,
    "cached": bool, "seconds": s}``. Static (lat, lon) fields are hashed whole. With
    ``cache`` the digests of a vegviz-built Zarr store are kept in :data:`HASH_SIDECAR`
    inside it (see the module docstring).
    """
    t0 = time.perf_counter()
    variables = sorted(dict.fromkeys(variables))
    missing = [v for v in variables if v not in ds.variables]
    if missing:
        raise KeyError(f"content hash: {missing} not in the data set (it has {sorted(ds.data_vars)})")
    sub = ds[variables]
    if period is not None and "time" in sub.dims:
        sub = sub.sel(time=slice(*period))
    first = last = None
    if "time" in sub.dims and sub.sizes["time"]:
        first, last = (f"{pd.Timestamp(t):%Y-%m-%d}" for t in sub["time"].values[[0, -1]])
    store = _store_path(ds) if cache else None
    fingerprint = _fingerprint(store, ds) if store is not None else None
    cached = _read_cache(store, fingerprint) if fingerprint else {}
    coords = [c for c in ("time", "lat", "lon") if c in sub.coords]
    names = variables + [f"coord:{c}" for c in coords]
    keys = {name: f"{name}|{first}|{last}" for name in names}
    todo = [name for name in names if keys[name] not in cached]
    if todo:
        from concurrent.futures import ThreadPoolExecutor

        # reading (decompression), NaN handling and SHA-256 all release the GIL: one thread per variable
        with ThreadPoolExecutor(max_workers=max(1, min(len(todo), os.cpu_count() or 1, 4))) as pool:
            for name, digest in zip(todo, pool.map(lambda n: _digest(sub[n.removeprefix("coord:")], n), todo)):
                cached[keys[name]] = digest
    new = bool(todo)
    digests = {name: cached[keys[name]] for name in names}
    if fingerprint and new:
        _write_cache(store, fingerprint, cached)
    coord_hash = hashlib.sha256("".join(f"{n}:{digests.pop(n)}\n" for n in names if n.startswith("coord:"))
                                .encode()).hexdigest()
    return {"variables": digests, "coords": coord_hash, "period": [first, last],
            "days": int(sub.sizes.get("time", 0)), "cached": not new and fingerprint is not None,
            "seconds": round(time.perf_counter() - t0, 3)}


def content_hash(ds: xr.Dataset, variables, period=None, *, cache: bool = True) -> str:
    """One SHA-256 of ``variables`` of ``ds`` over ``period``, and of the time/lat/lon coordinates.

    Stable across processes, machines, chunkings and Zarr/NetCDF encodings: it hashes the
    values (float NaNs canonicalised), not the files.
    """
    return _combine(hash_variables(ds, variables, period, cache=cache))


def _combine(parts: dict) -> str:
    lines = [f"vegviz-content-hash v{HASH_VERSION}", f"coords:{parts['coords']}"]
    lines += [f"{name}:{digest}" for name, digest in sorted(parts["variables"].items())]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def used_span(config, ds: xr.Dataset) -> tuple[str, str]:
    """The days a run's inputs come from: its train start to its test end (train/validation/test periods)."""
    starts = [config.periods.bounds(p)[0] for p in ("train", "validation", "test")]
    ends = [config.periods.bounds(p)[1] for p in ("train", "validation", "test")]
    return f"{min(starts):%Y-%m-%d}", f"{max(ends):%Y-%m-%d}"


def data_provenance(config, ds: xr.Dataset, variables=None, *, cache: bool = True) -> dict:
    """Where the data came from (catalog entry or path, attributes) and the hash of what a run uses.

    ``variables`` default to what ``config`` trains on: its input channels, the target, the
    mask and the static inputs present in ``ds``.
    """
    if variables is None:
        variables = [*config.channels, config.target, "mask", *(s for s in config.statics if s in ds.data_vars)]
    name = str(config.data)
    store = ds.encoding.get("source")
    out = {
        "name": name,
        "kind": "path" if Path(name).expanduser().exists() else "catalog",
        "path": str(store) if store else None,
    }
    out.update({k: _plain(ds.attrs[k]) for k in DATA_ATTRS if k in ds.attrs})
    parts = hash_variables(ds, variables, used_span(config, ds), cache=cache)
    out["content_sha256"] = _combine(parts)
    out["hashed"] = {"variables": sorted(parts["variables"]), "period": parts["period"], "days": parts["days"],
                     "seconds": parts["seconds"], "cached": parts["cached"]}
    out["variable_sha256"] = parts["variables"]
    return out


# ---------------------------------------------------------------------------- the record

def record(config, ds: xr.Dataset, *, hardware=None, variables=None) -> dict:
    """The provenance of a run (or an experiment) of ``config`` on ``ds``: plain types, YAML-ready."""
    from .training.checkpoint import vegviz_version

    config_yaml = config.to_yaml()
    out = {
        "vegviz_version": vegviz_version(),
        **git_info(),
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": platform.node(),
        "seed": int(config.seed),
        "deterministic": bool(config.deterministic),
        "config_sha256": hashlib.sha256(config_yaml.encode()).hexdigest(),
        **hardware_info(hardware),
        "data": data_provenance(config, ds, variables),
        "versions": library_versions(),
    }
    return _plain(out)


def keep_earlier_sessions(prov: dict, old: dict | None) -> dict:
    """``prov`` with the record of a resumed run's (or experiment's) earlier sessions, ``old``, kept
    under ``earlier_sessions`` (oldest first); ``prov`` itself when there is none."""
    if old:
        prov["earlier_sessions"] = [*old.get("earlier_sessions", []),
                                    {k: v for k, v in old.items() if k != "earlier_sessions"}]
    return prov


def write_provenance(path, prov: dict) -> Path:
    """Write ``prov`` as YAML to ``path`` (a file, or a folder that gets ``provenance.yaml``), atomically."""
    path = Path(path)
    if path.is_dir():
        path = path / PROVENANCE_FILE
    return write_atomic(path, yaml.safe_dump(_plain(prov), sort_keys=False, default_flow_style=False).encode())


def read_provenance(path) -> dict | None:
    """The provenance of a run or experiment folder (or of its YAML file); None when none was recorded."""
    path = Path(path).expanduser()
    if path.is_dir():
        experiment = path / "experiment.yaml"
        path = experiment if experiment.exists() and not (path / PROVENANCE_FILE).exists() else path / PROVENANCE_FILE
    if not path.exists():
        return None
    doc = yaml.safe_load(path.read_text()) or {}
    if "provenance" in doc and "config" in doc:  # an experiment.yaml
        return doc["provenance"]
    return doc


# ---------------------------------------------------------------------------- comparing runs

def compare_runs(a, b) -> dict:
    """How close two runs are: max |difference| of their predictions and of their per-epoch validation loss.

    ``a`` and ``b`` are run folders (or :class:`vegviz.training.Run`). ``identical`` is True
    when the predictions are bitwise equal (NaNs in the same places).
    """
    from .training import Run

    ra, rb = (r if isinstance(r, Run) else Run(r) for r in (a, b))
    pa, pb = ra.predictions, rb.predictions
    if pa is None or pb is None:
        missing = ra if pa is None else rb
        raise FileNotFoundError(f"{missing.path} has no predictions.nc. Fix: let training finish (or run.predict())")
    va, vb = pa[list(pa.data_vars)[0]].values, pb[list(pb.data_vars)[0]].values
    pa.close()
    pb.close()
    if va.shape != vb.shape:
        raise ValueError(f"the runs' predictions differ in shape ({va.shape} vs {vb.shape}): not the same set-up")
    both = np.isfinite(va) & np.isfinite(vb)
    ha, hb = ra.history, rb.history
    n = min(len(ha), len(hb))
    loss = np.abs(ha["val_loss"].to_numpy()[:n] - hb["val_loss"].to_numpy()[:n])
    return {
        "identical": bool(np.array_equal(va, vb, equal_nan=True)),
        "same_nan_mask": bool(np.array_equal(np.isnan(va), np.isnan(vb))),
        "max_abs_diff_predictions": float(np.abs(va[both] - vb[both]).max()) if both.any() else 0.0,
        "max_abs_diff_val_loss": float(loss.max()) if n else float("nan"),
        "epochs": int(n),
    }
