"""Data sets opened by path (Zarr stores, NetCDF files), with clear errors for damaged files.

A file cut short (an interrupted copy or download, a full disk) or damaged otherwise fails,
left to itself, with a bare codec or HDF5 message ("Zstd decompression error", "NetCDF: HDF
error") that names neither the file nor the variable, and only when a block is first read,
deep inside a computation. :func:`open_store` opens a store lazily, as ``xr.open_zarr`` /
``xr.open_dataset(chunks={})`` do (the same dask chunks: the chunks on disk), and reads every
block through a guard that turns such a failure into a :class:`DataFileError` naming the file,
the variable, the block (for Zarr: the chunk file) and the fix. The guard sits under dask's
own getter, so reading part of a block still reads only that part.

A Zarr chunk file that is missing is not an error by itself: Zarr leaves out chunks that hold
only the fill value, and reads them as NaN. :func:`missing_chunk_files` lists the missing ones
of a variable (inside a mask), for the contract to name when a variable has NaNs where it must not.
"""
from __future__ import annotations

import os
import zlib
from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["DataFileError", "missing_chunk_files", "open_store"]

#: what a damaged file raises when a block is read: HDF5 errors (OSError/RuntimeError), codecs
#: (blosc, zstd: RuntimeError; zlib.error; numcodecs/zarr ValueError on a short buffer), EOF
_READ_ERRORS = (OSError, RuntimeError, ValueError, EOFError, zlib.error)

FIX = "copy it again from its source or rebuild it (vegviz prepare, vegviz build-basin)"


class DataFileError(ValueError):
    """A data file or store cannot be read: truncated, damaged or of another format; the message names
    the file (and the variable and block) and the fix."""


def _is_zarr(path: Path) -> bool:
    return path.is_dir()


def _where_netcdf(guard: _Guarded, key: tuple) -> str:
    parts = []
    for dim, k, n in zip(guard.dims, key, guard.shape):
        start, stop, _ = k.indices(n) if isinstance(k, slice) else (int(k), int(k) + 1, 1)
        text = f"{dim} {start}:{stop}"
        if dim == "time" and guard.time is not None and stop > start:
            text += f" ({guard.time[start]:%Y-%m-%d}..{guard.time[stop - 1]:%Y-%m-%d})"
        parts.append(text)
    return "the block " + ", ".join(parts)


def _zarr_array(path: Path, name: str):
    import zarr

    return zarr.open_array(str(path), path=name, mode="r")


def _file_unit(array) -> tuple[int, ...]:
    """The shape of the piece stored in one file: the shard, else the chunk."""
    return tuple(getattr(array, "shards", None) or array.chunks)


