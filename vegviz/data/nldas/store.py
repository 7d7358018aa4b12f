"""Daily NLDAS-2 forcing into a Zarr store, block by block, resumable.

The store is built in ``.{name}.nldas-partial/data.zarr`` next to the target. Every block of
``block_days`` days is one Zarr chunk along time, written once with a region write
(parallel inside the block: one dask task per day, on whatever scheduler is active, so a
dask.distributed Client is used when one exists) and then recorded by a marker file in
``.{name}.nldas-partial/blocks/``. A
rerun after an interruption (even SIGKILL) skips the blocks that have markers and
rewrites any block that was cut half-way. Only when every block is there is the metadata
consolidated, the completion record written and the directory renamed to the target:
the target path never holds a half-written store.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ...grid import UCRB, Grid
from .daily import DAILY, nldas_daily
from .files import NldasError

MARKER = "vegviz_nldas_complete.json"
BLOCKS = "blocks"  # marker folder in the partial build folder, next to data.zarr


def partial_path(store) -> Path:
    """The folder of an unfinished build of ``store`` (data.zarr and the block markers)."""
    store = Path(store)
    return store.parent / f".{store.name}.nldas-partial"


def _request(ds: xr.Dataset, grid: Grid, block_days: int) -> dict:
    t = pd.DatetimeIndex(ds.time.values)
    return {"start": f"{t[0]:%Y-%m-%d}", "end": f"{t[-1]:%Y-%m-%d}", "block_days": int(block_days),
            "version": ds.attrs["nldas_version"], "grid": [grid.lat0, grid.lon0, grid.nlat, grid.nlon],
            "variables": list(DAILY)}


def read_marker(store) -> dict | None:
    """The completion record of a finished store, or None."""
    try:
        return json.loads((Path(store) / MARKER).read_text())
    except (OSError, ValueError):
        return None


def write_daily_zarr(files_or_dir, store, grid: Grid = UCRB, start=None, end=None, *,
                     allow_missing_hours: int = 0, block_days: int = 32, overwrite: bool = False,
                     progress=None) -> Path:
    """Aggregate hourly NLDAS-2 files to daily forcings and write them to the Zarr ``store``.

    Resumes an interrupted build of the same request (same period, grid, version and
    block size); a different request with a partial build in the way is an error (rerun
    with the same arguments, or ``overwrite=True`` to start again). A complete store at
    ``store`` is returned as it is unless ``overwrite``. ``progress(done, total)`` is
    called after each block. Returns the store path.
    """
    store = Path(store).expanduser()
    if block_days < 1:
        raise NldasError(f"block_days must be >= 1, got {block_days}")
    ds = nldas_daily(files_or_dir, grid, start, end, allow_missing_hours=allow_missing_hours)
    req = _request(ds, grid, block_days)
    done = read_marker(store)
    if done is not None and not overwrite:
        if done.get("request") != req:
            raise NldasError(f"{store} already holds NLDAS-2 forcing for another request ({done.get('request')}). "
                             "Fix: choose another output path, or pass overwrite=True (--overwrite)")
        shutil.rmtree(partial_path(store), ignore_errors=True)  # left over if a finish was cut short
        return store
    if store.exists() and done is None and not overwrite:
        raise NldasError(f"{store} exists and is not a finished NLDAS-2 store; refusing to replace it. "
                         "Fix: choose another output path, or pass overwrite=True")
    tmp = partial_path(store)
    if tmp.exists():
        try:
            old = json.loads((tmp / BLOCKS / "request.json").read_text())
        except (OSError, ValueError):
            old = None
        if overwrite or old is None:
            shutil.rmtree(tmp)
        elif old != req:
            raise NldasError(f"{tmp} is an unfinished build of another request ({old}); this one is {req}. "
                             "Fix: rerun with the same arguments to finish it, or pass overwrite=True to start again")
    if not tmp.exists():
        _create(ds, tmp, req, block_days)

    n = ds.sizes["time"]
    starts = list(range(0, n, block_days))
    marks = tmp / BLOCKS
    for k, i0 in enumerate(starts):
        mark = marks / f"block-{k:05d}.done"
        if mark.exists():
            continue
        i1 = min(i0 + block_days, n)
        part = ds.isel(time=slice(i0, i1)).drop_vars(["lat", "lon"]).chunk({"time": -1})
        part.to_zarr(tmp / "data.zarr", region={"time": slice(i0, i1)}, consolidated=False)
        mark.write_text(f"{i0} {i1}\n")
        if progress is not None:
            progress(k + 1, len(starts))
    _finish(tmp, store, req)
    return store


def _create(ds: xr.Dataset, tmp: Path, req: dict, block_days: int) -> None:
    """The store's layout, coordinates and metadata; no data (NaN until a block is written)."""
    from zarr.codecs import BloscCodec

    build = tmp.parent / f".{tmp.name}.{uuid.uuid4().hex[:8]}"  # made whole, then renamed: never half-created
    chunks = (block_days, ds.sizes["lat"], ds.sizes["lon"])
    codec = BloscCodec(cname="zstd", clevel=1, shuffle="shuffle")
    encoding = {v: {"chunks": chunks, "_FillValue": np.float32(np.nan), "compressors": (codec,)} for v in DAILY}
    encoding["time"] = {"units": "days since 1970-01-01", "calendar": "proleptic_gregorian", "dtype": "int32"}
    template = ds.copy()
    for v in DAILY:
        template[v] = template[v].chunk({"time": block_days})
    template.attrs["nldas_complete"] = 0
    try:
        template.to_zarr(build / "data.zarr", mode="w-", compute=False, consolidated=False, zarr_format=3,
                         encoding=encoding)
        (build / BLOCKS).mkdir()
        (build / BLOCKS / "request.json").write_text(json.dumps(req))
        os.rename(build, tmp)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise


def _finish(tmp: Path, store: Path, req: dict) -> None:
    import zarr

    import warnings

    data = tmp / "data.zarr"
    group = zarr.open_group(str(data), mode="r+")
    group.attrs["nldas_complete"] = 1
    with warnings.catch_warnings():
        # zarr warns that consolidated metadata is not (yet) in the v3 spec; xarray reads it.
        warnings.simplefilter("ignore")
        zarr.consolidate_metadata(str(data))
    (data / MARKER).write_text(json.dumps({"request": req, "finished": pd.Timestamp.now("UTC").isoformat()}))
    if store.exists():  # overwrite of a finished store: move it aside, then delete it
        old = store.parent / f".{store.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(store, old)
        os.rename(data, store)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(data, store)
    shutil.rmtree(tmp, ignore_errors=True)


def open_daily_zarr(store) -> xr.Dataset:
    """A finished daily NLDAS-2 store (lazily); NldasError if it is missing or unfinished."""
    store = Path(store)
    if read_marker(store) is None:
        hint = " (an unfinished build is at " + str(partial_path(store)) + ": rerun write_daily_zarr)" \
            if partial_path(store).exists() else ""
        raise NldasError(f"{store}: not a finished NLDAS-2 daily store{hint}")
    return xr.open_zarr(store, consolidated=True)
