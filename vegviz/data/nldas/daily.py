"""Daily forcing from hourly NLDAS-2 files, lazily with dask (one task per day).

Day boundary: day D is the 24 files whose names are stamped D 00:00 ... D 23:00 UTC
(UTC days, not local days; the UCRB is UTC-7, so a UTC day runs 17:00-17:00 local
standard time). In version 002 GRIB the stamp is the instant of the state fields
(temperature, humidity, pressure, radiation, wind) and the END of the one-hour
accumulation of precipitation and potential evaporation: the real file
``NLDAS_FORA0125_H.A20171024.1500.002.grb`` codes its precipitation with reference time
14:00 and P1=0, P2=1 hours, i.e. 14:00-15:00 UTC. So day D's precipitation covers
D-1 23:00 ... D 23:00 UTC, one hour earlier than its states. The reader checks these
times against the file name for every GRIB field it uses.

Daily variables (contract names and units, :func:`vegviz.contract.cf_attrs`):

* ``precip`` (mm day-1) = sum of the 24 hourly ``Rainf`` totals (kg m-2 = mm of water);
* ``tair`` (degC) = mean of the hourly ``Tair`` - 273.15;
* ``tmin`` (degC) = minimum of the hourly ``Tair`` - 273.15;
* ``swdown`` (W m-2) = mean of the hourly ``SWdown``;
* ``qair`` (kg kg-1) = mean of the hourly ``Qair``;
* ``vpd`` (kPa) = mean of the hourly deficits es(T) - e, each floored at 0, with
  es(T) = 0.6108 exp(17.27 T / (T + 237.3)) kPa, T in degC (FAO-56 eq. 11, Allen et al.
  1998; :func:`vegviz.physics.meteo.saturation_vapour_pressure`) and the actual vapour
  pressure e = q p / (0.622 + 0.378 q) from specific humidity q and surface pressure p
  (``PSurf``), inverting q = 0.622 e / (p - 0.378 e) (e.g. Wallace & Hobbs 2006,
  Atmospheric Science, 2nd ed., sec. 3.1). Averaging hourly deficits uses the diurnal
  cycle that daily means (FAO-56 eq. 12 with Tmax/Tmin) can only approximate.

Missing hours are an error by default; ``allow_missing_hours=n`` accepts days with up to n
missing files: means/min use the hours present, and precip = mean hourly total x 24.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ...contract import cf_attrs
from ...grid import UCRB, Grid
from ...physics.meteo import EPSILON, saturation_vapour_pressure
from .files import PRODUCT, REQUIRED, Granule, NldasError, parse_name, read_granule

DAILY = ("precip", "tair", "tmin", "swdown", "vpd", "qair")
KELVIN = 273.15


# --------------------------------------------------------------------------- finding files

def find_granules(files_or_dir, start=None, end=None) -> list[Granule]:
    """The hourly granules in a folder (searched recursively) or a list of files, between start and end days."""
    if isinstance(files_or_dir, (str, Path)):
        root = Path(files_or_dir).expanduser()
        if root.is_dir():
            paths = sorted(p for p in root.rglob(f"{PRODUCT}.A*") if p.suffix in (".nc", ".grb"))
            if not paths:
                raise NldasError(f"{root}: no NLDAS-2 hourly files ({PRODUCT}.A*.020.nc or .002.grb) in this "
                                 "folder. Fix: download them with `vegviz fetch nldas --start ... --end ... "
                                 f"--out {root}`")
        elif root.is_file():
            paths = [root]
        else:
            raise NldasError(f"{root}: no such file or folder")
    else:
        paths = [Path(p) for p in files_or_dir]
        if not paths:
            raise NldasError("no NLDAS-2 files given")
    granules = [parse_name(p) for p in paths]
    versions = defaultdict(list)
    for g in granules:
        versions[g.version].append(g)
    if len(versions) > 1:
        ex = {v: gs[0].path.name for v, gs in versions.items()}
        raise NldasError(f"mixed NLDAS-2 versions in one request: {len(versions['002'])} GRIB files of version 002 "
                         f"(e.g. {ex['002']}) and {len(versions['020'])} NetCDF files of version 2.0 "
                         f"(e.g. {ex['020']}). The versions differ (2.0 is a reprocessing), so a series must not mix "
                         "them. Fix: keep one version in the folder or pass only one version's files")
    t0 = pd.Timestamp(start).normalize() if start is not None else None
    t1 = pd.Timestamp(end).normalize() if end is not None else None
    keep = [g for g in granules if (t0 is None or g.day >= t0) and (t1 is None or g.day <= t1)]
    if not keep:
        raise NldasError(f"no NLDAS-2 files between {start} and {end} (files cover "
                         f"{min(g.day for g in granules):%Y-%m-%d}..{max(g.day for g in granules):%Y-%m-%d})")
    return sorted(keep, key=lambda g: g.time)


def group_days(granules: list[Granule], start=None, end=None, allow_missing_hours: int = 0
               ) -> dict[pd.Timestamp, list[Granule]]:
    """Granules by UTC day, after checking every day from start to end has its hours once each."""
    by_day: dict[pd.Timestamp, dict[int, Granule]] = defaultdict(dict)
    for g in granules:
        hours = by_day[g.day]
        if g.time.hour in hours:
            raise NldasError(f"day {g.day:%Y-%m-%d}: hour {g.time:%H}:00 is there twice ({hours[g.time.hour].path} "
                             f"and {g.path}). Fix: remove the duplicate")
        hours[g.time.hour] = g
    t0 = pd.Timestamp(start).normalize() if start is not None else min(by_day)
    t1 = pd.Timestamp(end).normalize() if end is not None else max(by_day)
    days = pd.date_range(t0, t1, freq="D")
    absent = [d for d in days if d not in by_day]
    if absent:
        shown = ", ".join(f"{d:%Y-%m-%d}" for d in absent[:5]) + (" ..." if len(absent) > 5 else "")
        raise NldasError(f"{len(absent)} day(s) have no NLDAS-2 files at all: {shown}. Fix: download them "
                         "(vegviz fetch nldas) or choose a period the files cover")
    out = {}
    for d in days:
        hours = by_day[d]
        missing = sorted(set(range(24)) - set(hours))
        if len(missing) > allow_missing_hours:
            raise NldasError(f"day {d:%Y-%m-%d}: missing hour(s) {', '.join(f'{h:02d}' for h in missing)} UTC "
                             f"({24 - len(missing)} of 24 files). Fix: download the missing files, or pass "
                             f"allow_missing_hours={len(missing)} to average the hours present")
        out[d] = [hours[h] for h in sorted(hours)]
    return out


# --------------------------------------------------------------------------- one day

def aggregate_day(granules: list[Granule], grid: Grid) -> np.ndarray:
    """(len(DAILY), nlat, nlon) float32 daily values of one day's hourly granules."""
    n = len(granules)
    shape = (n, grid.nlat, grid.nlon)
    stack = {k: np.empty(shape, np.float32) for k in REQUIRED}
    for i, g in enumerate(granules):
        for k, a in read_granule(g, grid, REQUIRED).items():
            stack[k][i] = a
    t = stack["Tair"] - np.float32(KELVIN)
    q, p_kpa = stack["Qair"], stack["PSurf"] / np.float32(1000.0)
    e = q * p_kpa / (np.float32(EPSILON) + np.float32(1 - EPSILON) * q)
    deficit = np.maximum(saturation_vapour_pressure(t) - e, np.float32(0.0))
    out = np.stack([
        stack["Rainf"].mean(0) * np.float32(24.0),  # = the sum when all 24 hours are there
        t.mean(0),
        t.min(0),
        stack["SWdown"].mean(0),
        deficit.mean(0),
        q.mean(0),
    ]).astype(np.float32)
    return out


