"""The basin mask: the Upper Colorado River Basin delineated from the DEM.

The Upper Colorado River Basin (UCRB) is the area draining to Lee Ferry, Arizona,
the dividing point between the Upper and the Lower Basin in the Colorado River
Compact (1922, Art. II: "a point in the main stream of the Colorado River one mile
below the mouth of the Paria River"). The USGS gauge 09380000, Colorado River at
Lees Ferry, AZ (36.865 N, 111.588 W) reports a drainage area of 111,800 mi2 =
289,561 km2 (USGS National Water Information System,
https://waterdata.usgs.gov/monitoring-location/09380000/).

The catchment is delineated on the full-resolution ETOPO5 DEM (5 arc-minutes)
over the study window plus a margin:

1. depressions that are cheaper to breach than to fill are breached by a
   least-cost channel (:func:`breach_depressions`; Lindsay & Creed 2005,
   Lindsay 2016). Without it, the 5' DEM, which cannot resolve the Green River's
   canyons through the Uinta Mountains (Flaming Gorge, Lodore), floods the Green
   River basin of Wyoming over the low Continental Divide into the North Platte,
   and the catchment comes out at 247,000 km2, 15 % short;
2. the remaining depressions are filled with Priority-Flood+epsilon (Barnes, Lehman
   & Mulla 2014, "Priority-flood: An optimal depression-filling and
   watershed-labeling algorithm for digital elevation models", Computers &
   Geosciences 62, 117-127, doi:10.1016/j.cageo.2013.04.024, their Algorithm 3), so
   that every cell has a strictly lower neighbour on a path to the DEM's edge;
3. each cell drains to its steepest-descent neighbour of eight (D8; O'Callaghan &
   Mark 1984, doi:10.1016/S0734-189X(84)80011-0), with slopes over true distances
   on the sphere;
4. upstream area is accumulated along the drainage tree;
5. the outlet is snapped to the main stem nearest to Lees Ferry
   (:func:`snap_outlet`) and its catchment is traced upstream.

The 0/1 catchment indicator is then averaged onto the 1/8-degree study grid
(:func:`vegviz.grid.regrid_mean`, exact area overlap), giving the fraction of each
cell inside the basin (:func:`basin_fraction`); the mask is ``fraction >= 0.5`` on
cells whose majority land cover is not water (:func:`basin_mask`).

Result on ETOPO5 (``python -m vegviz.data.basin``): catchment 284,000 km2 on the
DEM, mask 284,500 km2 on the study grid, 2 % below the USGS figure. Wyoming's
endorheic Great Divide Basin drains to the North Platte on the filled DEM and is
outside the mask.
"""
from __future__ import annotations

import hashlib
import heapq
from collections import deque

import numpy as np
import xarray as xr

from .. import grid as _grid

#: USGS gauge 09380000, Colorado River at Lees Ferry, AZ (WGS84, decimal degrees).
LEES_FERRY = (36.865, -111.588)
#: Drainage area at USGS 09380000: 111,800 mi2 (USGS NWIS), in km2.
USGS_AREA_KM2 = 111_800 * 2.589988110336
#: DEM margin around the study window (degrees): the basin's divides must lie inside.
DEM_MARGIN_DEG = 1.0
#: Outlet snapping radius in DEM cells (3 x 5' ~ 15 km).
SNAP_CELLS = 3
#: Upstream areas within this factor of a gauge's published area count as its stream.
AREA_MATCH = 1.5
#: Share of a study cell that must lie inside the catchment for the cell to count.
MASK_THRESHOLD = 0.5

# D8 neighbour offsets (row, column); the order is the tie-break (earlier wins).
_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


# ------------------------------------------------------------------ flow routing on a raster

