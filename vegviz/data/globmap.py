"""GLOBMAP LAI V3 composites on the study grid.

GLOBMAP LAI V3 (Liu, Liu & Chen 2012, JGR Biogeosciences, doi:10.1029/2012JG002084; V3 on
Zenodo, record 4700264 and its later versions) is a global 8 km LAI series on a geographic
grid: AVHRR-based 1981-2000 (half-monthly composites) and MODIS-based from 2001 (8-day
composites). Files are named ``GlobMapLAIV3.A{YYYY}{DOY}.Global.hdf`` (HDF4) or
``GlobMapLAIV3.A{YYYY}{DOY}.Global.LAI.tif`` (GeoTIFF); both formats are also accepted with
and without the ``.LAI`` before the extension (``...Global.LAI.hdf``, ``...Global.tif``) and
without the ``.Global`` region (:data:`NAME`). A name with another region in its place (a
tile such as ``h09v05``) is refused: vegviz reads the global files, whose grid it knows.

What this reader assumes, and where it comes from (see docs/real_data.md):

* Composite date = 1 January of YYYY + (DOY - 1), the first day named in the file name.
* Values are stored as integers scaled by 100: LAI = raw x 0.01 m2 m-2. The file's own
  ``scale_factor``/``add_offset`` (HDF4 SDS attributes, GDAL scale/offset metadata in a
  GeoTIFF) win when present; integer data without them get 0.01, float data 1.
* Valid raw values 0..1000 (LAI 0-10) unless the file has ``valid_range``; the file's
  ``_FillValue`` (HDF4) or ``GDAL_NODATA`` (GeoTIFF) and anything outside the valid
  range become NaN.
* Georeferencing from the file itself (GeoTIFF tags; HDF-EOS2 grid metadata) and otherwise
  the documented global grid :data:`GLOBMAP_GRID`: 4950 columns x 2090 rows of
  360/4950 = 0.072727 degree, west edge -180, north edge 89.2 N (so 152 degrees of
  latitude, down to 62.8 S). The grid size and resolution follow from "8 km"/0.0727 degree;
  the north edge is taken from a third-party reader and is NOT confirmed by the producer:
  check one file against a known feature before trusting a HDF4 file without metadata.

Regridding is the foundation's exact area-weighted mean (:func:`vegviz.grid.regrid_mean`)
from a window of each file that covers the grid plus a margin (the global raster is never
read whole). ``lai`` keeps composites on their dates on a daily axis, NaN between.
``lai_daily`` (optional) interpolates linearly in time between consecutive valid composites
of each cell, only where they are at most ``max_gap`` days apart, and never extrapolates.
Both are in memory, or with ``time_chunk`` lazy (dask, a chunk of days reads its own
composites when computed) for periods larger than memory, as ``vegviz prepare`` uses them.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .. import grid as _grid
from ..contract import cf_attrs
from .landcover import Georef, RasterError, read_geotiff, read_hdf4_window

SDS_NAME = "LAI"
SCALE = 0.01
VALID_RAW = (0, 1000)
MODIS_FROM = 2001  # first year of the 8-day MODIS-based series
MODIS_STEP = 8
#: the documented global grid, used when a file carries no georeferencing of its own
GLOBMAP_GRID = Georef(west=-180.0, north=89.2, dx=360.0 / 4950, dy=360.0 / 4950, nrows=2090, ncols=4950)
#: ``GlobMapLAIV3.A{YYYY}{DOY}[.Global][.LAI].(hdf|tif|tiff)``: the two formats with and without
#: the ``.LAI`` before the extension, with and without the ``.Global`` region
NAME = re.compile(r"^GlobMapLAIV3\.A(\d{4})(\d{3})(?:\.Global)?(?:\.LAI)?\.(hdf|tif|tiff)$", re.IGNORECASE)
#: a name in the same pattern with another region (a tile, a continent): not a file this reader places
OTHER_REGION = re.compile(r"^GlobMapLAIV3\.A(\d{4})(\d{3})\.(?!Global\.|LAI\.)([^.]+)(?:\.LAI)?\.(hdf|tif|tiff)$",
                          re.IGNORECASE)
NAMES_HELP = ("GlobMapLAIV3.A{YYYY}{DOY}.Global.hdf or .Global.LAI.hdf (HDF4), "
              "GlobMapLAIV3.A{YYYY}{DOY}.Global.LAI.tif or .Global.tif (GeoTIFF)")
DEFAULT_MAX_GAP = 20
#: HDF4 (pyhdf) is not thread-safe: lazily read composites may be read by several dask threads at once
_HDF4_LOCK = threading.Lock()


class GlobmapError(ValueError):
    """A GLOBMAP file or file set cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class Composite:
    path: Path
    date: pd.Timestamp
    sensor: str  # "AVHRR" (half-monthly) or "MODIS" (8-day)


