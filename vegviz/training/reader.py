"""Normalised windows read out of core: chunk-aligned reads, a cache of decoded blocks, a prefetch thread.

Training, validation and prediction never hold a whole period of a large domain in memory.
A :class:`WindowReader` stands for one period of a lazily opened model-ready Dataset (Zarr
or NetCDF through xarray, usually dask-backed) and hands out normalised windows

    x, y = reader.read(t0, t1, rows, cols)   # (t1 - t0, channel, h, w), (t1 - t0, h, w)

with the same values :func:`~vegviz.training.windows.load_period` gives for the whole period
in memory (the same float32 operations, block by block, so the results are bitwise equal).

Reads are **chunk-aligned**: the reader works in the store's own chunks (the dask chunks
of the Dataset, which ``xr.open_zarr`` aligns with the chunks on disk), decodes each one
once, normalises it and keeps it in a least-recently-used cache of ``cache_bytes``. A window
is assembled from the blocks it overlaps. Peak memory is the cache plus the windows of a
batch: it depends on the batch, window and patch size, not on the length of the period or
the size of the domain. When the cache holds the whole period (the study's basin: 21 years
of 63 x 54 cells, 0.9 GB with the target) every block is decoded once per run, so streaming
costs what the in-memory path costs; on CONUS it holds the blocks the recent samples shared.

:func:`prefetched` runs the reads of the next batches in a background thread, so the device
does not wait for the disk (decompression and numpy release the GIL).

Torch-free on purpose (like xbatcher's core): the trainer turns the arrays into tensors.
"""
from __future__ import annotations

import threading
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import product

import numpy as np
import pandas as pd
import xarray as xr

from ..evaluation.periods import period_days
from .windows import period_indices

__all__ = ["BlockCache", "DEFAULT_CACHE_MB", "WindowReader", "patch_origins", "prefetched"]

#: default size of the decoded-block cache (config ``cache_mb``)
DEFAULT_CACHE_MB = 1024


@dataclass(frozen=True)
class _Variable:
    name: str
    data: object  # dask or numpy array (time, lat, lon)
    mean: float
    std: float
    target: bool