def fill_depressions(z: np.ndarray, epsilon: bool = True) -> np.ndarray:
    """Fill every depression of a DEM so that all cells drain to its edge.

    Priority-Flood (Barnes et al. 2014, doi:10.1016/j.cageo.2013.04.024): the edge
    cells (and cells next to NaN, which is treated as outside the domain) seed a
    priority queue; cells are visited from the lowest spill elevation inwards, and a
    cell lower than the one it was reached from is raised to it. With ``epsilon``,
    raised cells are set to the next representable float above their neighbour
    (their Algorithm 3), which gives flats and filled pits a gradient towards the
    spill point, so that D8 has a strictly lower neighbour everywhere but on the edge.

    Parameters
    ----------
    z
        2D float array (rows, columns); NaN marks no data.
    epsilon
        Raise filled cells by one float step per cell away from their outlet.

    Returns
    -------
    numpy.ndarray
        The filled DEM as float64 (NaN where ``z`` is NaN); ``z`` is not modified.
    """
    z = np.asarray(z, dtype=float)
    if z.ndim != 2:
        raise ValueError(f"fill_depressions takes a 2D DEM (rows, columns); got shape {z.shape}")
    out = z.copy()
    nr, nc = out.shape
    closed = ~np.isfinite(out)
    # Seeds: edge cells and cells next to no-data.
    seed = np.zeros(out.shape, bool)
    seed[0, :] = seed[-1, :] = seed[:, 0] = seed[:, -1] = True
    if closed.any():
        pad = np.pad(closed, 1, constant_values=False)
        for dr, dc in _OFFSETS:
            seed |= pad[1 + dr : 1 + dr + nr, 1 + dc : 1 + dc + nc]
    seed &= ~closed
    open_: list[tuple[float, int]] = [(out.flat[k], int(k)) for k in np.flatnonzero(seed)]
    heapq.heapify(open_)
    closed |= seed
    pit: deque[int] = deque()  # cells raised to their neighbour: no need for the heap
    flat, closed_flat = out.reshape(-1), closed.reshape(-1)
    while open_ or pit:
        c = pit.popleft() if pit else heapq.heappop(open_)[1]
        r, q = divmod(c, nc)
        zc = flat[c]
        spill = np.nextafter(zc, np.inf) if epsilon else zc
        for dr, dc in _OFFSETS:
            rr, qq = r + dr, q + dc
            if not (0 <= rr < nr and 0 <= qq < nc):
                continue
            n = rr * nc + qq
            if closed_flat[n]:
                continue
            closed_flat[n] = True
            if flat[n] <= spill:
                flat[n] = spill
                pit.append(n)
            else:
                heapq.heappush(open_, (flat[n], n))
    return out


