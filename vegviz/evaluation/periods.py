"""The study's evaluation periods and how a period is chosen.

Temporal split of the reference study (DESIGN.md): train 1981-2001, validation
2002-2008, test 2009-2016.
"""
from __future__ import annotations

import pandas as pd
import xarray as xr

PERIODS = {
    "train": ("1981-01-01", "2001-12-31"),
    "validation": ("2002-01-01", "2008-12-31"),
    "test": ("2009-01-01", "2016-12-31"),
}


def resolve_period(period) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(start, end) of a period name in :data:`PERIODS` or a (start, end) pair, both inclusive."""
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
    if years and (start.month, start.day, end.month, end.day) == (1, 1, 12, 31):
        span = f"{start:%Y}" if start.year == end.year else f"{start:%Y}-{end:%Y}"
    else:
        span = f"{start:%Y-%m-%d}..{end:%Y-%m-%d}"
    return f"{name} {span}".strip()


def select_period(obj: xr.Dataset | xr.DataArray, period, what: str = "the data"):
    """``obj`` restricted to ``period``; a clear error when nothing is left."""
    start, end = resolve_period(period)
    if "time" not in obj.dims:
        raise ValueError(f"{what} has no time dimension. Fix: pass daily data with a 'time' dimension")
    out = obj.sel(time=slice(start, end))
    if out.sizes["time"] == 0:
        t = obj["time"].values
        cover = (f"{pd.Timestamp(t[0]):%Y-%m-%d}..{pd.Timestamp(t[-1]):%Y-%m-%d}" if t.size else "no dates")
        raise ValueError(f"{period_label(period)} holds no dates of {what}, which cover {cover}. "
                         "Fix: choose a period inside that range")
    return out
