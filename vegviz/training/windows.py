"""From the model-ready Dataset to normalised arrays and windows of days.

* :func:`fit_normalization`: mean and standard deviation of every input channel and of
  the target, over the **training period** and the **mask** cells only, so nothing of
  the validation or test periods leaks into training.
* :func:`load_period`: one period as normalised float32 arrays (time, channel, lat, lon)
  for the inputs and (time, lat, lon) for the target, with ``pad_before`` extra days of
  inputs before it for the burn-in. Only the needed variables and dates are read;
  forcings are NaN-free inside the mask (the contract); NaN outside it becomes 0 (= the
  training mean) after normalisation; the target is NaN wherever it does not count (not observed, or
  outside the mask), which is all the loss needs to know.
* :func:`epoch_windows`: the sample start days of one epoch. Scored windows of
  ``window`` days tile the training period from a random offset, each preceded by
  ``burn_in`` days that are run but not scored; their order is shuffled. Offsets and
  order come from a generator seeded by ``(seed, epoch)``, so an epoch is reproducible
  on its own (resuming needs no random state).

Year sets (the differential split-sample test, :mod:`vegviz.training.split`): a period may
be a list of years instead of a date range. The arrays then span the set's first to last
year, and the target is NaN on every day outside the set (``load_period(...,
target_period=)``), so the loss, the observed-value counts, the validation loss and NSE
never see a target of another period. Samples are kept only when at least half of their
scored window lies in training years (:func:`epoch_windows` with ``scored``). The forcings
of the days in between (other periods' years) remain *inputs*: as burn-in or as the
context a scored day's state carries. That is no target leakage: forcings are known for
every day, including at test time, and the predictions of the test years are made from
the same continuous run. The normalisation uses the training years only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from ..evaluation.periods import is_year_set, period_days, select_period
from .config import PHYSICS_INPUT, Config

__all__ = [
    "Normalization", "PeriodArrays", "batches", "epoch_windows", "fit_normalization", "load_period",
    "training_bounds",
]


class DataError(ValueError):
    """The data do not fit the configuration (periods, variables); the message says how to fix it."""


@dataclass(frozen=True)
class Normalization:
    """Per-channel mean/std of the inputs and of the target (training period, mask cells)."""

    channels: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    target: str
    target_mean: float
    target_std: float
    period: tuple[str, str]
    #: static input channels: ``"elevation"`` (standardised) or ``"landcover=7"`` (one-hot)
    static_channels: tuple[str, ...] = ()
    static_mean: tuple[float, ...] = ()
    static_std: tuple[float, ...] = ()

    def to_dict(self) -> dict:
        """Plain Python types (for YAML, JSON and ``torch.load(weights_only=True)``)."""
        return {"channels": list(self.channels), "mean": list(self.mean), "std": list(self.std),
                "target": self.target, "target_mean": self.target_mean, "target_std": self.target_std,
                "period": list(self.period), "static_channels": list(self.static_channels),
                "static_mean": list(self.static_mean), "static_std": list(self.static_std)}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalization":
        return cls(tuple(d["channels"]), tuple(map(float, d["mean"])), tuple(map(float, d["std"])),
                   d["target"], float(d["target_mean"]), float(d["target_std"]), tuple(d["period"]),
                   tuple(d.get("static_channels", ())), tuple(map(float, d.get("static_mean", ()))),
                   tuple(map(float, d.get("static_std", ()))))

    @property
    def n_inputs(self) -> int:
        """Input channels of the model: the daily channels, then the static ones."""
        return len(self.channels) + len(self.static_channels)

    def static_fields(self, ds: xr.Dataset) -> np.ndarray | None:
        """The static channels of ``ds`` as a normalised float32 (channel, lat, lon) array (None if none).

        A land-cover class unseen in training gets zeros in every class channel.
        """
        if not self.static_channels:
            return None
        out = np.empty((len(self.static_channels), ds.sizes["lat"], ds.sizes["lon"]), dtype=np.float32)
        for k, (channel, mean, std) in enumerate(zip(self.static_channels, self.static_mean, self.static_std)):
            name, _, code = channel.partition("=")
            if name not in ds:
                raise DataError(f"static input {name!r} is missing from the data. Fix: add it as a (lat, lon) "
                                "variable, or train with config.statics=[] (without static inputs)")
            v = np.asarray(ds[name].values, dtype=np.float64)
            out[k] = (v == float(code)) if code else (v - mean) / std
        out[~np.isfinite(out)] = 0.0
        return out

    def denormalize(self, y):
        """Target values from normalised model outputs (numpy or torch)."""
        return y * self.target_std + self.target_mean

    def check_channels(self, channels) -> None:
        if tuple(channels) != self.channels:
            raise DataError(f"the normalisation was fitted for channels {list(self.channels)}, the model "
                            f"uses {list(channels)}. Fix: use the configuration the model was trained with")


def training_bounds(ds: xr.Dataset, config: Config, period: str = "train") -> tuple[pd.Timestamp, pd.Timestamp]:
    """The part of a configured period the data cover (for a year set: its span); a clear error when too
    little remains."""
    start, end = config.periods.bounds(period)
    t = pd.DatetimeIndex(ds["time"].values)
    value = getattr(config.periods, period)
    if is_year_set(value):
        absent = sorted(set(value) - set(t.year))
        if absent:
            raise DataError(f"periods.{period}: the years {absent} are not in the data, which cover "
                            f"{t[0]:%Y-%m-%d}..{t[-1]:%Y-%m-%d}. Fix: choose years inside the data, or let the split "
                            "choose them (periods as [start, end] dates with split: warm|cool|dry|wet)")
    first, last = max(start, t[0]), min(end, t[-1])
    days = (last - first).days + 1
    need = config.sample_days if period == "train" else 1
    if days < need:
        raise DataError(
            f"periods.{period} {start:%Y-%m-%d}..{end:%Y-%m-%d}: the data cover {t[0]:%Y-%m-%d}..{t[-1]:%Y-%m-%d}, "
            f"leaving {max(days, 0)} days of this period" + (f" (one sample needs burn_in + window = {need})"
                                                            if period == "train" else "")
            + ". Fix: set config.periods to dates inside the data (e.g. for the small virtual basin "
            "train 1998-2001, validation 2002-2003, test 2004-2005)")
    return first, last


def _mask(ds: xr.Dataset) -> xr.DataArray:
    return ds["mask"].fillna(0).astype(bool)


def _moments(da: xr.DataArray, mask: xr.DataArray) -> tuple[float, float, int]:
    """(mean, std, count) of the finite values of ``da`` inside ``mask``; float64, dask-friendly."""
    x = da.where(mask).astype("float64")
    n, s = x.count(), x.sum()
    import dask

    n, s = dask.compute(n, s)
    n, s = int(n), float(s)
    if n == 0:
        return math.nan, math.nan, 0
    mean = s / n
    # second pass around the mean: exact for long float32 series, where sum(x^2) - n mean^2 is not
    (ss,) = dask.compute(((x - mean) ** 2).sum())
    return mean, math.sqrt(float(ss) / n), n


def fit_normalization(ds: xr.Dataset, config: Config) -> Normalization:
    """Mean/std of ``config.channels`` and ``config.target`` over the training period and mask cells.

    Only the training period (for a year set: the training years) is read, so changing the
    data after it leaves the statistics unchanged. A constant channel gets std 1 (it then carries no information, but does no harm).
    ``lai_process`` gets the target's statistics (see the comment below).
    """
    first, last = training_bounds(ds, config)
    train = select_period(ds.sel(time=slice(first, last)), config.periods.train, "the training period")
    mask = _mask(ds)
    moments = {}
    for name in (config.target, *config.channels):
        if name == PHYSICS_INPUT and name != config.target:
            # the process LAI is scaled like the target, so that a model adding it to its
            # output (the residual physics modes) works on the target's scale
            moments[name] = moments[config.target]
            continue
        mean, std, n = _moments(train[name], mask)
        if n == 0:
            raise DataError(f"{name}: no finite value inside the mask in the training period "
                            f"{first:%Y-%m-%d}..{last:%Y-%m-%d}. Fix: check the data and config.periods.train")
        moments[name] = (mean, std if std > 0 and math.isfinite(std) else 1.0)
    statics, s_mean, s_std = [], [], []
    for name in config.statics:
        if name not in ds:
            raise DataError(f"statics: {name!r} is not a variable of the data (it holds "
                            f"{', '.join(sorted(ds.data_vars))}). Fix: set config.statics to (lat, lon) "
                            "variables of the data set, or [] for none")
        if set(ds[name].dims) != {"lat", "lon"}:
            raise DataError(f"statics: {name!r} has dims {ds[name].dims}, a static input needs (lat, lon)")
        if name == "landcover":  # categorical: one channel per class found in the mask
            codes = np.unique(ds[name].where(mask).values)
            for code in codes[np.isfinite(codes)].astype(int):
                statics.append(f"{name}={code}")
                s_mean.append(0.0)
                s_std.append(1.0)
        else:
            mean, std, n = _moments(ds[name], mask)
            if n == 0:
                raise DataError(f"statics: {name!r} has no finite value inside the mask")
            statics.append(name)
            s_mean.append(mean)
            s_std.append(std if std > 0 else 1.0)
    return Normalization(tuple(config.channels), tuple(moments[c][0] for c in config.channels),
                         tuple(moments[c][1] for c in config.channels), config.target,
                         *moments[config.target], (f"{first:%Y-%m-%d}", f"{last:%Y-%m-%d}"),
                         tuple(statics), tuple(s_mean), tuple(s_std))


@dataclass
class PeriodArrays:
    """A period as normalised arrays. ``x[pad:]`` and ``y[pad:]`` are the period proper."""

    x: np.ndarray  # (time, channel, lat, lon) float32, NaN-free
    y: np.ndarray | None  # (time, lat, lon) float32, NaN where the target does not count
    time: pd.DatetimeIndex
    pad: int  # leading days of burn-in before the period
    # (static channel, lat, lon), appended to x per batch (not stored per day: that would
    # multiply the memory of the daily arrays)
    statics: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        return self.x.nbytes + (0 if self.y is None else self.y.nbytes)


def period_indices(t: pd.DatetimeIndex, start, end, pad_before: int = 0) -> tuple[int, int, int]:
    """Indices into ``t`` of (first padded day, ``start``, one past ``end``); the padding is cut to the data."""
    i1 = int(t.searchsorted(pd.Timestamp(end), side="right"))
    i0 = int(t.searchsorted(pd.Timestamp(start), side="left"))
    if i1 <= i0:
        raise DataError(f"the data hold no day in {pd.Timestamp(start):%Y-%m-%d}..{pd.Timestamp(end):%Y-%m-%d} "
                        f"(they cover {t[0]:%Y-%m-%d}..{t[-1]:%Y-%m-%d}). Fix: adjust config.periods")
    return max(0, i0 - pad_before), i0, i1


def load_period(ds: xr.Dataset, stats: Normalization, start, end, *, pad_before: int = 0,
                with_target: bool = True, target_period=None) -> PeriodArrays:
    """Normalised inputs (and target) for [start, end], plus ``pad_before`` days before ``start``.

    With ``target_period`` (any period of :mod:`vegviz.evaluation.periods`, e.g. a year set),
    the target is NaN on the days outside it, so nothing outside the period can be scored.

    The padding is cut to the days the data hold. Reads one variable at a time straight
    into the preallocated float32 output, so the peak is the output plus one variable.
    """
    t = pd.DatetimeIndex(ds["time"].values)
    p0, i0, i1 = period_indices(t, start, end, pad_before)
    sub = ds.isel(time=slice(p0, i1))
    inside = _mask(ds).values
    shape = (i1 - p0, len(stats.channels), ds.sizes["lat"], ds.sizes["lon"])
    x = np.empty(shape, dtype=np.float32)
    for c, (name, mean, std) in enumerate(zip(stats.channels, stats.mean, stats.std)):
        # never in place on the source: for in-memory data .values is the Dataset's own array
        xc = x[:, c]
        np.subtract(sub[name].values, np.float32(mean), out=xc, dtype=np.float32)
        xc *= np.float32(1.0 / std)
        # NaN only outside the mask (the contract): 0 = the training mean; values there are kept,
        # they are the spatial context the convolutions see at the basin edge
        xc[~np.isfinite(xc)] = 0.0
    y = None
    if with_target:
        y = np.subtract(sub[stats.target].values, np.float32(stats.target_mean), dtype=np.float32)
        y *= np.float32(1.0 / stats.target_std)
        y[:, ~inside] = np.nan
        if target_period is not None:
            y[~period_days(t[p0:i1], target_period)] = np.nan
    return PeriodArrays(x, y, t[p0:i1], i0 - p0, stats.static_fields(ds))


def epoch_windows(n_days: int, burn_in: int, window: int, seed: int, epoch: int,
                  stride: int | None = None, scored: np.ndarray | None = None) -> np.ndarray:
    """Start indices of the samples (burn-in included) of one epoch, in training order.

    Samples start every ``stride`` days (default ``window``: the scored windows
    ``[s + burn_in, s + burn_in + window)`` tile ``[burn_in + offset, n_days)`` without
    overlap) from an ``offset`` drawn in ``[0, stride)`` (or less, if the period is
    short), so which days share a window changes from epoch to epoch. Deterministic for
    ``(seed, epoch)``.

    ``scored`` (bool per day, e.g. the training years of a year-set split) drops the samples
    whose scored window holds less than half such days: their few scorable days would cost a
    whole sample. With the default stride (at most half a window) every training year keeps
    at least one sample per epoch.
    """
    stride = window if stride is None else int(stride)
    sample = burn_in + window
    if n_days < sample:
        raise DataError(f"the training period has {n_days} days, fewer than one sample (burn_in + window = "
                        f"{sample}). Fix: lengthen periods.train or shorten window/burn_in")
    rng = np.random.default_rng([int(seed), int(epoch)])
    offset = int(rng.integers(0, min(stride, n_days - sample + 1)))
    starts = np.arange(offset, n_days - sample + 1, stride)
    if scored is not None:
        cum = np.concatenate([[0], np.cumsum(np.asarray(scored, dtype=np.int64))])
        share = (cum[starts + sample] - cum[starts + burn_in]) / window
        starts = starts[share >= 0.5]
        if starts.size == 0:
            raise DataError("no sample of this epoch has half of its scored window in the training years. "
                            "Fix: shorten window (or stride) so samples fit the training years")
    rng.shuffle(starts)
    return starts


def batches(starts: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """``starts`` split into consecutive batches (the last one may be smaller)."""
    return [starts[i:i + batch_size] for i in range(0, len(starts), batch_size)]
