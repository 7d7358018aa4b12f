"""Stability of simulated daily LAI: how much it fluctuates faster than a canopy can.

The study claims the physics-encoded ConvLSTM "shows enhanced stability in water-limited
regions and reduces unrealistic fluctuations". To check that on any data:

**Fluctuation** of a daily series ``x`` in a cell: the standard deviation over the period
of its high-pass residual, the departure from a centred 31-day moving mean,

    r_t = x_t - (1/31) sum_{k=-15..15} x_{t+k},      F(x) = sqrt(mean_t r_t^2 - (mean_t r_t)^2)

in m2 m-2 (days within 15 of the period's ends, whose window is incomplete, are left out).
The centred moving average as a trend filter, and the residual as the high-frequency part,
is the classical decomposition of Chatfield (2004, *The Analysis of Time Series*, 6th ed.,
section 2.5.2, filtering). Why 31 days: the seasonal cycle, green-up, senescence and the
weeks-to-months drought response all pass through a month-long mean almost unchanged, so
they stay out of ``r``; a leaf canopy does not gain and lose a sizeable share of its area
within days, so what remains is mostly spurious (weather noise passed straight through).
First differences would also measure that, but they are dominated by the day-to-day
step of the largest LAI (a 1-day lag of a smooth seasonal cycle already has size), so
they penalise a large canopy rather than a jittery one.

**Fluctuation ratio** ``F(model) / F(reference)``: 1 means as much sub-monthly variation as
the reference, > 1 spurious fluctuation. The reference is

* on virtual basins, ``lai_true``: the true vegetation, which has real (soil-water, snow)
  sub-monthly variation, so the ratio is exact;
* on real data, where only composites exist, the composites linearly interpolated in time
  (a smoothed observation series, :func:`reference_series`). Its high frequencies are
  smoothed away by the compositing and the interpolation, so ratios there are larger than
  the true ones; they rank models against each other, not against the canopy.

Cells whose reference fluctuation is below ``min_reference`` (bare or constant cells) get
no ratio. Summaries: :func:`vegviz.evaluation.by_aridity` and
:func:`vegviz.evaluation.by_vegetation` with ``metric="fluctuation_ratio"``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import xarray as xr

from .periods import resolve_period, select_period
from .scoring import model_variables

__all__ = ["WINDOW", "fluctuation", "high_pass", "reference_series", "stability"]

#: days of the centred moving mean whose residual is the high-frequency part
WINDOW = 31
#: reference fluctuation (m2 m-2) under which a cell gets no ratio
MIN_REFERENCE = 1e-3


def high_pass(da: xr.DataArray, window: int = WINDOW) -> xr.DataArray:
    """``da`` minus its centred ``window``-day moving mean (NaN where the window is incomplete)."""
    if window < 3 or window % 2 == 0:
        raise ValueError(f"window must be an odd number of days >= 3 (centred), got {window}")
    x = da.astype("float64")
    return x - x.rolling(time=window, center=True, min_periods=window).mean()


def fluctuation(da: xr.DataArray, window: int = WINDOW) -> xr.DataArray:
    """Standard deviation over time of :func:`high_pass` per cell (m2 m-2 for LAI)."""
    out = high_pass(da, window).std("time")
    return out.rename("fluctuation").assign_attrs(
        units=da.attrs.get("units", "m2 m-2"),
        long_name=f"standard deviation of the departure from a centred {window}-day moving mean")


def reference_series(observations: xr.Dataset) -> tuple[xr.DataArray, str]:
    """(daily reference series, its name): ``lai_true`` when the data have it (virtual basins), else the
    satellite composites ``lai`` linearly interpolated in time (real data)."""
    if "lai_true" in observations:
        return observations["lai_true"], "lai_true"
    if "lai" not in observations:
        raise ValueError("the stability reference needs 'lai_true' (virtual basins) or the composites 'lai'. "
                         "Fix: pass the model-ready Dataset the models were trained on")
    return observations["lai"].interpolate_na("time", method="linear"), "lai interpolated in time"


def stability_table(predictions: xr.Dataset, observations: xr.Dataset, period="test", *,
                    models: Sequence[str] | None = None, references: Sequence[str] = ("process",),
                    window: int = WINDOW, min_reference: float = MIN_REFERENCE) -> xr.Dataset:
    """Per-cell fluctuation of every model (and of ``lai_process`` as ``"process"``) over ``period``.

    Returns a Dataset with dims (model, lat, lon): ``fluctuation`` (m2 m-2),
    ``fluctuation_ratio`` (1, against the reference of :func:`reference_series`) and the
    reference's own ``reference_fluctuation`` (lat, lon); mask cells only.
    ``period`` is any period of :mod:`vegviz.evaluation.periods` (a name, dates or years).
    """
    models = model_variables(predictions) if models is None else list(models)
    sims = {m: select_period(predictions[m], period, "the predictions") for m in models}
    if "process" in references and "lai_process" in observations:
        sims["process"] = select_period(observations["lai_process"], period, "the observations")
    if not sims:
        raise ValueError("nothing to measure: no model variable and no lai_process. Fix: pass predictions with one "
                         "(time, lat, lon) variable per model")
    ref, ref_name = reference_series(observations)
    ref = select_period(ref, period, "the observations")
    mask = observations["mask"].fillna(0) > 0
    ref_f = fluctuation(ref, window).where(mask).compute()
    parts = []
    for name, sim in sims.items():
        sim = sim.sel(time=np.intersect1d(sim["time"].values, ref["time"].values))
        f = fluctuation(sim, window).where(mask).compute()
        parts.append(xr.Dataset({"fluctuation": f,
                                 "fluctuation_ratio": (f / ref_f.where(ref_f >= min_reference)).astype("float64")}))
    model_dim = xr.DataArray(np.array(list(sims), dtype=str), dims="model", name="model")
    out = xr.concat(parts, dim=model_dim, coords="minimal", compat="override", join="override")
    out["reference_fluctuation"] = ref_f
    out["fluctuation_ratio"].attrs = {"units": "1", "long_name": f"fluctuation relative to {ref_name}"}
    start, end = resolve_period(period)
    out.attrs = {"title": "sub-monthly fluctuation of daily LAI (vegviz.evaluation.stability)",
                 "reference": ref_name, "window_days": int(window), "period_start": f"{start:%Y-%m-%d}",
                 "period_end": f"{end:%Y-%m-%d}"}
    return out