def parse_name(path) -> Composite:
    """Composite date and sensor era from a GLOBMAP file name; GlobmapError when it is not one."""
    path = Path(path)
    m = NAME.match(path.name)
    other = OTHER_REGION.match(path.name)
    if other:
        raise GlobmapError(f"{path}: region {other.group(3)!r} in place of 'Global'. vegviz reads the global GLOBMAP "
                           f"LAI V3 files ({NAMES_HELP}), whose grid it knows. Fix: use the global files")
    if not m:
        raise GlobmapError(f"{path}: not a GLOBMAP LAI V3 file name (expected {NAMES_HELP}). "
                           "Fix: keep the original file names")
    year, doy = int(m.group(1)), int(m.group(2))
    ndays = 366 if pd.Timestamp(year, 12, 31).day_of_year == 366 else 365
    if not 1981 <= year <= 2100 or not 1 <= doy <= ndays:
        raise GlobmapError(f"{path}: year {year}, day of year {doy} is not a valid date "
                           f"(GLOBMAP starts in 1981; {year} has {ndays} days). Fix: check the file name")
    sensor = "MODIS" if year >= MODIS_FROM else "AVHRR"
    if sensor == "MODIS" and (doy - 1) % MODIS_STEP:
        raise GlobmapError(f"{path}: day of year {doy} is not on the 8-day MODIS-era cadence (1, 9, 17, ...). "
                           "Fix: check the file name; GLOBMAP from 2001 is 8-day")
    return Composite(path, pd.Timestamp(year, 1, 1) + pd.Timedelta(days=doy - 1), sensor)


def find_files(files_or_dir) -> list[Path]:
    """GLOBMAP files in a directory (recursively) or from a list of paths."""
    if isinstance(files_or_dir, (str, Path)):
        files_or_dir = Path(files_or_dir).expanduser()
    if isinstance(files_or_dir, (str, Path)) and Path(files_or_dir).is_dir():
        root = Path(files_or_dir)
        candidates = sorted(root.rglob("GlobMapLAIV3.A*"))
        for p in candidates:
            if OTHER_REGION.match(p.name):
                parse_name(p)  # raises, naming the region: never skipped silently
        files = [p for p in candidates if NAME.match(p.name)]
        if not files:
            packed = sorted(p.name for p in root.rglob("*") if p.suffix.lower() in (".zip", ".rar", ".tar", ".gz"))
            raise GlobmapError(f"{root}: holds no GlobMapLAIV3.A*.Global.hdf / .Global.LAI.hdf / .Global.LAI.tif "
                               "files"
                               + (f" (archives found: {packed[:3]}; unpack them first, see docs/real_data.md)"
                                  if packed else "") + ". Fix: point to the unpacked GLOBMAP files")
        return files
    if isinstance(files_or_dir, (str, Path)):
        p = Path(files_or_dir)
        if not p.exists():
            raise GlobmapError(f"{p}: no such file or directory. Fix: check the path")
        return [p]
    return [Path(p) for p in files_or_dir]


