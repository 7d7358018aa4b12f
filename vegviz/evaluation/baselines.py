"""Reference predictions that put a model's skill in context.

* :func:`climatology_baseline`: the mean seasonal cycle of the observations in
  the training period. A model that does not beat it has learned no more than
  the calendar.
* :func:`noise_ceiling`: the NSE of the noiseless truth against the noisy
  observations (synthetic data only). No model can be expected to exceed it on
  average, because the observation noise is unpredictable.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .periods import period_label, resolve_period, select_period
from .skill import MIN_OBS, nse

NOLEAP_DAYS = 365


def noleap_dayofyear(time) -> np.ndarray:
    """Day of year 1..365, with 29 February sharing 1 March's day, so seasons line up across years."""
    t = pd.DatetimeIndex(np.asarray(time))
    doy = t.day_of_year.to_numpy()
    late_leap = t.is_leap_year & (t.month > 2)
    return np.where(late_leap, doy - 1, doy)


def _interp_circular(y: np.ndarray) -> np.ndarray:
    """Linear interpolation of NaN gaps along the last axis, wrapping around the year."""
    out = np.full(y.shape, np.nan, dtype="float32")
    flat, res = y.reshape(-1, y.shape[-1]), out.reshape(-1, y.shape[-1])
    x = np.arange(y.shape[-1], dtype=float)
    for k in range(flat.shape[0]):
        ok = np.isfinite(flat[k])
        if ok.any():
            res[k] = np.interp(x, x[ok], flat[k, ok], period=y.shape[-1])
    return out


def climatology_baseline(observations: xr.Dataset, train_period="train", *, variable: str = "lai",
                         time=None) -> xr.DataArray:
    """Daily mean seasonal cycle of the observations in ``train_period``, on ``time``.

    The observations are averaged per (no-leap) day of year over the composite
    dates of the training period, the gaps between those days are filled by
    linear interpolation around the year, and the cycle is laid onto ``time``
    (default: the observations' own time axis), so it can be scored on any period
    like a model. Cells never observed in the training period stay NaN (for
    in-memory data an empty training period is an error). Lazy for dask-backed
    input (the day-of-year means are one tensor contraction).
    """
    if variable not in observations:
        raise ValueError(f"observations have no {variable!r} variable. Fix: pass the model-ready Dataset")
    obs = select_period(observations[variable], train_period, f"observations[{variable!r}]")
    doy = noleap_dayofyear(obs["time"].values)
    # One-hot (time, dayofyear) weights turn the day-of-year mean into a dot product.
    onehot = xr.DataArray(
        (doy[:, None] == np.arange(1, NOLEAP_DAYS + 1)[None, :]).astype("float32"),
        dims=("time", "dayofyear"),
        coords={"time": obs["time"], "dayofyear": np.arange(1, NOLEAP_DAYS + 1)},
    )
    valid = obs.notnull()
    total = xr.dot(obs.fillna(0).astype("float64"), onehot, dim="time")
    count = xr.dot(valid.astype("float32"), onehot, dim="time")
    # Checked only for in-memory data: for dask input it would force a pass over the period.
    if obs.chunks is None and not bool(valid.any()):
        raise ValueError(f"observations[{variable!r}] hold no values in the training period "
                         f"({period_label(train_period)}). Fix: pass a train_period with satellite composites")
    mean = (total / count.where(count > 0)).transpose(..., "dayofyear")
    if mean.chunks is not None:  # the interpolation runs around the whole year: one chunk along it
        mean = mean.chunk({"dayofyear": -1})
    cycle = xr.apply_ufunc(
        _interp_circular, mean,
        input_core_dims=[["dayofyear"]], output_core_dims=[["dayofyear"]],
        dask="parallelized", output_dtypes=["float32"],
    )
    if cycle.chunks is not None:
        cycle = cycle.chunk({"dayofyear": -1})
    target = observations["time"] if time is None else xr.DataArray(np.asarray(time), dims="time", name="time")
    t_doy = xr.DataArray(noleap_dayofyear(target.values), dims="time", coords={"time": target.values})
    out = cycle.sel(dayofyear=t_doy).drop_vars("dayofyear").transpose("time", ...)
    start, end = resolve_period(train_period)
    return out.rename("climatology").assign_attrs(
        units=observations[variable].attrs.get("units", "m2 m-2"),
        long_name=f"day-of-year mean of {variable} over {start:%Y-%m-%d}..{end:%Y-%m-%d}, "
                  "interpolated to daily",
        train_period=f"{start:%Y-%m-%d}..{end:%Y-%m-%d}",
    )


def noise_ceiling(observations: xr.Dataset, period="test", *, min_obs: int = MIN_OBS,
                  with_reason: bool = False):
    """NSE of the noiseless truth ``lai_true`` against the observed ``lai`` per cell.

    The best NSE a model can expect given the observation noise (synthetic data
    only, where ``lai_true`` exists). Masked like :func:`vegviz.evaluation.score`.
    """
    missing = [v for v in ("lai", "lai_true", "mask") if v not in observations]
    if missing:
        raise ValueError(f"the noise ceiling needs {missing} in the observations; only the synthetic virtual "
                         "basin has 'lai_true'. Fix: pass vegviz.data.virtual.open_virtual_basin()")
    obs = select_period(observations[["lai", "lai_true"]], period, "the observations")
    out = nse(obs["lai_true"], obs["lai"], min_obs=min_obs, mask=observations["mask"], with_reason=with_reason)
    name = "noise_ceiling"
    if with_reason:
        return out.rename({"nse": name})
    return out.rename(name).assign_attrs(long_name="NSE of the noiseless truth against the observations")


__all__ = ["climatology_baseline", "noise_ceiling", "noleap_dayofyear"]
