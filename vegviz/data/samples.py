"""A small sample archive in the real file layouts, to try ``vegviz prepare`` without downloads.

:func:`write_sample_archive` writes, for a 12 x 12 cell window of the study grid in western
Colorado (:data:`SAMPLE_GRID`, 144 basin cells of woody savannas, savannas and grasslands):

* NLDAS-2 version 2.0 hourly NetCDF files (``NLDAS_FORA0125_H.A{YYYYMMDD}.{HHMM}.020.nc``,
  variables, units, fill value and dimensions as in the GES DISC files), covering the
  window plus two cells on every side, like a spatially subset download;
* GLOBMAP LAI V3 8-day GeoTIFF composites (``GlobMapLAIV3.A{YYYY}{DOY}.Global.LAI.tif``,
  int16 LAI x 100, GeoTIFF georeferencing tags on GLOBMAP's 0.0727 degree lattice, GDAL
  nodata), regional subsets of the global raster.

The values are NOT observations. Forcing starts from the real NLDAS-2 fields of one hour
(2017-10-24 15:00 UTC, cropped from a version 002 GRIB granule: ``files/nldas_sample_base.nc``)
and adds a seasonal and a daily cycle and showers; LAI is a seasonal cycle scaled by each
pixel's real MODIS land cover. They exist so that the whole real-data path (read, crop,
aggregate, regrid, validate, train) runs anywhere in a minute; the archive's README says so.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ..grid import Grid
from .nldas import FIELDS, granule_name

__all__ = ["SAMPLE_GRID", "SAMPLE_WINDOW", "hourly_values", "make_nc_files", "sample_lai", "write_latlon_tif",
           "write_globmap_tif", "write_nc_granule", "write_sample_archive"]

BASE_FILE = Path(__file__).parent / "files" / "nldas_sample_base.nc"
#: the study-grid window of the sample (inside the UCRB; 144 basin cells)
SAMPLE_GRID = Grid(38.5625, -108.4375, 12, 12, name="sample window (western Colorado)")
#: what the sample's NLDAS files cover: the sample grid plus two cells on every side
SAMPLE_WINDOW = Grid(SAMPLE_GRID.lat0 - 0.25, SAMPLE_GRID.lon0 - 0.25, SAMPLE_GRID.nlat + 4,
                     SAMPLE_GRID.nlon + 4, name="sample NLDAS window")
BASE_DAY_OF_YEAR = 297  # 2017-10-24, the base fields' day


@lru_cache(maxsize=1)
def base_fields() -> dict[str, np.ndarray]:
    """The real NLDAS-2 fields of 2017-10-24 15:00 UTC on :data:`SAMPLE_WINDOW`."""
    import xarray as xr

    with xr.open_dataset(BASE_FILE, engine="netcdf4") as ds:
        ds = ds.load()
    if not (np.allclose(ds["lat"], SAMPLE_WINDOW.lat) and np.allclose(ds["lon"], SAMPLE_WINDOW.lon)):
        raise ValueError(f"{BASE_FILE} is not on the sample window. Fix: reinstall vegviz")
    return {k: ds[k].values.astype(np.float32) for k in FIELDS}


def _seasonal(doy: float) -> float:
    """-1..1, warmest in late July."""
    return float(np.sin(2 * np.pi * (doy - 115) / 365.25))


def hourly_values(t: pd.Timestamp, day_index: int, window: Grid = SAMPLE_WINDOW,
                  base: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Plausible hourly File A fields at UTC time ``t``, built on the real base fields.

    Temperature: base + 12 K seasonal cycle (relative to the base day) + 6 K daily cycle
    (warmest 22 UTC, 15 h local); shortwave: a half sine between 13 and 01 UTC scaled by
    the season; showers in the afternoon of every third day.
    """
    base = base if base is not None else base_fields()
    t = pd.Timestamp(t)
    h, doy = t.hour, t.day_of_year
    season = 12.0 * (_seasonal(doy) - _seasonal(BASE_DAY_OF_YEAR))
    phase = np.cos(2 * np.pi * (h - 22) / 24)
    sun = max(0.0, np.sin(np.pi * ((h - 13) % 24) / 12)) if (h >= 13 or h < 1) else 0.0
    out = {k: v.copy() for k, v in base.items()}
    out["Tair"] = base["Tair"] + season + 6.0 * phase - 6.0 * np.cos(2 * np.pi * 7 / 24)
    out["Qair"] = base["Qair"] * (1.0 + 0.05 * phase) * np.exp(0.06 * season)  # moister when warmer
    out["PSurf"] = base["PSurf"] + 50.0 * np.sin(2 * np.pi * h / 12)
    out["SWdown"] = np.full_like(base["SWdown"], 950.0 * (0.75 + 0.25 * _seasonal(doy + 35)) * sun)
    out["LWdown"] = base["LWdown"] + 3.0 * season + 10.0 * phase
    rain = np.zeros_like(base["Tair"])
    if h in (20, 21, 22) and day_index % 3 == 0:
        ramp = np.linspace(0.0, 1.5, rain.size).reshape(rain.shape) - 0.3
        rain = np.clip(ramp, 0.0, None) * (1.0 + (day_index % 5) / 2)
    out["Rainf"] = rain.astype(np.float32)
    out["CRainf_frac"] = np.where(rain > 0, 0.4, 0.0).astype(np.float32)
    out["PotEvap"] = (0.3 * sun * (1.0 + 0.5 * _seasonal(doy)) + 0.01 * rain).astype(np.float32)
    return {k: np.asarray(v, np.float32) for k, v in out.items()}


