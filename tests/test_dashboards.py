"""The result-browsing dashboards (LAI maps, skill, time series) on a real tiny experiment, without a browser.

One tiny experiment (three models, one epoch, small virtual basin) is made through the
command line and shared by the module; VEGVIZ_RUNS_DIR points at its runs folder.
The maps are checked on what the browser receives: the arrays in the drawn Bokeh
data sources.
"""
from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import pytest
from bokeh.models import Plot, TapTool

from vegviz.contract import IGBP_CLASSES
from vegviz.dashboards import LaiMaps, Skill, TimeSeries
from vegviz.dashboards.maps import result_periods
from vegviz.dashboards.skill import ALL_TYPES, BASELINE_ALERT
from vegviz.evaluation import comparison_table, period_label, score
from vegviz.training import Config

MODELS = ["convlstm", "convlstm_physics", "lstm"]


@pytest.fixture(scope="module")
def runs_dir(tiny_experiment):
    """The session's runs directory (VEGVIZ_RUNS_DIR), holding the shared ``tiny`` experiment."""
    return tiny_experiment.path.parent


@pytest.fixture
def other_runs(monkeypatch, tmp_path):
    """An empty runs directory of its own, for this test only."""
    root = tmp_path / "runs"
    root.mkdir()
    monkeypatch.setenv("VEGVIZ_RUNS_DIR", str(root))
    return root


def drawn(component):
    """Render the component to a Bokeh model (as a server or notebook would); return the root."""
    root = pn.panel(component).get_root()
    assert root is not None
    return root


def image_data(component: LaiMaps, kind: str) -> np.ndarray:
    plots = list(component._plots[kind])
    assert plots, f"no drawn {kind} map"
    return np.asarray(plots[0].handles["source"].data["image"][0])


def visible_alerts(component) -> list[str]:
    """The alerts shown, but for the Skill tab's notice of the models below the climatology (a finding, no error)."""
    return [a.object for a in pn.panel(component).select(pn.pane.Alert) if a.visible and a.name != BASELINE_ALERT]


def masked(da, obs):
    return da.where(obs["mask"] == 1).transpose("lat", "lon").values


# ----------------------------------------------------------------------------- LAI maps

