"""Streaming the virtual basin of any domain into a Zarr store, atomically, and caching it.

The full 36 years are ~180 MB per float32 variable on the UCRB (~5.5 GB on CONUS), so
nothing holds them all: years are generated one at a time and written as whole time chunks
of :data:`CHUNK_DAYS` days (a year's output is buffered until a chunk is full, so every
chunk is written once), and ``lai_process`` is added out of core, one time chunk at a time
(:func:`vegviz.physics.iter_lai_process`), so peak memory does not grow with the number of
years. Large domains are tiled in space (at most :data:`TILE` x :data:`TILE` cells per chunk).
The store is built in a hidden directory next to the target and renamed into place
only after it is complete, checked against the contract and marked with
:data:`MARKER`, so an interrupted build never leaves a half-written store at the target;
a store without the marker (or from another generator version) is rebuilt, not opened.
"""
from __future__ import annotations

import json
import shutil
import time
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import dask.array as dsa
import numpy as np
import pandas as pd
import xarray as xr
import zarr
from zarr.codecs import BloscCodec

from ...contract import cf_attrs, validate
from ...io import building_path, remove_abandoned_builds, replace_directory
from .chain import (
    DYNAMIC,
    GENERATOR_NAME,
    GENERATOR_VERSION,
    SPINUP_YEARS,
    SYNTHETIC_NOTE,
    VirtualBasin,
    check_static,
    contract_grid,
    dataset_attrs,
    parse_period,
    static_fields,
)
from .noise import check_seed

CHUNK_DAYS = 365  # one chunk holds a year of maps: good for whole maps and for cell time series
#: Largest chunk side in cells: the UCRB (63 x 54) is one tile, CONUS (224 x 464) 2 x 4 tiles of 112 x 116.
TILE = 128
# Zstandard level 1 with byte shuffling: fast (~0.5-1 GB/s here) and, with the rounded
# mantissas, ~40% of the raw size (~620 MB for the full 36 years).
COMPRESSOR = BloscCodec(cname="zstd", clevel=1, shuffle="shuffle")
MARKER = "vegviz_virtual_complete.json"
#: The training period of the reference study: lai_process is calibrated on (its overlap with) it.
CALIBRATION = ("1981-01-01", "2001-12-31")

VARIANTS = {"full": ("1981-01-01", "2016-12-31"), "small": ("1998-01-01", "2005-12-31")}


# ----------------------------------------------------------------------------- building

