"""Derived meteorology: vapour pressure deficit from specific humidity, Hargreaves PET.

FAO-56 is Allen, Pereira, Raes & Smith (1998), "Crop evapotranspiration", FAO Irrigation
and Drainage Paper 56, ch. 3. The functions are plain arithmetic, so they accept numpy
arrays (float32 stays float32) as well as (dask-backed) DataArrays.
"""
from __future__ import annotations

import numpy as np

EPSILON = 0.622  # ratio of the molar masses of water vapour and dry air


def saturation_vapour_pressure(t):
    """Saturation vapour pressure (kPa) over water at temperature ``t`` (degC), FAO-56 eq. 11."""
    return 0.6108 * np.exp(17.27 * t / (t + 237.3))


def surface_pressure(elevation):
    """Surface air pressure (kPa) at ``elevation`` (m), FAO-56 eq. 7.

    P = 101.3 ((293 - 0.0065 z) / 293)^5.26: the standard atmosphere with a 6.5 K km-1
    lapse rate from 293 K at sea level.
    """
    return 101.3 * ((293.0 - 0.0065 * elevation) / 293.0) ** 5.26


def mean_saturation_vapour_pressure(tair, tmin):
    """Daily mean saturation vapour pressure (kPa): the mean of es at Tmax and Tmin, FAO-56 eq. 12.

    es is convex, so es(Tmean) would underestimate it. Tmax is estimated as 2 tair - tmin
    (tair taken as the mid-range of the day), as everywhere in vegviz.
    """
    tmax = 2 * tair - tmin
    return 0.5 * (saturation_vapour_pressure(tmax) + saturation_vapour_pressure(tmin))


def vapour_pressure_from_qair(qair, elevation):
    """Actual vapour pressure e (kPa) from specific humidity (kg kg-1) at the surface pressure of ``elevation``.

    e = q p / (EPSILON + (1 - EPSILON) q), inverting the definition of specific humidity
    q = EPSILON e / (p - (1 - EPSILON) e), with p from :func:`surface_pressure`.
    """
    p = surface_pressure(elevation)
    return qair * p / (EPSILON + (1 - EPSILON) * qair)


def qair_from_vapour_pressure(e, elevation):
    """Specific humidity (kg kg-1) from vapour pressure e (kPa): q = EPSILON e / (p - (1 - EPSILON) e)."""
    p = surface_pressure(elevation)
    return EPSILON * e / (p - (1 - EPSILON) * e)


def vpd_from_qair(qair, tair, tmin, elevation):
    """Daily mean vapour pressure deficit (kPa) from specific humidity (kg kg-1).

    Actual vapour pressure e = q p / (EPSILON + (1 - EPSILON) q), inverting
    q = EPSILON e / (p - (1 - EPSILON) e), with the surface pressure p from ``elevation``
    (:func:`surface_pressure`). The saturation vapour pressure is the mean of its values at
    Tmax and Tmin (FAO-56 eq. 12; es is convex, so es(Tmean) would underestimate it), with
    Tmax estimated as 2 tair - tmin (tair taken as the mid-range of the day). Negative
    deficits (supersaturation in the inputs) are set to 0.
    """
    e = vapour_pressure_from_qair(qair, elevation)
    return (mean_saturation_vapour_pressure(tair, tmin) - e).clip(0, None)


def hargreaves_pet(tair, tmin, ra_mm):
    """Reference evapotranspiration (mm day-1) of Hargreaves & Samani (1985).

    ET0 = 0.0023 (Tmean + 17.8) (Tmax - Tmin)^0.5 Ra (Hargreaves & Samani 1985, Applied
    Engineering in Agriculture 1(2):96-99; FAO-56 eq. 52) with Ra the top-of-atmosphere
    radiation in mm day-1 (:func:`vegviz.physics.extraterrestrial_radiation`). The
    diurnal range Tmax - Tmin is estimated as 2 (tair - tmin), taking tair as the
    mid-range of the day. Both factors are floored at 0, so ET0 >= 0 on very cold days.
    """
    dtr = (2 * (tair - tmin)).clip(0, None) ** 0.5
    warmth = (tair + 17.8).clip(0, None)
    return 0.0023 * ra_mm * warmth * dtr
