"""The virtual basin's TRUE vegetation re-run on any forcing: the known answer to a climate scenario.

:func:`true_lai` drives the "true" ecohydrological model of :mod:`.vegetation` (the one that made
the stored ``lai_true``) with the forcings of any contract Dataset on a virtual basin's static
fields: the stored basin itself, a scenario made from it (:mod:`vegviz.scenarios`), or any
forcing on the same grid. Scenario minus baseline is then the true change of leaf area, against
which every model's projected change is scored (:mod:`vegviz.evaluation.projection`).

The model reads, per day, ``precip``, ``tair`` (the daily mid-range), ``tmin``, ``tmax`` and
``swdown`` (and the dates: day of year, month); the contract has no ``tmax``, so it is
``2 tair - tmin``, which is how the weather generator makes ``tair`` (the mean of tmin and
tmax). Humidity (``vpd``, ``qair``) and cloudiness are not used by the vegetation model: they are
passed as read-only NaN, so any future use shows up at once instead of silently reading zeros.

Spin-up: the states (snow, soil water, run-on, leaves, drought legacy) start from
:meth:`.VegetationState.initial` and are spun up by running the first ``spinup_years`` calendar
years of the forcing itself (cycled when the forcing is shorter), then the whole forcing from its
first day with the states carried year to year. Baseline and scenario go through the same
procedure, each in its own climate, so their difference is the response to the climate alone.
The stored ``lai_true`` was spun up on the generator's weather of the three years *before* the
period instead; the two agree once the initial states are forgotten (soil and snow within a
year; the drought legacy's running normal keeps a tenth of its past each year, so small
differences in vigour fade over several years; see tests/test_truth.py).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ...contract import cf_attrs
from .vegetation import Landscape, VegetationState, run_year
from .weather import YearWeather

__all__ = ["DRIVERS", "SPINUP_YEARS", "static_of", "true_lai"]

#: the contract forcings the true vegetation model reads
DRIVERS = ("precip", "tair", "tmin", "swdown")
#: calendar years of the forcing run first to spin the states up (the generator's own spin-up length)
SPINUP_YEARS = 3


def static_of(forcing: xr.Dataset) -> xr.Dataset:
    """The static fields (with ``landcover_fraction``) of the domain ``forcing`` lives on, cut to its grid.

    The domain comes from the Dataset's ``domain`` attribute (every virtual basin and scenario
    carries it), else the built-in domain whose window matches its coordinates.
    """
    from ... import domains
    from ..static import static_for
    from .chain import check_static

    name = forcing.attrs.get("domain")
    try:
        dom = domains.get(name) if isinstance(name, str) and name else domains.of_dataset(forcing)
    except domains.DomainError as e:
        raise ValueError(f"the forcing's domain {name!r} is not registered ({e}). Fix: register it with "
                         "`vegviz domain add`, or pass static=vegviz.data.static.static_for(domain)") from None
    if dom.name == "window":
        raise ValueError("the forcing names no domain and matches none: the true vegetation model needs the "
                         "domain's land-cover fractions. Fix: pass static=vegviz.data.static.static_for(domain)")
    static = check_static(static_for(dom))
    try:
        return static.sel(lat=forcing["lat"].values, lon=forcing["lon"].values, method="nearest", tolerance=1e-6)
    except KeyError:
        raise ValueError(f"the forcing's grid ({forcing.sizes['lat']} x {forcing.sizes['lon']} cells) is not inside "
                         f"the domain {dom.name!r}. Fix: pass static fields on the forcing's grid (static=...)") from None


def _check(forcing: xr.Dataset, spinup_years) -> int:
    if not isinstance(forcing, xr.Dataset):
        raise TypeError(f"forcing: expected a contract xarray.Dataset, got {type(forcing).__name__}. Fix: pass "
                        "e.g. open_virtual_basin('small') or a scenario (vegviz.scenarios.open_scenario)")
    missing = [v for v in DRIVERS if v not in forcing]
    if missing:
        raise ValueError(f"forcing lacks {missing}, which the true vegetation model reads. Fix: pass a contract "
                         f"Dataset with {', '.join(DRIVERS)}")
    if "time" not in forcing.dims or forcing.sizes["time"] == 0:
        raise ValueError("forcing has no days (no 'time' dimension or an empty one). Fix: pass daily forcing")
    try:
        n = int(spinup_years)
    except (TypeError, ValueError):
        n = -1
    if n < 0 or n != spinup_years:
        raise ValueError(f"spinup_years must be a whole number >= 0, got {spinup_years!r}. Fix: e.g. spinup_years=3")
    return n


def _year(forcing: xr.Dataset, days: slice) -> YearWeather:
    """The ``days`` (one calendar year, or the part of it in the forcing) as the vegetation model's weather."""
    sub = forcing[list(DRIVERS)].isel(time=days).transpose("time", "lat", "lon").load()
    arrays = {}
    for name in DRIVERS:
        a = np.ascontiguousarray(sub[name].values, dtype=np.float32)
        if not np.isfinite(a).all():
            bad = pd.Timestamp(sub["time"].values[np.flatnonzero(~np.isfinite(a).all(axis=(1, 2)))[0]])
            raise ValueError(f"forcing {name} has NaN on {bad:%Y-%m-%d} (and maybe elsewhere): the true vegetation "
                             "model needs every cell every day (run-on moves water between cells). Fix: fill the "
                             "gaps, or pass the virtual basin's complete forcing")
        arrays[name] = a
    nan = np.broadcast_to(np.float32(np.nan), arrays["tair"].shape)  # unused by run_year; read-only NaN
    return YearWeather(time=pd.DatetimeIndex(sub["time"].values), precip=arrays["precip"], tair=arrays["tair"],
                       tmin=arrays["tmin"], tmax=2 * arrays["tair"] - arrays["tmin"], swdown=arrays["swdown"],
                       vpd=nan, qair=nan, cloud=nan)


