"""Trailing running sums and means along the first axis, via cumulative sums.

A trailing window at step t covers steps t-window+1 .. t, so a value never depends on
later days (the model stays causal and a temporal train/test split cannot leak). The
first window-1 steps use the shorter window that exists. Sums accumulate in float64:
over decades of days a float32 cumulative sum would lose digits in the differences.
NaN steps are skipped (mean over the valid steps of the window); a window without any
valid step gives NaN.

A record can also be fed in consecutive blocks along time (:class:`TrailingSum`,
:class:`TrailingMean`): each keeps the last ``window`` cumulative sums and continues the
same sequential float64 accumulation, so the blocks give bit for bit the values of the
whole record at once (out-of-core ``lai_process``, :func:`vegviz.physics.iter_lai_process`).
"""
from __future__ import annotations

import numpy as np


def _check_window(window) -> int:
    if int(window) != window or window < 1:
        raise ValueError(f"window must be a positive integer number of days, got {window!r}")
    return int(window)


class TrailingSum:
    """Trailing sums over a record fed in consecutive blocks along axis 0.

    ``push(block)`` returns ``(sums, counts)`` of the block's steps (float64; ``counts``
    broadcastable to ``sums``), exactly as :func:`trailing_sum` on the whole record would
    give them: the cumulative sum runs on from the previous block in the same order of
    additions, and only its last ``window`` rows are kept between blocks.
    """

    def __init__(self, window: int):
        self.window = _check_window(window)
        self.steps = 0  # steps pushed so far
        self._cs = None  # the last <= window cumulative sums (float64)
        self._cn = None  # ... and cumulative valid counts; None while every step was valid

    def push(self, x) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x)
        n, w = x.shape[0], self.window
        finite = np.isfinite(x)
        all_finite = bool(finite.all())
        if self._cn is None and not all_finite and self._cs is not None:
            # First gap: the counts so far were implicit (every earlier step valid).
            k = self._cs.shape[0]
            prev = np.arange(self.steps - k + 1, self.steps + 1, dtype=np.float64)
            self._cn = np.broadcast_to(prev.reshape((k,) + (1,) * (x.ndim - 1)), self._cs.shape).copy()
        sums, self._cs = self._advance(x if all_finite else np.where(finite, x, 0), self._cs)
        if self._cn is None and all_finite:
            t = np.arange(self.steps + 1, self.steps + n + 1)
            counts = np.minimum(t, w).astype(np.float64).reshape((n,) + (1,) * (x.ndim - 1))
        else:
            counts, self._cn = self._advance(finite, self._cn)
        self.steps += n
        return sums, counts

    def _advance(self, x: np.ndarray, tail: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(trailing sums of this block, the new tail of cumulative sums)."""
        n, w = x.shape[0], self.window
        cs = np.array(x, dtype=np.float64)  # a float64 copy: cumulated in place below
        if tail is not None:
            cs[0] += tail[-1]  # carry + x0, then + x1, ...: the whole record's order of additions
        np.cumsum(cs, axis=0, out=cs)
        new_tail = (cs[-w:] if tail is None or n >= w else np.concatenate([tail, cs])[-w:]).copy()
        if w < n:
            cs[w:] -= cs[:-w]  # numpy buffers the overlapping operands
        if tail is not None:
            # Steps whose window starts inside the previous blocks: subtract the carried sums.
            k = tail.shape[0]  # = min(window, steps so far)
            first = max(0, w - self.steps)  # steps < window have nothing to subtract
            m = min(n, w)
            if first < m:
                # block step i (global steps + i) subtracts the cumulative sum at global steps + i - w,
                # which is tail row k - w + i
                cs[first:m] -= tail[k - w + first:k - w + m]
        return cs, new_tail


def _window_lengths(n: int, window: int, ndim: int) -> np.ndarray:
    """How many steps the trailing window holds at each of n steps (1, 2, .., window, window, ..)."""
    return np.minimum(np.arange(1, n + 1), window).astype(np.float64).reshape((n,) + (1,) * (ndim - 1))


def trailing_sum(x: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Trailing sums of ``x`` along axis 0 over valid steps, and the number of valid steps.

    Returns ``(sums, counts)`` as float64 arrays (``counts`` broadcastable to ``sums``).
    """
    return TrailingSum(window).push(x)


class TrailingMean:
    """:func:`trailing_mean` over a record fed in consecutive blocks (see :class:`TrailingSum`)."""

    def __init__(self, window: int, dtype=np.float32):
        self._sum = TrailingSum(window)
        self.dtype = dtype

    def push(self, x) -> np.ndarray:
        return _mean(*self._sum.push(x), self.dtype)


def _mean(sums: np.ndarray, counts: np.ndarray, dtype) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        np.divide(sums, counts, out=sums)
    return sums.astype(dtype, copy=False)


def trailing_mean(x: np.ndarray, window: int, dtype=np.float32) -> np.ndarray:
    """Mean of ``x`` over the current and previous ``window - 1`` steps along axis 0."""
    return TrailingMean(window, dtype).push(x)
