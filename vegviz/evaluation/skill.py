"""Skill metrics per grid cell: NSE, KGE and RMSE over NaN-masked xarray data.

Every metric is *pairwise complete*: only the steps where both the simulation and
the observation are finite count. Satellite LAI is NaN except on composite dates,
so a daily simulation is scored on the observed composite dates only.

The metrics are written once with xarray reductions, so they are vectorised over
the remaining dimensions (usually ``lat``, ``lon``) and stay lazy for dask-backed
inputs (e.g. a Zarr store opened with ``xr.open_zarr``).

A score that cannot be computed is NaN, and a companion ``reason`` flag says why
(see :data:`REASONS` and :func:`explain`): outside the mask, too few observations,
constant observations (NSE and KGE undefined), observations with zero mean or a
constant simulation (KGE undefined).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Sequence

import numpy as np
import xarray as xr

#: default minimum number of paired (simulation, observation) steps per cell
MIN_OBS = 10

#: reason codes of the ``reason`` flag variables: code -> (CF flag meaning, text)
REASONS = {
    0: ("scored", "scored"),
    1: ("outside_mask", "outside mask"),
    2: ("too_few_observations", "fewer than {min_obs} observations"),
    3: ("constant_observations", "constant observations"),
    4: ("constant_simulation", "constant simulation"),
    5: ("zero_mean_observations", "observations with zero mean"),
}
SCORED, OUTSIDE_MASK, TOO_FEW, CONSTANT_OBS, CONSTANT_SIM, ZERO_MEAN_OBS = range(6)

#: the metrics this module computes, with their CF-style attributes
METRIC_ATTRS = {
    "nse": {"long_name": "Nash-Sutcliffe efficiency", "units": "1", "best": 1.0},
    "kge": {"long_name": "Kling-Gupta efficiency", "units": "1", "best": 1.0},
    "rmse": {"long_name": "root mean square error", "best": 0.0},
}
METRICS = tuple(METRIC_ATTRS)


def metric_label(metric: str, units: str = "m2 m-2") -> str:
    """A metric's axis or colour-bar label: "NSE" (dimensionless), "RMSE (m2 m-2)" (in the units of LAI)."""
    u = METRIC_ATTRS.get(metric, {}).get("units", units)
    return metric.upper() if u == "1" else f"{metric.upper()} ({u})"


@dataclass(frozen=True)
class PairStats:
    """Moments of the pairwise-complete (sim, obs) series, reduced over ``dim``.

    Means and (population) variances are taken over the valid pairs only; the
    deviations are computed in a second pass for numerical accuracy.
    """

    n: xr.DataArray
    mean_sim: xr.DataArray
    mean_obs: xr.DataArray
    var_sim: xr.DataArray
    var_obs: xr.DataArray
    cov: xr.DataArray
    mse: xr.DataArray
    constant_obs: xr.DataArray
    constant_sim: xr.DataArray

    @classmethod
    def of(cls, sim: xr.DataArray, obs: xr.DataArray, dim: str | Sequence[Hashable] = "time") -> "PairStats":
        sim, obs = _aligned(sim, obs, dim)
        valid = sim.notnull() & obs.notnull()
        # float64 so that long float32 series do not lose precision in the sums
        s = sim.astype("float64").where(valid)
        o = obs.astype("float64").where(valid)
        n = valid.sum(dim)
        nn = n.where(n > 0)
        # sums of all-NaN slices are 0 (no warnings); dividing by NaN counts gives NaN
        mean_s = s.sum(dim) / nn
        mean_o = o.sum(dim) / nn
        ds_, do = s - mean_s, o - mean_o
        return cls(
            n=n,
            mean_sim=mean_s,
            mean_obs=mean_o,
            var_sim=(ds_**2).sum(dim) / nn,
            var_obs=(do**2).sum(dim) / nn,
            cov=(ds_ * do).sum(dim) / nn,
            mse=((s - o) ** 2).sum(dim) / nn,
            # exact tests (max == min) rather than a variance threshold
            constant_obs=o.fillna(-np.inf).max(dim) == o.fillna(np.inf).min(dim),
            constant_sim=s.fillna(-np.inf).max(dim) == s.fillna(np.inf).min(dim),
        )


