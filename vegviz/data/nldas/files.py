"""NLDAS-2 hourly forcing files: names, versions, and reading one file onto a grid.

Two formats of the same product (NLDAS_FORA0125_H, "File A", Xia et al. 2012,
doi:10.1029/2011JD016048) are in use:

* version 002, WMO GRIB-1 (``NLDAS_FORA0125_H.A{YYYYMMDD}.{HHMM}.002.grb``), NCEP parameter
  table 130, fields told apart by their PDS parameter number (GES DISC GRIBTAB of
  NLDAS_FORA0125_H.002);
* version 2.0, NetCDF-4 (``NLDAS_FORA0125_H.A{YYYYMMDD}.{HHMM}.020.nc``), one variable per
  field (``Tair``, ``Qair``, ...) on dims (time, lat, lon), fill value -9999.

Both are read into one internal hourly layout: the 2.0 variable names and units
(:data:`FIELDS`), float32, NaN where the file has no data, cropped to the study grid by
coordinates. A file's version comes from its name and is checked against its content (GRIB
or HDF5 magic bytes); any inconsistency is an :class:`NldasError` naming the file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ...grid import NLDAS_RES, Grid, on_nldas_lattice

PRODUCT = "NLDAS_FORA0125_H"
VERSIONS = {"002": "grb", "020": "nc"}  # file-name version -> extension
NAME_RE = re.compile(r"^NLDAS_FORA0125_H\.A(?P<date>\d{8})\.(?P<hhmm>\d{4})\.(?P<ver>\d{3})\.(?P<ext>grb|nc)$")


class NldasError(ValueError):
    """An NLDAS-2 input problem; the message names the file (or day) and the fix."""


@dataclass(frozen=True)
class Field:
    name: str  # NetCDF 2.0 variable name, used internally for both versions
    units: str
    grib_param: int  # PDS octet 9 (indicatorOfParameter), NCEP table 130
    grib_level: tuple[str, int]  # (typeOfLevel, level) in the GRIB file
    long_name: str
    accumulated: bool = False


#: The fields of an hourly File A. Units are those of the 2.0 files (equal to GRIB's).
FIELDS = {
    f.name: f
    for f in [
        Field("Tair", "K", 11, ("heightAboveGround", 2), "2-m above ground temperature"),
        Field("Qair", "kg kg-1", 51, ("heightAboveGround", 2), "2-m above ground specific humidity"),
        Field("PSurf", "Pa", 1, ("surface", 0), "surface pressure"),
        Field("Wind_E", "m s-1", 33, ("heightAboveGround", 10), "U wind component at 10 m above ground"),
        Field("Wind_N", "m s-1", 34, ("heightAboveGround", 10), "V wind component at 10 m above ground"),
        Field("LWdown", "W m-2", 205, ("surface", 0), "surface downward longwave radiation"),
        Field("CRainf_frac", "1", 153, ("surface", 0), "fraction of total precipitation that is convective",
              accumulated=True),
        Field("CAPE", "J kg-1", 157, ("pressureFromGroundLayer", 180), "convective available potential energy"),
        Field("PotEvap", "kg m-2", 228, ("surface", 0), "potential evaporation (hourly total)", accumulated=True),
        Field("Rainf", "kg m-2", 61, ("surface", 0), "total precipitation (hourly total)", accumulated=True),
        Field("SWdown", "W m-2", 204, ("surface", 0), "surface downward shortwave radiation"),
    ]
}
#: what the daily aggregation needs
REQUIRED = ("Tair", "Qair", "PSurf", "SWdown", "Rainf")
#: unit spellings accepted in 2.0 files, per canonical unit
UNIT_ALIASES = {
    "K": {"K", "k", "kelvin"},
    "kg kg-1": {"kg kg-1", "kg/kg", "kg kg**-1", "1"},
    "Pa": {"Pa", "pa"},
    "W m-2": {"W m-2", "W/m2", "W m**-2", "W/m^2"},
    "kg m-2": {"kg m-2", "kg/m2", "kg m**-2", "kg/m^2", "mm"},
    "m s-1": {"m s-1", "m/s"},
    "J kg-1": {"J kg-1", "J/kg"},
    "1": {"1", "-", "fraction", ""},
}
from xarray.backends.locks import HDF5_LOCK as _LOCK  # noqa: E402

FILL = -9999.0  # 2.0 fill value; GRIB 002 marks missing points in a bitmap (decoded as 9999)


@dataclass(frozen=True)
class Granule:
    """One hourly file, known from its name."""

    path: Path
    time: pd.Timestamp  # the file-name stamp, UTC
    version: str  # "002" (GRIB) or "020" (NetCDF 2.0)

    @property
    def day(self) -> pd.Timestamp:
        return self.time.normalize()


def granule_name(time, version: str = "020") -> str:
    """The file name of the hourly granule stamped ``time`` (UTC) in ``version``."""
    if version not in VERSIONS:
        raise NldasError(f"unknown NLDAS-2 version {version!r}; use '020' (NetCDF 2.0) or '002' (GRIB)")
    t = pd.Timestamp(time)
    return f"{PRODUCT}.A{t:%Y%m%d}.{t:%H%M}.{version}.{VERSIONS[version]}"


def parse_name(path) -> Granule:
    """The Granule of a file name; NldasError for anything that is not an hourly File A name."""
    path = Path(path)
    m = NAME_RE.match(path.name)
    if not m:
        raise NldasError(f"{path}: not an NLDAS-2 hourly forcing file name "
                         "(expected NLDAS_FORA0125_H.AYYYYMMDD.HHMM.020.nc or .002.grb)")
    ver, ext = m["ver"], m["ext"]
    if VERSIONS.get(ver) != ext:
        raise NldasError(f"{path}: version {ver} does not go with extension .{ext} "
                         "(version 020 is NetCDF .nc, version 002 is GRIB .grb)")
    try:
        t = pd.Timestamp(f"{m['date']}T{m['hhmm'][:2]}:{m['hhmm'][2:]}")
    except ValueError:
        raise NldasError(f"{path}: the date/time {m['date']}.{m['hhmm']} in the name is not valid") from None
    if t.minute != 0:
        raise NldasError(f"{path}: hourly files are stamped on the hour, this one at {t:%H:%M}")
    return Granule(path, t, ver)


# --------------------------------------------------------------------------- cropping

def _window_index(coord: np.ndarray, want: np.ndarray, what: str, path: Path) -> np.ndarray:
    """Positions of ``want`` (ascending target centres) in the file's ``coord``."""
    coord = np.asarray(coord, dtype=float)
    if coord.ndim != 1 or coord.size < 2:
        raise NldasError(f"{path}: {what} is not a 1-D coordinate")
    if not on_nldas_lattice(coord, atol=2e-3):
        raise NldasError(f"{path}: {what} values are not on the NLDAS-2 1/8-degree lattice (k/8 + 1/16); "
                         "this is not an NLDAS-2 0.125-degree file, or it was regridded")
    # round to the lattice (GRIB stores 3 decimals: 25.063 for 25.0625)
    k_file = np.round((coord - NLDAS_RES / 2) / NLDAS_RES).astype(int)
    k_want = np.round((want - NLDAS_RES / 2) / NLDAS_RES).astype(int)
    lookup = {k: i for i, k in enumerate(k_file)}
    missing = [w for w, k in zip(want, k_want) if k not in lookup]
    if missing:
        raise NldasError(f"{path}: does not cover the study grid: {what} {coord.min():.4f}..{coord.max():.4f}, "
                         f"needs {want[0]:.4f}..{want[-1]:.4f} ({len(missing)} rows/columns missing). "
                         "Fix: download the full CONUS files or a subset that contains the grid")
    return np.array([lookup[k] for k in k_want])


