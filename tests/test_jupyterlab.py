"""Every notebook of notebooks/ and dashboards/ in JupyterLab, in Chromium, without internet access.

One ``jupyter lab`` on 127.0.0.1 (with a token) serves copies of the notebooks (running cells
must not write outputs into the repository's files); the browser blocks every request that
does not go to 127.0.0.1, as on an air-gapped cluster. Each notebook is opened, all its cells
run (JupyterLab's "Run All Cells"), and then each cell listed in PLOT_CELLS must show a Bokeh
canvas, no output may be a HoloViews text repr (``:Overlay ...``: the display hooks were not
loaded) or an error, and the console must not say that Bokeh or Panel is missing. The data:
the small virtual basin and the shared ``tiny_experiment`` (notebook 03 evaluates it).

Never `playwright install`: Debian's /usr/bin/chromium (VEGVIZ_CHROMIUM overrides); skipped without it.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

from conftest import wait_until_up
from marks import slow_except
from test_browser import CHROMIUM, CHROMIUM_ARGS, browser_only, free_port, playwright  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("notebooks", "dashboards")
NOTEBOOKS = sorted(f"{d}/{p.name}" for d in FOLDERS for p in (ROOT / d).glob("*.ipynb"))
#: the default run draws the tour (maps, forcing widgets, curves); `make test-all` draws every notebook
QUICK = {"notebooks/01_data_tour.ipynb"}
CASES = slow_except(NOTEBOOKS, QUICK)

#: per notebook, a piece of the source of each cell that draws: its output must hold a Bokeh canvas
PLOT_CELLS = {
    "notebooks/01_data_tour.ipynb": ["elevation = static.elevation.hvplot", "pn.bind(maps, date, forcing)",
                                     "pn.panel(truth * obs)"],
    "notebooks/02_train_models.ipynb": ["train_next(None)"],
    "notebooks/03_evaluate.ipynb": ["nse_map_and_density(", "nse_boxplots(", "lai_map_comparison(",
                                    "vegetation_timeseries("],  # the study's panels a-d
    "notebooks/04_real_data.ipynb": ["composite.hvplot.quadmesh", 'cells["lai"].hvplot.scatter'],
    "notebooks/05_projection.ipynb": ["pn.FlexBox(*dashboard.maps())"],
    **{f"dashboards/{n}.ipynb": ["dashboard.servable("] for n in ("maps", "skill", "timeseries", "training",
                                                                   "scenarios", "compare")},
}
#: notebooks that show a trained result: they get the shared ``tiny_experiment`` (else 03 and 05 would train one)
NEEDS_RESULTS = ("notebooks/03_evaluate.ipynb", "notebooks/05_projection.ipynb", "dashboards/")

#: what HoloViews prints for an object when its notebook display hooks are missing (hv.extension not called)
HV_TEXT_REPR = re.compile(r"^:(Overlay|NdOverlay|Layout|NdLayout|GridSpace|HoloMap|DynamicMap|Image|QuadMesh|"
                          r"Curve|Area|Scatter|Points|BoxWhisker|Distribution|Spread|Polygons|Path|Table)\b",
                          re.MULTILINE)
MISSING_LIBRARY = re.compile(r"Bokeh|Panel|library is missing", re.IGNORECASE)

#: per code cell of the open notebook: its index among all cells, source, execution count, texts, canvases, errors
CELLS_JS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const count = (root, sel) => {  // Bokeh draws inside shadow roots
    let n = root.querySelectorAll(sel).length;
    for (const el of root.querySelectorAll('*')) if (el.shadowRoot) n += count(el.shadowRoot, sel);
    return n;
  };
  return panel.content.widgets.map((cell, index) => ({
    index, type: cell.model.type, source: cell.model.sharedModel.getSource(),
    count: cell.model.type == 'code' ? cell.model.executionCount : null,
    texts: [...cell.node.querySelectorAll('.jp-OutputArea-output .jp-RenderedText')].map(e => e.innerText),
    errors: cell.node.querySelectorAll('.jp-RenderedText[data-mime-type="application/vnd.jupyter.error"]').length,
    canvases: count(cell.node, 'canvas'),
  })).filter(c => c.type == 'code');
}"""

RUN_ALL_JS = """async () => {
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  await panel.context.ready;
  await panel.sessionContext.ready;
  window.__vegvizRun = 'running';
  app.commands.execute('notebook:run-all-cells').then(
    () => { window.__vegvizRun = 'done'; }, e => { window.__vegvizRun = 'failed: ' + e; });
}"""