def breach_depressions(z: np.ndarray) -> np.ndarray:
    """Carve least-cost channels out of depressions that are cheaper to breach than to fill.

    A coarse DEM cannot resolve a narrow canyon through a ridge (at 5' the Green
    River's canyons through the Uinta Mountains are a few cells of ridge), so filling
    floods whole valleys up to the lowest pass, which may lie across a real divide.
    Following the minimum-impact approach of Lindsay & Creed (2005, "Removal of
    artifact depressions from digital elevation models: towards a minimum impact
    approach", Hydrological Processes 19, 3113-3126, doi:10.1002/hyp.5835), every
    depression is either breached or filled, whichever changes the DEM less:

    * fill cost F: the volume (sum over cells of filled minus original elevation,
      in m x cells) of the depression the pit lies in, from a plain Priority-Flood;
    * breach cost B: the least total lowering (sum over cells of the elevation above
      the pit) along an 8-connected path from the pit to a cell lower than the pit or
      to the DEM's edge, found by Dijkstra's algorithm (the least-cost breaching of
      Lindsay 2016, doi:10.1002/hyp.10648), searched only while B < F.

    Pits are visited from the lowest up; a breach lowers its path to a straight
    descent from the pit to the exit cell. Depressions left (B >= F) are for
    :func:`fill_depressions` to fill. F is computed once, before any breach, so a
    depression merged with a breached one is costed as a whole (an overestimate that
    favours breaching only where the merged fill would be large).

    Returns the breached DEM as float64; ``z`` is not modified.
    """
    from scipy import ndimage

    z = np.asarray(z, dtype=float)
    if z.ndim != 2:
        raise ValueError(f"breach_depressions takes a 2D DEM (rows, columns); got shape {z.shape}")
    out = z.copy()
    nr, nc = out.shape
    depth = np.nan_to_num(fill_depressions(z, epsilon=False) - z, nan=0.0)
    labels, nlab = ndimage.label(depth > 0, structure=np.ones((3, 3)))
    fill_cost = np.concatenate([[0.0], ndimage.sum(depth, labels, np.arange(1, nlab + 1))])
    edge = np.zeros(out.shape, bool)
    edge[0, :] = edge[-1, :] = edge[:, 0] = edge[:, -1] = True
    edge |= ndimage.binary_dilation(~np.isfinite(out), structure=np.ones((3, 3)))
    flat, edge_flat = out.reshape(-1), edge.reshape(-1)
    pits = np.flatnonzero((depth > 0).reshape(-1) & ~edge_flat)
    for p in pits[np.argsort(flat[pits], kind="stable")]:
        zp = flat[p]
        budget = fill_cost[labels.flat[p]]
        cost = {int(p): 0.0}
        parent: dict[int, int] = {}
        heap = [(0.0, int(p))]
        exit_cell = -1
        while heap:
            b, c = heapq.heappop(heap)
            if b > cost[c]:
                continue
            if c != p and (flat[c] < zp or edge_flat[c]):
                exit_cell = c
                break
            r, q = divmod(c, nc)
            for dr, dc in _OFFSETS:
                rr, qq = r + dr, q + dc
                if not (0 <= rr < nr and 0 <= qq < nc):
                    continue
                n = rr * nc + qq
                if not np.isfinite(flat[n]):
                    continue
                # A tiny length cost makes the shortest of equal-cost paths win.
                nb = b + max(flat[n] - zp, 0.0) + 1e-6
                if nb < budget and nb < cost.get(n, np.inf):
                    cost[n] = nb
                    parent[n] = c
                    heapq.heappush(heap, (nb, n))
        if exit_cell < 0:
            continue  # cheaper to fill
        path = [exit_cell]
        while path[-1] != p:
            path.append(parent[path[-1]])
        path.reverse()
        z_exit = min(flat[exit_cell], zp)
        k = len(path) - 1
        for i, c in enumerate(path[1:], start=1):
            flat[c] = min(flat[c], zp - (zp - z_exit) * i / k)
    return out


def d8_receivers(z: np.ndarray, dy: float, dx) -> np.ndarray:
    """Index (into the flattened raster) of each cell's steepest-descent neighbour.

    Parameters
    ----------
    z
        2D float array; NaN cells neither drain nor receive.
    dy
        North-south spacing between rows (any length unit).
    dx
        East-west spacing between columns, a scalar or one value per row (on a
        lat/lon raster it shrinks with cos(latitude)).

    Returns
    -------
    numpy.ndarray
        int64 array of the raster's shape: the flat index of the receiving neighbour,
        or -1 where no neighbour is strictly lower (the DEM's outlets and edges, pits).
        Ties of equal slope go to the earlier neighbour in the order NW, N, NE, W, E,
        SW, S, SE.
    """
    z = np.asarray(z, dtype=float)
    if z.ndim != 2:
        raise ValueError(f"d8_receivers takes a 2D DEM (rows, columns); got shape {z.shape}")
    nr, nc = z.shape
    dx = np.asarray(dx, dtype=float)
    if dx.ndim and dx.size != nr:
        raise ValueError(f"dx must be a scalar or one value per row ({nr}); got {dx.size} values")
    dx = np.broadcast_to(dx.reshape(-1, 1) if dx.ndim else dx, (nr, 1))
    pad = np.pad(z, 1, constant_values=np.nan)
    best = np.zeros(z.shape)
    recv = np.full(z.shape, -1, dtype=np.int64)
    rows, cols = np.indices(z.shape)
    for dr, dc in _OFFSETS:
        dist = np.hypot(dr * dy, dc * dx)
        with np.errstate(invalid="ignore"):
            slope = (z - pad[1 + dr : 1 + dr + nr, 1 + dc : 1 + dc + nc]) / dist
        better = np.nan_to_num(slope, nan=0.0) > best  # strict: ties keep the earlier one
        best = np.where(better, slope, best)
        recv = np.where(better, (rows + dr) * nc + (cols + dc), recv)
    return recv


