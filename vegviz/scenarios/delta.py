"""Delta change: the baseline's weather with a temperature shift and precipitation/radiation factors.

The classic perturbation method of impact studies (e.g. Hay, Wilby & Leavesley 2000, J. Am.
Water Resour. Assoc. 36:387-397): every day of a baseline period is kept, with

    tair' = tair + dt(month),  tmin' = tmin + dt_min(month)          (additive, K)
    precip' = precip * precip(month),  swdown' = swdown * swdown     (multiplicative)

and humidity at constant relative humidity (:mod:`vegviz.scenarios.humidity`). The day-to-day
sequence, the spatial pattern and the wet-day frequency stay those of the baseline: only
the mean climate moves, which is what makes the scenario comparable with its baseline day
by day (a projection's ΔLAI is the model on the scenario minus the same model on the baseline).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import xarray as xr

from .humidity import constant_rh

Monthly = float | tuple[float, ...]


class ScenarioError(ValueError):
    """A scenario cannot be built as asked; the message names the problem and the fix."""


def _values(name: str, value, *, positive: bool) -> float | tuple[float, ...]:
    """A number or 12 monthly numbers (January first), checked."""
    example = "e.g. 2 or 12 comma-separated values, January first"
    if isinstance(value, (str, bytes)):
        raise ScenarioError(f"{name} {value!r}: expected a number or 12 monthly numbers. Fix: {example}")
    many = np.ndim(value) > 0
    try:
        vals = [float(v) for v in np.atleast_1d(np.asarray(value, dtype=float))]
    except (TypeError, ValueError):
        raise ScenarioError(f"{name} {value!r}: expected a number or 12 monthly numbers. Fix: {example}") from None
    if many and len(vals) != 12:
        raise ScenarioError(f"{name}: {len(vals)} values given; monthly values must be 12 (January to December). "
                            f"Fix: give one value for every month, or a single value for all")
    if not all(math.isfinite(v) for v in vals):
        raise ScenarioError(f"{name} {value!r}: values must be finite numbers. Fix: {example}")
    if positive and any(v <= 0 for v in vals):
        raise ScenarioError(f"{name} {value!r}: a factor must be > 0 (1 = unchanged, 0.9 = -10 %). "
                            "Fix: pass a positive factor, e.g. 0.8 for 20 % less")
    return tuple(vals) if many else vals[0]


def monthly(value: Monthly, time: xr.DataArray, dtype=np.float32):
    """``value`` for every day of ``time``: a scalar of ``dtype``, or a (time,) DataArray for 12 monthly values."""
    if isinstance(value, tuple):
        table = np.asarray(value, dtype=dtype)
        return xr.DataArray(table[time.dt.month.values - 1], dims=("time",), coords={"time": time})
    return dtype(value)


@dataclass(frozen=True)
class DeltaChange:
    """A delta-change scenario: ``dt`` (K) added to tair, ``dt_min`` (K, default ``dt``) to tmin,
    precipitation and shortwave radiation multiplied by ``precip`` and ``swdown``.

    ``dt``, ``dt_min`` and ``precip`` are one number or 12 monthly numbers (January first);
    humidity follows at constant relative humidity. ``apply(ds)`` is lazy for dask-backed data.
    """

    dt: Monthly = 0.0
    dt_min: Monthly | None = None
    precip: Monthly = 1.0
    swdown: float = 1.0
    method: ClassVar[str] = "delta"

    def __post_init__(self):
        object.__setattr__(self, "dt", _values("dt", self.dt, positive=False))
        dt_min = self.dt if self.dt_min is None else _values("dt_min", self.dt_min, positive=False)
        object.__setattr__(self, "dt_min", dt_min)
        object.__setattr__(self, "precip", _values("precip", self.precip, positive=True))
        if np.ndim(self.swdown) > 0:
            raise ScenarioError(f"swdown {self.swdown!r}: one factor for the whole year. Fix: pass a single number")
        object.__setattr__(self, "swdown", _values("swdown", self.swdown, positive=True))

    def apply(self, ds: xr.Dataset) -> xr.Dataset:
        """``ds`` with its forcings changed (other variables and attributes untouched); lazy in, lazy out."""
        missing = [v for v in ("tair", "tmin", "precip", "swdown") if v not in ds]
        if missing:
            raise ScenarioError(f"the data lack {', '.join(missing)}, which a delta change modifies. "
                                "Fix: pass a model-ready data set (vegviz.contract.validate)")
        t = ds["time"]
        out = ds.copy()
        out["tair"] = (ds["tair"] + monthly(self.dt, t)).assign_attrs(ds["tair"].attrs)
        out["tmin"] = (ds["tmin"] + monthly(self.dt_min, t)).assign_attrs(ds["tmin"].attrs)
        out["precip"] = (ds["precip"] * monthly(self.precip, t)).assign_attrs(ds["precip"].attrs)
        out["swdown"] = (ds["swdown"] * monthly(self.swdown, t)).assign_attrs(ds["swdown"].attrs)
        out.update(constant_rh(ds, out["tair"], out["tmin"]))
        return out

    def describe(self) -> str:
        def fmt(v, unit):
            if isinstance(v, tuple):
                return "monthly [" + ", ".join(f"{x:g}" for x in v) + "]" + unit
            return f"{v:+g}{unit}" if unit == " K" else f"x{v:g}"

        return (f"delta change: tair {fmt(self.dt, ' K')}, tmin {fmt(self.dt_min, ' K')}, precip "
                f"{fmt(self.precip, '')}, swdown {fmt(self.swdown, '')}; vpd/qair at constant relative humidity")

    def attrs(self) -> dict:
        """Provenance attributes of a scenario built with this change."""
        return {"scenario_method": self.method, "scenario_change": self.describe(),
                "scenario_deltas": json.dumps({"dt": self.dt, "dt_min": self.dt_min, "precip": self.precip,
                                               "swdown": self.swdown})}