def build_store(path, start, end, *, seed: int = 42, static: xr.Dataset | None = None) -> Path:
    """Generate the virtual basin for [start, end] into the Zarr store ``path``; return the path.

    ``static`` are the static fields of the domain (:func:`vegviz.data.static.static_for`;
    default: the UCRB's committed ones). Streams year by year, adds ``lai_process`` from
    :mod:`vegviz.physics` one time chunk at a time (peak memory is set by the size of the
    domain, not by the number of years: ~0.5 GB on the UCRB, ~4.3 GB on CONUS; see
    benchmarks/bench_virtual_conus.py),
    consolidates the metadata, validates the result against the contract and writes the
    completion marker, all in a temporary directory that is then renamed to ``path``. A
    Zarr store already at ``path`` is replaced; anything else there is left alone (FileExistsError).
    """
    path = Path(path).expanduser().absolute()
    t0, t1 = parse_period(start, end)
    if path.exists() and not (path / "zarr.json").exists():
        raise FileExistsError(f"{path} exists and is not a Zarr store; refusing to replace it. "
                              "Fix: choose a new path (the store is created there) or remove it")
    basin = VirtualBasin(static, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_builds(path)
    tmp = building_path(path)
    started = time.perf_counter()
    try:
        _write_dynamic(tmp, basin, t0, t1)
        has_process = _add_lai_process(tmp, t0, t1)
        with warnings.catch_warnings():
            # zarr warns that consolidated metadata is not (yet) in the v3 spec; xarray reads it.
            warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
            zarr.consolidate_metadata(str(tmp))
        with xr.open_zarr(tmp, consolidated=True) as ds:
            validate(ds, grid=contract_grid(basin.static))
            domain = ds.attrs.get("domain")
        _write_marker(tmp, {
            "generator": GENERATOR_NAME, "generator_version": GENERATOR_VERSION, "seed": basin.seed,
            "domain": domain, "static_key": static_fingerprint(basin.static),
            "period_start": f"{t0:%Y-%m-%d}", "period_end": f"{t1:%Y-%m-%d}", "lai_process": has_process,
            "built": f"{datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%SZ}",
            "build_seconds": round(time.perf_counter() - started, 1),
        })
        replace_directory(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def chunk_shape(nlat: int, nlon: int) -> tuple[int, int, int]:
    """(days, rows, columns) of a chunk: a year by the whole domain, tiled when a side exceeds :data:`TILE`."""
    def side(n):
        tiles = -(-n // TILE)
        return -(-n // tiles)

    return (CHUNK_DAYS, side(nlat), side(nlon))


def _write_dynamic(tmp: Path, basin: VirtualBasin, t0: pd.Timestamp, t1: pd.Timestamp) -> None:
    """Create the store's layout, then fill it year by year in whole chunks."""
    time_ = pd.date_range(t0, t1, freq="D")
    nlat, nlon = basin.land.shape
    chunks = chunk_shape(nlat, nlon)
    template = static_fields(basin.static).assign_coords(time=time_)
    for name in DYNAMIC:
        lazy = dsa.zeros((time_.size, nlat, nlon), chunks=chunks, dtype=np.float32)  # never computed
        template[name] = (("time", "lat", "lon"), lazy, {**cf_attrs(name), "comment": SYNTHETIC_NOTE})
    template.attrs = {**dataset_attrs(t0, t1, basin.seed, basin.static), "static_key": static_fingerprint(basin.static)}
    encoding = {name: _encoding(chunks) for name in DYNAMIC}
    encoding["time"] = {"units": "days since 1970-01-01", "calendar": "proleptic_gregorian", "dtype": "int32"}
    # compute=False writes the coordinates, the static fields and all metadata, no dynamic data.
    template.to_zarr(tmp, mode="w-", compute=False, consolidated=False, zarr_format=3, encoding=encoding)

    group = zarr.open_group(str(tmp), mode="r+")
    with _ChunkWriter({name: group[name] for name in DYNAMIC}, CHUNK_DAYS) as writer:
        for year_ds in basin.years(t0, t1):
            writer.add({name: year_ds[name].values for name in DYNAMIC})
            del year_ds
    if writer.position != time_.size:  # pragma: no cover - a bug, not a user error
        raise RuntimeError(f"wrote {writer.position} days, expected {time_.size}")


def _encoding(chunks) -> dict:
    return {"chunks": chunks, "_FillValue": np.float32(np.nan), "compressors": (COMPRESSOR,)}


class _ChunkWriter:
    """Buffers yearly blocks and writes whole time chunks, each exactly once.

    Writing (compression happens in Blosc, outside the GIL) runs in one background thread
    while the next year is generated; at most one write is in flight, so memory stays bounded.
    """

    def __init__(self, arrays: dict, chunk: int):
        self.arrays, self.chunk = arrays, chunk
        self.pending: dict[str, list[np.ndarray]] = {k: [] for k in arrays}
        self.buffered = 0
        self.position = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vegviz-zarr-writer")
        self._inflight: Future | None = None

    def __enter__(self) -> "_ChunkWriter":
        return self

    def __exit__(self, *exc) -> None:
        try:
            if exc[0] is None:
                self.close()
        finally:
            self._pool.shutdown(wait=True)

    def add(self, block: dict[str, np.ndarray]) -> None:
        for k, v in block.items():
            self.pending[k].append(v)
        self.buffered += next(iter(block.values())).shape[0]
        if self.buffered >= self.chunk:
            self._flush((self.buffered // self.chunk) * self.chunk)

    def close(self) -> None:
        if self.buffered:
            self._flush(self.buffered)
        self._wait()

    def _flush(self, n: int) -> None:
        out = {}
        for k, parts in self.pending.items():
            data = np.concatenate(parts) if len(parts) > 1 else parts[0]
            out[k] = data[:n]
            self.pending[k] = [data[n:]] if data.shape[0] > n else []
        self._wait()
        self._inflight = self._pool.submit(self._write, self.position, out)
        self.buffered -= n
        self.position += n

    def _write(self, start: int, blocks: dict[str, np.ndarray]) -> None:
        for k, data in blocks.items():
            self.arrays[k][start:start + data.shape[0]] = data

    def _wait(self) -> None:
        if self._inflight is not None:
            self._inflight.result()  # re-raises a failed write here
            self._inflight = None


def calibration_period(t0: pd.Timestamp, t1: pd.Timestamp) -> slice:
    """The overlap of [t0, t1] with :data:`CALIBRATION`, else the first 21/36 of the period.

    21/36 is the training share of the reference split (1981-2001 of 1981-2016).
    """
    c0, c1 = max(t0, pd.Timestamp(CALIBRATION[0])), min(t1, pd.Timestamp(CALIBRATION[1]))
    if c0 <= c1:
        return slice(f"{c0:%Y-%m-%d}", f"{c1:%Y-%m-%d}")
    stop = t0 + (t1 - t0) * 21 / 36
    return slice(f"{t0:%Y-%m-%d}", f"{stop.normalize():%Y-%m-%d}")


def _physics_iter_lai_process():
    """vegviz.physics.iter_lai_process, or None while vegviz.physics is not available."""
    try:
        from ...physics import iter_lai_process
    except ImportError as e:
        if (e.name or "").startswith("vegviz.physics") or "iter_lai_process" in str(e):
            return None
        raise
    return iter_lai_process


def _add_lai_process(tmp: Path, t0: pd.Timestamp, t1: pd.Timestamp) -> bool:
    """Add ``lai_process`` (vegviz.physics, out of core) to the store; False if vegviz.physics is unavailable."""
    if _physics_iter_lai_process() is None:
        warnings.warn("vegviz.physics.iter_lai_process is not available: the virtual basin is built without "
                      "lai_process (it is rebuilt with it once vegviz.physics is installed)", stacklevel=3)
        return False
    append_lai_process(tmp, calibration_period(t0, t1),
                       comment=f"computed from the synthetic forcings and lai ({SYNTHETIC_NOTE})")
    return True


def append_lai_process(store, period: slice, *, comment: str | None = None) -> None:
    """Add ``lai_process`` (:func:`vegviz.physics.iter_lai_process`) to the Zarr v3 ``store``, out of core.

    The store holds the model's inputs (forcings, ``lai``, ``elevation``...) in the layout of
    :func:`chunk_shape`. The calibration reads ``lai`` of ``period`` (a slice of dates),
    then the forcings are read one time chunk at a time and each chunk of ``lai_process`` is
    written once (in a background thread while the next is computed): bit for bit the
    in-memory :func:`vegviz.physics.add_lai_process`, with memory set by one year of the
    domain. ``comment`` is added to the variable's attributes; the root attribute
    ``lai_process_calibration`` records the period. The virtual basin
    (:func:`build_store`) and ``vegviz prepare`` (:mod:`vegviz.data.prepare`) both use it.
    """
    from ...physics import iter_lai_process

    with xr.open_zarr(store, consolidated=False) as ds:
        attrs, blocks = iter_lai_process(ds, calibration=period)
        if comment is not None:
            attrs = {**attrs, "comment": comment}
        chunks = chunk_shape(ds.sizes["lat"], ds.sizes["lon"])
        shape = (ds.sizes["time"], ds.sizes["lat"], ds.sizes["lon"])
        lazy = dsa.zeros(shape, chunks=chunks, dtype=np.float32)  # never computed: only the layout is written
        new = xr.Dataset({"lai_process": (("time", "lat", "lon"), lazy, attrs)})
        # Appending replaces the root attributes with these, so carry them over.
        new.attrs = {**ds.attrs, "lai_process_calibration": f"{period.start}..{period.stop}"}
        new.to_zarr(store, mode="a", compute=False, consolidated=False,
                    encoding={"lai_process": _encoding(chunks)})
        array = zarr.open_group(str(store), mode="r+")["lai_process"]
        with _ChunkWriter({"lai_process": array}, CHUNK_DAYS) as writer:
            for start, stop, values in blocks:
                if start != writer.position:  # pragma: no cover - a bug, not a user error
                    raise RuntimeError(f"lai_process block starts at day {start}, expected {writer.position}")
                writer.add({"lai_process": values})


def _write_marker(store: Path, info: dict) -> None:
    (store / MARKER).write_text(json.dumps(info, indent=1))


def read_marker(store) -> dict | None:
    """The completion record of a store, or None when the store is missing or incomplete."""
    try:
        return json.loads((Path(store) / MARKER).read_text())
    except (OSError, ValueError):
        return None


# ----------------------------------------------------------------------------- the cache

from ...paths import cache_dir  # noqa: E402  (data_dir, else $VEGVIZ_DATA_DIR, else the user data dir)


def static_fingerprint(static: xr.Dataset) -> str:
    """A short hash of the static fields the generator reads (coordinates, elevation, land cover, mask).

    Part of the store's name: changing a domain's window, its basin or any static field
    (e.g. a rebuilt elevation) names another store, which is then built.
    """
    import hashlib

    h = hashlib.sha256()
    for name in ("lat", "lon", "elevation", "landcover", "landcover_fraction", "mask"):
        v = np.ascontiguousarray(static[name].values)
        h.update(f"{name}{v.dtype.str}{v.shape}".encode())
        h.update(v.tobytes())
    return h.hexdigest()[:10]


def _domain_and_static(domain, data_dir=None):
    from ... import domains as _domains
    from ..static import static_for

    dom = _domains.get(domain, data_dir)
    return dom, check_static(static_for(dom, data_dir))


def store_name(variant: str, seed: int, domain="ucrb", key: str | None = None, data_dir=None) -> str:
    """The cache name of a virtual basin: domain, variant, seed, generator version and a key of the static fields.

    ``key`` is :func:`static_fingerprint` of the domain's static fields (computed from
    :func:`vegviz.data.static.static_for` when not given), e.g.
    ``virtual_ucrb-small-seed42-v2-0123456789.zarr``.
    """
    name = getattr(domain, "name", domain)
    if key is None:
        key = static_fingerprint(_domain_and_static(domain, data_dir)[1])
    return f"virtual_{name}-{variant}-seed{seed}-v{GENERATOR_VERSION}-{key}.zarr"


def _up_to_date(path: Path, variant: str, seed: int, domain: str, key: str) -> bool:
    info = read_marker(path)
    start, end = VARIANTS[variant]
    if not info or (info.get("generator_version"), info.get("seed"), info.get("period_start"),
                    info.get("period_end"), info.get("domain"), info.get("static_key")) != (
            GENERATOR_VERSION, seed, start, end, domain, key):
        return False
    # Built while vegviz.physics was missing: rebuild once it is there.
    return bool(info.get("lai_process")) or _physics_iter_lai_process() is None


#: Seconds per cell and generated year on 2 cores (AMD EPYC, shared): the build's rough cost.
#: Measured 1.9e-4 to 7e-4 on the UCRB and 3.3e-4 to 6.1e-4 on CONUS, with load (bench_virtual*.py).
SECONDS_PER_CELL_YEAR = 3e-4


def _estimate(cells: int, years: int) -> str:
    seconds = SECONDS_PER_CELL_YEAR * cells * (years + SPINUP_YEARS)
    return "a few seconds" if seconds < 10 else f"about {seconds / 60:.0f} min" if seconds > 90 else \
        f"about {seconds:.0f} s"


def open_virtual_basin(variant: str = "full", *, seed: int = 42, data_dir=None, domain="ucrb") -> xr.Dataset:
    """The virtual basin of ``domain`` as a lazily loaded (dask) Dataset, built and cached on first use.

    ``domain`` is a :class:`vegviz.domains.Domain` or the name of a built-in or user domain
    (default the study's ``ucrb``); the basin is built on its static fields
    (:func:`vegviz.data.static.static_for`). ``variant`` is a key of :data:`VARIANTS`:
    "full" (1981-2016) or "small" (1998-2005, for tests and demos). The store lives in
    ``data_dir`` (default $VEGVIZ_DATA_DIR or the user data directory) under
    :func:`store_name`, which holds the domain, the variant, the seed, the generator
    version and a key of the static fields; a missing, incomplete or outdated store is
    (re)built first.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}. Fix: use one of {sorted(VARIANTS)}")
    seed = check_seed(seed)
    dom, static = _domain_and_static(domain, data_dir)
    key = static_fingerprint(static)
    path = cache_dir(data_dir) / store_name(variant, seed, dom.name, key)
    if not _up_to_date(path, variant, seed, dom.name, key):
        why = "an incomplete or outdated copy is there" if path.exists() else "first use"
        start, end = VARIANTS[variant]
        years = pd.Timestamp(end).year - pd.Timestamp(start).year + 1
        label = "UCRB" if dom.name == "ucrb" else f"{dom.title} ({dom.name})"
        print(f"Building the SYNTHETIC virtual {label} ({variant}, {start}..{end}, seed {seed}) into {path} "
              f"({why}; {_estimate(static.sizes['lat'] * static.sizes['lon'], years)} on 2 cores)...", flush=True)
        t = time.perf_counter()
        build_store(path, start, end, seed=seed, static=static)
        print(f"Built the virtual {label} in {time.perf_counter() - t:.0f} s.", flush=True)
    return xr.open_zarr(path, consolidated=True)