def true_lai(forcing: xr.Dataset, *, spinup_years: int = SPINUP_YEARS, static: xr.Dataset | None = None,
             ) -> xr.DataArray:
    """Daily true LAI (m2 m-2) of the virtual basin's vegetation model driven by ``forcing``.

    ``forcing`` is a contract Dataset (lazy is fine: it is read a year at a time) holding
    ``precip``, ``tair``, ``tmin`` and ``swdown`` on a domain's grid; ``static`` defaults to the
    static fields of its domain (:func:`static_of`). The model is spun up on the first
    ``spinup_years`` calendar years of the forcing (see the module docstring), then run over
    every day of it. Returns a float32 (time, lat, lon) DataArray named ``lai_true`` on the
    forcing's coordinates (every cell, like the stored ``lai_true``).
    """
    n_spin = _check(forcing, spinup_years)
    static = static_of(forcing) if static is None else static
    land = Landscape.from_static(static)
    if land.shape != (forcing.sizes["lat"], forcing.sizes["lon"]):
        raise ValueError(f"static fields ({land.shape[0]} x {land.shape[1]}) and forcing ({forcing.sizes['lat']} x "
                         f"{forcing.sizes['lon']}) are on different grids. Fix: pass static fields on the forcing's grid")
    year = pd.DatetimeIndex(forcing["time"].values).year.to_numpy()
    starts = np.flatnonzero(np.r_[True, year[1:] != year[:-1]])
    years = [slice(a, b) for a, b in zip(starts, [*starts[1:], len(year)])]
    state = VegetationState.initial(land)
    for k in range(n_spin):
        run_year(_year(forcing, years[k % len(years)]), land, state)
    out = np.empty((forcing.sizes["time"], *land.shape), np.float32)
    for days in years:
        out[days] = run_year(_year(forcing, days), land, state).lai
    attrs = {**cf_attrs("lai_true"),
             "comment": (f"vegviz.data.virtual.truth.true_lai: the true vegetation model driven by this forcing, "
                         f"spun up on its first {n_spin} calendar year(s); SYNTHETIC"),
             "spinup_years": n_spin}
    return xr.DataArray(out, dims=("time", "lat", "lon"), name="lai_true", attrs=attrs,
                        coords={"time": forcing["time"], "lat": forcing["lat"], "lon": forcing["lon"]})
