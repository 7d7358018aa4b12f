"""The Scenarios dashboard on the shared tiny experiment: a real scenario built and projected in the background,
its views drawn as the browser receives them, bad input shown (never raised), and the page served alone in Chromium.

One job (module fixture) builds a +2 K / 90 % precipitation scenario over 2004-2005 of the small virtual
basin and projects one tiny model (convlstm, the dashboard's one-model case) on it, through the
dashboard's own Run path; the other tests read that projection (convlstm, process, truth).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import panel as pn
import pytest
from bokeh.models import ColorBar, GlyphRenderer, Image, TapTool, Title

from vegviz.dashboards import ScenariosDashboard
from vegviz.dashboards.scenarios import NEW, scenario_name
from vegviz.evaluation import below_baseline
from vegviz.evaluation.panels import DIFF_CMAP
from vegviz.scenarios import list_scenarios, scenario_path
from vegviz.scenarios.projection import list_projections, projections_root

MODELS = ["convlstm", "process", "truth"]
PERIOD = "2004:2005"  # two years: the 20-day burn-in leaves 2005 whole
TIMEOUT = 900  # s: a loaded 2-core CI machine


def drawn(component):
    root = pn.panel(component).get_root()
    assert root is not None
    return root


def visible_alerts(component) -> list[str]:
    return [a.object for a in pn.panel(component).select(pn.pane.Alert) if a.visible]


@pytest.fixture(scope="module")
def ran(tiny_experiment):
    """A dashboard that built a new scenario and projected the tiny experiment on it (its Run button's path)."""
    dash = ScenariosDashboard(source="tiny/convlstm", dt=2.0, precip=0.9, period=PERIOD)
    drawn(dash)
    assert dash.scenario == NEW and dash.new_name == scenario_name("virtual_ucrb_small", PERIOD, 2.0, 0.9)
    seen = []
    assert dash.start(), dash.alert.object
    assert dash.running and dash.status == "building" and dash._cancel_button.disabled is False
    dash.job.on_progress = (lambda f, t, show=dash._on_progress: (seen.append((f, t)), show(f, t)))
    assert dash.wait(TIMEOUT) == "finished", dash.alert.object
    return dash, seen


def test_a_new_scenario_is_built_projected_and_shown(ran):
    dash, seen = ran
    name = "virtual_ucrb_small_2004-2005_dT2_P90"
    assert dash.new_name == name and name in list_scenarios() and name in dash.param.scenario.objects
    assert dash.projection == f"convlstm--{name}" and dash.projection in list_projections()
    # progress went up step by step to the end, with the library's messages
    fractions = [f for f, _ in seen if f is not None]
    assert fractions == sorted(fractions) and len(fractions) >= 3 and dash._progress.value == 100
    assert any("built" in t for _, t in seen) and any("[truth]" in t for _, t in seen)
    assert not dash.running and dash._run_button.disabled is False and not dash.alert.visible
    assert dash.shown_models == MODELS
    assert "SYNTHETIC" in dash.header_text() and "+2 K" in dash.header_text()


def test_change_maps_are_centred_at_zero_with_units_and_the_truth(ran):
    dash, _ = ran
    root = drawn(dash)
    images = [r for r in root.select({"type": GlyphRenderer}) if isinstance(r.glyph, Image)]
    assert len(images) == len(MODELS)
    titles = [t.text for t in root.select({"type": Title})]
    assert "truth (virtual basin, SYNTHETIC)" in titles
    mask = dash.proj["mask"].values > 0
    for r in images:
        mapper = r.glyph.color_mapper
        assert mapper.low == -mapper.high and mapper.high > 0  # diverging, white at 0
        values = np.asarray(r.data_source.data["image"][0])
        assert np.isfinite(values[mask]).all() and not np.isfinite(values[~mask]).any()
    # what is drawn is the projection's Δ annual mean of each model
    truth = dash.proj["delta_annual_mean"].sel(model="truth").where(dash.proj["mask"] > 0).values
    assert any(np.allclose(np.asarray(r.data_source.data["image"][0]), truth, equal_nan=True) for r in images)
    bars = [c.title for c in root.select({"type": ColorBar})]
    assert bars and all(b == "Δ annual mean LAI (m2 m-2)" for b in bars)
    assert DIFF_CMAP == "BrBG" and len(list(root.select({"type": TapTool}))) == len(MODELS)
    # no ensemble: the page says so instead of a spread map
    assert "single member" in pn.panel(dash.view_spread()).object


def test_vegetation_types_and_truth_skill_are_shown(ran, tiny_experiment):
    dash, _ = ran
    row = dash.view_vegetation()
    assert isinstance(row, pn.Row), row
    box = row[0].object
    assert "per dominant vegetation type" in box.opts.get().kwargs["title"]
    models = set(box.dimension_values("model"))
    assert models == set(MODELS)
    text = row[1].object
    assert "Known-truth skill" in text and all(f"| {m}" in text for m in MODELS if m != "truth")
    # the source run's model scored below the climatology in its experiment's test period: said first
    below = below_baseline(pd.read_csv(tiny_experiment.path / "comparison.csv", index_col=0))
    assert ("**Warning.** In the test period of experiment tiny: Below the climatology baseline" in text) == \
        ("convlstm" in below)
    assert "convlstm_physics" not in text.split("Known-truth")[0]  # only the projected model is named


def test_another_quantity_redraws_in_its_units(ran):
    dash, _ = ran
    other = ScenariosDashboard(projection=dash.projection, quantity="peak_doy")  # the shared one stays as it is
    root = pn.panel(other.view_maps()).get_root()
    bars = [c.title for c in root.select({"type": ColorBar})]
    assert len(bars) == len(MODELS) and all(b == "Δ day of year of the peak LAI (day of year)" for b in bars)


def test_clicked_cell_shows_baseline_and_scenario(ran):
    dash, _ = ran
    assert "Click a cell" in dash.view_series().object
    mask = dash.proj["mask"].values > 0
    i, j = np.argwhere(mask)[len(np.argwhere(mask)) // 2]
    lat, lon = float(dash.proj["lat"][i]), float(dash.proj["lon"][j])
    dash.tap_streams[0].event(x=lon + 0.04, y=lat - 0.05)  # anywhere inside the cell
    assert dash.cell == (lat, lon)
    overlay = dash.view_series().object
    labels = [el.label for el in overlay]
    assert "convlstm baseline" in labels and "truth scenario" in labels
    curve = next(el for el in overlay if el.label == "truth scenario")
    expected = dash.proj["truth"].isel(lat=i, lon=j).values
    np.testing.assert_array_equal(curve.dimension_values("LAI"), expected)
    dash.tap_streams[0].event(x=-130.0, y=10.0)  # outside the grid: nothing changes
    assert dash.cell == (lat, lon)


def test_bad_input_is_shown_and_writes_nothing(ran):
    dash, _ = ran
    before = (set(list_scenarios()), set(list_projections()))
    bad = ScenariosDashboard(source="tiny/convlstm", new_name="1 bad name")
    assert not bad.start() and not bad.running
    assert "scenario name" in bad.alert.object and "Fix" in bad.alert.object
    # a period the data lack: the job fails in the library's checks, before anything is written
    bad = ScenariosDashboard(source="tiny/convlstm", period="1990:1991")
    assert bad.start()
    assert bad.wait(TIMEOUT) == "failed"
    assert bad.alert.visible and "not inside the data" in bad.alert.object and "Fix" in bad.alert.object
    assert not scenario_path(bad.new_name).exists()
    # a projection made already is shown, not made again
    again = ScenariosDashboard(source="tiny/convlstm", scenario=dash.new_name)
    assert not again.start() and "exists already" in again.alert.object
    assert (set(list_scenarios()), set(list_projections())) == before
    assert not [p for p in projections_root().iterdir() if p.name.startswith(".")]  # no half-written folder


def test_cancel_writes_no_projection(ran):
    dash, _ = ran
    job = ScenariosDashboard(source="tiny/lstm", scenario=dash.new_name)  # an existing scenario: projection only
    assert job.start() and job.status == "projecting"
    job.cancel()
    assert job.wait(TIMEOUT) == "cancelled", job.alert.object
    assert f"lstm--{dash.new_name}" not in list_projections()
    assert not [p for p in projections_root().iterdir() if p.name.startswith(".")]


def test_a_damaged_projection_shows_an_alert(ran, tmp_path, monkeypatch):
    dash, _ = ran
    runs = tmp_path / "runs"
    (runs / "projections" / "broken--x").mkdir(parents=True)
    (runs / "projections" / "broken--x" / "projection.nc").write_bytes(b"not netcdf")
    monkeypatch.setenv("VEGVIZ_RUNS_DIR", str(runs))
    view = ScenariosDashboard()
    assert view.projection == "broken--x" and not view.ready
    assert "Could not open projection 'broken--x'" in view.view_maps().object
    assert view.source is None and not view.start() and "Fix" in view.alert.object


def test_app_has_a_scenarios_tab(ran):
    from vegviz.dashboards import App

    dash, _ = ran
    app = App(tab="Scenarios")
    assert app.scenarios.source == app.result == "tiny" and app.scenarios.period == PERIOD
    assert dash.projection in app.scenarios.param.projection.objects
    assert "tiny" in app.refresh()


# ----------------------------------------------------------------------------- in a browser

def test_served_alone_a_clicked_cell_draws_its_series(ran, tmp_path):
    from test_browser import SLOW, Browser, assert_clean_log, browser_only, start_server, stop_server  # noqa: F401

    if not Path(os.environ.get("VEGVIZ_CHROMIUM", "/usr/bin/chromium")).exists():
        pytest.skip("no Chromium (Debian: apt-get install chromium; never `playwright install`)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    proc, url, log = start_server(["dashboards/scenarios.ipynb"])
    try:
        with sync_api.sync_playwright() as p:
            b = Browser(p, height=1400)
            b.page.goto(f"{url}/scenarios", timeout=SLOW)
            b.wait_state(lambda s: len(s["images"]) >= len(MODELS), "the change maps", timeout=SLOW / 1000)
            assert b.page.title() == "vegviz · Scenarios"
            titles = b.state()["titles"]
            assert "truth (virtual basin, SYNTHETIC)" in titles, titles
            box = b.page.locator("canvas").first.bounding_box()
            b.page.mouse.click(box["x"] + 0.45 * box["width"], box["y"] + 0.5 * box["height"])
            b.wait_state(lambda s: any("baseline (dashed) vs scenario" in t for t in s["titles"]),
                         "the clicked cell's series", timeout=SLOW / 1000)
            b.browser.close()
            b.no_errors()
    finally:
        stop_server(proc)
    assert_clean_log(log)