# --------------------------------------------------------------------------- lazy series

def nldas_daily(files_or_dir, grid: Grid = UCRB, start=None, end=None, *, allow_missing_hours: int = 0,
                days_per_chunk: int = 1) -> xr.Dataset:
    """Daily contract forcings (precip, tair, tmin, swdown, vpd, qair) from hourly NLDAS-2 files, lazily.

    File names are checked now (versions, duplicated/missing hours, gaps); file contents
    when the data are computed (one dask task per day, any scheduler, including
    dask.distributed). ``start``/``end`` (days, inclusive) default to the files' span.
    """
    import dask
    import dask.array as da

    if not 0 <= allow_missing_hours < 24:
        raise NldasError(f"allow_missing_hours must be 0..23, got {allow_missing_hours}")
    days = group_days(find_granules(files_or_dir, start, end), start, end, allow_missing_hours)
    version = next(iter(days.values()))[0].version
    shape = (len(DAILY), grid.nlat, grid.nlon)
    blocks = [
        da.from_delayed(dask.delayed(aggregate_day, pure=True)(gs, grid, dask_key_name=f"nldas-day-{d:%Y%m%d}-"
                                                               f"{dask.base.tokenize(gs, grid)}"),
                        shape, dtype=np.float32)
        for d, gs in days.items()
    ]
    arr = da.stack(blocks, axis=1)  # (var, time, lat, lon)
    if days_per_chunk > 1:
        arr = arr.rechunk({1: days_per_chunk})
    time = pd.DatetimeIndex(list(days)).as_unit("ns")
    ds = xr.Dataset(coords={"time": ("time", time), **grid.coords()})
    ds["time"].attrs.update(standard_name="time", long_name="day (UTC), hours 00-23 of the file names")
    for i, name in enumerate(DAILY):
        ds[name] = (("time", "lat", "lon"), arr[i], cf_attrs(name))
    ds["precip"].attrs["cell_methods"] = "time: sum (24 hourly totals, UTC day)"
    for name in ("tair", "swdown", "qair", "vpd"):
        ds[name].attrs["cell_methods"] = "time: mean (hourly values, UTC day)"
    ds["tmin"].attrs["cell_methods"] = "time: minimum (hourly values, UTC day)"
    ds.attrs.update(
        source=f"NLDAS-2 primary forcing {PRODUCT} version {'2.0 (NetCDF)' if version == '020' else '002 (GRIB)'}",
        nldas_version=version,
        synthetic=0,
        day_boundary="UTC day: files stamped 00:00-23:00 UTC",
        history="vegviz.data.nldas: hourly files cropped to the grid by coordinates, aggregated to UTC days",
        references="Xia et al. 2012, doi:10.1029/2011JD016048; FAO-56 (Allen et al. 1998) eq. 11",
    )
    return ds