def _topological_order(receivers: np.ndarray) -> np.ndarray:
    """Flat indices ordered so that every cell comes before its receiver."""
    r = receivers.reshape(-1)
    n = r.size
    indeg = np.bincount(r[r >= 0], minlength=n)
    queue = deque(np.flatnonzero(indeg == 0).tolist())
    order = []
    while queue:
        c = queue.popleft()
        order.append(c)
        d = r[c]
        if d >= 0:
            indeg[d] -= 1
            if indeg[d] == 0:
                queue.append(d)
    if len(order) != n:
        raise ValueError("the receivers contain a cycle; fill the DEM (with epsilon) before routing")
    return np.asarray(order, dtype=np.int64)


def flow_accumulation(receivers: np.ndarray, weights=None) -> np.ndarray:
    """Sum of ``weights`` (default 1 per cell) over each cell and everything upstream."""
    acc = np.ones(receivers.size) if weights is None else np.array(weights, dtype=float).reshape(-1).copy()
    if acc.size != receivers.size:
        raise ValueError("weights must have the shape of the receivers raster")
    r = receivers.reshape(-1)
    for c in _topological_order(receivers):
        if r[c] >= 0:
            acc[r[c]] += acc[c]
    return acc.reshape(receivers.shape)


def catchment(receivers: np.ndarray, outlet: tuple[int, int]) -> np.ndarray:
    """Boolean raster of the cells that drain through ``outlet`` (row, column)."""
    nr, nc = receivers.shape
    start = outlet[0] * nc + outlet[1]
    order, ptr = _donors(receivers)  # then a breadth-first walk upstream
    inside = np.zeros(receivers.size, bool)
    inside[start] = True
    queue = deque([start])
    while queue:
        c = queue.popleft()
        for d in order[ptr[c] : ptr[c + 1]]:
            if not inside[d]:
                inside[d] = True
                queue.append(d)
    return inside.reshape(nr, nc)


# ------------------------------------------------------------------ the UCRB from ETOPO5

def dem_window(dem: xr.DataArray, grid: _grid.Grid = _grid.UCRB, margin: float = DEM_MARGIN_DEG) -> xr.DataArray:
    """The DEM over ``grid``'s extent plus ``margin`` degrees, lat/lon ascending, lon in -180..180."""
    for d in ("lat", "lon"):
        if d not in dem.dims:
            raise ValueError(f"the DEM needs dimensions 'lat' and 'lon'; it has {dem.dims}. Rename them first")
    dem = dem.assign_coords(lon=(dem["lon"] + 180.0) % 360.0 - 180.0).sortby("lat").sortby("lon")
    w, e, s, n = grid.extent
    out = dem.sel(lat=slice(s - margin, n + margin), lon=slice(w - margin, e + margin))
    if out.sizes["lat"] < 3 or out.sizes["lon"] < 3:
        raise ValueError(f"the DEM does not cover {grid.name} ({grid.extent}); use a DEM that does")
    return out


def snap_outlet(upstream_area: np.ndarray, lat, lon, point: tuple[float, float], radius: int = SNAP_CELLS,
                area_km2: float | None = None):
    """(row, column) of the main-stem cell nearest to ``point`` (lat, lon).

    A gauge's coordinates rarely fall on the DEM's drainage line. Taking the cell of
    largest upstream area within the radius would move the outlet downstream by up
    to ``radius`` cells; instead, as in the stream-snapping of Lindsay, Rothwell &
    Davies (2008, doi:10.1029/2007WR006507), the outlet is the nearest "stream"
    cell, here a cell carrying at least half of the largest upstream area within
    ``radius`` cells (the main stem; ties go to the larger area).
    """
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    i0 = int(np.argmin(np.abs(lat - point[0])))
    j0 = int(np.argmin(np.abs(lon - point[1])))
    rows = np.arange(max(i0 - radius, 0), min(i0 + radius + 1, lat.size))
    cols = np.arange(max(j0 - radius, 0), min(j0 + radius + 1, lon.size))
    win = upstream_area[np.ix_(rows, cols)]
    stream = win >= 0.5 * win.max()
    # Distances on the local tangent plane (degrees of latitude); fine within a few cells.
    dy = lat[rows][:, None] - point[0]
    dx = (lon[cols][None, :] - point[1]) * np.cos(np.deg2rad(point[0]))
    if area_km2 is not None:
        # streams of about the gauge's size (within a factor AREA_MATCH) replace the main stem
        near = (win >= float(area_km2) / AREA_MATCH) & (win <= float(area_km2) * AREA_MATCH)
        if near.any():
            stream = near
    dist = np.where(stream, np.hypot(dy, dx), np.inf)
    k = np.lexsort((-win.ravel(), dist.ravel()))[0]
    di, dj = np.unravel_index(k, win.shape)
    return int(rows[di]), int(cols[dj])