def _take(arr: np.ndarray, ilat: np.ndarray, ilon: np.ndarray) -> np.ndarray:
    return arr[np.ix_(ilat, ilon)]


# --------------------------------------------------------------------------- GRIB 002

def _check_magic(path: Path, version: str) -> None:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise NldasError(f"{path}: cannot be read ({e})") from None
    if version == "002" and not head.startswith(b"GRIB"):
        raise NldasError(f"{path}: the name says version 002 (GRIB) but the content is not GRIB "
                         f"(starts with {head[:4]!r}); the file is corrupt or misnamed. Fix: download it again")
    if version == "020" and not (head.startswith(b"\x89HDF") or head.startswith(b"CDF")):
        raise NldasError(f"{path}: the name says version 2.0 (NetCDF) but the content is not NetCDF "
                         f"(starts with {head[:4]!r}); the file is corrupt or misnamed. Fix: download it again")


def _read_grib(g: Granule, grid: Grid, names) -> dict[str, np.ndarray]:
    # pygrib, not the eccodes package: eccodes' wheel loads its bundled libpng/libaec/openjpeg
    # with RTLD_GLOBAL (findlibs), which shadows other extensions' copies and corrupted the
    # heap of a process that also wrote a PNG with matplotlib (double free at exit).
    # pygrib's wheel keeps its ecCodes and dependencies private.
    import pygrib

    by_key = {(FIELDS[n].grib_param, *FIELDS[n].grib_level): n for n in names}
    out: dict[str, np.ndarray] = {}
    index = None
    try:
        grbs = pygrib.open(str(g.path))
    except Exception as e:
        raise NldasError(f"{g.path}: not a readable GRIB file ({type(e).__name__}: {e}). "
                         "Fix: download the file again") from None
    try:
        while True:
            try:
                msg = next(grbs)
            except StopIteration:
                break
            except Exception as e:  # truncated or damaged message
                raise NldasError(f"{g.path}: corrupt or truncated GRIB ({type(e).__name__}: {e}). "
                                 "Fix: download the file again") from None
            try:
                key = (msg["indicatorOfParameter"], msg["typeOfLevel"], msg["level"])
                name = by_key.get(key)
                if name is None or name in out:
                    continue
                _check_grib_time(g, msg, FIELDS[name])
                if index is None:
                    index = _grib_index(g, msg, grid)
                vals = np.ma.filled(np.ma.asarray(msg.values, dtype="float64"), np.nan)
                vals = vals.reshape(msg["Nj"], msg["Ni"])
                out[name] = _take(vals, *index).astype(np.float32)
            except (RuntimeError, KeyError, ValueError) as e:
                if isinstance(e, NldasError):
                    raise
                raise NldasError(f"{g.path}: corrupt GRIB message ({e}). Fix: download the file again") from None
    finally:
        grbs.close()
    missing = [n for n in names if n not in out]
    if missing:
        raise NldasError(f"{g.path}: GRIB file lacks {', '.join(missing)} "
                         f"(PDS parameters {[FIELDS[n].grib_param for n in missing]}); truncated or not a "
                         "File A (FORA) granule. Fix: download it again")
    return out


