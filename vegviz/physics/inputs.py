"""Reading the model's inputs from a model-ready Dataset, and computing products block by block.

In memory (:func:`blockwise`), inputs are loaded once as float32 numpy arrays (dask-backed
variables are computed; numpy float32 variables are used without a copy). Products are
computed on blocks of latitude rows with the full time axis, because every running window
runs along time: a block's float64 temporaries stay small (tens of MB) whatever the length
of the record.

Out of core (:func:`stream_blockwise`), the record is read one block of days at a time
(:func:`time_blocks`: aligned to the time chunks of dask-backed data, never more than a
fixed memory budget), and the running windows carry over from one block to the next
(:mod:`vegviz.physics.running`), so memory does not grow with the length of the record
and the values are those of :func:`blockwise`.
"""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import pandas as pd
import xarray as xr

from ..contract import check_time as contract_check_time

from ..contract import VARIABLES, ContractError
from . import solar
from .params import GSIParameters

DIMS = ("time", "lat", "lon")
# Values per block and variable. Small blocks stay in cache: on the study grid (13149 days x 54)
# this is one latitude row, 2.8 MB float32, measured ~30% faster than 3M-value blocks.
BLOCK_ELEMENTS = 1_000_000
#: Memory budget (bytes) of one block of days of the out-of-core path: its float32 inputs and output.
STREAM_BYTES = 1 << 30

#: what each input is used for, for error messages
PURPOSE = {
    "tmin": "the minimum temperature indicator iTmin and Hargreaves PET",
    "tair": "Hargreaves PET (and vpd from qair)",
    "precip": "the water-limitation term",
    "vpd": "the vapour pressure deficit indicator iVPD",
    "qair": "deriving vpd for iVPD",
    "elevation": "the surface pressure needed to derive vpd from qair",
    "lai": "calibrating lai_min and lai_max",
}


def fail(var: str, problem: str, fix: str):
    raise ContractError(f"{var}: {problem}. Fix: {fix}")


def humidity_names(ds: xr.Dataset) -> tuple[str, ...]:
    """The variables iVPD is computed from: vpd, else qair with tair, tmin and elevation."""
    if "vpd" in ds.data_vars:
        return ("vpd",)
    if "qair" in ds.data_vars:
        return ("qair", "tair", "tmin", "elevation")
    fail("vpd/qair", "the iVPD indicator needs a humidity forcing and neither vpd nor qair is present",
         "add vpd (kPa), or qair (kg kg-1) together with elevation (m) so vpd can be derived")


def check_time(ds: xr.Dataset) -> pd.DatetimeIndex:
    """The time index; the running windows count days, so it must be gap-free daily (the contract's check)."""
    return contract_check_time(ds)


def checked(ds: xr.Dataset, name: str) -> xr.DataArray:
    if name not in ds.data_vars:
        spec = VARIABLES[name]
        fail(name, f"variable is missing; vegviz.physics needs it for {PURPOSE[name]}",
             f"add {name!r} in {spec.units!r} with dims {spec.dims}")
    da = ds[name]
    spec = VARIABLES[name]
    if set(da.dims) != set(spec.dims):
        fail(name, f"has dims {da.dims}, expected {spec.dims}",
             f"rename or reduce the dimensions so it is {spec.dims}")
    units = da.attrs.get("units")
    # Missing units are taken to be the contract's; wrong ones would give silent nonsense.
    if units is not None and units != spec.units and units not in spec.aliases:
        how = spec.conversions.get(units)
        fail(name, f"has units {units!r}, expected {spec.units!r}",
             f"convert{f' ({how})' if how else ''} and set attrs['units'] = {spec.units!r}")
    return da.transpose(*spec.dims)


def field(ds: xr.Dataset, name: str) -> np.ndarray:
    """Variable ``name`` as a float32 numpy array in contract dim order (loads dask data)."""
    return np.asarray(checked(ds, name).values, dtype=np.float32)


def check_lat(ds: xr.Dataset) -> np.ndarray:
    if "lat" not in ds.coords or ds["lat"].ndim != 1:
        fail("lat", "a 1-D latitude coordinate is missing; daylength and radiation need it",
             "add a 'lat' coordinate in degrees north")
    return ds["lat"].values.astype(float)


