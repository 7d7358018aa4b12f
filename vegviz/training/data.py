"""Opening and checking the data a run trains on."""
from __future__ import annotations

import pandas as pd
import xarray as xr

from ..catalog import open_data  # noqa: F401  (re-exported: vegviz.training.open_data)
from ..contract import validate
from .config import Config, Periods

#: the periods of a temporal split
PERIODS = ("train", "validation", "test")

__all__ = ["check_periods", "open_data", "prepare"]


def prepare(ds: xr.Dataset, config: Config, with_target: bool = True) -> xr.Dataset:
    """Validate ``ds`` against the contract and keep only what the run needs (still lazy).

    Any contiguous window of the NLDAS-2 lattice is accepted (``grid=None``), so a
    sub-region of the basin trains as well as the whole study grid. Without
    ``with_target`` (predictions, e.g. for a climate scenario) the target may be absent.
    """
    needed = [*config.channels, *([config.target] if with_target else []), "mask"]
    humidity = [v for v in ("vpd", "qair") if v in ds.data_vars and v not in needed]
    present = [v for v in needed if v in ds.data_vars]
    validate(ds[present + humidity[:1]] if len(present) == len(needed) else ds, grid=None, require=tuple(needed))
    if with_target:
        check_periods(ds, config)
    statics = [v for v in config.statics if v in ds.data_vars and v not in needed]
    return ds[needed + statics]  # a missing static is reported by fit_normalization, naming the fix


def _dates(period) -> list[str]:
    return [pd.Timestamp(v).strftime("%Y-%m-%d") for v in period]


def _proposal(first: pd.Timestamp, last: pd.Timestamp) -> dict:
    """A split of first..last into about 60 / 20 / 20 %: whole calendar years when at least three are covered."""
    years = list(range(first.year + (first.day_of_year > 1), last.year + 1 - (last < pd.Timestamp(last.year, 12, 31))))
    if len(years) >= 3:
        n_test = n_val = max(1, round(0.2 * len(years)))
        train, val, test = years[:-n_val - n_test], years[-n_val - n_test:-n_test], years[-n_test:]
        return {k: (pd.Timestamp(v[0], 1, 1), pd.Timestamp(v[-1], 12, 31))
                for k, v in (("train", train), ("validation", val), ("test", test))}
    days = (last - first).days + 1
    cut1, cut2 = first + pd.Timedelta(days=int(0.6 * days)), first + pd.Timedelta(days=int(0.8 * days))
    one = pd.Timedelta(days=1)
    return {"train": (first, cut1 - one), "validation": (cut1, cut2 - one), "test": (cut2, last)}


def check_periods(ds: xr.Dataset, config: Config) -> None:
    """Refuse a temporal split that does not fit the data, naming the days the data cover and the fix.

    A period that holds no day of the data is refused. So are the study's default periods (those of
    ``Config()``: what a data set given by path gets, as it recommends none) when any of them reaches
    beyond the data: training would silently use another split than the one configured. Periods set
    by the user may reach beyond the data (the part inside is used). Differential splits choose
    their years from the data (:mod:`vegviz.training.split`) and are not checked here.
    """
    from .windows import DataError

    if config.split != "temporal" or config.periods.year_sets or "time" not in ds.indexes or not ds.sizes["time"]:
        return
    time = pd.DatetimeIndex(ds.indexes["time"])
    first, last = time[0], time[-1]
    default = all(_dates(getattr(config.periods, n)) == _dates(getattr(Periods(), n)) for n in PERIODS)
    bad = []
    for name in PERIODS:
        start, end = config.periods.bounds(name)
        if end < first or start > last:
            bad.append(f"periods.{name} {start:%Y-%m-%d}..{end:%Y-%m-%d} lies outside them")
        elif default and (start < first or end > last):
            bad.append(f"periods.{name} {start:%Y-%m-%d}..{end:%Y-%m-%d} reaches beyond them")
    if not bad:
        return
    source = ds.encoding.get("source") or config.data
    sets = " ".join(f"--set 'periods.{n}=[{a:%Y-%m-%d}, {b:%Y-%m-%d}]'" for n, (a, b) in _proposal(first, last).items())
    raise DataError(
        f"data {source} cover {first:%Y-%m-%d}..{last:%Y-%m-%d}, but " + "; ".join(bad)
        + (" (these are the study's default periods, 1981-2016: a data set given by path recommends none)"
           if default else "")
        + f". Fix: set periods inside the data, e.g. {sets}, or put them under 'periods:' in a --config file "
          "(train: [start, end], validation: [...], test: [...])")