def _route(dem: xr.DataArray, breach: bool = True):
    """(lat, lon, filled DEM, D8 receivers, upstream area km2, cell area km2) of a regular lat/lon DEM."""
    lat = dem["lat"].values.astype(float)
    lon = dem["lon"].values.astype(float)
    for name, c in (("lat", lat), ("lon", lon)):
        step = np.diff(c)
        if c.size < 3 or not np.allclose(step, step[0], rtol=1e-3) or step[0] <= 0:
            raise ValueError(f"the DEM's {name} must be regular and ascending; use dem_window() to prepare it")
    dlat, dlon = np.deg2rad(np.diff(lat).mean()), np.deg2rad(np.diff(lon).mean())
    r2 = _grid.EARTH_RADIUS_M**2
    coslat = np.cos(np.deg2rad(lat))
    area_km2 = np.repeat((r2 * dlat * dlon * coslat / 1e6)[:, None], lon.size, axis=1)
    z = dem.transpose("lat", "lon").values.astype(float)
    filled = fill_depressions(breach_depressions(z) if breach else z, epsilon=True)
    recv = d8_receivers(filled, dy=dlat, dx=dlon * coslat)
    return lat, lon, filled, recv, flow_accumulation(recv, area_km2), area_km2


def _donors(receivers: np.ndarray):
    """Each cell's upstream neighbours in CSR form: ``order[ptr[c]:ptr[c + 1]]`` drain into flat cell c."""
    r = receivers.reshape(-1)
    has = np.flatnonzero(r >= 0)
    order = has[np.argsort(r[has], kind="stable")]
    return order, np.searchsorted(r[order], np.arange(r.size + 1))


