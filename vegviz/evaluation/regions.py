"""Regions of a basin as cell selections: a box, a polygon, an elevation band, a vegetation type.

    cells = region_cells(observations, polygon=[(-109, 38), (-107, 38), (-108, 40)])
    cells = region_cells(observations, elevation=(2500, 3500))
    region_mask(observations, cells)          # the same, as a labelled (lat, lon) DataArray

A selection is a (lat, lon) boolean array of basin (mask) cells; criteria given together
are combined (a box AND a band). The dashboards draw a region's mean series with
:func:`vegviz.evaluation.panels.region_timeseries` and its skill distribution with
:func:`~vegviz.evaluation.panels.nse_density` on :func:`restrict` -ed scores.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import xarray as xr

__all__ = ["describe_region", "region_cells", "region_mask", "restrict"]


def _centres(observations: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = np.meshgrid(observations["lon"].values, observations["lat"].values)
    return lon, lat


def region_cells(observations: xr.Dataset, *, box: Sequence[float] | None = None,
                 polygon: Sequence[Sequence[float]] | None = None, elevation: Sequence[float] | None = None,
                 vegetation: int | None = None) -> np.ndarray:
    """(lat, lon) selection of the basin cells inside every given criterion.

    ``box``: (west, south, east, north) in degrees; ``polygon``: its (lon, lat) vertices (a cell
    counts when its centre is inside); ``elevation``: (low, high) in m of the cells' mean
    elevation; ``vegetation``: an IGBP code of the dominant land cover.
    """
    inside = np.asarray(observations["mask"].transpose("lat", "lon").values) == 1
    lon, lat = _centres(observations)
    if box is not None:
        if len(box) != 4:
            raise ValueError(f"box must be (west, south, east, north), got {box!r}")
        w, s, e, n = (float(v) for v in box)
        inside &= (lon >= min(w, e)) & (lon <= max(w, e)) & (lat >= min(s, n)) & (lat <= max(s, n))
    if polygon is not None:
        from matplotlib.path import Path

        xy = np.asarray(polygon, dtype=float)
        if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) < 3:
            raise ValueError(f"a polygon needs three or more (lon, lat) vertices, got {len(xy)}")
        inside &= Path(xy).contains_points(np.column_stack([lon.ravel(), lat.ravel()])).reshape(lon.shape)
    if elevation is not None:
        lo, hi = sorted(float(v) for v in elevation)
        z = np.asarray(observations["elevation"].transpose("lat", "lon").values, dtype=float)
        inside &= (z >= lo) & (z <= hi)
    if vegetation is not None:
        inside &= np.asarray(observations["landcover"].transpose("lat", "lon").values) == int(vegetation)
    return inside


def region_mask(observations: xr.Dataset, cells: np.ndarray) -> xr.DataArray:
    """A (lat, lon) selection as a DataArray on the observations' grid."""
    return xr.DataArray(np.asarray(cells, bool), dims=("lat", "lon"),
                        coords={"lat": observations["lat"], "lon": observations["lon"]}, name="region")


def restrict(scores: xr.Dataset, cells: np.ndarray | xr.DataArray) -> xr.Dataset:
    """Per-cell ``scores`` with every cell outside ``cells`` set to NaN (the region's skill distribution)."""
    keep = cells if isinstance(cells, xr.DataArray) else xr.DataArray(
        np.asarray(cells, bool), dims=("lat", "lon"), coords={"lat": scores["lat"], "lon": scores["lon"]})
    out = scores.copy()
    for v in scores.data_vars:
        if {"lat", "lon"} <= set(scores[v].dims) and scores[v].dtype.kind == "f":
            out[v] = scores[v].where(keep)
    return out


def describe_region(*, box=None, polygon=None, elevation=None, vegetation: str | None = None) -> str:
    """A region's name for titles and file names: "box 109.5°W-107°W, 38°N-40°N", "elevation 2500-3500 m"."""
    from ..basemap import degrees

    parts = []
    if vegetation:
        parts.append(str(vegetation))
    if box is not None:
        w, s, e, n = box
        parts.append(f"box {degrees(min(w, e), 'lon')}-{degrees(max(w, e), 'lon')}, "
                     f"{degrees(min(s, n), 'lat')}-{degrees(max(s, n), 'lat')}")
    if polygon is not None:
        parts.append(f"drawn polygon ({len(polygon)} vertices)")
    if elevation is not None:
        lo, hi = sorted(elevation)
        parts.append(f"elevation {lo:.0f}-{hi:.0f} m")
    return ", ".join(parts) or "the whole basin"