def test_lai_maps_moving_the_date_changes_the_drawn_maps(runs_dir):
    m = LaiMaps()
    root = drawn(m)
    figures = [f for f in root.select({"type": Plot}) if f.title is not None and str(m.date) in (f.title.text or "")]
    assert len(figures) == 3 and len({f.x_range.id for f in figures}) == 1  # linked pan and zoom
    # the mouse wheel scrolls the page, not the linked maps (the wheel-zoom tool is there, inactive)
    assert all(f.toolbar.active_scroll == "auto" and any(type(t).__name__ == "WheelZoomTool" for t in f.toolbar.tools)
               for f in figures)
    assert m.result == "tiny" and list(m.param.result.objects)[0] == "tiny"
    assert {"tiny/convlstm", "tiny/lstm"} <= set(m.param.result.objects)
    assert m.param.model.objects == MODELS and m.model == "convlstm"
    obs, pred = m.observations, m.predictions
    test_start = pd.Timestamp(Config.from_yaml(pred["convlstm"].attrs["run_config"]).periods.test[0])
    assert pd.Timestamp(m.date) >= test_start  # a test-period composite, like the study's panel (c)

    first = image_data(m, "satellite").copy()
    np.testing.assert_allclose(first, masked(obs["lai"].sel(time=str(m.date)), obs), equal_nan=True)
    composites = m._composites
    day = composites[composites > np.datetime64(m.date)][3].astype(object)
    arrays = m.render_date(day)
    sat, sim = image_data(m, "satellite"), image_data(m, "model")
    assert not np.allclose(sat, first, equal_nan=True)
    np.testing.assert_allclose(sat, masked(obs["lai"].sel(time=str(day)), obs), equal_nan=True)
    np.testing.assert_allclose(sim, masked(pred["convlstm"].sel(time=str(day)), obs), rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(image_data(m, "difference"), sim - sat, rtol=1e-5, equal_nan=True)
    np.testing.assert_array_equal(arrays["satellite"], sat)
    title = next(iter(m._plots["model"])).handles["plot"].title.text
    assert title == f"convlstm LAI {day:%Y-%m-%d}"
    assert "composite on this day: **yes**" in m.indicator.object

    m.model = "lstm"  # the model map follows the selector
    np.testing.assert_allclose(image_data(m, "model"), masked(pred["lstm"].sel(time=str(day)), obs),
                               rtol=1e-6, equal_nan=True)
    with pytest.raises(ValueError, match="outside the data period"):
        m.render_date("1900-01-01")


def test_lai_maps_composite_dates_are_marked_and_navigable(runs_dir):
    m = LaiMaps()
    drawn(m)
    gap = next(d for d in m._days if d not in set(m._composites) and d > m._composites[0])
    m.date = gap.astype(object)
    assert "composite on this day: **no**" in m.indicator.object and "nearest" in m.indicator.object
    assert np.isnan(image_data(m, "satellite")).all() and np.isnan(image_data(m, "difference")).all()
    m.jump_to_composite()
    assert np.datetime64(m.date) in set(m._composites)
    assert "**yes**" in m.indicator.object

    m.composites_only = True  # the player now steps through composite dates only
    assert m.player.end == m._composites.size - 1
    m.player.value = 10
    assert np.datetime64(m.date) == m._composites[10]
    m.date_slider.value = gap.astype(object)  # the slider snaps to the nearest composite
    assert np.datetime64(m.date) in set(m._composites)
    m.composites_only = False
    m.date_slider.value = gap.astype(object)
    assert m.date == gap.astype(object) and m.player.value == int(np.searchsorted(m._days, gap))


def test_lai_maps_click_shows_the_cells_series(runs_dir):
    m = LaiMaps()
    root = drawn(m)
    assert len(list(root.select({"type": TapTool}))) == 3 and len(m.tap_streams) == 3
    assert "Click a cell" in m.series.objects[0].object
    lat, lon = float(m._lat[30]), float(m._lon[20])
    m.tap_streams[1].event(x=lon + 0.04, y=lat - 0.05)  # anywhere inside the cell
    assert m.cell == (lat, lon)
    marker = next(iter(m._plots["marker"])).handles["source"].data
    assert list(marker["lat"]) == [lat] and list(marker["lon"]) == [lon]
    lai, *forcing = (p.object for p in m.series.objects[0])  # the LAI, and the forcing under it
    series = lai
    panels = {next(iter(f)).vdims[0].name for f in forcing}
    assert len(forcing) == 4 and panels == {"precipitation", "temperature", "dryness", "radiation"}
    year = m.date.year
    for model in MODELS:
        curve = next(c for c in series.traverse(lambda x: x, [hv.Curve]) if c.label == model)
        expected = m.predictions[model].sel(lat=lat, lon=lon).sel(time=str(year)).values
        np.testing.assert_allclose(curve.dimension_values("LAI"), expected, rtol=1e-6)
    m.date = dt.date(year - 1, 7, 1)  # the series follows the year
    curve = next(c for c in m.series.objects[0][0].object.traverse(lambda x: x, [hv.Curve]) if c.label == "lstm")
    assert pd.Timestamp(curve.dimension_values("time")[0]).year == year - 1
    m.tap_streams[0].event(x=-130.0, y=10.0)  # outside the grid: nothing changes
    assert m.cell == (lat, lon)


def test_lai_maps_land_cover_overlay_toggles(runs_dir):
    m = LaiMaps()
    drawn(m)
    renderers = [p.handles["glyph_renderer"] for p in m._plots["landcover"]]
    assert len(renderers) == 3 and not any(r.visible for r in renderers)
    m.show_landcover = True
    assert all(r.visible for r in renderers)
    assert isinstance(m.servable(), pn.viewable.Viewable)


def test_lai_maps_send_outlines_as_one_row_per_layer_and_land_cover_class(runs_dir):
    """The basemap and land-cover outlines reach the browser as a few NaN-separated rows, not
    thousands of two-point segments (~15,500 websocket buffers and ~10 s in the browser before)."""
    from bokeh.document import Document
    from bokeh.models import HoverTool, MultiLine
    from bokeh.protocol import Protocol

    from vegviz.basemap import mask_rings
    from vegviz.dashboards.base import basemap_overlay

    m = LaiMaps()
    root = drawn(m)
    obs = m.observations
    lc = np.asarray(obs["landcover"].transpose("lat", "lon").values)
    mask = np.asarray(obs["mask"].transpose("lat", "lon").values) == 1
    codes = np.unique(lc[mask])
    layers = [el for el in basemap_overlay(obs) if isinstance(el, hv.Path)]
    assert {el.label for el in layers} >= {"State lines", "Basin outline"}

    lines = [r for r in root.references() if hasattr(r, "glyph") and isinstance(r.glyph, MultiLine)]
    outlines = [r.data_source for r in lines if "land_cover" in r.data_source.data]
    basemap = [r.data_source for r in lines if "name" in r.data_source.data]
    assert len(outlines) == 3 and len(basemap) == 3 * len(layers)  # three maps
    for src in basemap:  # one row per layer, named after it (the outline: its domain), parts apart by NaN gaps
        assert len(src.data["xs"]) == 1 and src.data["name"][0] in {el.label for el in layers} | {m.title}
    assert m.title == "Upper Colorado River Basin" and m.title in {src.data["name"][0] for src in basemap}
    code_of = {name: code for code, name in IGBP_CLASSES.items()}
    for src in outlines:  # one row per class, coloured per class, every ring vertex kept
        assert sorted(src.data["land_cover"]) == sorted(IGBP_CLASSES[int(c)] for c in codes)
        assert len(set(src.data["color"])) == len(codes)
        for name, xs in zip(src.data["land_cover"], src.data["xs"]):
            rings = mask_rings(mask & (lc == code_of[name]), obs["lat"].values, obs["lon"].values)
            assert np.isfinite(xs).sum() == sum(len(r) for r in rings) and np.isnan(xs).sum() == len(rings) - 1
    hovers = [h for h in root.select({"type": HoverTool}) if ("land cover", "@{land_cover}") in list(h.tooltips)]
    assert len(hovers) == 3  # hovering an outline still names its class

    doc = Document()
    doc.add_root(root)
    buffers = Protocol().create("PULL-DOC-REPLY", "probe", doc).buffers
    assert len(buffers) < 300, f"{len(buffers)} binary buffers for the first page (15,531 before the fix)"


def test_data_and_runs_folders_are_found_without_torch(tmp_path, monkeypatch):
    """The dashboards find the two folders through the light vegviz.paths (the old places delegate)."""
    import subprocess
    import sys

    from vegviz import paths
    from vegviz.dashboards import sources
    from vegviz.data.virtual.store import cache_dir
    from vegviz.training import runs_root

    monkeypatch.setenv("VEGVIZ_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("VEGVIZ_DATA_DIR", str(tmp_path / "data"))
    assert runs_root() == paths.runs_root() == tmp_path / "runs"
    assert cache_dir() == paths.cache_dir() == tmp_path / "data" and cache_dir("~/x") == Path("~/x").expanduser()
    assert sources.allowed_roots() == [(tmp_path / "runs").resolve(), (tmp_path / "data").resolve()]
    monkeypatch.delenv("VEGVIZ_RUNS_DIR")
    monkeypatch.delenv("VEGVIZ_DATA_DIR")
    assert runs_root() == paths.user_data_dir() / "runs" and cache_dir() == paths.user_data_dir()
    code = ("import sys; import vegviz.dashboards.sources as s; s.allowed_roots(); s.list_results(); "
            "s.safe_path('x'); print(sorted(m for m in ('torch', 'vegviz.training', 'vegviz.data.virtual') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "VEGVIZ_RUNS_DIR": str(tmp_path / "runs")})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- skill

def test_skill_table_periods_metrics_and_vegetation(runs_dir):
    s = Skill()
    drawn(s)
    assert s.result == "tiny" and s.param.model.objects[:3] == MODELS
    cfg = Config.from_yaml(s.predictions["convlstm"].attrs["run_config"])
    assert s.period == "test" and s.period_dates() == tuple(cfg.periods.test)
    # the references of the experiment's comparison.md, the climatology over the result's own training years
    expected = comparison_table(score(s.predictions, s.observations, period=cfg.periods.test,
                                      references=("process", "noise_ceiling", "climatology"),
                                      train_period=cfg.periods.train), s.observations["landcover"])
    pd.testing.assert_frame_equal(s.table(), expected)
    assert list(s.table().index) == [*MODELS, "process", "climatology", "noise_ceiling"]
    assert "climatology" in s.param.model.objects
    # one epoch of 4 filters: no model beats the seasonal cycle (median NSE 0.12-0.38 against 0.65), said over the map
    assert s.below_climatology() == MODELS
    alert = s.view_map()
    assert isinstance(alert, pn.Column) and alert[0].name == BASELINE_ALERT
    assert "Below the climatology baseline" in alert[0].object
    assert all(f"{m} (" in alert[0].object for m in MODELS)
    # and in the map's title (so in every exported figure too)
    for m in MODELS:
        s.model = m
        the_map, _density = list(s.map_and_density())
        assert f"(median {s.table().loc[m, 'median NSE']:.3f}, below climatology)" in \
            the_map.get(0).opts.get().kwargs["title"]
    s.model = "convlstm"
    # shown as two narrower tables (it was one, wider than the page): overall, and NSE per type
    overall, by_type = s.tables()
    per_type = [c for c in expected.columns if c.startswith("median NSE: ")]
    assert len(per_type) >= 2 and list(overall.columns) == [c for c in expected.columns if c not in per_type]
    assert len(by_type.columns) == len(per_type) and not any(c.startswith("median") for c in by_type.columns)
    np.testing.assert_allclose(by_type.to_numpy(), expected.loc[by_type.index, per_type].to_numpy())
    tabs = list(pn.panel(s).select(pn.widgets.Tabulator))
    assert len(tabs) == 2 and all(t.sizing_mode in (None, "fixed") and t.layout == "fit_data_table" for t in tabs)
    assert list(tabs[0].value["model"]) == list(s.table().index)
    assert list(tabs[1].value.columns) == ["model", *by_type.columns]

    s.period = "validation"
    assert s.scores().attrs["period_start"] == cfg.periods.validation[0]
    assert s.scores() is s.scores()  # computed once per (result, period)

    box_all = s.boxplots()
    assert set(box_all.data["model"]) == set(MODELS) and box_all.data["vegetation"].nunique() >= 2
    veg = s.param.vegetation.objects[1]
    assert s.param.vegetation.objects[0] == ALL_TYPES
    s.vegetation = veg
    box = s.boxplots()
    assert list(box.data["vegetation"].str.rsplit(" (", n=1).str[0].unique()) == [veg]
    shown = s.shown_scores()["nse"].sel(model="convlstm").values
    assert np.isfinite(shown).sum() == int(box.data.query("model == 'convlstm'")["NSE"].size)

    s.metric = "rmse"
    assert "RMSE" in s.boxplots().vdims[0].name
    s.model = "process"  # a reference on the map, the trained models in the density
    layout = s.map_and_density()
    assert len(layout) == 2
    from bokeh.models import ColorBar

    # RMSE is in LAI units, said on the colour bar and the axes; NSE is dimensionless
    root = drawn(s)
    (bar,) = root.select({"type": ColorBar})
    assert bar.title.startswith("RMSE (m2 m-2)")
    axes = {a.axis_label for f in root.select({"type": Plot}) for a in [*f.xaxis, *f.yaxis]}
    assert "RMSE (m2 m-2)" in axes and any(str(a).startswith("RMSE (m2 m-2") for a in axes if a), axes
    assert not visible_alerts(s)

    # NSE below 0 is inside the drawn density axis and map colours (they were fixed at 0..1);
    # they stop at -1, as NSE goes to -inf, and say how many cells lie below
    s.metric, s.vegetation, s.model = "nse", ALL_TYPES, "convlstm"
    nse = s.scores()["nse"].sel(model=MODELS).values
    nse = nse[np.isfinite(nse)]
    assert (nse < 0).mean() > 0.1  # one epoch: many cells are worse than their mean
    from bokeh.plotting import figure

    root = drawn(s)
    (density,) = [f for f in root.select({"type": figure}) if "density" in f.title.text]
    lo = density.x_range.start
    assert lo == max(-1.0, np.floor(nse.min() * 10) / 10) and density.x_range.end == 1
    assert lo < 0 and ((nse >= lo) & (nse <= 1)).mean() > 0.5
    (bar,) = root.select({"type": ColorBar})
    assert (bar.color_mapper.low, bar.color_mapper.high) == (lo, 1)
    convlstm = s.scores()["nse"].sel(model="convlstm").values
    below = int((convlstm < lo).sum())
    assert (f"({below} cells < -1 in black)" in bar.title) == (below > 0)
    legends = [item.label["value"] for f in root.select({"type": figure}) for lg in f.legend for item in lg.items]
    assert any(f"cells < {lo:g} not shown" in t for t in legends) == bool((nse < lo).any())


# ----------------------------------------------------------------------------- time series

def test_timeseries_vegetation_and_clicked_cell(runs_dir):
    t = TimeSeries()
    drawn(t)
    assert t.vegetation == "Open shrublands" and t.period == "test"
    assert t.lat is not None and t.lon is not None  # a default cell of that type
    el = t.vegetation_element()
    label = period_label(t.period_dates(), "test", years=True)  # e.g. "test 2005", as the Skill titles
    assert f"mean LAI, {label}" in el.opts.get().kwargs["title"] and f"LAI, {label}" in \
        t.cell_element().opts.get().kwargs["title"]
    mean = next(c for c in el.traverse(lambda x: x, [hv.Curve]) if c.label == "convlstm").dimension_values("LAI")
    other = next(v for v in t.param.vegetation.objects if v != t.vegetation)
    t.vegetation = other
    el2 = t.vegetation_element()
    assert other in el2.opts.get().kwargs["title"]
    mean2 = next(c for c in el2.traverse(lambda x: x, [hv.Curve]) if c.label == "convlstm").dimension_values("LAI")
    assert not np.allclose(mean, mean2)
    # the curve is the mean over that type's basin cells
    obs, pred = t.observations, t.predictions
    sel = (obs["mask"] == 1) & (obs["landcover"] == t._veg_codes[other])
    start, end = t.period_dates()
    direct = pred["convlstm"].sel(time=slice(start, end)).where(sel).mean(("lat", "lon")).values
    np.testing.assert_allclose(mean2, direct, rtol=1e-4)

    lat, lon = float(t._lat[10]), float(t._lon[40])
    t.tap_stream.event(x=lon, y=lat)
    assert (t.lat, t.lon) == (lat, lon)
    cell = t.cell_element()
    assert f"{lat:.4f}°N, {-lon:.4f}°W" in cell.opts.get().kwargs["title"]
    # the picker's hover names the land-cover class (not its IGBP code) and the cell in °W/°N
    from bokeh.models import CustomJSHover, HoverTool

    (picker,) = [f for f in drawn(t).select({"type": Plot}) if f.title is not None and "click a cell" in f.title.text]
    (hover,) = [h for h in picker.tools if isinstance(h, HoverTool) and ("land cover", "@image{custom}") in
                (h.tooltips or [])]
    assert ("longitude", "$x{custom}") in hover.tooltips
    names = hover.formatters["@image"]
    assert isinstance(names, CustomJSHover) and "Open shrublands" in names.code
    curve = next(c for c in cell.traverse(lambda x: x, [hv.Curve]) if c.label == "lstm")
    np.testing.assert_allclose(curve.dimension_values("LAI"),
                               pred["lstm"].sel(lat=lat, lon=lon, time=slice(start, end)).values, rtol=1e-6)
    t.period = "validation"
    curve = next(c for c in t.cell_element().traverse(lambda x: x, [hv.Curve]) if c.label == "lstm")
    assert str(pd.Timestamp(curve.dimension_values("time")[0]).date()) == t.periods["validation"][0]
    t.lat = 80.0  # off the grid: an alert in the page, not an exception
    assert any("outside the grid" in a for a in visible_alerts(t))


# ----------------------------------------------------------------------------- shared behaviour

@pytest.mark.parametrize("cls", [LaiMaps, Skill, TimeSeries])
def test_without_results_the_page_says_how_to_make_one(other_runs, cls):
    c = cls()
    drawn(c)
    assert c.result is None and not c.ready
    text = " ".join(visible_alerts(c))
    assert "vegviz experiment --data virtual_ucrb_small" in text and "Training" in text


def test_refresh_picks_up_a_new_run(runs_dir, other_runs):
    c = TimeSeries()
    drawn(c)
    assert c.result is None
    shutil.copytree(runs_dir / "tiny" / "lstm", other_runs / "fresh")  # a run finished meanwhile
    assert c.refresh() == ["fresh"]
    assert c.result == "fresh" and c.ready and c.models == ["lstm"]
    assert not visible_alerts(c)
    assert "fresh" in c.header_text()


def test_header_says_which_data_set_and_that_it_is_synthetic(runs_dir):
    m = Skill()
    text = m.header_text()
    assert "virtual_ucrb_small" in text and "synthetic" in text and "tiny" in text
    assert text.startswith("**Upper Colorado River Basin** · ")  # the data's domain, from its attributes


def test_periods_come_from_the_results_own_config(runs_dir):
    from vegviz.dashboards import sources

    exp = sources.open_result("tiny")
    run = sources.open_result("tiny/lstm")
    cfg = Config.from_yaml(exp["convlstm"].attrs["run_config"])
    assert "config" in run.attrs  # a single run keeps it globally
    assert result_periods(exp) == result_periods(run) == {
        "train": tuple(cfg.periods.train), "validation": tuple(cfg.periods.validation),
        "test": tuple(cfg.periods.test)}


@pytest.mark.parametrize("cls", [LaiMaps, Skill, TimeSeries])
def test_a_damaged_result_shows_an_alert_and_the_component_stays_usable(runs_dir, other_runs, cls):
    shutil.copytree(runs_dir / "tiny" / "convlstm", other_runs / "good")
    broken = other_runs / "broken"
    shutil.copytree(runs_dir / "tiny" / "lstm", broken)
    (broken / "predictions.nc").write_bytes(b"this is not a netCDF file" * 100)
    c = cls(result="broken")
    drawn(c)
    assert not c.ready
    assert any("Could not open 'broken'" in a for a in visible_alerts(c))
    c.result = "good"
    assert c.ready and c.models == ["convlstm"]
    assert not any("Could not open" in a for a in visible_alerts(c))


# ----------------------------------------------------------------------------- a second domain, end to end

def image_extents(root) -> list[tuple[float, float, float, float]]:
    """(west, east, south, north) of every image drawn in a Bokeh document root."""
    from bokeh.models import GlyphRenderer, Image

    out = []
    for r in root.select({"type": GlyphRenderer}):
        if isinstance(r.glyph, Image):
            d = r.data_source.data
            x, y, dw, dh = (float(np.ravel(d[k])[0]) for k in ("x", "y", "dw", "dh"))
            out.append((x, x + dw, y, y + dh))
    return out


def overlay_bounds(overlay) -> tuple[float, float, float, float]:
    """(west, east, south, north) of every finite lon/lat point of an overlay's layers."""
    lon = np.concatenate([el.dimension_values("lon") for el in overlay])
    lat = np.concatenate([el.dimension_values("lat") for el in overlay])
    lon, lat = lon[np.isfinite(lon)], lat[np.isfinite(lat)]
    return lon.min(), lon.max(), lat.min(), lat.max()


def test_a_second_domain_flows_through_every_dashboard(gunnison_experiment, gunnison_basin, monkeypatch):
    """Train (the tiny experiment and one dashboard run), evaluate and browse on ``gunnison``: every
    component's title, extent and basemap window are the Gunnison's, none the UCRB's."""
    from vegviz import domains
    from vegviz.catalog import model_ready
    from vegviz.dashboards import App, TrainingDashboard
    from vegviz.dashboards.base import basemap_overlay

    monkeypatch.setenv("VEGVIZ_RUNS_DIR", str(gunnison_experiment.path.parent))
    gun, ucrb = domains.get("gunnison"), domains.get("ucrb")
    data, ds = gunnison_basin
    assert gun.grid.matches(ds.lat, ds.lon) and not ucrb.grid.matches(ds.lat, ds.lon)
    w, e, s, n = gun.extent

    for cls in (LaiMaps, Skill, TimeSeries):
        c = cls()
        root = drawn(c)
        assert c.result == "tiny_gunnison" and c.ready, c.error
        assert c.domain == gun and c.title == gun.title and c.extent == pytest.approx(gun.extent)
        header = c.header_text()
        assert gun.title in header and ucrb.title not in header
        extents = image_extents(root)
        assert extents, f"{cls.__name__} drew no map"
        for ext in extents:
            assert ext == pytest.approx(gun.extent), cls.__name__
    base = basemap_overlay(c.observations)
    bw, be, bs, bn = overlay_bounds(base)
    assert w - 1e-9 <= bw and be <= e + 1e-9 and s - 1e-9 <= bs and bn <= n + 1e-9
    outline = [el for el in base if el.label == "Basin outline"][0]
    assert outline.dimension_values("name")[0] == gun.title

    app = App()
    assert app.result == "tiny_gunnison" and app.page_title() == f"vegviz · daily LAI · {gun.title}"
    assert app.header_text().startswith(f"**{gun.title}** · Data set **{data}**")
    for tab in ("Skill", "Time series"):
        assert app.component(tab).domain == gun
    assert app.training_dashboard.data == "virtual_gunnison_small"  # training follows the shown domain

    dash = TrainingDashboard(data=data, model="lstm", filters=4, max_epochs=1, window=60, burn_in=20, chunk=20,
                             batch_size=4, stride=60, threads=1, device="cpu")
    assert set(model_ready()) <= set(dash.param.data.objects)  # every model-ready entry, every domain's
    assert data in dash.param.data.objects and dash.domain == gun and gun.title in dash.domain_text()
    empty = dash.satellite_map[()]
    (img,) = [el for el in empty if isinstance(el, hv.Image)]
    assert gun.grid.matches(img.dimension_values("lat", expanded=False), img.dimension_values("lon", expanded=False))
    assert gun.title in img.opts.get().kwargs["title"]
    assert dash.start(), dash.alert.object
    assert dash.wait(timeout=600) == "finished", dash.alert.object
    assert gun.title in dash._preview_text.object
    (img,) = [el for el in dash.predicted_map[()] if isinstance(el, hv.Image)]
    assert gun.grid.matches(img.dimension_values("lat", expanded=False), img.dimension_values("lon", expanded=False))


def test_a_differential_split_result_is_scored_on_its_own_years(runs_dir, other_runs):
    """A result trained with --split (periods as year sets, vegviz.training.split) opens in every dashboard,
    and each period means exactly its years, not the span between the first and last of them."""
    import xarray as xr
    import yaml

    years = {"train": [1998, 2000, 2001, 2003], "validation": [1999, 2005], "test": [2002, 2004]}
    dst = other_runs / "tiny_warm"
    shutil.copytree(runs_dir / "tiny", dst)
    pred = xr.load_dataset(dst / "predictions.nc")
    for m in MODELS:
        cfg = yaml.safe_load(pred[m].attrs["run_config"])
        cfg["periods"] = years
        pred[m].attrs["run_config"] = yaml.safe_dump(cfg)
    (dst / "predictions.nc").unlink()
    pred.to_netcdf(dst / "predictions.nc")

    assert result_periods(pred) == years
    s = Skill(result="tiny_warm")
    drawn(s)
    assert not visible_alerts(s) and s.period_dates() == [2002, 2004]
    scores = s.scores()
    assert list(scores.attrs["period_years"]) == [2002, 2004]
    expected = score(s.predictions, s.observations, period=[2002, 2004], references=("process",))
    np.testing.assert_array_equal(scores["nse"].sel(model="convlstm"), expected["nse"].sel(model="convlstm"))
    span = score(s.predictions, s.observations, period=("2002-01-01", "2004-12-31"), references=("process",))
    assert not np.allclose(scores["nse"].sel(model="convlstm"), span["nse"].sel(model="convlstm"), equal_nan=True)
    from bokeh.plotting import figure

    titles = [f.title.text for f in drawn(s).select({"type": figure}) if f.title is not None]
    assert any("test 2 years (2002, 2004)" in t for t in titles), titles

    t = TimeSeries(result="tiny_warm")
    drawn(t)
    assert not visible_alerts(t) and t.period_dates() == [2002, 2004]
    m = LaiMaps(result="tiny_warm")
    drawn(m)
    assert not visible_alerts(m) and pd.Timestamp(m.date).year == 2002  # a test day, in the first test year