def _aligned(sim, obs, dim):
    for name, da in (("sim", sim), ("obs", obs)):
        if not isinstance(da, xr.DataArray):
            raise TypeError(f"{name}: expected an xarray.DataArray, got {type(da).__name__}. "
                            f"Fix: pass one variable, e.g. ds['lai']")
        for d in [dim] if isinstance(dim, str) else dim:
            if d not in da.dims:
                raise ValueError(f"{name} has no dimension {d!r} (it has {da.dims}). "
                                 "Fix: pass dim= the dimension to score over")
    try:
        return xr.align(sim, obs, join="exact")
    except ValueError as e:
        raise ValueError(
            f"sim and obs do not share the same coordinates ({e}). Fix: select the same period and grid "
            "for both first, e.g. sim, obs = xr.align(sim, obs, join='inner')"
        ) from None


def reason_flag(stats: PairStats, checks: Sequence[int], *, min_obs: int = MIN_OBS,
                mask: xr.DataArray | None = None) -> xr.DataArray:
    """The reason code per cell: the first failing test in the order of ``REASONS``.

    ``checks`` lists the metric-specific tests (``CONSTANT_OBS``, ``ZERO_MEAN_OBS``,
    ``CONSTANT_SIM``); the mask and the minimum count always apply.
    """
    if min_obs < 1:
        raise ValueError(f"min_obs must be at least 1, got {min_obs}")
    tests = {
        CONSTANT_OBS: stats.constant_obs,
        ZERO_MEAN_OBS: stats.mean_obs == 0,
        CONSTANT_SIM: stats.constant_sim,
    }
    # Apply from the lowest priority up, so that earlier reasons overwrite later ones.
    reason = xr.zeros_like(stats.n, dtype="int8")
    for code in sorted(checks, key=lambda c: -_priority(c)):
        reason = xr.where(tests[code], np.int8(code), reason)
    reason = xr.where(stats.n < min_obs, np.int8(TOO_FEW), reason)
    if mask is not None:
        inside = _as_mask(mask)
        reason = xr.where(inside, reason, np.int8(OUTSIDE_MASK))
    return reason.astype("int8").rename("reason").assign_attrs(
        long_name="why the score is missing (0 = scored)",
        flag_values=np.array(sorted(REASONS), dtype="int8"),
        flag_meanings=" ".join(REASONS[c][0] for c in sorted(REASONS)),
        min_obs=int(min_obs),
    )


def _priority(code: int) -> int:
    # mask, count, constant observations, zero mean, constant simulation
    return [OUTSIDE_MASK, TOO_FEW, CONSTANT_OBS, ZERO_MEAN_OBS, CONSTANT_SIM].index(code)


def _as_mask(mask) -> xr.DataArray:
    if not isinstance(mask, xr.DataArray):
        raise TypeError("mask: expected an xarray.DataArray of 0/1 on (lat, lon). Fix: pass ds['mask']")
    if mask.dtype == bool:
        return mask
    return mask.fillna(0) == 1


def explain(reason: xr.DataArray) -> xr.DataArray:
    """The reason flags as text, e.g. ``'constant observations'`` (computes dask input)."""
    min_obs = reason.attrs.get("min_obs", MIN_OBS)
    codes = np.asarray(reason.values)
    texts = np.array([REASONS[c][1].format(min_obs=min_obs) for c in sorted(REASONS)], dtype=object)
    unknown = set(np.unique(codes).tolist()) - set(REASONS)
    if unknown:
        raise ValueError(f"unknown reason codes {sorted(unknown)}; expected {sorted(REASONS)}")
    return reason.copy(data=texts[codes.astype(int)]).assign_attrs(long_name="why the score is missing")


def _nse(st: PairStats) -> xr.DataArray:
    # NSE = 1 - sum (s - o)^2 / sum (o - mean o)^2 (Nash & Sutcliffe 1970,
    # doi:10.1016/0022-1694(70)90255-6); the 1/n factors cancel.
    return 1.0 - st.mse / st.var_obs.where(st.var_obs > 0)


def _kge(st: PairStats) -> xr.DataArray:
    # Gupta et al. 2009 (doi:10.1016/j.jhydrol.2009.08.003), eq. 9:
    # KGE = 1 - sqrt((r - 1)^2 + (alpha - 1)^2 + (beta - 1)^2),
    # alpha = sigma_s / sigma_o, beta = mu_s / mu_o.
    var_o = st.var_obs.where(st.var_obs > 0)
    var_s = st.var_sim.where(st.var_sim > 0)
    r = st.cov / np.sqrt(var_s * var_o)
    alpha = np.sqrt(st.var_sim / var_o)
    beta = st.mean_sim / st.mean_obs.where(st.mean_obs != 0)
    return 1.0 - np.sqrt((r - 1) ** 2 + (alpha - 1) ** 2 + (beta - 1) ** 2)