@pytest.fixture(scope="module")
def lab(small_basin, tmp_path_factory):
    """``jupyter lab`` on 127.0.0.1 over a copy of notebooks/ and dashboards/; yields (base URL, token)."""
    root = tmp_path_factory.mktemp("lab")
    for folder in FOLDERS:
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    settings = root / ".settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # every cell attached to the page, so each output can be inspected wherever it is scrolled
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port, token = free_port(), secrets.token_hex(16)
    log = root / ".jupyter.log"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}", "--LabApp.expose_app_in_browser=True",
           f"--LabApp.user_settings_dir={root / '.settings'}", f"--LabApp.workspaces_dir={root / '.workspaces'}",
           *(["--allow-root"] if os.geteuid() == 0 else [])]
    # the kernels inherit: the small basin, and one torch thread for notebook 02's training
    env = {**os.environ, "VEGVIZ_VARIANT": "small", "OMP_NUM_THREADS": "1"}
    with log.open("w") as out:
        server = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    wait_until_up(f"{url}api/status?token={token}", server, log, "jupyter lab", on_fail=lambda p: p.kill(),
                  request_timeout=10)
    yield url, token
    os.killpg(server.pid, 15)  # the server and its kernels
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, 9)


@pytest.fixture(scope="module")
def offline_page(playwright, lab):  # noqa: F811  (the fixture imported above)
    """One Chromium page that reaches 127.0.0.1 only; records blocked URLs and console errors."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    blocked: list[str] = []

    def only_local(route):
        if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", only_local)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    yield page, blocked, errors
    browser.close()


def _shutdown_kernels(url: str, token: str):
    """Shut down every kernel of the server (one notebook at a time keeps a 2-core machine responsive)."""
    headers = {"Authorization": f"token {token}"}
    sessions = json.load(urllib.request.urlopen(urllib.request.Request(f"{url}api/sessions", headers=headers)))
    for s in sessions:
        urllib.request.urlopen(urllib.request.Request(f"{url}api/sessions/{s['id']}", headers=headers,
                                                      method="DELETE"))


def test_every_notebook_lists_its_plot_cells():
    missing = [n for n in NOTEBOOKS if n not in PLOT_CELLS]
    assert not missing, f"add the plot cells of {missing} to PLOT_CELLS"


def _a_projection() -> None:
    """One projection of the tiny experiment's convlstm: the Scenarios dashboard opens on a projection, and a
    session (or a test worker) that never ran test_dashboard_scenarios has none."""
    from vegviz.scenarios import DeltaChange, build_scenario, list_scenarios
    from vegviz.scenarios.projection import list_projections, project

    if list_projections():
        return
    if "lab_warm2" not in list_scenarios():
        build_scenario("lab_warm2", "virtual_ucrb_small", "2004:2005", DeltaChange(dt=2.0, precip=0.9))
    project("tiny/convlstm", "lab_warm2", log=lambda *_: None)


@browser_only
@pytest.mark.parametrize("name", CASES)
def test_notebook_draws_offline_in_jupyterlab(name, lab, offline_page, request):
    if name.startswith(NEEDS_RESULTS):
        request.getfixturevalue("tiny_experiment")
    if name == "dashboards/scenarios.ipynb":
        _a_projection()
    url, token = lab
    page, blocked, errors = offline_page
    blocked.clear()
    errors.clear()
    page.goto(f"{url}lab/tree/{name}?token={token}", timeout=180_000)
    page.wait_for_function(f"""() => window.jupyterapp && window.jupyterapp.shell.currentWidget
                               && window.jupyterapp.shell.currentWidget.context.path == {json.dumps(name)}""",
                           timeout=180_000)
    page.evaluate(RUN_ALL_JS)
    try:
        page.wait_for_function("() => window.__vegvizRun != 'running'", timeout=600_000, polling=1000)
        assert page.evaluate("() => window.__vegvizRun") == "done"
        cells = page.evaluate(CELLS_JS)
        assert all(c["count"] for c in cells), [c["source"][:60] for c in cells if not c["count"]]
        for snippet in PLOT_CELLS[name]:
            at = next((i for i, c in enumerate(cells) if snippet in c["source"]), None)
            assert at is not None, f"no cell of {name} holds {snippet!r}: update PLOT_CELLS"
            t0 = time.time()  # Bokeh draws after the output is attached: wait for this cell's canvas
            while not (cell := page.evaluate(CELLS_JS)[at])["canvases"] and time.time() - t0 < 120:
                page.wait_for_timeout(500)
            assert cell["canvases"], (f"the cell with {snippet!r} drew nothing; its text: {cell['texts']}; "
                                      f"console errors: {errors[:5]}; blocked requests: {blocked[:5]}")
        cells = page.evaluate(CELLS_JS)
        assert not [c["source"][:60] for c in cells if c["errors"]], "cells raised errors"
        reprs = [(c["source"][:60], t[:200]) for c in cells for t in c["texts"] if HV_TEXT_REPR.search(t)]
        assert not reprs, f"HoloViews objects printed as text, not drawn: {reprs}"
        assert not [e for e in errors if MISSING_LIBRARY.search(e)], errors
        # scripts must be inline; Panel still links some stylesheets from its CDN (looks differ, plots draw)
        scripts = [u for u in blocked if urlparse(u).path.endswith(".js")]
        assert not scripts, f"the notebook asked the internet for scripts: {scripts}"
    finally:
        _shutdown_kernels(url, token)