def blockwise(
    ds: xr.Dataset,
    names: tuple[str, ...],
    fn: Callable[[dict, GSIParameters], np.ndarray],
    params: GSIParameters,
) -> np.ndarray:
    """Compute ``fn(block, params)`` on blocks of latitude rows; return (time, lat, lon) float32.

    ``block`` maps each of ``names`` to its (time, rows, lon) slice (``elevation`` to
    (1, rows, lon)), plus ``daylength`` (h) and ``ra`` (mm day-1) as (time, rows, 1).
    """
    idx = check_time(ds)
    lat = check_lat(ds)
    fields = {}
    for name in dict.fromkeys(names):  # unique, in order
        arr = field(ds, name)
        fields[name] = arr[None] if arr.ndim == 2 else arr
    doy = idx.day_of_year.to_numpy()
    tables = {
        "daylength": solar._daylength_hours(lat, doy, params.sun_altitude).astype(np.float32),
        "ra": solar._extraterrestrial_mm(lat, doy).astype(np.float32),
    }
    nt, nlat, nlon = idx.size, lat.size, ds.sizes["lon"]
    out = np.empty((nt, nlat, nlon), dtype=np.float32)
    rows_per_block = max(1, BLOCK_ELEMENTS // max(1, nt * nlon))
    for r0 in range(0, nlat, rows_per_block):
        rows = slice(r0, r0 + rows_per_block)
        block = {k: v[:, rows] for k, v in fields.items()}
        block.update({k: v[:, rows, None] for k, v in tables.items()})
        out[:, rows] = fn(block, params)
    return out


def as_dataarray(ds: xr.Dataset, values: np.ndarray, name: str, attrs: dict) -> xr.DataArray:
    """Wrap a (time, lat, lon) array with the coordinates of ``ds``."""
    coords = {d: ds[d] for d in DIMS if d in ds.coords}
    return xr.DataArray(values, dims=DIMS, coords=coords, name=name, attrs=attrs)


def time_blocks(ds: xr.Dataset | xr.DataArray, bytes_per_day: int,
                max_bytes: int = STREAM_BYTES) -> list[tuple[int, int]]:
    """Consecutive [start, stop) day ranges covering ``ds.time``, each under ``max_bytes``.

    Aligned to the time chunks of dask-backed data (a chunk is then read once; for a
    Dataset, when its variables share them), split further where a chunk would exceed the
    budget; ``bytes_per_day`` is what one day of the block costs.
    """
    nt = ds.sizes["time"]
    days = max(1, int(max_bytes // max(1, bytes_per_day)))
    try:
        chunks = ds.chunksizes.get("time")
    except ValueError:  # variables chunked differently: no alignment to follow
        chunks = None
    edges = np.cumsum((0, *chunks)) if chunks else np.array([0, nt])
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        out += [(int(s), int(min(s + days, b))) for s in range(int(a), int(b), days)]
    return out


def stream_blockwise(
    ds: xr.Dataset,
    names: tuple[str, ...],
    fn: Callable[[dict, GSIParameters, dict], np.ndarray],
    params: GSIParameters,
    new_state: Callable[[GSIParameters], dict],
    *,
    max_bytes: int = STREAM_BYTES,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """:func:`blockwise` out of core: yield ``(start, stop, values)`` for consecutive blocks of days.

    ``fn(block, params, state)`` gets the blocks of :func:`blockwise` for a block of days and
    the ``state`` (made by ``new_state``) that its cells left at the end of the previous block
    of days; ``values`` is (stop - start, lat, lon) float32. Only one block of days of the
    inputs is in memory (plus the states: the running windows' last days).
    """
    idx = check_time(ds)
    lat = check_lat(ds)
    unique = tuple(dict.fromkeys(names))
    arrays = {name: checked(ds, name) for name in unique}
    nlat, nlon = lat.size, ds.sizes["lon"]
    dynamic = [n for n in unique if "time" in arrays[n].dims]
    blocks = time_blocks(arrays[dynamic[0]], 4 * nlat * nlon * (len(dynamic) + 1), max_bytes)
    static = {n: np.asarray(a.values, dtype=np.float32)[None] for n, a in arrays.items() if n not in dynamic}
    doy = idx.day_of_year.to_numpy()
    longest = max(b - a for a, b in blocks)
    rows_per_block = max(1, BLOCK_ELEMENTS // max(1, longest * nlon))
    states: dict[int, dict] = {}
    for t0, t1 in blocks:
        fields = {n: np.asarray(arrays[n].isel(time=slice(t0, t1)).values, dtype=np.float32) for n in dynamic}
        fields.update(static)
        tables = {
            "daylength": solar._daylength_hours(lat, doy[t0:t1], params.sun_altitude).astype(np.float32),
            "ra": solar._extraterrestrial_mm(lat, doy[t0:t1]).astype(np.float32),
        }
        out = np.empty((t1 - t0, nlat, nlon), dtype=np.float32)
        for r0 in range(0, nlat, rows_per_block):
            rows = slice(r0, r0 + rows_per_block)
            block = {k: v[:, rows] for k, v in fields.items()}
            block.update({k: v[:, rows, None] for k, v in tables.items()})
            state = states.get(r0)
            if state is None:
                state = states[r0] = new_state(params)
            out[:, rows] = fn(block, params, state)
        del fields
        yield t0, t1, out