def _rmse(st: PairStats) -> xr.DataArray:
    return np.sqrt(st.mse)


_FORMULAS = {"nse": _nse, "kge": _kge, "rmse": _rmse}
_CHECKS = {"nse": (CONSTANT_OBS,), "kge": (CONSTANT_OBS, ZERO_MEAN_OBS, CONSTANT_SIM), "rmse": ()}


def _metric(name, st, *, min_obs, mask, units=None):
    reason = reason_flag(st, _CHECKS[name], min_obs=min_obs, mask=mask)
    attrs = dict(METRIC_ATTRS[name])
    if name == "rmse" and units:
        attrs["units"] = units
    value = _FORMULAS[name](st).where(reason == SCORED).rename(name).assign_attrs(attrs, min_obs=int(min_obs))
    return value, reason


def _single(name, sim, obs, dim, min_obs, mask, with_reason):
    value, reason = _metric(name, PairStats.of(sim, obs, dim), min_obs=min_obs, mask=mask,
                            units=obs.attrs.get("units"))
    if with_reason:
        return xr.Dataset({name: value, "reason": reason})
    return value


def nse(sim: xr.DataArray, obs: xr.DataArray, dim: str = "time", *, min_obs: int = MIN_OBS,
        mask: xr.DataArray | None = None, with_reason: bool = False):
    """Nash-Sutcliffe efficiency of ``sim`` against ``obs`` along ``dim``.

    NaN where fewer than ``min_obs`` pairs are finite, the observations are
    constant, or ``mask`` (0/1 or bool) is not 1. With ``with_reason=True`` a
    Dataset with ``nse`` and the ``reason`` flag (see :func:`explain`) is returned.
    """
    return _single("nse", sim, obs, dim, min_obs, mask, with_reason)


def kge(sim: xr.DataArray, obs: xr.DataArray, dim: str = "time", *, min_obs: int = MIN_OBS,
        mask: xr.DataArray | None = None, with_reason: bool = False):
    """Kling-Gupta efficiency (Gupta et al. 2009) of ``sim`` against ``obs`` along ``dim``.

    Besides the rules of :func:`nse`, NaN where the observations have zero mean
    (beta undefined) or the simulation is constant (correlation undefined).
    """
    return _single("kge", sim, obs, dim, min_obs, mask, with_reason)


def rmse(sim: xr.DataArray, obs: xr.DataArray, dim: str = "time", *, min_obs: int = MIN_OBS,
         mask: xr.DataArray | None = None, with_reason: bool = False):
    """Root mean square error of ``sim`` against ``obs`` along ``dim`` (units of ``obs``)."""
    return _single("rmse", sim, obs, dim, min_obs, mask, with_reason)


def check_metrics(metrics: Sequence[str]) -> tuple[str, ...]:
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    unknown = [m for m in metrics if m not in _FORMULAS]
    if unknown or not metrics:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {list(METRICS)}")
    return metrics


def metrics(sim: xr.DataArray, obs: xr.DataArray, dim: str = "time", *,
            metrics: Sequence[str] = METRICS, min_obs: int = MIN_OBS,
            mask: xr.DataArray | None = None, with_reason: bool = True) -> xr.Dataset:
    """Several metrics at once (sharing one pass of statistics), plus ``n_obs``.

    Returns a Dataset with one variable per metric, ``n_obs`` (the number of
    paired steps) and, with ``with_reason``, ``<metric>_reason`` flags.
    """
    names = check_metrics(metrics)
    st = PairStats.of(sim, obs, dim)
    out = {}
    for name in names:
        value, reason = _metric(name, st, min_obs=min_obs, mask=mask, units=obs.attrs.get("units"))
        out[name] = value
        if with_reason:
            out[f"{name}_reason"] = reason.rename(f"{name}_reason")
    out["n_obs"] = st.n.astype("int32").assign_attrs(
        long_name="number of time steps with both simulation and observation", units="1")
    return xr.Dataset(out)