class BlockCache:
    """A thread-safe least-recently-used cache of decoded blocks, bounded in bytes; readers may share one."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_MB * 2**20):
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self.nbytes = 0
        self.misses = 0  # blocks decoded: what the benchmarks count
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            block = self._items.get(key)
            if block is not None:
                self._items.move_to_end(key)
            return block

    def put(self, key, block: np.ndarray) -> None:
        with self._lock:
            self.misses += 1
            if key in self._items or block.nbytes > self.max_bytes:
                return
            self._items[key] = block
            self.nbytes += block.nbytes
            while self.nbytes > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self.nbytes -= old.nbytes


class WindowReader:
    """Normalised inputs (and target) of one period of ``ds``, read lazily in windows.

    Parameters
    ----------
    ds
        The model-ready Dataset (validated; lazily opened is the point).
    stats
        The run's :class:`~vegviz.training.windows.Normalization`.
    start, end
        The period; ``pad_before`` days before ``start`` are included (burn-in), cut to the
        days the data hold. Index 0 of :meth:`read` is the first padded day.
    with_target
        Read the target too (training, validation) or not (prediction).
    target_period
        A period (e.g. a year set): the target is NaN on the days outside it.
    cache
        The :class:`BlockCache` of decoded, normalised blocks (default: a new one of
        :data:`DEFAULT_CACHE_MB`); readers of the same Dataset share the input blocks of one.
    """

    def __init__(self, ds: xr.Dataset, stats, start, end, *, pad_before: int = 0, with_target: bool = True,
                 target_period=None, cache: BlockCache | None = None):
        t = pd.DatetimeIndex(ds["time"].values)
        p0, i0, i1 = period_indices(t, start, end, pad_before)
        self.first = p0  # index of this reader's day 0 in the Dataset
        self.time = t[p0:i1]
        self.pad = i0 - p0
        self.shape = (len(self.time), ds.sizes["lat"], ds.sizes["lon"])
        self.mask = ds["mask"].fillna(0).values.astype(bool)
        self.statics = stats.static_fields(ds)
        self.n_channels = len(stats.channels) + (0 if self.statics is None else self.statics.shape[0])
        self.inputs = [_Variable(n, ds[n].transpose("time", "lat", "lon").data, m, s, False)
                       for n, m, s in zip(stats.channels, stats.mean, stats.std)]
        self.target = (_Variable(stats.target, ds[stats.target].transpose("time", "lat", "lon").data,
                                 stats.target_mean, stats.target_std, True) if with_target else None)
        self._in_target = None if target_period is None else period_days(t, target_period)
        self._grid = _block_grid(self.inputs[0].data, t.size, *self.shape[1:])
        self.cache = BlockCache() if cache is None else cache
        # inputs are the same for every reader of a Dataset; the target depends on the period
        self._key = (id(ds[stats.channels[0]].variable), id(self))

    # ------------------------------------------------------------------ windows
    def read(self, t0: int, t1: int, rows: slice = slice(None), cols: slice = slice(None), *,
             target: bool = True, out: tuple[np.ndarray, np.ndarray | None] | None = None
             ) -> tuple[np.ndarray, np.ndarray | None]:
        """Days ``[t0, t1)`` of this reader (0 = the first padded day) over ``rows`` x ``cols``.

        Returns ``x`` (time, channel, h, w) float32, NaN-free, the static channels after the
        daily ones, and ``y`` (time, h, w) float32, NaN where the target does not count (None
        without a target, or with ``target=False``). ``out``: arrays of those shapes to fill.
        """
        box = self._box(t0, t1, rows, cols)
        shape = (t1 - t0, box[3] - box[2], box[5] - box[4])
        target = target and self.target is not None
        x, y = out if out is not None else (np.empty((shape[0], self.n_channels, *shape[1:]), dtype=np.float32),
                                            np.empty(shape, dtype=np.float32) if target else None)
        n_daily = len(self.inputs)
        for c, var in enumerate(self.inputs):
            self._assemble(var, box, x[:, c])
        if self.statics is not None:
            x[:, n_daily:] = self.statics[:, box[2]:box[3], box[4]:box[5]]
        if target:
            self._assemble(self.target, box, y)
        return x, y

    def read_target(self, t0: int, t1: int, rows: slice = slice(None), cols: slice = slice(None)) -> np.ndarray:
        """The normalised target alone over a window (NaN where it does not count)."""
        box = self._box(t0, t1, rows, cols)
        y = np.empty((t1 - t0, box[3] - box[2], box[5] - box[4]), dtype=np.float32)
        self._assemble(self.target, box, y)
        return y

    def _box(self, t0: int, t1: int, rows: slice, cols: slice) -> tuple[int, ...]:
        r0, r1, _ = rows.indices(self.shape[1])
        c0, c1, _ = cols.indices(self.shape[2])
        if not (0 <= t0 < t1 <= self.shape[0]) or r1 <= r0 or c1 <= c0:
            raise IndexError(f"window days {t0}..{t1} rows {r0}..{r1} cols {c0}..{c1} outside the reader's "
                             f"{self.shape}")
        return self.first + t0, self.first + t1, r0, r1, c0, c1

    # ------------------------------------------------------------------ blocks
    def _assemble(self, var: _Variable, box, out: np.ndarray) -> None:
        a0, a1, r0, r1, c0, c1 = box
        for (b0, b1), (s0, s1), (e0, e1) in product(_spans(self._grid[0], a0, a1), _spans(self._grid[1], r0, r1),
                                                   _spans(self._grid[2], c0, c1)):
            block = self._block(var, b0, s0, e0)
            lo = (max(a0, b0), max(r0, s0), max(c0, e0))
            hi = (min(a1, b1), min(r1, s1), min(c1, e1))
            out[lo[0] - a0:hi[0] - a0, lo[1] - r0:hi[1] - r0, lo[2] - c0:hi[2] - c0] = \
                block[lo[0] - b0:hi[0] - b0, lo[1] - s0:hi[1] - s0, lo[2] - e0:hi[2] - e0]

    def _block(self, var: _Variable, b0: int, s0: int, e0: int) -> np.ndarray:
        key = (self._key[var.target], var.name, b0, s0, e0)
        block = self.cache.get(key)
        if block is not None:
            return block
        b1, s1, e1 = (_end(self._grid[k], v) for k, v in enumerate((b0, s0, e0)))
        raw = var.data[b0:b1, s0:s1, e0:e1]
        if hasattr(raw, "compute"):
            raw = raw.compute(scheduler="synchronous")  # this thread reads; no dask pool per block
        # the operations of load_period, so a window equals its slice of the in-memory arrays
        block = np.subtract(np.asarray(raw), np.float32(var.mean), dtype=np.float32)
        block *= np.float32(1.0 / var.std)
        if var.target:
            block[:, ~self.mask[s0:s1, e0:e1]] = np.nan
            if self._in_target is not None:
                block[~self._in_target[b0:b1]] = np.nan
        else:
            block[~np.isfinite(block)] = 0.0
        self.cache.put(key, block)
        return block


def _block_grid(data, nt: int, nlat: int, nlon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block boundaries along (time, lat, lon): the dask chunks, else a year by the whole grid."""
    chunks = getattr(data, "chunks", None)
    if chunks is None or not isinstance(chunks[0], tuple):
        chunks = (_even(nt, 365), (nlat,), (nlon,))
    return tuple(np.concatenate([[0], np.cumsum(c)]) for c in chunks)