def _check_grib_time(g: Granule, msg, field: Field) -> None:
    """Instantaneous fields are valid at the stamp; accumulations cover the hour ending at it."""
    ref = pd.Timestamp(f"{msg['dataDate']}") + pd.Timedelta(hours=msg["dataTime"] // 100)
    end = ref + pd.Timedelta(hours=msg["P2"] if field.accumulated else 0)
    if end != g.time:
        raise NldasError(f"{g.path}: {field.name} is valid at {end:%Y-%m-%d %H:%M} UTC but the file name says "
                         f"{g.time:%Y-%m-%d %H:%M}; the file was renamed. Fix: use the original file names")


def _grib_index(g: Granule, msg, grid: Grid):
    get = msg.__getitem__
    if get("gridType") != "regular_ll":
        raise NldasError(f"{g.path}: GRIB grid is {get('gridType')}, not a regular lat/lon grid")
    ni, nj = get("Ni"), get("Nj")
    dlon, dlat = get("iDirectionIncrementInDegrees"), get("jDirectionIncrementInDegrees")
    lat0, lon0 = get("latitudeOfFirstGridPointInDegrees"), get("longitudeOfFirstGridPointInDegrees")
    if abs(dlat - NLDAS_RES) > 1e-3 or abs(dlon - NLDAS_RES) > 1e-3:
        raise NldasError(f"{g.path}: GRIB grid spacing is {dlat} x {dlon} degrees, not NLDAS-2's 0.125")
    sj = 1 if get("jScansPositively") else -1
    si = -1 if get("iScansNegatively") else 1
    if get("jPointsAreConsecutive"):
        raise NldasError(f"{g.path}: unsupported GRIB scanning mode (columns consecutive)")
    lat = lat0 + sj * dlat * np.arange(nj)
    lon = (lon0 + 180.0) % 360.0 - 180.0 + si * dlon * np.arange(ni)
    return (_window_index(lat, grid.lat, "latitude", g.path), _window_index(lon, grid.lon, "longitude", g.path))


# --------------------------------------------------------------------------- NetCDF 2.0

def _read_netcdf(g: Granule, grid: Grid, names) -> dict[str, np.ndarray]:
    import netCDF4

    try:
        nc = netCDF4.Dataset(g.path, "r")
    except OSError as e:
        raise NldasError(f"{g.path}: cannot be opened as NetCDF ({e}); corrupt or truncated. "
                         "Fix: download the file again") from None
    try:
        v = nc.variables
        for c in ("lat", "lon"):
            if c not in v:
                raise NldasError(f"{g.path}: has no {c!r} coordinate (variables: {', '.join(v)})")
        missing = [n for n in names if n not in v]
        if missing:
            raise NldasError(f"{g.path}: lacks variable(s) {', '.join(missing)} (has {', '.join(v)}). "
                             "Fix: download the complete File A (NLDAS_FORA0125_H) granule, not a variable subset")
        _check_nc_time(g, nc)
        ilat = _window_index(v["lat"][:], grid.lat, "lat", g.path)
        ilon = _window_index(v["lon"][:], grid.lon, "lon", g.path)
        out = {}
        for n in names:
            var = v[n]
            units = getattr(var, "units", None)
            if units not in UNIT_ALIASES[FIELDS[n].units]:
                raise NldasError(f"{g.path}: {n} has units {units!r}, expected {FIELDS[n].units!r}")
            dims = var.dimensions
            if dims[-2:] != ("lat", "lon") or len(dims) not in (2, 3):
                raise NldasError(f"{g.path}: {n} has dims {dims}, expected (time, lat, lon)")
            var.set_auto_mask(False)  # masks cost time; fill values become NaN below
            a0, a1 = ilat.min(), ilat.max() + 1  # read only the window's hyperslab
            b0, b1 = ilon.min(), ilon.max() + 1
            raw = var[0, a0:a1, b0:b1] if len(dims) == 3 else var[a0:a1, b0:b1]
            raw = np.asarray(raw, dtype=np.float32)
            fill = [getattr(var, a) for a in ("_FillValue", "missing_value") if hasattr(var, a)]
            for fv in fill or [FILL]:
                raw[raw == np.float32(fv)] = np.nan
            out[n] = _take(raw, ilat - a0, ilon - b0)
        return out
    except (RuntimeError, OSError, IndexError) as e:
        raise NldasError(f"{g.path}: unreadable NetCDF data ({type(e).__name__}: {e}); corrupt or truncated. "
                         "Fix: download the file again") from None
    finally:
        nc.close()


def _check_nc_time(g: Granule, nc) -> None:
    import netCDF4

    if "time" not in nc.variables:
        return
    tv = nc.variables["time"]
    try:
        t = netCDF4.num2date(tv[:], tv.units, getattr(tv, "calendar", "standard"),
                             only_use_cftime_datetimes=False, only_use_python_datetimes=True)
        t = pd.Timestamp(np.atleast_1d(t)[0])
    except Exception:  # noqa: BLE001 - an undecodable time is reported, not fatal: the name decides
        return
    if abs(t - g.time) > pd.Timedelta(hours=1):
        raise NldasError(f"{g.path}: its time variable says {t:%Y-%m-%d %H:%M} UTC but the name says "
                         f"{g.time:%Y-%m-%d %H:%M}; the file was renamed. Fix: use the original file names")


def read_granule(path, grid: Grid, names=REQUIRED) -> dict[str, np.ndarray]:
    """The fields ``names`` of one hourly file on ``grid`` as float32 (lat, lon) arrays, NaN = no data."""
    g = path if isinstance(path, Granule) else parse_name(path)
    names = tuple(names)
    unknown = [n for n in names if n not in FIELDS]
    if unknown:
        raise NldasError(f"unknown NLDAS-2 field(s) {unknown}; known: {', '.join(FIELDS)}")
    if not g.path.is_file():
        raise NldasError(f"{g.path}: no such file")
    _check_magic(g.path, g.version)
    # HDF5 (under netCDF4) is not thread-safe, and ecCodes' file handling need not be: one
    # file at a time per process, sharing xarray's lock so its own NetCDF reads serialise too.
    with _LOCK:
        return _read_grib(g, grid, names) if g.version == "002" else _read_netcdf(g, grid, names)


def open_hourly(path, grid: Grid, names=tuple(FIELDS)):
    """One hourly file as an xarray Dataset (time=1, lat, lon) in the internal layout (for inspection)."""
    import xarray as xr

    g = path if isinstance(path, Granule) else parse_name(path)
    data = read_granule(g, grid, names)
    ds = xr.Dataset(
        {n: (("time", "lat", "lon"), a[None], {"units": FIELDS[n].units, "long_name": FIELDS[n].long_name})
         for n, a in data.items()},
        coords={"time": [g.time.to_datetime64()], **grid.coords()},
        attrs={"source": f"{PRODUCT} version {g.version}", "file": g.path.name},
    )
    return ds
