"""Small NLDAS-2 version 2.0 NetCDF granules for tests, derived from the real GRIB file.

The layout follows the GES DISC 2.0 files: ``NLDAS_FORA0125_H.A{YYYYMMDD}.{HHMM}.020.nc``,
dims (time=1, lat, lon) with ascending cell-centre coordinates on the 1/8-degree lattice,
float32 variables named and unitted as in 2.0 (Tair K, Qair kg kg-1, PSurf Pa, Wind_E/Wind_N
m s-1, LWdown/SWdown W m-2, CRainf_frac 1, CAPE J kg-1, PotEvap/Rainf kg m-2), fill value
-9999, a CF time coordinate at the file stamp. Only a window of the CONUS grid is written
(like a spatially subset download) so the files stay a few kB.

Values: the real GRIB fields of 2017-10-24 15:00 UTC over the window, given a diurnal cycle
(temperature +-6 K, shortwave from a clear-sky-like half sine between 13 and 01 UTC), a
small day-to-day drift and showers in a few hours, so the numbers look like NLDAS-2.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from vegviz.data import samples
from vegviz.data.nldas import FIELDS, read_granule
from vegviz.grid import Grid

REAL_GRIB = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nldas" / \
    "NLDAS_FORA0125_H.A20171024.1500.002.grb"
if not REAL_GRIB.exists():  # the checkout may live elsewhere; the shared data folder is fixed
    REAL_GRIB = Path("/work/shared/data/nldas/NLDAS_FORA0125_H.A20171024.1500.002.grb")

#: a 4 x 5 cell study grid in western Colorado (inside the UCRB window)
SMALL_GRID = Grid(38.0625, -108.0625, 4, 5, name="test grid")
#: the window the fixture files cover: the small grid plus 2 cells on every side
WINDOW = Grid(SMALL_GRID.lat0 - 0.25, SMALL_GRID.lon0 - 0.25, SMALL_GRID.nlat + 4, SMALL_GRID.nlon + 4,
              name="fixture window")


@lru_cache(maxsize=4)
def real_fields(window: Grid = WINDOW) -> dict[str, np.ndarray]:
    """The real GRIB file's fields on ``window``."""
    return read_granule(REAL_GRIB, window, tuple(FIELDS))


def hourly_values(t: pd.Timestamp, day_index: int, window: Grid = WINDOW) -> dict[str, np.ndarray]:
    """Plausible hourly fields at UTC time ``t``, from the real 15:00 UTC fields."""
    base = real_fields(window)
    h = t.hour
    phase = np.cos(2 * np.pi * (h - 22) / 24)  # warmest ~22 UTC = 15 local
    sun = max(0.0, np.sin(np.pi * ((h - 13) % 24) / 12)) if (h >= 13 or h < 1) else 0.0
    out = {k: v.copy() for k, v in base.items()}
    out["Tair"] = base["Tair"] + 6.0 * phase - 6.0 * np.cos(2 * np.pi * 7 / 24) + 0.7 * day_index
    out["Qair"] = base["Qair"] * (1.0 + 0.05 * phase)
    out["PSurf"] = base["PSurf"] + 50.0 * np.sin(2 * np.pi * h / 12)
    out["SWdown"] = (base["SWdown"] / max(np.sin(np.pi * 2 / 12), 1e-3)) * sun
    out["LWdown"] = base["LWdown"] + 10.0 * phase
    rain = np.zeros_like(base["Tair"])
    if h in (20, 21, 22) and day_index % 2 == 0:
        rain = np.clip(np.linspace(0.0, 1.2, rain.size).reshape(rain.shape) - 0.2, 0.0, None) * (h - 19)
    out["Rainf"] = rain.astype(np.float32)
    out["CRainf_frac"] = np.where(rain > 0, 0.4, 0.0).astype(np.float32)
    out["PotEvap"] = (0.05 * sun + 0.01 * out["Rainf"]).astype(np.float32)
    return {k: np.asarray(v, np.float32) for k, v in out.items()}


def write_nc_granule(folder, t, values: dict[str, np.ndarray], window: Grid = WINDOW, **knobs) -> Path:
    """One version 2.0 hourly file of ``values`` on ``window`` (see vegviz.data.samples)."""
    return samples.write_nc_granule(folder, t, values, window, **knobs)


def make_nc_files(folder, start="2017-10-23", days=2, window: Grid = WINDOW, values=hourly_values) -> list[Path]:
    """``days`` x 24 hourly 2.0 files from ``start`` (UTC day) in ``folder``."""
    return samples.make_nc_files(folder, start, days, window, values)