def _even(n: int, size: int) -> tuple[int, ...]:
    return tuple(min(size, n - i) for i in range(0, n, size))


def _spans(edges: np.ndarray, lo: int, hi: int):
    """(start, end) of the blocks that overlap [lo, hi)."""
    k0 = int(np.searchsorted(edges, lo, side="right")) - 1
    k1 = int(np.searchsorted(edges, hi, side="left"))
    return [(int(edges[k]), int(edges[k + 1])) for k in range(k0, k1)]


def _end(edges: np.ndarray, start: int) -> int:
    return int(edges[int(np.searchsorted(edges, start, side="right"))])


def patch_origins(mask: np.ndarray, patch: int | None, min_basin: float, rng: np.random.Generator | None = None
                  ) -> list[tuple[int, int]]:
    """Upper-left corners of the training patches of one epoch.

    Patches of ``patch`` x ``patch`` cells tile the domain from a random offset (drawn from
    ``rng``; none without it), the last row and column shifted inward so every patch lies inside
    the grid; a patch is kept when at least ``min_basin`` of its cells (and at least one) are
    basin cells. ``patch`` None, or not smaller than the domain, gives the whole domain: [(0, 0)].
    """
    nlat, nlon = mask.shape
    if patch is None or (patch >= nlat and patch >= nlon):
        return [(0, 0)]
    h, w = min(patch, nlat), min(patch, nlon)
    origins = []
    axes = []
    for n, size in ((nlat, h), (nlon, w)):
        offset = int(rng.integers(0, size)) if rng is not None and size < n else 0
        starts = np.arange(-offset, n, size)
        starts = np.unique(np.clip(starts, 0, n - size))
        axes.append(starts)
    cum = np.pad(mask.astype(np.int64), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    for r in axes[0]:
        for c in axes[1]:
            inside = cum[r + h, c + w] - cum[r, c + w] - cum[r + h, c] + cum[r, c]
            if inside >= max(1, min_basin * h * w):
                origins.append((int(r), int(c)))
    return origins


def prefetched(items, load, depth: int = 2):
    """``load(item)`` for each of ``items``, in order, computed ``depth`` items ahead in a background thread.

    Closing the generator early (a stop request) cancels the reads not yet started.
    """
    items = list(items)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vegviz-read")
    pending = deque(pool.submit(load, it) for it in items[:depth])
    try:
        for i in range(len(items)):
            future = pending.popleft()
            if i + depth < len(items):
                pending.append(pool.submit(load, items[i + depth]))
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