def write_nc_granule(folder, t, values: dict[str, np.ndarray], window: Grid = SAMPLE_WINDOW, *,
                     name: str | None = None, units: dict | None = None, lat=None, lon=None) -> Path:
    """One version 2.0 hourly file of ``values`` on ``window`` (``name``/``units``/``lat``/``lon``
    replace what would be written, for tests of broken files)."""
    import netCDF4

    t = pd.Timestamp(t)
    path = Path(folder) / (name or granule_name(t, "020"))
    path.parent.mkdir(parents=True, exist_ok=True)
    lat = window.lat if lat is None else np.asarray(lat)
    lon = window.lon if lon is None else np.asarray(lon)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        # time of fixed length 1 and contiguous variables: with an unlimited time dimension
        # each variable's chunk index makes a 16 x 16 window file ~70 kB instead of ~15 kB
        nc.createDimension("time", 1)
        nc.createDimension("lat", lat.size)
        nc.createDimension("lon", lon.size)
        tv = nc.createVariable("time", "f8", ("time",))
        tv.setncatts({"units": f"hours since {t:%Y-%m-%d %H:%M:%S}", "calendar": "standard",
                      "standard_name": "time", "long_name": "time"})
        tv[:] = [0.0]
        for c, vals, sn, u in (("lat", lat, "latitude", "degrees_north"), ("lon", lon, "longitude", "degrees_east")):
            v = nc.createVariable(c, "f4", (c,))
            v.setncatts({"units": u, "standard_name": sn, "long_name": sn})
            v[:] = vals
        for k, a in values.items():
            f = FIELDS[k]
            v = nc.createVariable(k, "f4", ("time", "lat", "lon"), fill_value=np.float32(-9999.0),
                                  contiguous=True)
            v.setncatts({"units": (units or {}).get(k, f.units), "long_name": f.long_name,
                         "missing_value": np.float32(-9999.0), "cell_methods": "time: point"})
            v[0] = np.where(np.isnan(a), -9999.0, a)
        nc.setncatts({"Conventions": "CF-1.8", "title": "NLDAS Primary Forcing Data L4 Hourly 0.125 x 0.125 degree "
                      "V2.0 (vegviz SAMPLE: not observations, built on real fields of 2017-10-24 15 UTC)",
                      "institution": "NASA GSFC (layout); values: vegviz.data.samples",
                      "MissingValue": np.float32(-9999.0)})
    return path


