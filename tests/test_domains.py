"""``vegviz domain add/list/show/remove``, ``--domain`` in the other commands, and every bad input.

Each test gets a data directory of its own (VEGVIZ_DATA_DIR = tmp_path/data); the continental
routing (about 20 s) is computed once per test session in a shared folder and linked into
each of them. Tests that build static fields or delineate an outlet need the source
packages (MCD12C1, ETOPO5) and are skipped with the reason when they are missing.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vegviz import cli, domains
from vegviz.data import static as static_mod

MISSING = static_mod.missing_sources()
needs_sources = pytest.mark.skipif(bool(MISSING), reason="; ".join(MISSING) or "sources installed")

#: a box of 5 x 6 cells in western Colorado (inside the sample archive's window)
BOX = "-108.4,38.6,-107.6,39.2"
#: a polygon of about 0.5 x 0.4 degrees in the same area (lon, lat)
RING = [(-107.9, 38.7), (-107.4, 38.7), (-107.4, 39.1), (-107.9, 39.1), (-107.9, 38.7)]


@pytest.fixture(scope="session")
def routing_dir(tmp_path_factory):
    """A folder holding the continental routing, computed once per session (None without ETOPO5)."""
    if MISSING:
        return None
    from vegviz.data.basin import routing

    root = tmp_path_factory.mktemp("routing-data")
    routing(data_dir=root)
    return root / "routing"


@pytest.fixture
def data_dir(tmp_path, monkeypatch, routing_dir):
    d = tmp_path / "data"
    d.mkdir()
    if routing_dir is not None:
        (d / "routing").symlink_to(routing_dir, target_is_directory=True)
    monkeypatch.setenv("VEGVIZ_DATA_DIR", str(d))
    return d


def run(capsys, *argv):
    """``vegviz ARGV`` in this process: (exit status, stdout, stderr)."""
    rc = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def files(d: Path) -> list[str]:
    """Everything written under the data directory, the shared routing aside."""
    return sorted(str(p.relative_to(d)) for p in d.rglob("*") if "routing" not in p.parts)


def write_geojson(path, ring, crs=None, feature=True):
    geom = {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}
    doc = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": geom}]} \
        if feature else geom
    if crs:
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    Path(path).write_text(json.dumps(doc))
    return Path(path)


def write_shapefile(path, ring, wkt):
    import shapefile

    path = Path(path)
    with shapefile.Writer(str(path.with_suffix("")), shapeType=shapefile.POLYGON) as w:
        w.field("name", "C")
        w.poly([list(ring)[::-1]])  # shapefile outer rings run clockwise
        w.record(path.stem)
    path.with_suffix(".prj").write_text(wkt)
    return path


def utm12(ring):
    import pyproj

    t = pyproj.Transformer.from_crs(4326, 26912, always_xy=True)
    return [t.transform(*p) for p in ring]


# ------------------------------------------------------------------------------------------- happy paths

@needs_sources
def test_bbox_domain_add_list_show_info_build_static_remove(data_dir, capsys):
    # a real subprocess: the console entry, a negative first value after --bbox, and the data dir from the env
    proc = subprocess.run([sys.executable, "-m", "vegviz.cli", "domain", "add", "box", "--bbox", BOX, "--title",
                           "A box in Colorado"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "VEGVIZ_DATA_DIR": str(data_dir)})
    assert proc.returncode == 0, proc.stderr
    assert "added domain 'box'" in proc.stdout
    assert "30 in the window, 30 land, 30 basin cells" in proc.stdout  # every land cell of the box
    assert "cover  : Grasslands" in proc.stdout and "(area shares inside the basin)" in proc.stdout
    dom = domains.get("box")
    assert dom.grid.shape == (5, 6) and dom.basin.kind == "window" and dom.title == "A box in Colorado"
    assert dom.grid.lat[0] == 38.6875 and dom.grid.lon[0] == -108.3125  # centres inside the box
    cached = list((data_dir / "static").glob("box-*.nc"))
    assert len(cached) == 1  # static fields built at once, cached
    km2 = float(static_mod.load_static(cached[0])["cell_area"].sum()) / 1e6
    assert f"{km2:,.0f} km2" in proc.stdout

    rc, out, _ = run(capsys, "domain", "list")
    assert rc == 0
    row = next(line for line in out.splitlines() if line.startswith("box "))
    assert row.split()[:5] == ["box", "user", "5", "x", "6"] and "window, 30 cells" in row
    assert "38.625..39.250 N, -108.375..-107.625 E" in row and row.endswith("A box in Colorado")
    for name in ("ucrb ", "conus ", "gunnison "):
        assert any(line.startswith(name) and " built-in " in line for line in out.splitlines())

    rc, out, _ = run(capsys, "domain", "show", "box")
    assert rc == 0 and "basin  : every land cell of the window" in out and "virtual_box_small" in out
    assert "lat0: 38.6875" in out

    rc, out, _ = run(capsys, "info", "--domain", "box")
    assert rc == 0 and "30 basin cells" in out and "cover  : Grasslands" in out and "elev.  :" in out

    before = cached[0].stat().st_mtime_ns
    rc, out, _ = run(capsys, "build-static", "--domain", "box")
    assert rc == 0 and f"wrote {cached[0]}" in out
    assert cached[0].stat().st_mtime_ns != before  # refreshed in place

    rc, out, _ = run(capsys, "domain", "remove", "box")
    assert rc == 0 and "cached static fields (1 file)" in out
    assert "box" not in domains.names() and not cached[0].exists()


@needs_sources
def test_outlet_domain_reports_area_and_error_against_the_gauge(data_dir, capsys):
    gunnison = domains.BUILTIN["gunnison"]
    area = gunnison.basin.gauge_area_km2
    lat, lon = domains.GUNNISON_GJ
    rc, out, err = run(capsys, "domain", "add", "gunnison2", "--outlet", f"{lat},{lon}", "--area", f"{area:.1f}")
    assert rc == 0, err
    dom = domains.get("gunnison2")
    assert (dom.grid.lat0, dom.grid.lon0, dom.grid.shape) == (gunnison.grid.lat0, gunnison.grid.lon0,
                                                              gunnison.grid.shape)
    static = static_mod.static_for("gunnison2")
    mask = static["mask"].values.astype(bool)
    km2 = float(static["cell_area"].values[mask].sum()) / 1e6
    assert f"{int(mask.sum())} basin cells, {km2:,.0f} km2 ({100 * (km2 / area - 1):+.1f} % against {area:,.0f} km2" \
        in out
    assert abs(km2 / area - 1) < 0.1  # the delineation is the gauge's basin
    np.testing.assert_array_equal(mask, static_mod.static_for("gunnison")["mask"].values.astype(bool))


@needs_sources
def test_from_outlet_reproduces_the_builtin_gunnison_window(data_dir):
    g = domains.BUILTIN["gunnison"]
    dom = domains.from_outlet("again", *g.basin.outlet, gauge_area_km2=g.basin.gauge_area_km2)
    assert (dom.grid.lat0, dom.grid.lon0, dom.grid.nlat, dom.grid.nlon) == (g.grid.lat0, g.grid.lon0, g.grid.nlat,
                                                                            g.grid.nlon)
    assert dom.basin.outlet == g.basin.outlet


@needs_sources
def test_polygon_as_geojson_and_as_shapefile_give_the_same_basin(data_dir, tmp_path, capsys):
    import pyproj

    gj = write_geojson(tmp_path / "basin.geojson", RING)
    shp = write_shapefile(tmp_path / "basin.shp", RING, pyproj.CRS.from_epsg(4269).to_wkt())  # NAD83 lon/lat
    assert run(capsys, "domain", "add", "from_json", "--polygon", gj)[0] == 0
    assert run(capsys, "domain", "add", "from_shp", "--polygon", shp)[0] == 0
    a, b = domains.get("from_json"), domains.get("from_shp")
    assert a.grid.shape == b.grid.shape == (6, 7) and a.basin.kind == "polygon"
    # the polygon is kept in the data directory: the domain outlives the original file
    assert Path(a.basin.polygon) == data_dir / "domains" / "from_json.geojson"
    gj.unlink()
    sa, sb = static_mod.static_for("from_json"), static_mod.static_for("from_shp")
    np.testing.assert_array_equal(sa["mask"].values, sb["mask"].values)
    frac = sa["basin_fraction"].values
    assert int(sa["mask"].sum()) == int((frac >= 0.5).sum()) == 12  # 4 x 3 cells at least half inside
    # the rasterised share is exact: the cells' area inside equals the polygon's (lon/lat) area
    assert frac.sum() == pytest.approx(0.5 * 0.4 / 0.125**2, rel=1e-6)
    rc, out, _ = run(capsys, "domain", "remove", "from_json")
    assert rc == 0 and not (data_dir / "domains" / "from_json.geojson").exists()


def test_missing_sources_still_register_and_say_what_to_install(data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(static_mod, "ETOPO5_PATH", tmp_path / "missing.cdf")
    rc, out, err = run(capsys, "domain", "add", "box", "--bbox", BOX)
    assert rc == 0 and "added domain 'box'" in out
    assert "registered, but its static fields cannot be built" in err and "ferret-datasets" in err
    assert "vegviz build-static --domain box" in err
    assert "box" in domains.names() and not (data_dir / "static").exists()
    rc, out, _ = run(capsys, "domain", "list")
    assert rc == 0 and any(line.startswith("box ") and "window " in line for line in out.splitlines())
    rc, out, _ = run(capsys, "domain", "show", "box")
    assert rc == 0 and "static : not built yet" in out
    # an outlet cannot even be delineated without the DEM: refused, nothing written
    before = files(data_dir)
    (data_dir / "routing").unlink(missing_ok=True)
    rc, _, err = run(capsys, "domain", "add", "somewhere", "--outlet", "38.98,-108.45")
    assert rc == 2 and "ferret-datasets" in err and files(data_dir) == before
    rc, _, err = run(capsys, "build-static", "--domain", "box")
    assert rc == 2 and "ferret-datasets" in err


# ------------------------------------------------------------------------------------------- bad input

BAD = {
    # case: (arguments after `domain add`, message, needs the sources)
    "name exists (user)": (["mine", "--bbox", BOX], r"domain 'mine' exists already .*Fix: choose another name, or "
                                                     r"`vegviz domain remove mine` first", False),
    "name exists (built in)": (["gunnison", "--bbox", BOX], r"domain 'gunnison' is built in\. Fix: choose another",
                               False),
    "malformed name": (["Rio-Grande", "--bbox", BOX], r"domain name 'Rio-Grande': use lower-case .*Fix:", False),
    "bbox with 3 numbers": (["x", "--bbox", "1,2,3"], r"--bbox '1,2,3': expected 4 numbers W,S,E,N.*Fix: e\.g\. "
                                                      r"--bbox -107\.5,37\.5,-105\.5,38\.5", False),
    "bbox not numbers": (["x", "--bbox", "-108,a,-107,39"], r"--bbox '-108,a,-107,39': expected 4 numbers", False),
    "bbox empty": (["x", "--bbox", "-107,38,-108,39"], r"is empty\. Fix: give it as W,S,E,N with W < E", False),
    "bbox outside NLDAS-2": (["x", "--bbox", "10,45,12,47"], r"outside the NLDAS-2 domain.*Fix:", False),
    "outlet outside NLDAS-2": (["x", "--outlet", "60,-100"], r"outlet \(60\.0, -100\.0\) lies outside the NLDAS-2 "
                                                             r"domain.*Fix: give latitude first", False),
    "outlet lon,lat swapped": (["x", "--outlet", "-108.45,38.98"], r"outside the NLDAS-2 domain.*latitude first",
                               False),
    "outlet one number": (["x", "--outlet", "38.98"], r"--outlet '38\.98': expected 2 numbers LAT,LON.*Fix:", False),
    "area without outlet": (["x", "--bbox", BOX, "--area", "100"], r"--area is the drainage area .*Fix:", False),
    "area not positive": (["x", "--outlet", "38.98,-108.45", "--area", "-3"], r"must be positive.*Fix:", False),
    "area not a number": (["x", "--outlet", "38.98,-108.45", "--area", "big"], r"--area 'big': expected a number",
                          False),
    "polygon missing": (["x", "--polygon", "{tmp}/nope.geojson"], r"does not exist\. Fix: check the path", False),
    "polygon UTM shapefile": (["x", "--polygon", "{tmp}/utm.shp"], r"utm\.shp is in CRS 'NAD83 / UTM zone 12N', not "
                                                                   r"longitude/latitude.*Fix: reproject", False),
    "polygon shapefile without .prj": (["x", "--polygon", "{tmp}/noprj.shp"], r"no \.prj file.*Fix:", False),
    "polygon GeoJSON, projected coordinates": (["x", "--polygon", "{tmp}/utm.geojson"],
                                               r"not longitude/latitude degrees, so it is in a projected CRS.*Fix: "
                                               r"reproject", False),
    "polygon GeoJSON, projected crs member": (["x", "--polygon", "{tmp}/utm_crs.geojson"],
                                              r"is in CRS 'NAD83 / UTM zone 12N'.*Fix: reproject", False),
    "polygon covers no cell": (["x", "--polygon", "{tmp}/tiny.geojson"], r"covers no grid cell by half or more.*Fix:",
                               False),
    "polygon outside NLDAS-2": (["x", "--polygon", "{tmp}/alps.geojson"], r"outside the NLDAS-2 domain", False),
    "polygon over water only": (["x", "--polygon", "{tmp}/gulf.geojson"], r"holds no land cell.*Fix: choose a basin "
                                                                          r"over land", True),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_exits_2_naming_the_fix_and_writes_nothing(case, data_dir, tmp_path, capsys):
    import pyproj

    argv, message, sources = BAD[case]
    if sources and MISSING:
        pytest.skip("; ".join(MISSING))
    domains.add(domains.from_bbox("mine", -108.4, 38.6, -107.6, 39.2))  # a user domain (registered only)
    utm = utm12(RING)
    write_shapefile(tmp_path / "utm.shp", utm, pyproj.CRS.from_epsg(26912).to_wkt())
    write_shapefile(tmp_path / "noprj.shp", RING, "").with_suffix(".prj").unlink()
    write_geojson(tmp_path / "utm.geojson", utm, feature=False)
    write_geojson(tmp_path / "utm_crs.geojson", utm, crs="urn:ogc:def:crs:EPSG::26912")
    write_geojson(tmp_path / "tiny.geojson", [(-107.9, 38.7), (-107.88, 38.7), (-107.88, 38.72), (-107.9, 38.7)])
    write_geojson(tmp_path / "alps.geojson", [(10, 46), (11, 46), (11, 47), (10, 46)])
    write_geojson(tmp_path / "gulf.geojson", [(-93.5, 26.5), (-92.5, 26.5), (-92.5, 27.5), (-93.5, 27.5),
                                              (-93.5, 26.5)])
    before = files(data_dir)
    yaml_before = (data_dir / "domains.yaml").read_text()
    rc, out, err = run(capsys, "domain", "add", *[a.format(tmp=tmp_path) for a in argv])
    assert rc == 2, (out, err)
    assert err.startswith("error: ") and "Traceback" not in err
    import re

    assert re.search(message, err, re.S), err
    assert files(data_dir) == before and (data_dir / "domains.yaml").read_text() == yaml_before


def test_domain_show_remove_and_info_of_unknown_names(data_dir, capsys):
    for argv in (["domain", "show", "nope"], ["info", "--domain", "nope"], ["build-static", "--domain", "nope"],
                 ["train", "--domain", "nope"]):
        rc, _, err = run(capsys, *argv)
        assert rc == 2 and "unknown domain 'nope'" in err and "vegviz domain add nope" in err, argv
    rc, _, err = run(capsys, "domain", "remove", "ucrb")
    assert rc == 2 and "built in and cannot be removed" in err
    rc, _, err = run(capsys, "domain", "remove", "nope")
    assert rc == 2 and "no user domain 'nope'" in err and "vegviz domain list" in err
    rc, _, err = run(capsys, "info", "virtual_ucrb_small", "--domain", "ucrb")
    assert rc == 2 and "Fix: `vegviz info --domain ucrb`" in err


def test_info_domain_of_the_study_uses_the_committed_file(data_dir, capsys):
    rc, out, _ = run(capsys, "info", "--domain", "ucrb")
    static = static_mod.load_static()
    mask = static["mask"].values.astype(bool)
    km2 = float(static["cell_area"].values[mask].sum()) / 1e6
    assert rc == 0 and f"{int(mask.sum())} basin cells, {km2:,.0f} km2" in out
    assert "against 289,561 km2, USGS 09380000" in out and "Grasslands" in out
    assert not (data_dir / "static").exists()  # nothing built


# ------------------------------------------------------------------------------------------- --domain elsewhere

def test_domain_option_chooses_the_domains_virtual_basin(data_dir):
    from vegviz.cli import _config, build_parser

    for command in ("train", "experiment"):
        args = build_parser().parse_args([command, "--domain", "gunnison"])
        assert _config(args).data == "virtual_gunnison"
        args = build_parser().parse_args([command, "--domain", "gunnison", "--data", "virtual_gunnison"])
        assert _config(args).data == "virtual_gunnison"
        args = build_parser().parse_args([command, "--domain", "gunnison", "--data", "virtual_ucrb"])
        with pytest.raises(ValueError, match="name two data sets.*--domain gunnison is --data virtual_gunnison"):
            _config(args)
    domains.add(domains.from_bbox("mine", -108.4, 38.6, -107.6, 39.2))
    assert _config(build_parser().parse_args(["train", "--domain", "mine"])).data == "virtual_mine"
    assert build_parser().parse_args(["build-basin"]).domain == "ucrb"
    assert build_parser().parse_args(["prepare", "--nldas", "a", "--globmap", "b", "--out", "c.zarr",
                                      "--domain", "mine"]).domain == "mine"


def test_signed_values_are_values_not_options():
    assert cli._join_signed_values(["domain", "add", "x", "--bbox", "-108,38,-107,39"]) == \
        ["domain", "add", "x", "--bbox=-108,38,-107,39"]
    assert cli._join_signed_values(["prepare", "--grid", "-1", "--out", "a"]) == ["prepare", "--grid=-1", "--out",
                                                                                  "a"]
    assert cli._join_signed_values(["train", "--domain", "x", "--no-progress"]) == \
        ["train", "--domain", "x", "--no-progress"]


def test_the_virtual_basin_entry_of_a_domain_is_named_in_one_place():
    """virtual_D / virtual_D_small for a name or a Domain; an unknown domain or variant is refused with the fix."""
    assert domains.virtual_entry("ucrb") == "virtual_ucrb"
    assert domains.virtual_entry(domains.get("gunnison"), "small") == "virtual_gunnison_small"
    with pytest.raises(domains.DomainError, match="unknown domain 'atlantis'.*Fix"):
        domains.virtual_entry("atlantis")
    with pytest.raises(ValueError, match="variant 'medium'.*Fix"):
        domains.virtual_entry("ucrb", "medium")
