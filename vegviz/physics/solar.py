"""Sun geometry from latitude and day of year: declination, daylength, top-of-atmosphere radiation.

Formulas from FAO Irrigation and Drainage Paper 56 (Allen, Pereira, Raes & Smith 1998,
"Crop evapotranspiration", ch. 3), equation numbers cited where used. Day of year ``J``
runs 1..365 (366 in leap years), as in FAO-56.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .params import DEFAULT

SOLAR_CONSTANT = 0.0820  # MJ m-2 min-1 (FAO-56, eq. 21)
MJ_TO_MM = 0.408  # 1 MJ m-2 day-1 evaporates 0.408 mm day-1, 1/lambda with lambda = 2.45 MJ kg-1 (FAO-56, eq. 20)


def day_of_year(time) -> np.ndarray:
    """Day of year 1..366 of datetime-like ``time`` (array, DatetimeIndex or DataArray)."""
    return pd.DatetimeIndex(np.asarray(time).reshape(-1)).day_of_year.to_numpy()


def solar_declination(doy) -> np.ndarray:
    """Solar declination (radians) on day of year ``doy`` (FAO-56, eq. 24)."""
    return 0.409 * np.sin(2 * np.pi * np.asarray(doy, dtype=float) / 365 - 1.39)


def sunset_hour_angle(lat_rad, declination, sun_altitude: float = 0.0) -> np.ndarray:
    """Sunset hour angle (radians) for the Sun's centre at altitude ``sun_altitude`` (degrees).

    cos(ws) = (sin h0 - sin(lat) sin(decl)) / (cos(lat) cos(decl)), the hour angle at which the
    Sun's centre reaches altitude h0 (spherical astronomy, e.g. Meeus 1998, Astronomical
    Algorithms, eq. 15.1; Forsythe et al. 1995, Ecol. Model. 80:87-95). With h0 = 0 this is
    FAO-56 eq. 25, ws = arccos(-tan(lat) tan(decl)). Clipping covers polar day (pi) and night (0).
    """
    lat_rad = np.asarray(lat_rad, dtype=float)
    cos_ws = (np.sin(np.deg2rad(sun_altitude)) - np.sin(lat_rad) * np.sin(declination)) / (
        np.cos(lat_rad) * np.cos(declination)
    )
    return np.arccos(np.clip(cos_ws, -1.0, 1.0))


def _daylength_hours(lat_deg, doy, sun_altitude: float) -> np.ndarray:
    """Daylength (h) on a (doy, lat) table: N = 24/pi * ws (FAO-56, eq. 34)."""
    decl = solar_declination(doy)[:, None]
    lat = np.deg2rad(np.asarray(lat_deg, dtype=float).reshape(-1))[None, :]
    return 24.0 / np.pi * sunset_hour_angle(lat, decl, sun_altitude)


def _extraterrestrial_mm(lat_deg, doy) -> np.ndarray:
    """Top-of-atmosphere radiation (mm day-1 of evaporation) on a (doy, lat) table.

    Ra = 24*60/pi * Gsc * dr * (ws sin(lat) sin(decl) + cos(lat) cos(decl) sin(ws)) in
    MJ m-2 day-1 (FAO-56, eq. 21) with the inverse relative Earth-Sun distance
    dr = 1 + 0.033 cos(2 pi J / 365) (eq. 23), times 0.408 to get mm day-1.
    """
    doy = np.asarray(doy, dtype=float)
    decl = solar_declination(doy)[:, None]
    dr = (1 + 0.033 * np.cos(2 * np.pi * doy / 365))[:, None]
    lat = np.deg2rad(np.asarray(lat_deg, dtype=float).reshape(-1))[None, :]
    ws = sunset_hour_angle(lat, decl)
    ra = 24 * 60 / np.pi * SOLAR_CONSTANT * dr * (
        ws * np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.sin(ws)
    )
    return MJ_TO_MM * ra


def _as_coord(values, dim: str) -> xr.DataArray:
    if isinstance(values, xr.DataArray):
        return values
    arr = np.asarray(values)
    if arr.ndim == 0:
        return xr.DataArray(arr)
    return xr.DataArray(arr, dims=dim, coords={dim: arr})


def daylength(lat, time, *, sun_altitude: float = DEFAULT.sun_altitude) -> xr.DataArray:
    """Daylength in hours for latitudes ``lat`` (degrees north) and dates ``time``.

    Declination from FAO-56 eq. 24, daylength N = 24/pi * ws (eq. 34). By default sunrise and
    sunset are when the Sun's centre is at -0.833 degrees (refraction and semi-diameter, as in
    almanac sunrise/sunset: 15.0 h and 9.3 h at 40 N at the solstices); ``sun_altitude=0``
    reproduces FAO-56 eq. 25/34 exactly (14.8 h and 9.2 h).

    ``lat`` and ``time`` may be scalars, arrays or DataArrays; the result has dims
    (time, lat) (dropping either one that is a scalar).
    """
    lat_da = _as_coord(lat, "lat")
    time_da = _as_coord(time, "time")
    doy = day_of_year(time_da.values)
    hours = _daylength_hours(lat_da.values, doy, sun_altitude)
    hours = hours.reshape(time_da.shape + lat_da.shape)
    out = xr.DataArray(
        hours,
        dims=time_da.dims + lat_da.dims,
        coords={**time_da.coords, **lat_da.coords},
        name="daylength",
        attrs={
            "units": "h",
            "long_name": "daylength (sunrise to sunset)",
            "method": "FAO-56 (Allen et al. 1998) eq. 24 declination, eq. 34 N = 24/pi * ws, "
                      f"sunset at solar altitude {sun_altitude} deg",
        },
    )
    return out


def extraterrestrial_radiation(lat, time) -> xr.DataArray:
    """Daily top-of-atmosphere radiation Ra (mm day-1 evaporation equivalent), FAO-56 eq. 21/23/24/25.

    Multiply by 1/0.408 for MJ m-2 day-1. Dims as for :func:`daylength`.
    """
    lat_da = _as_coord(lat, "lat")
    time_da = _as_coord(time, "time")
    ra = _extraterrestrial_mm(lat_da.values, day_of_year(time_da.values))
    return xr.DataArray(
        ra.reshape(time_da.shape + lat_da.shape),
        dims=time_da.dims + lat_da.dims,
        coords={**time_da.coords, **lat_da.coords},
        name="ra",
        attrs={"units": "mm day-1", "long_name": "extraterrestrial radiation as evaporation equivalent",
               "method": "FAO-56 (Allen et al. 1998) eq. 21, times 0.408"},
    )
