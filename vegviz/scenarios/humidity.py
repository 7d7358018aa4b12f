"""Humidity that follows a temperature change at constant relative humidity.

A warmer climate with unchanged humidity would drive the vapour pressure deficit towards
zero relative to the saturation it should have; the usual, simplest physically consistent
assumption of delta-change studies is that relative humidity stays the same (observed at
large scales: Held & Soden 2006, J. Climate 19:5686-5702; the basis of the Clausius-
Clapeyron scaling of water vapour). With RH = e / es, es the daily mean saturation vapour
pressure of FAO-56 eq. 11-12 (Allen et al. 1998; :func:`vegviz.physics.meteo.mean_saturation_vapour_pressure`,
the same es the contract's vpd uses, see :func:`vegviz.physics.meteo.vpd_from_qair`):

    r    = es(T') / es(T)              (T = tair, tmin; T' the scenario's)
    e'   = r e                         (constant RH)
    vpd' = es' - e' = r (es - e) = r vpd
    q'   = EPSILON e' / (p - (1 - EPSILON) e'),   e = q p / (EPSILON + (1 - EPSILON) q)

with p the surface pressure of the cell's elevation (FAO-56 eq. 7). Where the temperatures
do not change, r is exactly 1 and vpd and qair are kept bit for bit.
"""
from __future__ import annotations

import xarray as xr

from ..contract import ContractError
from ..physics import meteo


def constant_rh(ds: xr.Dataset, tair: xr.DataArray, tmin: xr.DataArray) -> dict[str, xr.DataArray]:
    """``vpd`` and/or ``qair`` of ``ds`` (those present) at the new temperatures ``tair``, ``tmin``.

    Lazy in, lazy out; attributes are kept. ``qair`` needs ``elevation`` (the surface pressure).
    """
    ratio = meteo.mean_saturation_vapour_pressure(tair, tmin) / meteo.mean_saturation_vapour_pressure(
        ds["tair"], ds["tmin"])
    out = {}
    if "vpd" in ds:
        out["vpd"] = (ds["vpd"] * ratio).assign_attrs(ds["vpd"].attrs)
    if "qair" in ds:
        if "elevation" not in ds:
            raise ContractError("elevation: missing; the scenario's qair needs the surface pressure at each cell. "
                                "Fix: use a model-ready data set (it carries elevation)")
        q, z = ds["qair"], ds["elevation"]
        new = meteo.qair_from_vapour_pressure(meteo.vapour_pressure_from_qair(q, z) * ratio, z)
        out["qair"] = xr.where(ratio == 1, q, new.astype(q.dtype)).assign_attrs(q.attrs)
    return out
