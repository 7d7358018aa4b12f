"""The differential split-sample test: train in one climate, test in another.

Klemeš (1986, "Operational testing of hydrological simulation models", Hydrological
Sciences Journal 31(1):13-24) asks a model meant for a changed climate to be calibrated on
years of one climate and validated on contrasting years (e.g. calibrate on dry years,
validate on wet ones, and the reverse). A temporal split cannot show that: its test years
look like its training years. Here the calendar years are ranked by the basin's climate
and the split assigns year *sets*:

=========  ================================  =========================
``split``  ranking key (basin mean, mask)    test years
=========  ================================  =========================
temporal   (none)                             the configured date ranges
warm       annual mean ``tair``               the warmest (train on the coolest)
cool       annual mean ``tair``               the coolest (train on the warmest)
dry        annual total ``precip``            the driest (train on the wettest)
wet        annual total ``precip``            the wettest (train on the driest)
=========  ================================  =========================

Rule: the pool is every calendar year that the data cover completely and that lies inside
the configured temporal split's span (``periods.train`` start to ``periods.test`` end),
so a DSST experiment uses exactly the years of its temporal twin. The years are sorted
from the training climate to the test climate (ties by year); the last
``round(0.2 n)`` (at least 1) are the test set, the ``round(0.2 n)`` before them the
validation set, and the remaining ~60 % the training set. On the full virtual UCRB
(1981-2016, 36 years) that is 22 / 7 / 7 years against the temporal split's 21 / 7 / 8.

The basin mean is the plain mean over the mask cells (the cells of the 1/8 degree lattice
differ in area by under 10 % across the UCRB, which cannot reorder years by much).

:func:`resolve_split` runs once, before training, and writes the years into
``config.periods`` (``config.yaml`` and ``experiment.yaml`` record them), so a run repeats
exactly without re-ranking. How training honours year sets: see
:mod:`vegviz.training.windows` (targets outside the training years are never scored;
their forcings may serve as input context only).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .config import SPLITS, Config, ConfigError

__all__ = ["FRACTIONS", "rank_years", "resolve_split", "split_years", "year_climate"]

#: (validation, test) shares of the pool of years; the rest (~60 %) trains
FRACTIONS = (0.2, 0.2)
#: split -> (variable, annual statistic, test on the high end of the ranking?)
_KEYS = {"warm": ("tair", "mean", True), "cool": ("tair", "mean", False),
         "dry": ("precip", "sum", False), "wet": ("precip", "sum", True)}
#: fewest years a differential split can use: one each for train, validation and test
MIN_YEARS = 3


def year_climate(ds: xr.Dataset, split: str, years) -> pd.Series:
    """Basin mean (mask cells) of the split's annual statistic per year: mean tair (degC) or total precip (mm)."""
    var, how, _ = _KEYS[split]
    if var not in ds:
        raise ConfigError(f"split {split!r} ranks years by {var!r}, which the data lack. Fix: use data with "
                          f"{var!r} or another split ({', '.join(SPLITS)})")
    mask = ds["mask"].fillna(0) > 0
    daily = ds[var].where(mask).mean(("lat", "lon"))
    t = pd.DatetimeIndex(ds["time"].values)
    keep = np.isin(t.year, list(years))
    series = pd.Series(np.asarray(daily.isel(time=np.flatnonzero(keep)).values, dtype=float), index=t[keep])
    annual = series.groupby(series.index.year)
    return (annual.mean() if how == "mean" else annual.sum()).rename(f"basin {how} {var}")


def rank_years(climate: pd.Series, split: str) -> list[int]:
    """Years ordered from the training climate to the test climate (ties broken by year)."""
    _, _, high = _KEYS[split]
    frame = pd.DataFrame({"year": climate.index, "key": climate.values if high else -climate.values})
    return [int(y) for y in frame.sort_values(["key", "year"], kind="stable")["year"]]


def split_years(ranked: list[int]) -> dict[str, list[int]]:
    """Train / validation / test year sets from years ranked training climate -> test climate."""
    n = len(ranked)
    if n < MIN_YEARS:
        raise ConfigError(f"a differential split needs at least {MIN_YEARS} complete calendar years (one each for "
                          f"train, validation and test); the data and periods give {n} ({ranked}). Fix: use "
                          "data that cover more years, or split: temporal")
    n_val, n_test = (max(1, round(f * n)) for f in FRACTIONS)
    n_train = n - n_val - n_test
    return {"train": sorted(ranked[:n_train]), "validation": sorted(ranked[n_train:n_train + n_val]),
            "test": sorted(ranked[n_train + n_val:])}


def pool_years(ds: xr.Dataset, config: Config) -> list[int]:
    """The complete calendar years of ``ds`` inside the configured temporal split's span."""
    start, end = config.periods.bounds("train")[0], config.periods.bounds("test")[1]
    t = pd.DatetimeIndex(ds["time"].values)
    t = t[(t >= start) & (t <= end)]
    counts = pd.Series(1, index=t).groupby(t.year).size()
    full = [int(y) for y, n in counts.items() if n == (366 if pd.Timestamp(f"{y}-12-31").day_of_year == 366 else 365)]
    return full


def resolve_split(config: Config, ds: xr.Dataset) -> Config:
    """``config`` with a differential split turned into year sets chosen from ``ds``.

    Unchanged for ``split: temporal`` and for a config whose periods already hold years
    (resolved earlier: the recorded years are kept, never re-ranked).
    """
    if config.split == "temporal" or config.periods.year_sets:
        return config
    pool = pool_years(ds, config)
    sets = split_years(rank_years(year_climate(ds, config.split, pool), config.split) if pool else [])
    try:
        return config.replace(periods=sets)
    except ConfigError as e:
        raise ConfigError(f"split {config.split!r} chose train years {sets['train']}: {e}") from None
