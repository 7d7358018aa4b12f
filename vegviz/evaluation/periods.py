"""The study's evaluation periods and how a period is chosen: the one home of "which days
belong to a period".

Temporal split of the reference study (DESIGN.md): train 1981-2001, validation
2002-2008, test 2009-2016.

A period is one of

* a name in :data:`PERIODS` (``"test"``);
* a ``(start, end)`` pair of dates, both inclusive (``("2009-01-01", "2016-12-31")``);
* a list of calendar years as integers (``[1983, 1990, 2012]``): exactly the days of those
  years. The differential split-sample test (:mod:`vegviz.training.split`) trains, validates
  and tests on such year sets, which need not be contiguous.

:func:`period_days` says which dates of a time axis belong to a period; :func:`select_period`
and everything built on it (scoring, baselines, normalisation) use it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

PERIODS = {
    "train": ("1981-01-01", "2001-12-31"),
    "validation": ("2002-01-01", "2008-12-31"),
    "test": ("2009-01-01", "2016-12-31"),
}


def is_year_set(period) -> bool:
    """True when ``period`` is a list of calendar years (integers), not a name or a (start, end) pair."""
    return (isinstance(period, (list, tuple)) and len(period) > 0
            and all(isinstance(y, (int, np.integer)) and not isinstance(y, bool) for y in period))


def years_label(years) -> str:
    """Years as compact runs: ``[1981, 1982, 1983, 1990]`` -> ``'1981-1983, 1990'``."""
    years = sorted(set(int(y) for y in years))
    runs, start = [], years[0]
    for a, b in zip(years, years[1:] + [None]):
        if b != a + 1:
            runs.append(f"{start}" if start == a else f"{start}-{a}")
            start = b
    return ", ".join(runs)


def resolve_period(period) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(start, end) of a period, both inclusive: a name in :data:`PERIODS`, a (start, end) pair, or the
    span (1 January of the first to 31 December of the last) of a list of years."""
    if is_year_set(period):
        return pd.Timestamp(f"{min(period)}-01-01"), pd.Timestamp(f"{max(period)}-12-31")
    if isinstance(period, str):
        if period not in PERIODS:
            raise ValueError(f"unknown period {period!r}. Fix: use one of {sorted(PERIODS)} "
                             "or a (start, end) tuple such as ('2009-01-01', '2016-12-31')")
        period = PERIODS[period]
    try:
        start, end = period
        start, end = pd.Timestamp(start), pd.Timestamp(end)
    except (TypeError, ValueError) as e:
        raise ValueError(f"period {period!r} is not a name or a (start, end) pair of dates ({e}). "
                         f"Fix: use one of {sorted(PERIODS)} or e.g. ('2009-01-01', '2016-12-31')") from None
    if start > end:
        raise ValueError(f"period starts ({start:%Y-%m-%d}) after it ends ({end:%Y-%m-%d}). Fix: swap the dates")
    return start, end


def period_label(period, name: str | None = None, *, years: bool = False) -> str:
    """A short label such as ``'test 2009-01-01..2016-12-31'``.

    ``name`` names the period (default: its name in :data:`PERIODS`, else ``'period'``
    for a (start, end) pair). ``years=True`` gives ``'test 2009-2016'`` for a period of
    whole calendar years (the figures' titles); other periods keep their dates.
    """
    start, end = resolve_period(period)
    if name is None:
        name = period if isinstance(period, str) else "period"
    if is_year_set(period):
        n = len(set(period))
        return f"{name} {n} year{'s' * (n != 1)} ({years_label(period)})".strip()
    if years and (start.month, start.day, end.month, end.day) == (1, 1, 12, 31):
        span = f"{start:%Y}" if start.year == end.year else f"{start:%Y}-{end:%Y}"
    else:
        span = f"{start:%Y-%m-%d}..{end:%Y-%m-%d}"
    return f"{name} {span}".strip()


def period_days(time, period) -> np.ndarray:
    """Boolean array: which dates of ``time`` (a time axis or DataArray) belong to ``period``."""
    t = pd.DatetimeIndex(np.asarray(getattr(time, "values", time)))
    if is_year_set(period):
        return np.isin(t.year, np.asarray(sorted(set(int(y) for y in period))))
    start, end = resolve_period(period)
    return np.asarray((t >= start) & (t <= end))


def select_period(obj: xr.Dataset | xr.DataArray, period, what: str = "the data"):
    """``obj`` restricted to ``period`` (any form, see the module docstring); a clear error when nothing is left."""
    resolve_period(period)  # a bad period is named before anything else
    if "time" not in obj.dims:
        raise ValueError(f"{what} has no time dimension. Fix: pass daily data with a 'time' dimension")
    if is_year_set(period):
        out = obj.isel(time=np.flatnonzero(period_days(obj["time"], period)))
    else:
        start, end = resolve_period(period)
        out = obj.sel(time=slice(start, end))
    if out.sizes["time"] == 0:
        t = obj["time"].values
        cover = (f"{pd.Timestamp(t[0]):%Y-%m-%d}..{pd.Timestamp(t[-1]):%Y-%m-%d}" if t.size else "no dates")
        raise ValueError(f"{period_label(period)} holds no dates of {what}, which cover {cover}. "
                         "Fix: choose a period inside that range")
    return out
