"""A result's daily series cell by cell: a Zarr copy of its basin cells laid out for time series.

Predictions and data sets are chunked a year of the whole grid at a time: right for maps and
training, slow for a series. One cell's 21 training years decompress 21 chunks of the whole grid
per variable, and a region's mean over them reads the whole period. The series store holds the
same values for the basin (mask) cells only, chunked as (128 cells, 4 years), and the daily
mean and 25th/75th percentiles of every vegetation type, computed once:

    store = open_series_store(predictions, observations)   # built on first use, then reused
    cell_series(predictions, observations, lat, lon, "train", store=store)
    region_statistics(predictions, observations, cells, "train", store=store)

On the full 36-year Upper Colorado a cell's series over any period then reads in milliseconds
and a vegetation type's panel in no time; building the store reads the result once (seconds).
It lives beside the predictions (``<result>/series.zarr``; in the cache folder when that folder
is read-only) and is rebuilt when the predictions file or the data set changes. Values are the
source's float32 values, copied, so everything drawn from the store equals what the grid gives.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from .scoring import model_variables

__all__ = ["CELL_CHUNK", "SERIES_STORE", "build_series_store", "day_statistics", "open_series_store",
           "series_store_path", "series_variables", "SeriesStore"]

SERIES_STORE = "series.zarr"
VEGETATION_GROUP = "vegetation"
#: a chunk holds 128 cells by four years (0.75 MB): a cell's 36 years are 9 chunks a variable, a region's
#: period only the chunks of its years
CELL_CHUNK, CHUNK_DAYS = 128, 1461
#: the percentiles of the stored vegetation-type spread (the panels' default band)
SPREAD = (25, 75)
#: bytes of source data read at once while building (rows of the grid over every day)
BLOCK_BYTES = 256 << 20
FORMAT = 2


def _compressor():
    """Blosc LZ4 with byte shuffling: model LAI barely compresses (~1.3x with any codec), so the codec that
    decodes fastest wins (3-4 GB/s here against Zstandard's 1.1 GB/s): a region's years are read in full."""
    from zarr.codecs import BloscCodec

    return BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")


_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()
_OPEN: dict[str, tuple[str, SeriesStore]] = {}


def series_store_path(predictions: xr.Dataset) -> Path | None:
    """Where the series store of ``predictions`` lives: beside its file, else (read-only folder) in the
    cache folder; None for predictions that have no file."""
    source = predictions.encoding.get("source")
    if not source:
        return None
    source = Path(source).absolute()
    if os.access(source.parent, os.W_OK):
        return source.parent / SERIES_STORE
    from ..paths import cache_dir

    return cache_dir() / "series" / f"{hashlib.sha1(str(source).encode()).hexdigest()[:16]}.zarr"


def series_variables(predictions: xr.Dataset, observations: xr.Dataset) -> list[str]:
    """What a store holds: the models, the references and satellite LAI, then the forcing of a cell's panels."""
    from .series import CELL_FORCINGS, REFERENCE_VARIABLES, _forcings

    refs = [v for v in (*REFERENCE_VARIABLES.values(), "lai") if v in observations]
    return [*model_variables(predictions), *refs, *_forcings(observations, CELL_FORCINGS)]


def lai_variables(store: xr.Dataset) -> list[str]:
    """The store's LAI series (models, references, satellite): those with vegetation-type statistics."""
    return [v for v in store.data_vars if store[v].attrs.get("series_kind") in ("model", "reference", "observed")]


def _stat(path) -> tuple[int, int] | None:
    try:
        st = Path(path).stat()
        return st.st_mtime_ns, st.st_size
    except OSError:
        return None


def _source_key(predictions: xr.Dataset, observations: xr.Dataset) -> str:
    """What the store was built from: the predictions file (modification time, size), the data set
    (its title, static key, seed, history and days: the same whether opened by path, catalog or in memory)
    and the variables; a store with another key is stale."""
    pred = predictions.encoding.get("source")
    time = observations["time"].values
    # not the file's path: a result folder moved or copied (times kept) keeps its store
    key = {"format": FORMAT, "predictions": _stat(pred) if pred else None,
           "observations": [str(observations.attrs.get(a)) for a in ("title", "static_key", "seed", "history")]
           + [int(time.size), str(time[0]), str(time[-1])],
           "grid": [int(observations.sizes["lat"]), int(observations.sizes["lon"])],
           "variables": series_variables(predictions, observations)}
    return json.dumps(key, sort_keys=True)


def _lock(path: Path) -> threading.Lock:
    with _LOCKS_LOCK:
        return _LOCKS.setdefault(str(path), threading.Lock())


class SeriesStore:
    """An opened series store: ``data`` (dims ``cell``, ``time``; coordinates ``lat``, ``lon``, ``row``,
    ``col`` per cell) and ``vegetation`` (each LAI series' daily ``<name>_mean``, ``_lo``, ``_hi`` over a
    vegetation type's basin cells; dims ``vegetation`` (IGBP code), ``time``)."""

    def __init__(self, path: Path, data: xr.Dataset, vegetation: xr.Dataset | None = None):
        import zarr

        self.path, self.data, self.vegetation = path, data, vegetation
        self._group = zarr.open_group(str(path), mode="r")
        self._index = {(int(r), int(c)): k for k, (r, c) in enumerate(zip(data["row"].values, data["col"].values))}

    def __contains__(self, name) -> bool:
        return name in self.data.data_vars

    def cell(self, observations: xr.Dataset, at: dict) -> int | None:
        """The index of the grid cell ``at`` ({"lat", "lon"} centres), None when it is not a basin cell."""
        i = int(np.abs(observations["lat"].values - at["lat"]).argmin())
        j = int(np.abs(observations["lon"].values - at["lon"]).argmin())
        return self._index.get((i, j))

    def days(self, times) -> np.ndarray | slice | None:
        """The store's day indices of ``times`` (a slice when they are consecutive); None when one is missing."""
        days = self.data.get_index("time").get_indexer(times)
        if days.size == 0 or (days < 0).any():
            return None
        return slice(int(days[0]), int(days[-1]) + 1) if days[-1] - days[0] == days.size - 1 else days

    def read(self, name: str, cells, days) -> np.ndarray:
        """(cells, days) float32 values of variable ``name``: only the chunks holding them are read."""
        return self._group[name].get_orthogonal_selection((cells, days))

    def cells(self, observations: xr.Dataset, selection: np.ndarray) -> np.ndarray | None:
        """The indices of a (lat, lon) selection's cells; None when one of them is not a basin cell."""
        ii, jj = np.nonzero(np.asarray(selection, bool))
        out = [self._index.get((int(i), int(j))) for i, j in zip(ii, jj)]
        return None if any(k is None for k in out) else np.asarray(out, dtype=np.int64)


def _open_current(path: Path, key: str) -> SeriesStore | None:
    if not (path / "zarr.json").exists():
        return None
    try:
        ds = xr.open_zarr(path, consolidated=False)
        if ds.attrs.get("source_key") != key:
            ds.close()
            return None
        veg = xr.open_zarr(path, group=VEGETATION_GROUP, consolidated=False).load()
    except (OSError, ValueError, KeyError):  # unreadable or of another layout: build it again
        return None
    return SeriesStore(path, ds, veg)


def open_series_store(predictions: xr.Dataset, observations: xr.Dataset, path=None, *, build: bool = True,
                      log=None) -> SeriesStore | None:
    """The :class:`SeriesStore` of ``predictions`` on ``observations``' grid, lazily opened;
    built (or rebuilt, when stale) if ``build``. None for in-memory predictions (no file to key it on).

    One build per store at a time in a process; another process building the same store at once
    wastes its work but not the store (each builds under a temporary name and renames it into place).
    """
    path = Path(path) if path is not None else series_store_path(predictions)
    if path is None:
        return None
    key = _source_key(predictions, observations)
    with _lock(path):
        cached = _OPEN.get(str(path))
        if cached is not None and cached[0] == key:
            return cached[1]
        ds = _open_current(path, key)
        if ds is None:
            if not build:
                return None
            if log is not None:
                log(f"Building the series store {path} (once per result)...")
            build_series_store(predictions, observations, path, key=key)
            ds = _open_current(path, key)
            if ds is None:  # pragma: no cover - a bug, not a user error
                raise RuntimeError(f"the series store {path} was built but does not open as current")
        _OPEN[str(path)] = (key, ds)
        return ds


def _basin_cells(observations: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    mask = np.asarray(observations["mask"].transpose("lat", "lon").values) == 1
    ii, jj = np.nonzero(mask)  # row-major: a block of grid rows is a contiguous range of cells
    if ii.size == 0:
        raise ValueError("the observations' mask holds no basin cell: there is no series to store")
    return ii, jj


def _kind(name: str, predictions: xr.Dataset) -> str:
    from .series import REFERENCE_VARIABLES

    if name in predictions.data_vars:
        return "model"
    if name in REFERENCE_VARIABLES.values():
        return "reference"
    return "observed" if name == "lai" else "forcing"


def build_series_store(predictions: xr.Dataset, observations: xr.Dataset, path, *, key: str | None = None,
                       block_bytes: int = BLOCK_BYTES) -> Path:
    """Write the series store of ``predictions`` and ``observations`` to ``path`` (a Zarr store); return it.

    Reads each variable in blocks of grid rows over every day (at most ``block_bytes`` at a time, so
    memory does not grow with the domain), writes the basin cells' series, then the vegetation types'
    daily statistics; all under a temporary name, renamed into place at the end.
    """
    from ..io import building_path, remove_abandoned_builds, replace_directory

    path = Path(path)
    key = key or _source_key(predictions, observations)
    ii, jj = _basin_cells(observations)
    names = series_variables(predictions, observations)
    time = predictions["time"]
    n, nt, nlat, nlon = ii.size, time.size, observations.sizes["lat"], observations.sizes["lon"]
    chunks = (min(CELL_CHUNK, n), min(CHUNK_DAYS, nt))
    lat, lon = observations["lat"].values, observations["lon"].values
    import dask.array as dsa

    template = xr.Dataset(coords={"time": time.values, "lat": ("cell", lat[ii]), "lon": ("cell", lon[jj]),
                                  "row": ("cell", ii.astype(np.int32)), "col": ("cell", jj.astype(np.int32))})
    sources = {}
    for v in names:
        src = predictions[v] if v in predictions.data_vars else observations[v]
        sources[v] = src.transpose("time", "lat", "lon").sel(time=time.values)
        attrs = {k: a for k, a in src.attrs.items() if isinstance(a, (str, int, float))}
        template[v] = (("cell", "time"), dsa.zeros((n, nt), chunks=chunks, dtype=np.float32),
                       {**attrs, "series_kind": _kind(v, predictions)})
    template.attrs = {"title": f"daily series of the basin cells of {predictions.attrs.get('title', 'a result')}",
                      "source_key": key, "grid_lat": nlat, "grid_lon": nlon,
                      "synthetic": int(bool(int(observations.attrs.get("synthetic", 0) or 0)))}
    encoding = {v: {"chunks": chunks, "_FillValue": np.float32(np.nan), "compressors": (_compressor(),)} for v in names}
    encoding["time"] = {"units": "days since 1970-01-01", "calendar": "proleptic_gregorian", "dtype": "int32"}

    path.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_builds(path)
    tmp = building_path(path)
    try:
        template.to_zarr(tmp, mode="w-", compute=False, consolidated=False, zarr_format=3, encoding=encoding)
        import zarr

        group = zarr.open_group(str(tmp), mode="r+")
        rows = max(1, int(block_bytes // max(1, nt * nlon * 4)))
        for v in names:
            for r0 in range(int(ii[0]), int(ii[-1]) + 1, rows):
                c0, c1 = np.searchsorted(ii, [r0, r0 + rows])
                if c0 == c1:
                    continue
                block = np.asarray(sources[v].isel(lat=slice(r0, r0 + rows)).values, dtype=np.float32)
                group[v][c0:c1, :] = block[:, ii[c0:c1] - r0, jj[c0:c1]].T
                del block
        with xr.open_zarr(tmp, consolidated=False) as written:
            _vegetation_statistics(SeriesStore(tmp, written), observations, ii, jj, block_bytes).to_zarr(
                tmp, group=VEGETATION_GROUP, mode="w-", consolidated=False, zarr_format=3)
        replace_directory(tmp, path)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _vegetation_statistics(store: SeriesStore, observations: xr.Dataset, ii, jj, block_bytes: int) -> xr.Dataset:
    """Daily mean and :data:`SPREAD` percentiles over each vegetation type's basin cells, per LAI series."""
    lc = np.asarray(observations["landcover"].transpose("lat", "lon").values)[ii, jj]
    codes = np.unique(lc)
    names = lai_variables(store.data)
    out = {f"{v}_{s}": np.full((codes.size, store.data.sizes["time"]), np.nan, np.float32)
           for v in names for s in ("mean", "lo", "hi")}
    nt = store.data.sizes["time"]
    step = max(1, int(block_bytes // max(1, 4 * lc.size)))
    for v in names:  # each variable read once, every cell, in blocks of days
        spread = SPREAD if store.data[v].attrs["series_kind"] != "observed" else None
        for d0 in range(0, nt, step):
            days = slice(d0, min(nt, d0 + step))
            x = store.read(v, slice(None), days).T  # (days, cells)
            for k, code in enumerate(codes):
                for stat, values in day_statistics(np.ascontiguousarray(x[:, lc == code]), spread).items():
                    out[f"{v}_{stat}"][k, days] = values
    ds = xr.Dataset({name: (("vegetation", "time"), a) for name, a in out.items()},
                    coords={"vegetation": codes.astype(np.int16), "time": store.data["time"].values})
    ds.attrs["spread"] = list(SPREAD)
    return ds


def cell_statistics(store: SeriesStore, name: str, cells: np.ndarray, days, spread,
                    block_bytes: int = BLOCK_BYTES) -> dict:
    """Daily statistics of variable ``name`` over ``cells`` (store cell indices) on ``days`` (a slice or day
    indices): {"mean", and with ``spread``: "lo", "hi"}; read in blocks of days within ``block_bytes``."""
    index = np.arange(store.data.sizes["time"])[days]
    step = max(1, int(block_bytes // max(1, 4 * cells.size)))
    parts: dict[str, list] = {}
    for d0 in range(0, index.size, step):
        sel = index[d0:d0 + step]
        sel = slice(int(sel[0]), int(sel[-1]) + 1) if sel[-1] - sel[0] == sel.size - 1 else sel
        x = np.ascontiguousarray(store.read(name, cells, sel).T)  # (days, cells)
        for k, v in day_statistics(x, spread).items():
            parts.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in parts.items()}


def day_statistics(x: np.ndarray, spread=None) -> dict[str, np.ndarray]:
    """Mean (accumulated in float64) and, with ``spread`` (low, high percentiles), the linear-interpolated
    percentiles of each row of ``x`` (days, cells), NaN skipped; NaN for a day with no value."""
    x = np.asarray(x)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # days with no value are NaN, as intended
        nans = np.isnan(x).sum(axis=1)
        full, part = nans == 0, (nans > 0) & (nans < x.shape[1])
        mean = x.mean(axis=1, dtype=np.float64)  # NaN on a day with a gap: those days again, skipping it
        if part.any():
            mean[part] = np.nanmean(x[part], axis=1, dtype=np.float64)
        out = {"mean": mean.astype(np.float32)}
        if spread is not None:
            q = [p / 100 for p in spread]
            lo, hi = (np.full(x.shape[0], np.nan, np.float32) for _ in range(2))
            # rows without a gap (nearly all) by np.quantile, many times faster than nanquantile
            for rows, fn in ((full, np.quantile), (part, np.nanquantile)):
                if rows.any():
                    lo[rows], hi[rows] = fn(x[rows], q, axis=1)
            out["lo"], out["hi"] = lo, hi
    return out