def pfafstetter_units(dem: xr.DataArray, mask=None, outlet: tuple[float, float] | None = None,
                      breach: bool = True) -> xr.Dataset:
    """The nine level-1 Pfafstetter units of the basin above ``outlet`` (lat, lon), on the DEM's grid.

    Pfafstetter coding (Verdin & Verdin 1999, doi:10.1016/S0022-1694(99)00011-6): the main stem
    runs up from the outlet along the larger upstream area at every confluence; the four largest
    tributaries that join it are units 2, 4, 6 and 8, numbered from the outlet upstream; the
    main stem's own areas between them are the interbasins 1, 3, 5 and 7, and 9 is the headwater
    above tributary 8. Routing is :func:`delineate`'s (D8 after breaching and filling). Without
    ``outlet``, it is the cell of ``mask`` (a boolean (lat, lon) array) with the largest upstream
    area. Returns ``unit`` (int8: 1-9, 0 outside the basin), ``upstream_area`` (km2) and the
    attributes ``outlet_lat``, ``outlet_lon`` and, per unit, ``junction_lat_<u>``/``junction_lon_<u>``
    (where a tributary joins the main stem) and ``area_km2_<u>``.
    """
    lat, lon, _, recv, acc, area_km2 = _route(dem, breach)
    if outlet is not None:
        oi, oj = snap_outlet(acc, lat, lon, outlet)
    else:
        if mask is None:
            raise ValueError("pfafstetter_units needs an outlet (lat, lon) or a basin mask to find it in")
        m = np.asarray(mask, bool)
        if m.shape != acc.shape or not m.any():
            raise ValueError(f"the mask must be a non-empty boolean array of the DEM's shape {acc.shape}")
        oi, oj = np.unravel_index(int(np.argmax(np.where(m, acc, -np.inf))), acc.shape)
    nc = lon.size
    inside = catchment(recv, (oi, oj)).reshape(-1)
    order, ptr = _donors(recv)
    a = acc.reshape(-1)
    stem = [int(oi) * nc + int(oj)]
    while ptr[stem[-1] + 1] > ptr[stem[-1]]:
        donors = order[ptr[stem[-1]]:ptr[stem[-1] + 1]]
        stem.append(int(donors[np.argmax(a[donors])]))
    position = np.full(a.size, -1)
    position[stem] = np.arange(len(stem))
    mouths = [(a[d], k, int(d)) for k, c in enumerate(stem) for d in order[ptr[c]:ptr[c + 1]] if position[d] < 0]
    largest = sorted(sorted(mouths, key=lambda t: -t[0])[:4], key=lambda t: t[1])  # then from the outlet up
    junctions = [k for _, k, _ in largest]
    unit = np.zeros(a.size, np.int8)
    tributary = {d: 2 * (i + 1) for i, (_, _, d) in enumerate(largest)}
    r = recv.reshape(-1)
    for c in _topological_order(recv)[::-1]:  # every receiver before the cells draining into it
        if not inside[c]:
            continue
        if position[c] >= 0:  # on the main stem: the interbasin of its reach
            unit[c] = 1 + 2 * int(np.searchsorted(junctions, position[c], side="left"))
        else:
            unit[c] = tributary.get(int(c), unit[r[c]])
    attrs = {"outlet_lat": float(lat[oi]), "outlet_lon": float(lon[oj])}
    for i, (_, k, _) in enumerate(largest):
        ji, jj = divmod(stem[k], nc)
        attrs[f"junction_lat_{2 * (i + 1)}"], attrs[f"junction_lon_{2 * (i + 1)}"] = float(lat[ji]), float(lon[jj])
    for u in range(1, 10):
        attrs[f"area_km2_{u}"] = float(area_km2.reshape(-1)[unit == u].sum())
    coords = {"lat": dem["lat"], "lon": dem["lon"]}
    return xr.Dataset({"unit": (("lat", "lon"), unit.reshape(acc.shape), {"long_name": "Pfafstetter unit (level 1)"}),
                       "upstream_area": (("lat", "lon"), acc, {"units": "km2", "long_name": "D8 upstream area"})},
                      coords=coords, attrs=attrs)


def delineate(
    dem: xr.DataArray,
    outlet: tuple[float, float] = LEES_FERRY,
    snap_cells: int = SNAP_CELLS,
    breach: bool = True,
) -> xr.Dataset:
    """Catchment of ``outlet`` (lat, lon) on a regular lat/lon DEM window.

    Returns a Dataset on the DEM's grid with ``filled`` (m), ``upstream_area``
    (km2), ``catchment`` (int8 0/1) and attributes ``outlet_lat``/``outlet_lon``
    (the snapped outlet cell) and ``catchment_area_km2``. ``breach=False`` skips
    :func:`breach_depressions` (fill only).
    """
    lat, lon, filled, recv, acc, area_km2 = _route(dem, breach)
    if not (lat.min() <= outlet[0] <= lat.max() and lon.min() <= outlet[1] <= lon.max()):
        raise ValueError(f"outlet {outlet} lies outside the DEM window; widen the window")
    oi, oj = snap_outlet(acc, lat, lon, outlet, snap_cells)
    inside = catchment(recv, (oi, oj))
    coords = {"lat": dem["lat"], "lon": dem["lon"]}
    return xr.Dataset(
        {
            "filled": (("lat", "lon"), filled, {"units": "m", "long_name": "depression-filled elevation"}),
            "upstream_area": (("lat", "lon"), acc, {"units": "km2", "long_name": "D8 upstream area"}),
            "catchment": (("lat", "lon"), inside.astype("int8"), {"units": "1", "long_name": "inside the catchment"}),
        },
        coords=coords,
        attrs={
            "outlet_lat": float(lat[oi]),
            "outlet_lon": float(lon[oj]),
            "catchment_area_km2": float(area_km2[inside].sum()),
        },
    )


