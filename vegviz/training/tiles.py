"""A model run over a whole period and domain, streamed: time chunks, and optionally tiles with a halo.

Validation and prediction both use :func:`stream`. The state is carried from chunk to chunk,
so the result does not depend on the chunk length (up to float rounding); the days per
forward call shrink on large domains so an input chunk stays within :data:`CHUNK_BYTES`.

With ``tile`` the domain is cut into ``tile`` x ``tile`` squares, each run (over all days,
state carried) on the square grown by ``halo`` cells on every side, of which only the square
is kept. The 'same' padding of a convolution sees zeros beyond a tile's edge where the whole
domain has neighbours; each day the error spreads one kernel radius inward, so no finite
halo is exact, but it decays with distance: ``benchmarks/bench_tiles.py`` measures it on the
UCRB for several halos, and :data:`vegviz.training.config.HALO` keeps it below 1 % of the LAI
standard deviation. Tiles without a basin cell are skipped (their output is masked anyway),
and per-cell models (``model.per_cell``) run on the basin cells only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

__all__ = ["CHUNK_BYTES", "Tile", "days_per_call", "stream", "tiles"]

#: largest input chunk (bytes) of one forward call without gradient
CHUNK_BYTES = 256 * 2**20


@dataclass(frozen=True)
class Tile:
    """Rows/columns kept (``rows``, ``cols``), rows/columns run (``outer_rows``, ``outer_cols``)."""

    rows: slice
    cols: slice
    outer_rows: slice
    outer_cols: slice

    @property
    def crop(self) -> tuple[slice, slice]:
        """The kept square inside the run one."""
        r, c = self.rows.start - self.outer_rows.start, self.cols.start - self.outer_cols.start
        return slice(r, r + self.rows.stop - self.rows.start), slice(c, c + self.cols.stop - self.cols.start)


def tiles(nlat: int, nlon: int, tile: int | None, halo: int) -> list[Tile]:
    """The tiles of a ``nlat`` x ``nlon`` grid (one covering everything when ``tile`` is None, 0 or not smaller)."""
    if not tile or (tile >= nlat and tile >= nlon):
        whole = (slice(0, nlat), slice(0, nlon))
        return [Tile(*whole, *whole)]
    out = []
    for r0 in range(0, nlat, tile):
        for c0 in range(0, nlon, tile):
            r1, c1 = min(r0 + tile, nlat), min(c0 + tile, nlon)
            out.append(Tile(slice(r0, r1), slice(c0, c1), slice(max(0, r0 - halo), min(nlat, r1 + halo)),
                            slice(max(0, c0 - halo), min(nlon, c1 + halo))))
    return out


def chunk_days(n_channels: int, cells: int, chunk: int) -> int:
    """Days per forward call: ``chunk``, or fewer where a chunk of inputs would exceed :data:`CHUNK_BYTES`."""
    return int(max(1, min(chunk, CHUNK_BYTES // (4 * n_channels * cells))))


def days_per_call(n_channels: int, run: list[Tile], chunk: int) -> int:
    """Days per forward call for every tile of ``run``: the largest one's :func:`chunk_days`.

    One time step for all tiles keeps their pieces on one grid of days (outputs written in
    chunks of that many days are written whole)."""
    return min(chunk_days(n_channels, (t.outer_rows.stop - t.outer_rows.start) * (t.outer_cols.stop - t.outer_cols.start),
                          chunk) for t in run)


def stream(model: torch.nn.Module, reader, hardware, *, chunk: int = 365, tile: int | None = None,
           halo: int = 0, days: int | None = None) -> Iterator[tuple[int, int, Tile, np.ndarray]]:
    """Normalised predictions of ``model`` over ``reader`` (a :class:`~vegviz.training.reader.WindowReader`).

    Yields ``(t0, t1, tile, y)``: ``y`` (t1 - t0, h, w) float32 holds the days ``[t0, t1)`` of
    the reader on the kept square of ``tile``; ``t0`` runs over multiples of :func:`days_per_call`.
    ``days``: run the first ``days`` days only (default: all of the reader's). A tile's days come in order; tiles one after the
    other (each keeps its blocks in the reader's cache while it runs).
    """
    model.eval()
    n_days, nlat, nlon = reader.shape
    n_days = n_days if days is None else min(int(days), n_days)
    mask = reader.mask
    per_cell = getattr(model, "per_cell", False)
    run = tiles(nlat, nlon, tile, halo)
    step = days_per_call(reader.n_channels, run, chunk)
    with torch.no_grad():
        for t in run:
            if not mask[t.rows, t.cols].any():
                continue
            outer = mask[t.outer_rows, t.outer_cols]
            kw = {"cells": torch.from_numpy(outer).to(hardware.device)} if per_cell else {}
            crop, state = t.crop, None
            for t0 in range(0, n_days, step):
                t1 = min(t0 + step, n_days)
                x, _ = reader.read(t0, t1, t.outer_rows, t.outer_cols, target=False)
                xt = torch.from_numpy(x[None]).to(hardware.device)
                with hardware.autocast():
                    y, state = model(xt, state, **kw)
                yield t0, t1, t, y[0, :, 0, crop[0], crop[1]].float().cpu().numpy()