def _where_zarr(guard: _Guarded, key: tuple) -> str:
    try:
        array = _zarr_array(guard.path, guard.name)
        unit = _file_unit(array)
        starts = [(k.indices(n)[0] if isinstance(k, slice) else int(k)) for k, n in zip(key, guard.shape)]
        files = array.metadata.encode_chunk_key(tuple(s // u for s, u in zip(starts, unit)))
        return f"chunk file {guard.name}/{files}"
    except (OSError, ValueError, KeyError, AttributeError, TypeError):  # an unusual layout: the index range says where
        return _where_netcdf(guard, key)


class _Guarded:
    """A lazily opened variable, read block by block for dask; a failed read raises DataFileError."""

    def __init__(self, variable, name: str, path: Path, time=None):
        self.variable, self.name, self.path, self.time = variable, name, path, time
        self.shape, self.dtype, self.ndim, self.dims = variable.shape, variable.dtype, variable.ndim, variable.dims

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        try:
            if all(isinstance(k, (slice, int, np.integer)) for k in key):
                return np.asarray(self.variable[key].values)
            return np.asarray(self.variable.values)[key]  # (dask passes slices; anything else reads it all)
        except _READ_ERRORS as e:
            zarr = _is_zarr(self.path)
            where = _where_zarr(self, key) if zarr else _where_netcdf(self, key)
            raise DataFileError(
                f"{self.path}: cannot read {self.name!r} at {where} ({type(e).__name__}: {e}): the "
                f"{'Zarr store' if zarr else 'NetCDF file'} is truncated or damaged (an interrupted copy or "
                f"download, a full disk). Fix: {FIX}") from None


def open_store(path) -> xr.Dataset:
    """A Zarr store (a folder) or a NetCDF file, lazily opened with dask chunks = the chunks on disk.

    Raises :class:`DataFileError` naming the file when it cannot be opened (not NetCDF/Zarr, cut
    short, damaged), and later, when a block of it cannot be read, naming the variable and block.
    """
    import dask.array as da
    import pandas as pd
    import xarray as xr
    from dask.base import tokenize

    path = Path(path)
    zarr = _is_zarr(path)
    if zarr:  # damaged metadata: JSON that does not parse, or that zarr refuses (not xarray's decoding errors)
        import json

        from zarr.errors import BaseZarrError

        damaged = (OSError, json.JSONDecodeError, UnicodeDecodeError, BaseZarrError)
    else:
        damaged = (OSError,)  # netCDF4: "NetCDF: Unknown file format", "NetCDF: HDF error", ...
    try:
        ds = xr.open_dataset(path, engine="zarr" if zarr else "netcdf4", chunks=None, cache=False)
    except PermissionError:
        raise
    except damaged as e:
        reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
        kind = "a Zarr store" if zarr else "NetCDF"
        raise DataFileError(f"{path}: cannot open it as {kind} ({reason}): it is truncated, damaged or not "
                            f"{kind}. Fix: {FIX}, or pass a model-ready NetCDF-4 file or Zarr store") from None
    time = pd.DatetimeIndex(ds["time"].values) if "time" in ds.indexes and ds["time"].dtype.kind == "M" else None
    mtime = os.path.getmtime(path)
    variables = {}
    for name, var in ds.data_vars.items():
        v = var.variable
        preferred = v.encoding.get("preferred_chunks", {})
        chunks = tuple(preferred.get(d, n) for d, n in zip(v.dims, v.shape))
        token = tokenize(str(path), mtime, name, chunks)
        data = da.from_array(_Guarded(v, name, path, time if "time" in v.dims else None), chunks=chunks,
                             name=f"open_data-{name}-{token}", fancy=False, meta=np.empty((0,) * v.ndim, v.dtype))
        encoding = dict(v.encoding)
        encoding.setdefault("source", str(path))  # where missing_chunk_files() looks (zarr drops it on write)
        variables[name] = xr.Variable(v.dims, data, v.attrs, encoding)
    return ds.assign(variables)


def missing_chunk_files(da, mask=None, source=None) -> tuple[Path, list[str]] | None:
    """(store, chunk files) of the Zarr-stored variable ``da`` whose files are missing, only those that
    overlap ``mask`` (a (lat, lon) boolean array) when given; None when ``da`` is not read from a Zarr store.
    ``source``: the store (default: ``da.encoding['source']``)."""
    source = source or da.encoding.get("source")
    if not source or not Path(source).is_dir():
        return None
    store = Path(source)
    try:
        array = _zarr_array(store, da.name)
        unit = _file_unit(array)
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        return None
    grid = [range(-(-n // u)) for n, u in zip(array.shape, unit)]
    mask = None if mask is None else np.asarray(mask, dtype=bool)
    spatial = [i for i, d in enumerate(da.dims) if d in ("lat", "lon")]
    missing = []
    for coords in product(*grid):
        key = array.metadata.encode_chunk_key(coords)
        if (store / da.name / key).exists():
            continue
        if mask is not None and len(spatial) == 2 and mask.ndim == 2:
            (i, u0), (j, u1) = [(coords[k], unit[k]) for k in spatial]
            if not mask[i * u0:(i + 1) * u0, j * u1:(j + 1) * u1].any():
                continue  # outside the mask: an all-NaN chunk that zarr left out
        missing.append(f"{da.name}/{key}")
    return store, missing
