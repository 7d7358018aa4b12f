"""A satellite observation operator like that of GLOBMAP LAI V3.

GLOBMAP LAI (Liu, Liu & Chen 2012, J. Geophys. Res. 117, G04003,
doi:10.1029/2012JG002084) is half-monthly from AVHRR before 2001 and 8-day from MODIS
from 2001. The operator turns the daily true leaf area into what such a product shows:

* composites: the mean of the truth over each compositing window, labelled with the
  window's first day (the 1st and 16th of each month before 2001; day of year 1, 9, 17,
  ..., 361 of each year from 2001); every other day is NaN;
* retrieval noise, Gaussian and independent per cell and composite, with a relative and
  an absolute part (see :data:`MODIS` and :data:`AVHRR`);
* a sensor change: AVHRR composites read a few percent low, with more noise;
* gaps: no value when snow covers the cell for half the window or more, when the window
  is very cold, over open water (the product's water fill), and at random for residual
  cloud and quality flags;
* values rounded to 0.01 m2 m-2, the product's storage precision (scale factor 0.01).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .noise import stream

MODIS_START_YEAR = 2001
EIGHT_DAY = 8


@dataclass(frozen=True)
class Sensor:
    """Retrieval error model: obs = bias * truth * (1 + relative e1) + absolute e2, e ~ N(0, 1)."""

    name: str
    bias: float
    relative: float
    absolute: float

    def describe(self) -> str:
        return (f"{self.name}: obs = {self.bias:g} x mean(truth over window) x (1 + {self.relative:g} e1) "
                f"+ {self.absolute:g} e2, e1, e2 ~ N(0, 1) independent per cell and composite, clipped at 0")


# MODIS and GLOBMAP LAI errors are commonly quoted at about 0.5-1 m2 m-2 RMSE for forests
# and well below that for sparse vegetation (Fang, Baret, Plummer & Schaepman-Strub 2019,
# Rev. Geophys. 57:739-799, a review of LAI products and their validation). Our cells have
# LAI mostly below 2.5 and are means of several product pixels, so we chose 10% + 0.05 for
# MODIS (RMSE ~0.1 at LAI 1, ~0.25 at LAI 2.5). AVHRR-era values: chosen 5% low bias and
# 15% + 0.08 noise, a larger error for the older sensor.
MODIS = Sensor("MODIS (2001-)", bias=1.0, relative=0.10, absolute=0.05)
AVHRR = Sensor("AVHRR (-2000)", bias=0.95, relative=0.15, absolute=0.08)

SNOW_COVER_MM = 5.0  # SWE above which a day counts as snow covered
SNOW_GAP_SHARE = 0.5  # no composite when at least this share of the window is snow covered
COLD_GAP_DEGC = -5.0  # ... or when the window's mean air temperature is below this
RANDOM_GAP_SHARE = 0.02  # residual clouds and quality flags (chosen)
WATER_FILL_SHARE = 0.5  # cells with at least this water fraction get the water fill (NaN)
PRECISION = 0.01  # m2 m-2


def sensor_for(year: int) -> Sensor:
    return MODIS if year >= MODIS_START_YEAR else AVHRR


def composite_starts(year: int) -> np.ndarray:
    """0-based day-of-year indices of the first day of every composite window in ``year``."""
    days = 366 if pd.Timestamp(year=year, month=1, day=1).is_leap_year else 365
    if year >= MODIS_START_YEAR:
        return np.arange(0, days, EIGHT_DAY)
    first = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="SMS-16")  # the 1st and 16th
    return first.day_of_year.to_numpy() - 1


def composite_dates(time: pd.DatetimeIndex) -> np.ndarray:
    """Boolean mask of the days in ``time`` that label a composite."""
    time = pd.DatetimeIndex(time)
    out = np.zeros(time.size, bool)
    for year in np.unique(time.year):
        starts = pd.Timestamp(year=int(year), month=1, day=1) + pd.to_timedelta(composite_starts(int(year)), unit="D")
        out |= time.isin(starts)
    return out


def observe_year(year: int, lai_true: np.ndarray, swe: np.ndarray, tair: np.ndarray,
                 water_fraction: np.ndarray, seed: int) -> np.ndarray:
    """Satellite LAI for one calendar year: (day, lat, lon) float32, NaN off composite dates.

    ``lai_true``, ``swe`` (mm) and ``tair`` (degC) are the year's daily fields.
    """
    starts = composite_starts(year)
    ndays = lai_true.shape[0]
    lengths = np.diff(np.append(starts, ndays))[:, None, None]
    truth = np.add.reduceat(lai_true, starts, axis=0, dtype=np.float64) / lengths
    snow_share = np.add.reduceat(swe > SNOW_COVER_MM, starts, axis=0, dtype=np.float64) / lengths
    cold = np.add.reduceat(tair, starts, axis=0, dtype=np.float64) / lengths < COLD_GAP_DEGC

    sensor = sensor_for(year)
    rng = stream(seed, "observation", year)
    e = rng.standard_normal((2, *truth.shape))
    obs = sensor.bias * truth * (1 + sensor.relative * e[0]) + sensor.absolute * e[1]
    obs = np.round(np.maximum(obs, 0.0) / PRECISION) * PRECISION
    gap = (snow_share >= SNOW_GAP_SHARE) | cold | (rng.random(truth.shape) < RANDOM_GAP_SHARE)
    gap |= (water_fraction >= WATER_FILL_SHARE)[None]
    obs[gap] = np.nan

    out = np.full(lai_true.shape, np.nan, np.float32)
    out[starts] = obs
    return out


def noise_model_attrs() -> dict:
    """A record of the observation operator for the Dataset's attributes."""
    return {
        "lai_observation_operator": (
            "GLOBMAP LAI V3-like (Liu et al. 2012, doi:10.1029/2012JG002084): composite = mean of lai_true "
            "over the window, labelled with its first day; half-monthly windows (1st, 16th) before "
            f"{MODIS_START_YEAR}, 8-day windows (day of year 1, 9, ..., 361) from {MODIS_START_YEAR}; "
            f"rounded to {PRECISION} m2 m-2"),
        "lai_noise_model": f"{AVHRR.describe()}; {MODIS.describe()}",
        "lai_gaps": (
            f"NaN when snow (SWE > {SNOW_COVER_MM:g} mm) covers >= {SNOW_GAP_SHARE:g} of the window, when the "
            f"window's mean tair < {COLD_GAP_DEGC:g} degC, on cells with water fraction >= {WATER_FILL_SHARE:g}, "
            f"and at random with probability {RANDOM_GAP_SHARE:g}"),
    }
