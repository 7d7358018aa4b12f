"""Regions of a basin as cell selections: a box, a polygon, an elevation band, a vegetation type, a sub-basin.

    cells = region_cells(observations, polygon=[(-109, 38), (-107, 38), (-108, 40)])
    cells = region_cells(observations, elevation=(2500, 3500))
    cells = region_cells(observations, subbasin=4)   # Pfafstetter unit 4: the second-largest tributary
    region_mask(observations, cells)          # the same, as a labelled (lat, lon) DataArray
    region_statistics(predictions, observations, cells, "test")   # its daily mean and spread per series

A selection is a (lat, lon) boolean array of basin (mask) cells; criteria given together
are combined (a box AND a band). The dashboards draw a region's mean series
(:func:`region_statistics`) with :func:`vegviz.evaluation.panels.region_timeseries` and its skill
distribution with :func:`~vegviz.evaluation.panels.nse_density` on :func:`restrict` -ed scores.
Given a :mod:`~vegviz.evaluation.series_store`, the statistics read the cell-major copy (a
vegetation type's are stored ready), not the map-major grid.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import xarray as xr

__all__ = ["describe_region", "region_cells", "region_mask", "region_statistics", "restrict", "subbasin_names",
           "subbasins"]

STATISTICS = ("mean", "lo", "hi")


def _centres(observations: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = np.meshgrid(observations["lon"].values, observations["lat"].values)
    return lon, lat


def subbasins(observations: xr.Dataset, outlet: tuple[float, float] | None = None) -> xr.DataArray:
    """The level-1 Pfafstetter units of the basin (:func:`vegviz.data.basin.pfafstetter_units`), routed on
    the data's own elevation (1/8 degree: a junction can sit a few cells from the mapped confluence)
    above ``outlet`` (default: the domain's gauge, e.g. Lees Ferry for the UCRB; for a domain without
    one, the basin cell of largest upstream area): int8 (lat, lon), 1-9 on basin cells, 0 elsewhere;
    the attributes name each unit's area and junction."""
    from ..data.basin import pfafstetter_units
    from ..domains import of_dataset

    mask = np.asarray(observations["mask"].transpose("lat", "lon").values) == 1
    if outlet is None:
        basin = of_dataset(observations).basin
        outlet = basin.outlet if basin.kind == "outlet" else None
    units = pfafstetter_units(observations["elevation"].transpose("lat", "lon").load(), mask=mask, outlet=outlet)
    out = units["unit"].where(mask, 0).astype(np.int8)
    out.attrs.update(units.attrs)
    return out


def subbasin_names(units: xr.DataArray) -> dict[int, str]:
    """{unit: readable name} of the units with basin cells, e.g. ``"4: tributary joining at 38.94°N,
    110.19°W"``, ``"9: headwaters of the main stem"``."""
    from ..basemap import degrees

    values = units.values
    names = {}
    for u in range(1, 10):
        if not (values == u).any():
            continue
        if u % 2 == 0:
            lat, lon = units.attrs[f"junction_lat_{u}"], units.attrs[f"junction_lon_{u}"]
            text = f"tributary joining at {degrees(lat, 'lat')}, {degrees(lon, 'lon')}"
        else:
            text = {1: "main stem at the outlet", 9: "headwaters of the main stem"}.get(
                u, f"main stem between {u - 1} and {u + 1}")
        names[u] = f"{u}: {text}"
    return names


def region_cells(observations: xr.Dataset, *, box: Sequence[float] | None = None,
                 polygon: Sequence[Sequence[float]] | None = None, elevation: Sequence[float] | None = None,
                 vegetation: int | None = None, subbasin: int | None = None) -> np.ndarray:
    """(lat, lon) selection of the basin cells inside every given criterion.

    ``box``: (west, south, east, north) in degrees; ``polygon``: its (lon, lat) vertices (a cell
    counts when its centre is inside); ``elevation``: (low, high) in m of the cells' mean
    elevation; ``vegetation``: an IGBP code of the dominant land cover; ``subbasin``: a level-1
    Pfafstetter unit 1-9 (:func:`subbasins`).
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
    if subbasin is not None:
        if int(subbasin) not in range(1, 10):
            raise ValueError(f"a Pfafstetter unit is 1-9, got {subbasin!r}")
        inside &= subbasins(observations).values == int(subbasin)
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


def describe_region(*, box=None, polygon=None, elevation=None, vegetation: str | None = None,
                    subbasin: int | None = None) -> str:
    """A region's name for titles and file names: "box 109.5°W-107°W, 38°N-40°N", "elevation 2500-3500 m"."""
    from ..basemap import degrees

    parts = []
    if vegetation:
        parts.append(str(vegetation))
    if subbasin is not None:
        parts.append(f"sub-basin {int(subbasin)}")
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