#: Bump when the routing changes: it is part of the cached routing's name.
ROUTING_VERSION = "1"
#: Margin of the continental DEM window around the NLDAS-2 domain (degrees).
ROUTING_MARGIN_DEG = 0.5


def routing(dem: xr.DataArray | None = None, data_dir=None) -> xr.Dataset:
    """D8 receivers and upstream area over the whole NLDAS-2 domain, computed once and cached.

    One continental routing (about 20 s on 2 cores for ETOPO5's 348 x 708 cells over CONUS)
    makes every outlet's catchment a trace up the drainage tree, with no window that could
    cut a divide off. Cached in the data directory as NetCDF (atomically), keyed by the DEM
    (its registration and file size) and :data:`ROUTING_VERSION`; a ``dem`` passed in is
    computed afresh, not cached.
    """
    from ..io import write_netcdf_atomic
    from ..paths import cache_dir

    path = None
    if dem is None:
        from .static import ETOPO5_SHIFT_DEG, etopo5_path, read_etopo5

        src = etopo5_path()
        key = f"{src.stat().st_size}-{ETOPO5_SHIFT_DEG['lat']:.5f}-{ETOPO5_SHIFT_DEG['lon']:.5f}"
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        path = cache_dir(data_dir) / "routing" / f"etopo5-v{ROUTING_VERSION}-{int(digest, 16):x}.nc"
        if path.exists():
            with xr.open_dataset(path, engine="netcdf4") as ds:
                return ds.load()
        dem = read_etopo5()
    win = dem_window(dem, _grid.NLDAS, margin=ROUTING_MARGIN_DEG)
    lat = win["lat"].values.astype(float)
    lon = win["lon"].values.astype(float)
    dlat, dlon = np.deg2rad(np.diff(lat).mean()), np.deg2rad(np.diff(lon).mean())
    coslat = np.cos(np.deg2rad(lat))
    area_km2 = np.repeat((_grid.EARTH_RADIUS_M**2 * dlat * dlon * coslat / 1e6)[:, None], lon.size, axis=1)
    z = win.transpose("lat", "lon").values.astype(float)
    filled = fill_depressions(breach_depressions(z), epsilon=True)
    recv = d8_receivers(filled, dy=dlat, dx=dlon * coslat)
    acc = flow_accumulation(recv, area_km2)
    ds = xr.Dataset(
        {"receivers": (("lat", "lon"), recv.astype("int64"), {"long_name": "flat index of the D8 receiver, -1 at outlets"}),
         "upstream_area": (("lat", "lon"), acc, {"units": "km2", "long_name": "D8 upstream area"}),
         "cell_area": (("lat", "lon"), area_km2, {"units": "km2"})},
        coords={"lat": win["lat"], "lon": win["lon"]},
        attrs={"source": "ETOPO5 (registered), least-cost breached, Priority-Flood+epsilon filled, D8 "
                         f"(vegviz.data.basin, routing version {ROUTING_VERSION})"},
    )
    if path is not None:
        write_netcdf_atomic(ds, path, {v: {"zlib": True, "complevel": 1} for v in ds.data_vars})
    return ds


def catchment_of(outlet: tuple[float, float], area_km2: float | None = None, route: xr.Dataset | None = None,
                 snap_cells: int = SNAP_CELLS) -> xr.Dataset:
    """The catchment of ``outlet`` (lat, lon) on the continental routing (:func:`routing`).

    ``area_km2``, a gauge's published drainage area, makes the snapping pick the stream
    of that size (:func:`snap_outlet`). Returns ``catchment`` (int8) on the DEM grid with
    attributes ``outlet_lat``/``outlet_lon`` and ``catchment_area_km2``.
    """
    route = routing() if route is None else route
    lat, lon = route["lat"].values, route["lon"].values
    if not (lat[0] <= outlet[0] <= lat[-1] and lon[0] <= outlet[1] <= lon[-1]):
        raise ValueError(f"outlet {outlet} lies outside the NLDAS-2 domain. Fix: give (lat, lon) inside it")
    acc = route["upstream_area"].values
    recv = route["receivers"].values
    oi, oj = snap_outlet(acc, lat, lon, outlet, snap_cells, area_km2=area_km2)
    inside = catchment(recv, (oi, oj))
    return xr.Dataset(
        {"catchment": (("lat", "lon"), inside.astype("int8"), {"units": "1", "long_name": "inside the catchment"})},
        coords={"lat": route["lat"], "lon": route["lon"]},
        attrs={"outlet_lat": float(lat[oi]), "outlet_lon": float(lon[oj]),
               "catchment_area_km2": float(route["cell_area"].values[inside].sum())},
    )


