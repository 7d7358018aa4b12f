"""The growing season index (GSI) of Jolly et al. (2005) with a water-limitation term.

Jolly, Nemani & Running (2005), "A generalized, bioclimatic index to predict foliar
phenology in response to climate", Global Change Biology 11:619-632,
doi:10.1111/j.1365-2486.2005.00930.x. Three limiting factors, each a linear ramp between
two thresholds (:class:`GSIParameters`), are multiplied into a daily index iGSI, and the
GSI is its 21-day running mean.

The running mean here is *trailing* (the current and previous 20 days): leaves respond to
the weather that has happened, the simulation stays causal, and the value on a day never
uses data after it, so it can feed a model trained on 1981-2001 without information from
the validation and test years. The first 20 days use the days that exist (never NaN).

Water limitation (for the drylands of the UCRB, where the original GSI is too optimistic
in summer drought): the antecedent moisture index M = sum(P) / sum(PET) over the trailing
``water_window`` days (90 by default), with PET from Hargreaves & Samani (1985), mapped
linearly to 0..1 between M = 0.05 and M = 0.5, the UNEP aridity-index boundaries of the
hyper-arid (< 0.05) and of the dry sub-humid and wetter (>= 0.5) classes (Middleton &
Thomas 1997, World Atlas of Desertification, 2nd ed., UNEP). A P/PET ratio is the usual
water-availability measure of bioclimatic indices; taking it over the last 90 days lets the
winter and spring snow count towards spring green-up and lets summer drought shut the
canopy down. Periods without evaporative demand (PET sum 0) are not water limited (1).
The water term multiplies the daily iGSI before the running mean.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import xarray as xr

from . import inputs, meteo
from .params import DEFAULT, GSIParameters
from .running import TrailingMean, TrailingSum, trailing_mean

JOLLY_2005 = "Jolly, Nemani & Running 2005, Glob. Change Biol. 11:619-632, doi:10.1111/j.1365-2486.2005.00930.x"


def indicator(x, lo: float, hi: float, *, increasing: bool = True):
    """Linear ramp between thresholds ``lo`` < ``hi``, clipped to 0..1.

    ``increasing=True``: 0 at or below ``lo``, 1 at or above ``hi``; ``increasing=False``:
    1 at or below ``lo``, 0 at or above ``hi``. NaN stays NaN. Works on scalars, numpy
    arrays (float32 stays float32) and (dask-backed) DataArrays.
    """
    if not lo < hi:
        raise ValueError(f"indicator: lo ({lo}) must be below hi ({hi}); use increasing=False for a "
                         "decreasing ramp")
    if isinstance(x, np.ndarray):
        if x.dtype.kind != "f":
            x = x.astype(np.float64)
        y = np.subtract(x, lo) if increasing else np.subtract(hi, x)
        y /= np.asarray(hi - lo, dtype=y.dtype)
        return np.clip(y, 0, 1, out=y)
    y = ((x - lo) if increasing else (hi - x)) / (hi - lo)
    if isinstance(y, xr.DataArray):
        return y.clip(0, 1)
    return float(np.clip(y, 0, 1))


def i_tmin(tmin, params: GSIParameters = DEFAULT):
    """Minimum temperature indicator: 0 at or below -2 degC, 1 at or above 5 degC."""
    return indicator(tmin, params.tmin_lo, params.tmin_hi)


def i_vpd(vpd, params: GSIParameters = DEFAULT):
    """Vapour pressure deficit indicator: 1 at or below 0.9 kPa, 0 at or above 4.1 kPa."""
    return indicator(vpd, params.vpd_lo, params.vpd_hi, increasing=False)


def i_photoperiod(hours, params: GSIParameters = DEFAULT):
    """Photoperiod indicator: 0 at or below 10 h daylength, 1 at or above 11 h."""
    return indicator(hours, params.photoperiod_lo, params.photoperiod_hi)


def moisture_indicator(moisture, params: GSIParameters = DEFAULT):
    """Water term from the moisture index P/PET: 0 at or below 0.05, 1 at or above 0.5."""
    return indicator(moisture, params.moisture_lo, params.moisture_hi)


# -- block kernels: numpy float32 blocks from inputs.blockwise ---------------------------------

def _vpd(b: dict) -> np.ndarray:
    if "vpd" in b:
        return b["vpd"]
    return meteo.vpd_from_qair(b["qair"], b["tair"], b["tmin"], b["elevation"]).astype(np.float32, copy=False)


def _daily_igsi(b: dict, p: GSIParameters) -> np.ndarray:
    g = i_tmin(b["tmin"], p)
    g *= i_vpd(_vpd(b), p)
    g *= i_photoperiod(b["daylength"], p)
    return g


def _pet(b: dict, p: GSIParameters) -> np.ndarray:
    return meteo.hargreaves_pet(b["tair"], b["tmin"], b["ra"])


def new_state(p: GSIParameters) -> dict:
    """The running windows of :func:`_index` for a record fed in consecutive time blocks."""
    return {"precip": TrailingSum(p.water_window), "pet": TrailingSum(p.water_window),
            "index": TrailingMean(p.window)}


def _water(b: dict, p: GSIParameters, state: dict | None = None) -> np.ndarray:
    precip, pet = b["precip"], _pet(b, p)
    bad = ~(np.isfinite(precip) & np.isfinite(pet))
    if bad.any():  # the ratio compares the same days
        precip, pet = np.where(bad, np.nan, precip), np.where(bad, np.nan, pet)
    state = state or new_state(p)
    p_sum, n = state["precip"].push(precip)
    e_sum, _ = state["pet"].push(pet)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.divide(p_sum, e_sum, out=p_sum).astype(np.float32)
    w = moisture_indicator(ratio, p)
    w[e_sum <= 0] = 1.0  # no evaporative demand: no water limitation
    w[np.broadcast_to(n == 0, w.shape)] = np.nan
    return w


def _gsi(b: dict, p: GSIParameters) -> np.ndarray:
    return trailing_mean(_daily_igsi(b, p), p.window)


def _index(b: dict, p: GSIParameters, state: dict | None = None) -> np.ndarray:
    """The process index of a block; ``state`` (:func:`new_state`) carries the running
    windows from the previous time block of the same cells (None: the block is the whole record)."""
    state = state or new_state(p)
    daily = _daily_igsi(b, p)
    daily *= _water(b, p, state)
    return np.clip(state["index"].push(daily), 0, 1)


GSI_NAMES = ("tmin",)
WATER_NAMES = ("precip", "tair", "tmin")


# -- public functions on model-ready Datasets ------------------------------------------------

def growing_season_index(ds: xr.Dataset, window: int | None = None, *,
                         params: GSIParameters | None = None) -> xr.DataArray:
    """The GSI of Jolly et al. (2005): trailing ``window``-day mean of iTmin * iVPD * iPhotoperiod.

    ``window`` defaults to ``params.window`` (21 days, as in Jolly et al. 2005).
    Needs ``tmin`` (degC), ``vpd`` (kPa) or ``qair`` (kg kg-1, with ``tair`` and
    ``elevation``), and ``lat``/``time`` coordinates. Returns float32 (time, lat, lon) in 0..1.
    """
    p = params or DEFAULT
    if window is not None:
        p = replace(p, window=window)
    values = np.clip(inputs.blockwise(ds, GSI_NAMES + inputs.humidity_names(ds), _gsi, p), 0, 1)
    return inputs.as_dataarray(ds, values, "gsi", {
        "units": "1", "long_name": "growing season index",
        "method": f"trailing {p.window}-day mean of iTmin * iVPD * iPhotoperiod ({JOLLY_2005})",
    })


def water_limitation(ds: xr.Dataset, *, params: GSIParameters | None = None) -> xr.DataArray:
    """Water-limitation term 0..1 from the antecedent moisture index sum(P) / sum(PET).

    Needs ``precip`` (mm day-1), ``tair`` and ``tmin`` (degC) and the ``lat``/``time``
    coordinates; see the module docstring for the formulation and its sources.
    """
    p = params or DEFAULT
    return inputs.as_dataarray(ds, inputs.blockwise(ds, WATER_NAMES, _water, p), "water_limitation", {
        "units": "1", "long_name": "water limitation of leaf area (1 = none)",
        "method": f"moisture index sum(precip)/sum(PET) over the trailing {p.water_window} days, "
                  f"PET of Hargreaves & Samani (1985), 0 at <= {p.moisture_lo}, 1 at >= {p.moisture_hi}",
    })


def potential_evapotranspiration(ds: xr.Dataset) -> xr.DataArray:
    """Daily Hargreaves & Samani (1985) reference evapotranspiration (mm day-1), FAO-56 eq. 52."""
    return inputs.as_dataarray(ds, inputs.blockwise(ds, ("tair", "tmin"), _pet, DEFAULT), "pet", {
        "units": "mm day-1", "long_name": "reference evapotranspiration (Hargreaves & Samani 1985)",
    })


def process_index(ds: xr.Dataset, *, params: GSIParameters | None = None) -> xr.DataArray:
    """The index behind ``lai_process``: trailing mean of iTmin * iVPD * iPhotoperiod * water term."""
    p = params or DEFAULT
    names = GSI_NAMES + inputs.humidity_names(ds) + WATER_NAMES
    return inputs.as_dataarray(ds, inputs.blockwise(ds, names, _index, p), "process_index", {
        "units": "1", "long_name": "growing season index with water limitation",
        "method": describe(p),
    })


def describe(p: GSIParameters) -> str:
    """One-line description of the index for metadata."""
    return (
        f"trailing {p.window}-day mean of iTmin * iVPD * iPhotoperiod * W: growing season index of "
        f"{JOLLY_2005} (iTmin {p.tmin_lo}..{p.tmin_hi} degC, iVPD {p.vpd_lo}..{p.vpd_hi} kPa, "
        f"iPhotoperiod {p.photoperiod_lo}..{p.photoperiod_hi} h, daylength FAO-56 eq. 24/34 with sunset "
        f"at {p.sun_altitude} deg); W = water limitation, the moisture index sum(precip)/sum(PET) over "
        f"the trailing {p.water_window} days (PET of Hargreaves & Samani 1985, FAO-56 eq. 52) mapped "
        f"linearly from 0 at {p.moisture_lo} to 1 at {p.moisture_hi} (UNEP aridity-index class limits)"
    )
