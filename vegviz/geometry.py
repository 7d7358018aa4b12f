"""Basin polygons: read (GeoJSON, shapefile), check their CRS, rasterise by cell fraction.

A polygon must be in geographic longitude/latitude on the WGS84 or NAD83 datum (the two
differ by about a metre in CONUS, far below a 1/8 degree cell); anything else is refused
with the command that reprojects it, because a silently misread projection would put the
basin hundreds of kilometres off.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import grid as _grid

#: Ellipsoid semi-major axes (m) accepted as "WGS84 or NAD83 lon/lat" (WGS84 and GRS80 share it).
_GEOGRAPHIC_A = 6_378_137.0
REPROJECT_HINT = ("Fix: reproject it to longitude/latitude (EPSG:4326), e.g. "
                  "`ogr2ogr -t_srs EPSG:4326 basin.geojson basin.shp`, or geopandas' .to_crs(4326)")


class PolygonError(ValueError):
    """A polygon file that cannot be used as a basin; the message names the problem and the fix."""


def _check_crs_wkt(wkt: str, path: Path) -> None:
    import pyproj

    try:
        crs = pyproj.CRS.from_user_input(wkt)
    except pyproj.exceptions.CRSError as e:
        raise PolygonError(f"{path}: its CRS cannot be read ({e}). {REPROJECT_HINT}") from None
    if not crs.is_geographic or abs(crs.ellipsoid.semi_major_metre - _GEOGRAPHIC_A) > 1.0:
        raise PolygonError(f"{path} is in CRS {crs.name!r}, not longitude/latitude on WGS84/NAD83. {REPROJECT_HINT}")


def _shapes_from_geojson(path: Path):
    from shapely.geometry import shape

    try:
        doc = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PolygonError(f"{path} is not valid GeoJSON ({e}). Fix: export the polygon as GeoJSON") from None
    crs = doc.get("crs") if isinstance(doc, dict) else None
    if crs:  # legacy (2008) member; RFC 7946 GeoJSON is always WGS84 lon/lat
        name = (crs.get("properties") or {}).get("name", "")
        if not any(k in name for k in ("CRS84", "4326", "4269", "CRS83")):
            _check_crs_wkt(name, path)
    feats = doc.get("features") if doc.get("type") == "FeatureCollection" else [doc]
    geoms = []
    for f in feats:
        g = f.get("geometry") if f.get("type") == "Feature" else f
        if g:
            geoms.append(shape(g))
    return geoms


def _shapes_from_shapefile(path: Path):
    import shapefile
    from shapely.geometry import shape

    prj = path.with_suffix(".prj")
    if not prj.exists():
        raise PolygonError(f"{path} has no .prj file, so its CRS is unknown. Fix: add the .prj next to it, or "
                           "export the polygon as GeoJSON (always longitude/latitude)")
    _check_crs_wkt(prj.read_text(), path)
    try:
        return [shape(s.__geo_interface__) for s in shapefile.Reader(str(path)).shapes()]
    except shapefile.ShapefileException as e:
        raise PolygonError(f"{path} cannot be read as a shapefile ({e})") from None


def read_polygon(path):
    """The union of the (multi)polygons in a GeoJSON or shapefile, as one shapely geometry in lon/lat."""
    import shapely

    path = Path(path).expanduser()
    if not path.exists():
        raise PolygonError(f"polygon file {path} does not exist. Fix: check the path")
    suffix = path.suffix.lower()
    if suffix in (".geojson", ".json"):
        geoms = _shapes_from_geojson(path)
    elif suffix == ".shp":
        geoms = _shapes_from_shapefile(path)
    else:
        raise PolygonError(f"{path}: polygon files must be .geojson/.json or .shp. Fix: convert it with ogr2ogr")
    geoms = [g for g in geoms if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty]
    if not geoms:
        raise PolygonError(f"{path} holds no polygon. Fix: pass a file with the basin's outline as a Polygon")
    geom = shapely.make_valid(shapely.unary_union(geoms))
    w, s, e, n = geom.bounds
    if not (-180 <= w <= e <= 360 and -90 <= s <= n <= 90):
        raise PolygonError(f"{path}: its coordinates ({w:.0f}..{e:.0f}, {s:.0f}..{n:.0f}) are not longitude/latitude "
                           f"degrees, so it is in a projected CRS. {REPROJECT_HINT}")
    if e > 180:  # 0..360 longitudes
        geom = shapely.affinity.translate(geom, xoff=-360.0)
    return geom


def write_geojson(geom, path) -> Path:
    """``geom`` as a one-feature GeoJSON file, written atomically."""
    from shapely.geometry import mapping

    from .io import write_atomic

    path = Path(path)
    doc = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": mapping(geom)}]}
    return write_atomic(path, json.dumps(doc).encode())


def polygon_fraction(geom, grid: _grid.Grid) -> np.ndarray:
    """(nlat, nlon) share of each cell's area inside ``geom`` (lon/lat), exact up to the cell's own
    curvature (within one 1/8 degree cell, area in lon/lat and on the sphere differ by < 0.1 %)."""
    import shapely

    shapely.prepare(geom)
    lon_b, lat_b = grid.lon_bounds, grid.lat_bounds
    x0, y0 = np.meshgrid(lon_b[:, 0], lat_b[:, 0])
    x1, y1 = np.meshgrid(lon_b[:, 1], lat_b[:, 1])
    boxes = shapely.box(x0.ravel(), y0.ravel(), x1.ravel(), y1.ravel())
    frac = np.zeros(boxes.size)
    inside = shapely.contains(geom, boxes)
    frac[inside] = 1.0
    edge = ~inside & shapely.intersects(geom, boxes)
    if edge.any():
        frac[edge] = shapely.area(shapely.intersection(boxes[edge], geom)) / shapely.area(boxes[edge])
    return np.clip(frac, 0.0, 1.0).reshape(grid.shape)
