"""Trailing running sums and means along the first axis, via cumulative sums.

A trailing window at step t covers steps t-window+1 .. t, so a value never depends on
later days (the model stays causal and a temporal train/test split cannot leak). The
first window-1 steps use the shorter window that exists. Sums accumulate in float64:
over decades of days a float32 cumulative sum would lose digits in the differences.
NaN steps are skipped (mean over the valid steps of the window); a window without any
valid step gives NaN.
"""
from __future__ import annotations

import numpy as np


def _check_window(window) -> int:
    if int(window) != window or window < 1:
        raise ValueError(f"window must be a positive integer number of days, got {window!r}")
    return int(window)


def _trailing_sum_finite(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing sums of finite ``x`` along axis 0 (float64)."""
    cs = np.cumsum(x, axis=0, dtype=np.float64)
    if window < x.shape[0]:
        cs[window:] -= cs[:-window]  # numpy buffers the overlapping operands
    return cs


def _window_lengths(n: int, window: int, ndim: int) -> np.ndarray:
    """How many steps the trailing window holds at each of n steps (1, 2, .., window, window, ..)."""
    return np.minimum(np.arange(1, n + 1), window).astype(np.float64).reshape((n,) + (1,) * (ndim - 1))


def trailing_sum(x: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Trailing sums of ``x`` along axis 0 over valid steps, and the number of valid steps.

    Returns ``(sums, counts)`` as float64 arrays (``counts`` broadcastable to ``sums``).
    """
    window = _check_window(window)
    x = np.asarray(x)
    finite = np.isfinite(x)
    if finite.all():
        return _trailing_sum_finite(x, window), _window_lengths(x.shape[0], window, x.ndim)
    sums = _trailing_sum_finite(np.where(finite, x, 0), window)
    counts = _trailing_sum_finite(finite, window)
    return sums, counts


def trailing_mean(x: np.ndarray, window: int, dtype=np.float32) -> np.ndarray:
    """Mean of ``x`` over the current and previous ``window - 1`` steps along axis 0."""
    sums, counts = trailing_sum(x, window)
    with np.errstate(invalid="ignore", divide="ignore"):
        np.divide(sums, counts, out=sums)
    return sums.astype(dtype, copy=False)