def composites(files) -> list[Composite]:
    """Parse, sort and check a set of files: unique dates, each era on its cadence.

    MODIS era (2001-): every DOY on 1 + 8k (checked by :func:`parse_name`). AVHRR era
    (-2000): half-monthly, so at most one composite per half month (days 1-15, 16-end)
    and consecutive composites at least 13 days apart; missing composites are allowed.
    """
    comps = sorted((parse_name(p) for p in files), key=lambda c: c.date)
    if not comps:
        raise GlobmapError("no GLOBMAP files given. Fix: pass a directory or a list of files")
    for a, b in zip(comps, comps[1:]):
        if a.date == b.date:
            raise GlobmapError(f"{a.path} and {b.path}: two files for the same composite {a.date:%Y-%m-%d}. "
                               "Fix: keep one file per date (one format, HDF or GeoTIFF, and one name)")
        if a.sensor == b.sensor == "AVHRR":
            half = lambda d: (d.year, d.month, d.day > 15)  # noqa: E731
            if half(a.date) == half(b.date) or (b.date - a.date).days < 13:
                raise GlobmapError(
                    f"{a.path} and {b.path}: composites {a.date:%Y-%m-%d} and {b.date:%Y-%m-%d} are "
                    f"{(b.date - a.date).days} days apart, impossible for the half-monthly AVHRR era (before "
                    f"{MODIS_FROM}). Fix: check the file names (mixed products or renamed files?)")
    return comps


def _decode(raw: xr.DataArray, *, scale, offset, fill, valid, path) -> xr.DataArray:
    x = raw.values
    integer = np.issubdtype(x.dtype, np.integer)
    if scale is None:
        scale = SCALE if integer else 1.0
    offset = 0.0 if offset is None else float(offset)
    bad = np.zeros(x.shape, bool)
    if fill is not None:
        bad |= x == np.asarray(fill).astype(x.dtype) if integer else np.isclose(x, float(fill))
    if valid is None:  # float files: only negatives are invalid, too-large values are an error later
        valid = VALID_RAW if integer else (0.0, np.inf)
    bad |= (x < valid[0]) | (x > valid[1])
    if not integer:
        bad |= ~np.isfinite(x)
    out = np.where(bad, np.nan, x.astype("float64") * float(scale) + offset)
    return raw.copy(data=out)


