"""Basin polygons: reading GeoJSON and shapefiles, refusing other CRSs, exact cell fractions."""
import json

import numpy as np
import pytest
import shapely

from vegviz import grid as G
from vegviz.geometry import PolygonError, polygon_fraction, read_polygon, write_geojson

GRID = G.Grid(39.0625, -106.9375, 6, 8)  # a 6 x 8 window of the NLDAS-2 lattice


def _geojson(tmp_path, coords, **extra):
    doc = {"type": "FeatureCollection", **extra,
           "features": [{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [coords]}}]}
    path = tmp_path / "basin.geojson"
    path.write_text(json.dumps(doc))
    return path


def test_fraction_of_a_box_on_cell_edges_is_exact():
    w, e, s, n = GRID.extent
    box = shapely.box(w + 0.125, s + 0.25, w + 0.5, s + 0.5)  # 3 x 2 whole cells
    frac = polygon_fraction(box, GRID)
    assert frac.sum() == pytest.approx(6.0, abs=1e-12)
    assert set(np.unique(frac)) == {0.0, 1.0}
    assert frac[2:4, 1:4].all()


def test_fraction_of_partial_cells():
    w, e, s, n = GRID.extent
    # a box covering half of one cell and a quarter of its neighbour
    box = shapely.box(w, s, w + 0.125 + 0.03125, s + 0.0625)
    frac = polygon_fraction(box, GRID)
    assert frac[0, 0] == pytest.approx(0.5, abs=1e-12)
    assert frac[0, 1] == pytest.approx(0.125, abs=1e-12)
    assert frac.sum() == pytest.approx(0.625, abs=1e-12)


def test_fraction_of_a_triangle_adds_up_to_its_area():
    w, e, s, n = GRID.extent
    tri = shapely.Polygon([(w + 0.1, s + 0.1), (e - 0.2, s + 0.15), (w + 0.3, n - 0.1)])
    frac = polygon_fraction(tri, GRID)
    # in degree^2 the shares add up to the polygon's area exactly (cells are equal in lon/lat)
    assert frac.sum() * 0.125**2 == pytest.approx(tri.area, rel=1e-9)


def test_read_geojson_and_round_trip(tmp_path):
    w, e, s, n = GRID.extent
    path = _geojson(tmp_path, [[w, s], [e, s], [e, n], [w, n], [w, s]])
    geom = read_polygon(path)
    assert geom.bounds == pytest.approx((w, s, e, n))
    out = write_geojson(geom, tmp_path / "copy.geojson")
    assert read_polygon(out).equals(geom)


def test_geojson_with_projected_coordinates_is_refused(tmp_path):
    path = _geojson(tmp_path, [[400000, 4300000], [410000, 4300000], [410000, 4310000], [400000, 4300000]])
    with pytest.raises(PolygonError, match="projected CRS.*EPSG:4326"):
        read_polygon(path)


def test_geojson_with_a_legacy_projected_crs_member_is_refused(tmp_path):
    path = _geojson(tmp_path, [[-107, 39], [-106, 39], [-106, 40], [-107, 39]],
                    crs={"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::26913"}})
    with pytest.raises(PolygonError, match="UTM zone 13N"):
        read_polygon(path)


def _shapefile(tmp_path, coords, prj_wkt):
    import shapefile

    base = tmp_path / "basin"
    with shapefile.Writer(str(base), shapeType=shapefile.POLYGON) as w:
        w.field("name", "C")
        w.poly([coords])
        w.record("basin")
    if prj_wkt is not None:
        (tmp_path / "basin.prj").write_text(prj_wkt)
    return tmp_path / "basin.shp"


def test_shapefile_in_lonlat_is_read(tmp_path):
    import pyproj

    ring = [[-107.0, 39.1], [-106.2, 39.1], [-106.2, 39.6], [-107.0, 39.6], [-107.0, 39.1]]
    geom = read_polygon(_shapefile(tmp_path, ring, pyproj.CRS.from_epsg(4269).to_wkt()))  # NAD83
    assert geom.area == pytest.approx(0.8 * 0.5)


def test_shapefile_in_utm_or_without_prj_is_refused(tmp_path):
    import pyproj

    ring = [[300000, 4330000], [360000, 4330000], [360000, 4380000], [300000, 4330000]]
    with pytest.raises(PolygonError, match="UTM zone 12N.*ogr2ogr"):
        read_polygon(_shapefile(tmp_path, ring, pyproj.CRS.from_epsg(26912).to_wkt()))
    (tmp_path / "basin.prj").unlink()
    with pytest.raises(PolygonError, match="no .prj"):
        read_polygon(tmp_path / "basin.shp")


def test_files_that_hold_no_polygon(tmp_path):
    with pytest.raises(PolygonError, match="does not exist"):
        read_polygon(tmp_path / "missing.geojson")
    (tmp_path / "x.kml").write_text("<kml/>")
    with pytest.raises(PolygonError, match=".geojson/.json or .shp"):
        read_polygon(tmp_path / "x.kml")
    (tmp_path / "pt.geojson").write_text(json.dumps({"type": "Point", "coordinates": [-107, 39]}))
    with pytest.raises(PolygonError, match="holds no polygon"):
        read_polygon(tmp_path / "pt.geojson")