def _vegetation_of(observations: xr.Dataset, sel: np.ndarray) -> int | None:
    """The IGBP code when ``sel`` is exactly the basin cells of one vegetation type, else None."""
    if "landcover" not in observations:
        return None
    lc = np.asarray(observations["landcover"].transpose("lat", "lon").values)
    codes = np.unique(lc[sel])
    if codes.size != 1:
        return None
    return int(codes[0]) if np.array_equal(sel, region_cells(observations, vegetation=int(codes[0]))) else None


def region_statistics(predictions: xr.Dataset, observations: xr.Dataset, cells, period="test", *,
                      models: Sequence[str] | None = None, references: Sequence[str] = ("process",),
                      spread: Sequence[float] = (25, 75), store=None, grid: bool = True) -> xr.Dataset:
    """Daily statistics of the region's cells (a (lat, lon) selection) over ``period``, per series.

    One variable per series, dims (``statistic``, ``time``) with ``statistic`` = mean, lo, hi (the
    ``spread`` percentiles across cells, linear interpolation; NaN skipped); attribute ``kind``:
    each model ("model"), the process model ``"process"`` and the noiseless ``"truth"`` from
    ``references`` where present ("reference"), then the satellite composites ``"satellite"``
    ("observed": the mean over the cells observed that day, NaN between composites; no spread).
    ``store``: a :class:`~vegviz.evaluation.series_store.SeriesStore` of these data, read instead
    of the grid (the same values, much faster for long periods). ``grid=False``: a ValueError instead
    of reading a series from the grid (a background thread must not: HDF5 is not thread-safe).
    """
    from .periods import select_period
    from .scoring import checked_models
    from .series import REFERENCE_VARIABLES
    from .series_store import SPREAD, cell_statistics, day_statistics

    if not (len(spread) == 2 and 0 <= spread[0] < spread[1] <= 100):
        raise ValueError(f"spread must be two percentiles 0 <= low < high <= 100, got {spread!r}")
    sel = np.asarray(cells, bool)
    if not sel.any():
        raise ValueError("the region holds no basin cell. Fix: choose a larger region")
    entries = [(m, "model", m, predictions) for m in checked_models(predictions, models)]
    for label, var in REFERENCE_VARIABLES.items():
        if label in references and var in observations:
            entries.append((label, "reference", var, observations))
    entries.append(("satellite", "observed", "lai", observations))

    flat = np.flatnonzero(sel.ravel())
    index = store.cells(observations, sel) if store is not None else None
    # (not in a background thread: the land cover may be read from an HDF5 file)
    code = _vegetation_of(observations, sel) if index is not None and tuple(spread) == SPREAD and grid else None

    def one(entry) -> xr.DataArray:
        label, kind, var, source = entry
        what = "the predictions" if source is predictions else "the observations"
        da = select_period(source[var], period, what)
        times = da["time"].values
        wanted = None if kind == "observed" else spread
        stats = None
        days = store.days(times) if index is not None and var in store else None
        if days is not None:
            if code is not None and code in store.vegetation["vegetation"].values:
                veg = store.vegetation.sel(vegetation=code).isel(time=days)
                stats = {s: veg[f"{var}_{s}"].values for s in STATISTICS if f"{var}_{s}" in veg}
            else:
                stats = cell_statistics(store, var, index, days, wanted)
        if stats is None:
            if not grid:
                raise ValueError(f"{var!r} of this region and period is not in the series store")
            x = da.transpose("time", "lat", "lon").values.reshape(times.size, -1)[:, flat]
            stats = day_statistics(x, wanted)
        nan = np.full(times.size, np.nan, np.float32)
        values = np.stack([np.asarray(stats.get(s, nan), np.float32) for s in STATISTICS])
        return xr.DataArray(values, dims=("statistic", "time"), coords={"statistic": list(STATISTICS),
                            "time": times}, attrs={"kind": kind, "units": "m2 m-2", "source": var})

    if index is not None and code is None:
        # reading one series (zarr decodes outside the GIL) while the numbers of another are worked out
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2, thread_name_prefix="vegviz-region") as pool:
            arrays = list(pool.map(one, entries))
    else:  # the grid is read through HDF5, one reader at a time; the stored statistics need no work
        arrays = [one(e) for e in entries]
    out = {e[0]: a for e, a in zip(entries, arrays)}
    ds = xr.Dataset(out)
    ds.attrs.update(n_cells=int(sel.sum()), spread=list(spread))
    return ds