def read_composite(path, grid: _grid.Grid = _grid.UCRB, *, margin: int = 2) -> xr.DataArray:
    """One GLOBMAP file as LAI (m2 m-2, NaN = fill) on its native 0.0727 degree window around ``grid``."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".hdf":
            with _HDF4_LOCK:  # pyhdf is not thread-safe (lazily read composites: dask threads)
                raw, info = read_hdf4_window(path, SDS_NAME, grid, margin=margin, georef=GLOBMAP_GRID)
            a = info["attrs"]
            vr = a.get("valid_range")
            raw_vals = dict(scale=a.get("scale_factor"), offset=a.get("add_offset"), fill=a.get("_FillValue"),
                            valid=tuple(vr) if vr is not None else None)
        else:
            raw, info = read_geotiff(path, grid, margin=margin, georef=GLOBMAP_GRID)
            raw_vals = dict(scale=info["scale"], offset=info["offset"], fill=info["nodata"], valid=None)
    except RasterError as e:
        raise GlobmapError(str(e)) from e
    ref = info["georef"]
    if abs(ref.dx - GLOBMAP_GRID.dx) > 1e-3 or abs(ref.dy - GLOBMAP_GRID.dy) > 1e-3:
        raise GlobmapError(f"{path}: pixel size {ref.dx:.5f} x {ref.dy:.5f} degrees is not GLOBMAP's 8 km "
                           f"({GLOBMAP_GRID.dx:.5f} degrees). Fix: use the original GLOBMAP V3 files")
    lai = _decode(raw, path=path, **raw_vals)
    top = float(np.nanmax(lai.values)) if np.isfinite(lai.values).any() else 0.0
    if top > 10.0:  # e.g. a scale_factor meant as a divisor, or an unscaled float export
        raise GlobmapError(f"{path}: decoded LAI reaches {top:.4g} m2 m-2 (plausible: 0-10) with scale "
                           f"{raw_vals['scale']} and offset {raw_vals['offset']}. Fix: check the file's scale "
                           "attributes; GLOBMAP stores LAI x 100 as integers")
    return lai.rename("lai").assign_attrs(cf_attrs("lai"), source=path.name, georef_from=info["georef_from"])


def _daily_axis(comps, start, end) -> pd.DatetimeIndex:
    start = comps[0].date if start is None else pd.Timestamp(start).normalize()
    end = comps[-1].date if end is None else pd.Timestamp(end).normalize()
    if end < start:
        raise GlobmapError(f"end {end:%Y-%m-%d} is before start {start:%Y-%m-%d}. Fix: swap them")
    return pd.date_range(start, end, freq="D")


def interpolate_daily(lai: xr.DataArray, max_gap: int = DEFAULT_MAX_GAP) -> xr.DataArray:
    """Linear-in-time interpolation of composite LAI to every day, per cell.

    Between two consecutive valid composites of a cell that are at most ``max_gap`` days
    apart; NaN across longer gaps and before the first / after the last valid composite.
    Composite days keep their values.
    """
    t = pd.DatetimeIndex(lai["time"].values)
    day = ((t - t[0]) / pd.Timedelta(days=1)).astype(int).to_numpy()
    return lai.copy(data=_interpolate(np.asarray(lai.values), day, max_gap))


#: float64 values per temporary array of :func:`_interpolate` (a block of days x all cells)
_INTERPOLATE_ELEMENTS = 1 << 21


def _interpolate(x: np.ndarray, day: np.ndarray, max_gap: int, keep: slice = slice(None)) -> np.ndarray:
    """:func:`interpolate_daily` on arrays: ``x`` (days, lat, lon) NaN between composites, ``day`` their day
    numbers; returns float32 values of the days ``keep``.

    Only the days holding a composite are kept (as float64), and the days are interpolated in
    blocks of at most :data:`_INTERPOLATE_ELEMENTS` values, so the temporaries stay small.
    A day's value depends only on the composites within ``max_gap`` days of it: a window of
    the record that covers them gives the values of the whole record exactly.
    """
    have = np.array([np.isfinite(row).any() for row in x], dtype=bool)
    k = np.flatnonzero(have)
    rows = np.arange(x.shape[0])[keep]
    out = np.full((rows.size,) + x.shape[1:], np.nan, dtype="float32")
    if k.size == 0:
        return out
    cd, cx = day[k], x[k].astype("float64")  # composite days and values (nc, ny, nx)
    valid = np.isfinite(cx)
    # Forward / backward fill of (value, day) over the composites, per cell.
    nc = cd.size
    prev_v, prev_d = cx.copy(), np.where(valid, cd[:, None, None], -10**9).astype("float64")
    next_v, next_d = cx.copy(), np.where(valid, cd[:, None, None], 10**9).astype("float64")
    for i in range(1, nc):
        m = ~valid[i]
        prev_v[i][m], prev_d[i][m] = prev_v[i - 1][m], prev_d[i - 1][m]
    for i in range(nc - 2, -1, -1):
        m = ~valid[i]
        next_v[i][m], next_d[i][m] = next_v[i + 1][m], next_d[i + 1][m]
    step = max(1, _INTERPOLATE_ELEMENTS // max(1, int(np.prod(x.shape[1:]))))
    for lo in range(0, rows.size, step):  # blocks of days keep memory bounded
        d = day[rows[lo:lo + step]]
        ip = np.searchsorted(cd, d, side="right") - 1  # last composite <= day
        inx = np.searchsorted(cd, d, side="left")  # first composite >= day
        ipc, inc = np.clip(ip, 0, nc - 1), np.clip(inx, 0, nc - 1)
        pv, pd_ = prev_v[ipc], prev_d[ipc]
        nv, nd = next_v[inc], next_d[inc]
        pd_[ip < 0], nd[inx >= nc] = -10**9, 10**9
        dd = d[:, None, None].astype("float64")
        span = nd - pd_
        ok = (pd_ > -10**8) & (nd < 10**8) & (span <= max_gap)
        with np.errstate(invalid="ignore", divide="ignore"):
            w = np.where(span > 0, (dd - pd_) / np.where(span > 0, span, 1), 0.0)
            val = np.where(span > 0, pv + w * (nv - pv), pv)
        out[lo:lo + step] = np.where(ok, val, np.nan)
    return out


def _on_grid(c: Composite, grid: _grid.Grid, margin: int) -> tuple[np.ndarray, str]:
    """One composite regridded to ``grid`` (float32 lat x lon) and where its georeference came from."""
    native = read_composite(c.path, grid, margin=margin)
    try:
        values = _grid.regrid_mean(native, grid).values
    except ValueError as e:
        raise GlobmapError(f"{c.path}: {e}. Fix: use files that cover the study area") from e
    return values.astype("float32"), native.attrs["georef_from"]


def _composite_days(comps, time: pd.DatetimeIndex, grid: _grid.Grid, margin: int) -> tuple[np.ndarray, set]:
    """(days of ``time``, lat, lon) float32: the composites dated in ``time`` on their day, NaN on the others;
    and where their georeferences came from. The files are read one at a time."""
    data = np.full((time.size,) + grid.shape, np.nan, dtype="float32")
    georef_from = set()
    for c in comps:
        if time[0] <= c.date <= time[-1]:
            data[time.get_loc(c.date)], g = _on_grid(c, grid, margin)
            georef_from.add(g)
    return data, georef_from


def _chunk(comps, time: pd.DatetimeIndex, grid: _grid.Grid, margin: int, daily: bool, max_gap: int,
           a: int, b: int) -> tuple[np.ndarray, np.ndarray | None]:
    """``lai`` (and ``lai_daily`` when ``daily``) of days ``a:b`` of ``time``: the lazy path's task.

    Reads the composites of those days and, for ``lai_daily``, those of the ``max_gap`` days on
    either side (inside ``time``), which are all that the interpolation of days ``a:b`` depends on.
    """
    if not daily:
        return _composite_days(comps, time[a:b], grid, margin)[0], None
    w0, w1 = max(0, a - max_gap), min(time.size, b + max_gap)
    window, _ = _composite_days(comps, time[w0:w1], grid, margin)
    day = np.arange(w0, w1)
    return window[a - w0:b - w0].copy(), _interpolate(window, day, max_gap, slice(a - w0, b - w0))


def _lazy(comps, time: pd.DatetimeIndex, grid: _grid.Grid, margin: int, daily: bool, max_gap: int,
          time_chunk: int) -> tuple:
    """Dask arrays of ``lai`` (and ``lai_daily``, else None) in chunks of ``time_chunk`` days by the whole grid."""
    import dask
    import dask.array as dsa

    token = dask.base.tokenize([(str(c.path), c.date) for c in comps], time, grid, margin, daily, max_gap,
                               time_chunk)
    lai, lai_daily = [], []
    for a in range(0, time.size, time_chunk):
        b = min(a + time_chunk, time.size)
        w0, w1 = (max(0, a - max_gap), min(time.size, b + max_gap)) if daily else (a, b)
        inside = [c for c in comps if time[w0] <= c.date <= time[w1 - 1]]  # the composites the chunk reads
        task = dask.delayed(_chunk, pure=True, nout=2)(inside, time, grid, margin, daily, max_gap, a, b,
                                                        dask_key_name=f"globmap-lai-{token}-{a}")
        shape = (b - a,) + grid.shape
        lai.append(dsa.from_delayed(task[0], shape, dtype=np.float32))
        if daily:
            lai_daily.append(dsa.from_delayed(task[1], shape, dtype=np.float32))
    return dsa.concatenate(lai), (dsa.concatenate(lai_daily) if daily else None)


def globmap_lai(files_or_dir, grid: _grid.Grid = _grid.UCRB, start=None, end=None, *, daily: bool = False,
                max_gap: int = DEFAULT_MAX_GAP, margin: int = 2, time_chunk: int | None = None) -> xr.Dataset:
    """GLOBMAP LAI V3 on ``grid`` with a daily time axis: ``lai`` on composite dates, NaN between.

    ``files_or_dir``: a directory (searched recursively) or a list of GLOBMAP files, HDF4 and
    GeoTIFF mixed freely. ``start``/``end`` (inclusive) default to the first and last
    composite; composites outside are skipped (not read). ``daily=True`` adds ``lai_daily``
    (see :func:`interpolate_daily`). Each file is read as a window around the grid and
    regridded by exact area-weighted mean, one at a time.

    By default the files are read now and the arrays are in memory: (days x cells) float32
    per variable, which grows with the period. ``time_chunk=N`` gives dask-backed arrays in
    chunks of N days by the whole grid instead, read when computed (any scheduler,
    dask.distributed included): only the file names are checked here, a chunk reads its own
    composites (``lai_daily``: also those of the ``max_gap`` days on either side) and its
    values are those of the in-memory arrays, so memory is set by one chunk, not by the
    period. The dataset attribute ``globmap_georeference`` (which the files' contents tell)
    is then left out.
    """
    comps = composites(find_files(files_or_dir))
    time = _daily_axis(comps, start, end)
    comps = [c for c in comps if time[0] <= c.date <= time[-1]]
    if not comps:
        raise GlobmapError(f"no GLOBMAP composite falls in {time[0]:%Y-%m-%d}..{time[-1]:%Y-%m-%d}. "
                           "Fix: widen start/end or add the files for that period")
    if time_chunk is not None and int(time_chunk) < 1:
        raise ValueError(f"time_chunk must be a positive number of days or None, got {time_chunk!r}")
    georef_from = None
    if time_chunk is None:
        data, georef_from = _composite_days(comps, time, grid, margin)
        daily_data = _interpolate(data, np.arange(time.size), max_gap) if daily else None
    else:
        data, daily_data = _lazy(comps, time, grid, margin, daily, max_gap, int(time_chunk))
    sensors = sorted({c.sensor for c in comps})
    cadence = {"AVHRR": "half-monthly (AVHRR-based, before 2001)", "MODIS": "8-day (MODIS-based, from 2001)"}
    ds = grid.template().assign_coords(time=("time", time, {"long_name": "day"}))
    ds["lai"] = xr.DataArray(data, dims=("time", "lat", "lon"), coords=ds.coords).assign_attrs(
        cf_attrs("lai"),
        comment="GLOBMAP LAI V3 composites on their first day (date in the file name); NaN on other days",
        composite_cadence="; ".join(cadence[s] for s in sensors),
        n_composites=len(comps),
        regridding="exact area-weighted mean of the 0.0727 degree pixels (vegviz.grid.regrid_mean)",
    )
    if daily:
        ds["lai_daily"] = xr.DataArray(daily_data, dims=("time", "lat", "lon"), coords=ds.coords).assign_attrs(
            {**ds["lai"].attrs, **cf_attrs("lai_daily")},
            comment=f"linear in time between consecutive valid composites of each cell at most {max_gap} days "
                    "apart; NaN across longer gaps and outside the first/last composite",
        )
    ds.attrs.update(
        source=f"GLOBMAP LAI V3 (Liu, Liu & Chen 2012, doi:10.1029/2012JG002084), {len(comps)} composites "
               f"{comps[0].date:%Y-%m-%d}..{comps[-1].date:%Y-%m-%d}",
        synthetic=0,
        grid=grid.name,
    )
    if georef_from is not None:
        ds.attrs["globmap_georeference"] = "; ".join(sorted("from the files' metadata" if g == "file" else
                                                            "documented global grid GLOBMAP_GRID (files carry none)"
                                                            for g in georef_from))
    return ds