def basin_fraction(grid: _grid.Grid = _grid.UCRB, dem: xr.DataArray | None = None,
                   outlet: tuple[float, float] = LEES_FERRY, area_km2: float | None = USGS_AREA_KM2) -> xr.DataArray:
    """Fraction (0..1) of each ``grid`` cell inside the catchment of ``outlet`` (default Lees Ferry).

    The catchment comes from the continental routing on the registered ETOPO5
    (:func:`routing`; a ``dem`` passed in is routed afresh) and is averaged onto ``grid``
    by exact area overlap, so ``grid`` must hold the whole catchment.
    """
    basin = catchment_of(outlet, area_km2, routing(dem))
    frac = _grid.regrid_mean(basin["catchment"].astype(float), grid)
    inside = float(frac.sum())
    if inside > 0 and abs(float((frac * grid.cell_area()).sum()) / 1e6 - basin.attrs["catchment_area_km2"]) > \
            0.02 * basin.attrs["catchment_area_km2"] + 2 * float(grid.cell_area().max()) / 1e6:
        raise ValueError(f"the catchment of {outlet} reaches beyond {grid.name}. Fix: use a window that holds it "
                         "(vegviz.domains.from_outlet chooses one)")
    return frac.clip(0.0, 1.0).rename("basin_fraction").assign_attrs(
        units="1",
        long_name=f"fraction of the cell draining to the outlet at {outlet[0]:.4f} N, {outlet[1]:.4f} E",
        source="D8 flow directions on ETOPO5 (5', registered to NLDAS-2) over the NLDAS-2 domain, least-cost "
        "breached and Priority-Flood+epsilon filled; outlet snapped to the stream of the gauge's area (vegviz.data.basin)",
        catchment_area_km2=basin.attrs["catchment_area_km2"],
        outlet_lat=basin.attrs["outlet_lat"],
        outlet_lon=basin.attrs["outlet_lon"],
    )


def basin_mask(static: xr.Dataset) -> xr.DataArray:
    """int8 0/1 (lat, lon): cells mostly inside the UCRB whose majority land cover is not water.

    Uses ``static["basin_fraction"]`` when the Dataset has it, else delineates the
    basin from ETOPO5 (:func:`basin_fraction`) on the grid of ``static``.
    """
    if "landcover" not in static:
        raise ValueError("basin_mask needs 'landcover' in the static Dataset; build it with vegviz.data.static")
    if "basin_fraction" in static:
        frac = static["basin_fraction"]
    else:
        frac = basin_fraction(_grid.nldas_window(static["lat"].values, static["lon"].values))
    mask = (frac >= MASK_THRESHOLD) & (static["landcover"] != 0)
    return mask.astype("int8").rename("mask")


def main() -> None:
    """Print the delineation's numbers against the USGS drainage area."""
    from .static import load_static

    static = load_static()
    frac = basin_fraction(_grid.nldas_window(static["lat"].values, static["lon"].values))
    mask = basin_mask(static.drop_vars(["basin_fraction", "mask"], errors="ignore").assign(basin_fraction=frac))
    area = float((static["cell_area"] * mask).sum()) / 1e6
    print(f"catchment on ETOPO5: {frac.attrs['catchment_area_km2']:,.0f} km2")
    print(f"mask on the study grid: {area:,.0f} km2 in {int(mask.sum())} cells "
          f"({100 * (area / USGS_AREA_KM2 - 1):+.1f} % vs USGS 09380000, {USGS_AREA_KM2:,.0f} km2)")


if __name__ == "__main__":
    main()