def make_nc_files(folder, start="2017-10-23", days=2, window: Grid = SAMPLE_WINDOW, values=hourly_values) -> list[Path]:
    """``days`` x 24 hourly 2.0 files from ``start`` (UTC day) in ``folder``."""
    paths = []
    for d in range(days):
        for h in range(24):
            t = pd.Timestamp(start) + pd.Timedelta(days=d, hours=h)
            paths.append(write_nc_granule(folder, t, values(t, d, window), window))
    return paths


# ----------------------------------------------------------------------------- GLOBMAP LAI

#: peak-season LAI per IGBP class of the sample (others: 1.0)
PEAK_LAI = {1: 4.5, 2: 5.0, 3: 3.5, 4: 4.0, 5: 4.0, 6: 1.2, 7: 0.6, 8: 2.2, 9: 1.5, 10: 1.0, 12: 2.5, 14: 2.0}


def sample_lai(date, lat: np.ndarray, lon: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """A seasonal LAI (m2 m-2) per pixel of IGBP class ``codes`` (lat x lon): 0.25 in winter up
    to the class's peak in July-August."""
    doy = pd.Timestamp(date).day_of_year
    season = max(0.0, np.sin(np.pi * (doy - 100) / 200)) if 100 <= doy <= 300 else 0.0
    peak = np.vectorize(lambda c: PEAK_LAI.get(int(c), 1.0))(codes)
    texture = 0.1 * np.sin(lat[:, None] * 40.0) * np.cos(lon[None, :] * 35.0)
    return np.clip(0.25 + (peak - 0.25) * season + texture, 0.0, None)


def write_latlon_tif(path, raw: np.ndarray, *, west: float, north: float, res: float | None = None,
                      nodata: int | None = -1, tags: bool = True, model: int = 2, tile=None) -> Path:
    """A GeoTIFF of ``raw`` on a lat/lon lattice (GLOBMAP, MCD12C1 layouts): georeferencing tags (``model`` 2:
    geographic; ``tags=False`` leaves them out), GDAL nodata (``None``: none), zlib, optional tiles."""
    import tifffile

    from .globmap import GLOBMAP_GRID

    res = GLOBMAP_GRID.dx if res is None else res
    extra = []
    if tags:
        geokeys = (1, 1, 0, 3, 1024, 0, 1, model, 1025, 0, 1, 1, 2048, 0, 1, 4326)  # pixel is area, WGS 84
        extra = [(33550, "d", 3, (res, res, 0.0)), (33922, "d", 6, (0.0, 0.0, 0.0, west, north, 0.0)),
                 (34735, "H", len(geokeys), geokeys)]
    if nodata is not None:
        extra.append((42113, "s", 0, str(nodata)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, raw, compression="zlib", tile=tile, extratags=extra)
    return path


def write_globmap_tif(path, lai: np.ndarray, west: float, north: float, *, nodata: int = -1) -> Path:
    """A GLOBMAP-style GeoTIFF of ``lai`` (m2 m-2): int16 LAI x 100, NaN as ``nodata``."""
    raw = np.where(np.isfinite(lai), np.round(lai * 100), nodata).astype(np.int16)
    return write_latlon_tif(path, raw, west=west, north=north, nodata=nodata)


def _globmap_subset(grid: Grid, margin_deg: float = 0.3):
    """Rows/columns of GLOBMAP's global lattice covering ``grid`` plus a margin: (west, north, lat, lon)."""
    from .globmap import GLOBMAP_GRID as G

    w, e, s, n = grid.extent
    c0 = int(np.floor((w - margin_deg - G.west) / G.dx))
    c1 = int(np.ceil((e + margin_deg - G.west) / G.dx))
    r0 = int(np.floor((G.north - (n + margin_deg)) / G.dy))
    r1 = int(np.ceil((G.north - (s - margin_deg)) / G.dy))
    west, north = G.west + c0 * G.dx, G.north - r0 * G.dy
    lon = west + G.dx * (np.arange(c1 - c0) + 0.5)
    lat = north - G.dy * (np.arange(r1 - r0) + 0.5)
    return west, north, lat, lon


def _pixel_landcover(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """IGBP class of each (lat x lon) pixel: the committed 1/8-degree land cover, nearest cell."""
    from .static import load_static

    lc = load_static()["landcover"]
    return lc.sel(lat=lat, lon=lon, method="nearest").transpose("lat", "lon").values


# ----------------------------------------------------------------------------- the archive

README = """vegviz SAMPLE archive: NOT observations
=======================================
Written by vegviz.data.samples.write_sample_archive for {grid}, {start}..{end}.
nldas/    NLDAS-2 version 2.0 hourly files in the real layout; values built on the real
          NLDAS-2 fields of 2017-10-24 15:00 UTC plus made-up seasonal/daily cycles and showers.
globmap/  GLOBMAP LAI V3 8-day GeoTIFF composites in the real layout; values a made-up
          seasonal cycle scaled by the real MODIS land cover.
Use them to try `vegviz prepare`; do not draw scientific conclusions from them.
"""


def write_sample_archive(out_dir, start: str = "2003-04-01", days: int = 120, grid: Grid = SAMPLE_GRID) -> dict:
    """Write a sample NLDAS-2 + GLOBMAP archive for ``days`` days from ``start`` under ``out_dir``.

    Returns ``{"nldas": dir, "globmap": dir, "grid": grid, "start": ..., "end": ...}``. Takes
    a few seconds per simulated month (24 small NetCDF files per day). ``grid`` must lie
    inside :data:`SAMPLE_GRID` (the base fields cover its window only).
    """
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    inside = (grid.lat[0] >= SAMPLE_GRID.lat[0] - 1e-6 and grid.lat[-1] <= SAMPLE_GRID.lat[-1] + 1e-6
              and grid.lon[0] >= SAMPLE_GRID.lon[0] - 1e-6 and grid.lon[-1] <= SAMPLE_GRID.lon[-1] + 1e-6)
    if not inside:
        raise ValueError(f"the sample covers {SAMPLE_GRID.name} only (lat {SAMPLE_GRID.lat[0]}..{SAMPLE_GRID.lat[-1]}, "
                         f"lon {SAMPLE_GRID.lon[0]}..{SAMPLE_GRID.lon[-1]}). Fix: use a grid inside it")
    out = Path(out_dir).expanduser()
    start_ts = pd.Timestamp(start).normalize()
    end_ts = start_ts + pd.Timedelta(days=days - 1)
    nldas_dir, globmap_dir = out / "nldas", out / "globmap"
    make_nc_files(nldas_dir, start_ts, days)
    globmap_dir.mkdir(parents=True, exist_ok=True)
    west, north, lat, lon = _globmap_subset(grid)
    codes = _pixel_landcover(lat, lon)
    for year in range(start_ts.year, end_ts.year + 1):
        for doy in range(1, 367, 8):  # GLOBMAP's MODIS-era 8-day composites start on DOY 1, 9, 17, ...
            date = pd.Timestamp(year, 1, 1) + pd.Timedelta(days=doy - 1)
            if date.year != year or not start_ts <= date <= end_ts:
                continue
            write_globmap_tif(globmap_dir / f"GlobMapLAIV3.A{year}{doy:03d}.Global.LAI.tif",
                              sample_lai(date, lat, lon, codes), west, north)
    (out / "README.txt").write_text(README.format(grid=grid.name, start=f"{start_ts:%Y-%m-%d}",
                                                  end=f"{end_ts:%Y-%m-%d}"))
    return {"nldas": nldas_dir, "globmap": globmap_dir, "grid": grid, "start": f"{start_ts:%Y-%m-%d}",
            "end": f"{end_ts:%Y-%m-%d}"}
