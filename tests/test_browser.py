"""The served dashboards in a real browser (Debian's Chromium driven by Playwright), and the dashboard notebooks.

`panel serve dashboards/` runs on 127.0.0.1 over the session's runs and data folders
(the shared ``tiny_experiment`` provides a result). One browser page walks through the
app like a user: the page renders its maps offline, the date slider changes the map, a
short training run adds loss points and is then listed by the Skill tab, and choosing a
vegetation type redraws the boxplots and the time series. No step may log a browser
console error. Screenshots (browser_{maps,training,skill,timeseries}.png, of the tiny test
experiment) go to $VEGVIZ_SCREENSHOTS when set, else to a temporary folder; their names differ
from the README's docs/images/dashboard_*.png (the study experiment, made by
scripts/dashboard_screenshots.py), so pointing $VEGVIZ_SCREENSHOTS at docs/images overwrites none.

Never `playwright install`: the tests use /usr/bin/chromium (VEGVIZ_CHROMIUM overrides)
and skip when it is missing.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import wait_until_up
from marks import slow_except

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = ROOT / "dashboards"
CHROMIUM = os.environ.get("VEGVIZ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NOTEBOOKS = ["training", "maps", "skill", "timeseries", "compare"]
SLOW = 180_000  # ms: a loaded 2-core CI machine draws the first maps slowly

# what a Bokeh server logs for each issue its validator finds in a session's document
VALIDATION_ISSUE = re.compile(r"\b[WE]-\d{4} \(\w+\)")

browser_only = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                  reason=f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; "
                                         "never `playwright install`)")

# What the browser shows, read from the Bokeh documents (the plots are canvases, not text)
BOKEH_STATE = """() => {
  const out = {titles: [], images: [], factors: [], axes: [], ticks: {}, loss: 0, nse: 0};
  for (const doc of Bokeh.documents) for (const m of doc.all_models) {
    if (m.type == 'Title' && m.text) out.titles.push(m.text);
    if (m.type.endsWith('Axis') && m.axis_label) out.axes.push(m.axis_label);
    if (m.type == 'CustomJSTickFormatter' && m.name) out.ticks[m.name] = m.doFormat([-108.5625, 0, 39.25], {loc: 0});
    if (m.type == 'FactorRange') out.factors.push(JSON.stringify(m.factors));
    if (m.type == 'ColumnDataSource' && m.data.image) {
      let s = 0; for (const v of m.data.image[0]) if (isFinite(v)) s += v; out.images.push(s);
    }
    if (m.type == 'ColumnDataSource' && m.data.epoch && m.data.loss) out.loss = Math.max(out.loss, m.get_length());
    if (m.type == 'ColumnDataSource' && m.data.epoch && m.data['median NSE'])
      out.nse = Math.max(out.nse, m.get_length());
  }
  return out;
}"""

# [scrollWidth, clientWidth] of each shown Tabulator's body (the widgets render inside shadow roots)
TABLE_WIDTHS = """() => {
  const out = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.classList && el.classList.contains('tabulator-tableholder') && el.getBoundingClientRect().width > 0)
        out.push([el.scrollWidth, el.clientWidth]);
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return out;
}"""


# The page's layout as a user sees it: the right edge of the rightmost drawn canvas (Bokeh plots and their
# toolbars) and of the document, and how many Bokeh tooltips are shown (inside the widgets' shadow roots)
LAYOUT = """() => {
  let right = 0, tips = 0, first = null;
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      if (r.width > 0 && r.height > 0) {
        if (el.tagName == 'CANVAS') { right = Math.max(right, r.right); if (!first) first = [r.left, r.top]; }
        if (el.classList && [...el.classList].some(c => c.toLowerCase().includes('tooltip')) &&
            getComputedStyle(el).visibility != 'hidden' && getComputedStyle(el).display != 'none'
            && el.textContent.trim()) tips += 1;
      }
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return {right, tips, first, page: document.documentElement.scrollWidth, width: window.innerWidth};
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(targets: list[str], address: str = "127.0.0.1", env: dict | None = None, timeout: float = 240):
    """``panel serve targets`` as a subprocess on ``address``; returns (process, base URL, log path)."""
    port = free_port() if address == "127.0.0.1" else _free_port_on(address)
    log = Path(os.environ["VEGVIZ_RUNS_DIR"]) / f".panel-serve-{port}.log"  # removed with the test runs dir
    cmd = [sys.executable, "-m", "panel", "serve", *targets, "--address", address, "--port", str(port), "--liveness"]
    if address != "127.0.0.1":
        cmd += ["--allow-websocket-origin", f"{address}:{port}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log.open("w"),
                            stderr=subprocess.STDOUT)
    url = f"http://{address}:{port}"
    wait_until_up(f"{url}/liveness", proc, log, "panel serve", timeout=timeout, on_fail=stop_server)
    return proc, url, log


def _free_port_on(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def stop_server(proc):
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def screenshot_dir(tmp_path_factory) -> Path:
    out = os.environ.get("VEGVIZ_SCREENSHOTS")
    path = (ROOT / out if not Path(out).is_absolute() else Path(out)) if out else tmp_path_factory.mktemp("shots")
    path.mkdir(parents=True, exist_ok=True)
    return path


class Browser:
    """One Chromium page with its console errors and every URL it requested."""

    def __init__(self, playwright, width=1500, height=1300, shots: Path | None = None):
        self.shots = shots  # where a failed wait saves what the page showed
        self.browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        self.page = self.browser.new_page(viewport={"width": width, "height": height})
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url))

    def state(self) -> dict:
        return self.page.evaluate(BOKEH_STATE)

    def wait_state(self, check, what: str, timeout: float = 120):
        """Poll the Bokeh state until ``check(state)`` holds; fail naming ``what``."""
        t0 = time.time()
        while time.time() - t0 < timeout:
            state = self.state()
            if check(state):
                return state
            self.page.wait_for_timeout(250)
        self._failed(what)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; browser state: {self.state()}")

    def wait_text(self, pattern: str, timeout: float = 120):
        """Wait until a text matching the regular expression ``pattern`` is shown."""
        try:
            self.page.get_by_text(re.compile(pattern)).first.wait_for(timeout=timeout * 1000)
        except Exception:
            self._failed(pattern)
            raise

    def _failed(self, what: str):
        if self.shots is not None:
            self.page.screenshot(path=str(self.shots / f"failed-{re.sub(r'[^a-z0-9]+', '-', what.lower())[:40]}.png"),
                                 full_page=True)

    def tab(self, name: str):
        self.page.locator(".bk-tab", has_text=name).first.click()

    def visible(self, selector: str):
        return self.page.locator(f"{selector}:visible")

    def field(self, label: str):
        """The visible input or select whose label is exactly ``label``."""
        group = self.page.locator(".bk-input-group:visible").filter(
            has=self.page.locator("label", has_text=re.compile(rf"^{re.escape(label)}$")))
        return group.locator("input, select").first

    def no_errors(self):
        assert not self.errors, f"browser console errors: {self.errors}"


@pytest.fixture(scope="module")
def playwright():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; never `playwright install`)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    with sync_api.sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def app_server(tiny_experiment):
    # one torch thread, as the tiny experiment: a training run must not oversubscribe a small CI machine
    proc, url, log = start_server(["dashboards/"], env={"OMP_NUM_THREADS": "1"})
    SERVER_LOGS[url] = log
    yield url
    stop_server(proc)


SERVER_LOGS: dict[str, Path] = {}


def assert_clean_log(log: Path) -> None:
    """A server's log holds no traceback and no Bokeh validation issue."""
    text = log.read_text()
    assert "Traceback" not in text and not VALIDATION_ISSUE.findall(text), text[-3000:]


@pytest.fixture(scope="module")
def app(playwright, app_server, shots):
    """One browser session on the combined app, shared by the walk-through tests below (in file order)."""
    b = Browser(playwright, shots=shots)
    b.page.goto(f"{app_server}/dashboards", timeout=SLOW)
    b.page.wait_for_selector("canvas", timeout=SLOW)
    yield b
    b.browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return screenshot_dir(tmp_path_factory)


# ----------------------------------------------------------------------------- the combined app

@browser_only
def test_app_renders_plots_offline(app, app_server, shots):
    page = app.page
    assert page.locator("canvas").count() >= 3  # satellite, model and difference maps
    # the header names the data's domain and data set, says it is synthetic, and names the result shown
    page.get_by_text(re.compile(r"^Upper Colorado River Basin · Data set virtual_ucrb_small \(1998–2005\) · "
                                r"SYNTHETIC data · result tiny$")).first.wait_for(timeout=10_000)
    assert page.title() == "vegviz · daily LAI · Upper Colorado River Basin"
    state = app.state()
    titles = state["titles"]
    assert any(t.startswith("satellite LAI ") for t in titles), titles
    # the maps' ticks read as a map reader writes them
    assert state["ticks"] == {"vegviz_lon_ticks": ["108.5625°W", "0°", "39.25°E"],
                              "vegviz_lat_ticks": ["108.5625°S", "0°", "39.25°N"]}, state["ticks"]
    # everything the page loaded came from this server: no CDN, no web fonts
    outside = [u for u in app.requests if not u.startswith((app_server, "data:", "blob:"))]
    assert not outside, f"requests outside the server: {outside}"
    app.no_errors()


@browser_only
def test_date_slider_changes_the_map(app, shots):
    page = app.page
    before = app.state()
    day = re.compile(r"satellite LAI (\d{4}-\d{2}-\d{2})")
    old = next(day.match(t).group(1) for t in before["titles"] if day.match(t))
    map_before = page.locator("canvas").first.screenshot()
    track = app.visible(".noUi-target").first.bounding_box()
    page.mouse.click(track["x"] + 0.3 * track["width"], track["y"] + track["height"] / 2)  # a day in 2000
    after = app.wait_state(lambda s: not any(old in t for t in s["titles"] if day.match(t)), "a new map date")
    new = next(day.match(t).group(1) for t in after["titles"] if day.match(t))
    assert new[:4] in ("1999", "2000", "2001"), new
    assert after["images"] != before["images"], "the map data did not change"
    assert page.locator("canvas").first.screenshot() != map_before
    page.get_by_text(re.compile(rf"^{new} · satellite composite")).first.wait_for(timeout=30_000)
    # on to the nearest day with a satellite composite (the screenshot shows all three maps filled)
    app.visible("button").filter(has_text="Nearest composite").click()
    app.wait_state(lambda s: any(re.fullmatch(r"satellite LAI \d{4}-\d{2}-\d{2}", t) for t in s["titles"]),
                   "a composite date (no '(no composite)' in the title)")
    page.mouse.move(0, 0)
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots / "browser_maps.png"), full_page=True)
    app.no_errors()


@pytest.mark.slow  # the training dashboard's run, stop and resume are tested in-process (test_dashboard_training)
@browser_only
def test_training_run_adds_loss_points_and_is_listed_by_skill(app, shots):
    page = app.page

    def results():
        """The result names the selector lists (its options read "name · model · data set · date")."""
        select = app.field("result")
        select.wait_for(timeout=SLOW)
        return [o.split(" · ")[0] for o in select.evaluate("e => [...e.options].map(o => o.value)")]

    # the Skill tab is drawn before the run: it must list the run when it ends, without a reload
    app.tab("Skill")
    listed = results()
    assert "tiny" in listed
    app.tab("Training")
    app.field("Run name").wait_for(timeout=SLOW)
    for label, value in (("Filters", 4), ("Epochs (max)", 1), ("Batch size", 4), ("Window (days scored)", 60),
                         ("Burn-in (days)", 20), ("Stride (days, 0 = window)", 60), ("BPTT chunk (days)", 20)):
        box = app.field(label)
        box.fill(str(value))
        box.press("Enter")
    name = f"browser-{int(time.time())}"
    assert name not in listed
    app.field("Run name").fill(name)
    app.field("Run name").press("Enter")
    page.wait_for_timeout(500)  # the last value reaches the server
    app.visible("button").filter(has_text=re.compile("^Start$")).click()
    app.wait_state(lambda s: s["loss"] > 0, "training loss points", timeout=180)
    app.wait_text(rf"Run {name} finished", timeout=180)
    state = app.state()
    assert state["loss"] >= 2 and state["nse"] == 1, state  # batch losses, and one epoch's validation NSE
    assert any(t.startswith("convlstm LAI") and "epoch 1" in t for t in state["titles"]), state["titles"]
    page.screenshot(path=str(shots / "browser_training.png"), full_page=True)

    app.tab("Skill")
    assert name in results()
    app.no_errors()


@browser_only
def test_choosing_a_vegetation_type_updates_boxplot_and_time_series(app, shots):
    page = app.page
    app.tab("Skill")

    def types_shown(state) -> list[set]:
        """Per boxplot figure, the vegetation types on its axis (factors are [type (cells), model])."""
        return [{f[0].rsplit(" (", 1)[0] for f in json.loads(r)} for r in state["factors"]]

    before = app.wait_state(lambda s: any(len(t) > 1 for t in types_shown(s)), "boxplots of every type")
    # the medians tables (overall, per type) fit the page: none hides columns behind a scrollbar
    t0 = time.time()
    while len(tables := page.evaluate(TABLE_WIDTHS)) < 2 and time.time() - t0 < 120:
        page.wait_for_timeout(250)
    assert len(tables) == 2 and all(0 < inner and scroll <= inner + 1 for scroll, inner in tables), tables
    page.screenshot(path=str(shots / "browser_skill.png"), full_page=True)  # the study's panels a and b
    veg = app.field("vegetation")
    types = [t for t in veg.evaluate("e => [...e.options].map(o => o.value)") if t != "all types"]
    assert "Open shrublands" in types, types
    pick = "Grasslands" if "Grasslands" in types else next(t for t in types if t != "Open shrublands")
    assert {pick} not in types_shown(before)
    veg.select_option(pick)
    app.wait_state(lambda s: {pick} in types_shown(s), f"boxplots of {pick} only")

    app.tab("Time series")
    # its first visit: a spinner while the server builds the tab, not a blank page
    page.get_by_text("Building the Time series tab").first.wait_for(timeout=10_000)
    app.wait_state(lambda s: any(t.startswith("Open shrublands (") for t in s["titles"]), "the shrubland series",
                   timeout=SLOW / 1000)
    page.screenshot(path=str(shots / "browser_timeseries.png"), full_page=True)  # the study's panel d
    app.field("vegetation").select_option(pick)
    app.wait_state(lambda s: any(t.startswith(f"{pick} (") for t in s["titles"]), f"the {pick} series")
    app.no_errors()


@browser_only
def test_a_cells_forcing_and_the_downloads(app, shots):
    import pandas as pd

    page = app.page
    app.tab("Time series")
    forcing = ("P (mm day-1)", "T (degC)", "VPD (kPa)", "SWdown (W m-2)")
    app.wait_state(lambda s: all(a in s["axes"] for a in forcing), "the forcing under the cell's LAI")

    def download(label: str):
        with page.expect_download(timeout=120_000) as info:
            app.visible("button").filter(has_text=re.compile(rf"^{re.escape(label)}$")).first.click()
        return info.value.suggested_filename, Path(info.value.path())

    name, path = download("Cell CSV")
    assert name.startswith("tiny_cell_") and name.endswith("_test.csv"), name
    df = pd.read_csv(path, index_col="date", parse_dates=True)
    assert {"convlstm (m2 m-2)", "precip (mm day-1)", "satellite (m2 m-2)"} <= set(df.columns) and len(df) >= 300
    name, path = download("Cell PNG")
    assert name.endswith(".png") and path.read_bytes()[:4] == b"\x89PNG"
    app.tab("Skill")
    name, path = download("Table CSV")
    table = pd.read_csv(path, index_col=0)
    assert name == "tiny_skill_test.csv" and {"convlstm", "lstm", "climatology"} <= set(table.index)
    app.no_errors()


@browser_only
def test_the_compare_tab_draws_two_results_their_difference_and_training_curves(app, shots):
    app.tab("Compare")
    state = app.wait_state(lambda s: any(t.startswith("B - A (") for t in s["titles"]), "the difference map",
                           timeout=SLOW / 1000)
    assert any(t.startswith("A tiny: convlstm (") for t in state["titles"]), state["titles"]
    app.wait_state(lambda s: any(t.startswith("validation loss (normalised LAI) per epoch") for t in s["titles"]),
                   "the training curves")
    app.page.mouse.move(0, 0)
    app.page.screenshot(path=str(shots / "browser_compare.png"), full_page=True)
    app.no_errors()


@browser_only
@pytest.mark.parametrize("size", [(1280, 800), (1440, 900)], ids=["1280x800", "1440x900"])
def test_every_tab_fits_the_window_and_a_click_moves_nothing(playwright, app_server, shots, size):
    width, height = size
    b = Browser(playwright, width=width, height=height, shots=shots)
    try:
        b.page.goto(f"{app_server}/dashboards", timeout=SLOW)
        b.page.wait_for_selector("canvas", timeout=SLOW)
        b.wait_state(lambda s: any(t.startswith("satellite LAI ") for t in s["titles"]), "the LAI maps")
        for tab, ready in (("LAI maps", "satellite LAI "), ("Skill", "NSE density"), ("Time series", "land cover: click"),
                           ("Compare", "B - A")):
            if tab != "LAI maps":
                b.tab(tab)
            b.wait_state(lambda s: any(t.startswith(ready) for t in s["titles"]), f"the {tab} tab",
                         timeout=SLOW / 1000)
            b.page.wait_for_timeout(1500)  # the last plots of the tab settle
            b.page.mouse.move(0, 0)
            layout = b.page.evaluate(LAYOUT)
            name = tab.lower().replace(" ", "_")
            b.page.screenshot(path=str(shots / f"layout_{width}x{height}_{name}.png"))
            # no plot or toolbar cut off at the right, no sideways scrolling of the page
            assert layout["right"] <= width + 1 and layout["page"] <= width + 1, (tab, layout)
            assert layout["tips"] == 0, (tab, layout)
            if tab == "LAI maps":  # a click on a map draws the cell's series and moves nothing sideways
                left, top = layout["first"]
                canvas = b.page.locator("canvas").first.bounding_box()
                b.page.mouse.click(canvas["x"] + canvas["width"] * 0.45, canvas["y"] + canvas["height"] * 0.5)
                b.wait_state(lambda s: any(t.startswith("cell ") for t in s["titles"]), "the clicked cell's series")
                b.page.wait_for_timeout(1000)
                b.page.mouse.move(0, 0)
                after = b.page.evaluate(LAYOUT)
                assert abs(after["first"][0] - left) <= 1 and after["tips"] == 0, (layout, after)
                assert after["right"] <= width + 1 and after["page"] <= width + 1, after
        b.no_errors()
    finally:
        b.browser.close()


@browser_only
def test_a_result_of_another_domain_shows_that_domain(app, gunnison_experiment, tiny_experiment):
    """A result on the ``gunnison`` domain, listed after Refresh and chosen: the page names the Gunnison."""
    import shutil

    copy = tiny_experiment.path.parent / gunnison_experiment.name
    shutil.copytree(gunnison_experiment.path, copy)
    try:
        app.tab("LAI maps")
        app.visible("button").filter(has_text=re.compile("^Refresh$")).first.click()
        select = app.field("result")

        def option():  # the selector reads "name · model(s) · data set · date"
            return next((o for o in select.evaluate("e => [...e.options].map(o => o.value)")
                         if o.startswith(f"{copy.name} · ")), None)

        t0 = time.time()
        while option() is None and time.time() - t0 < 60:
            app.page.wait_for_timeout(250)
        before = app.state()["images"]
        select.select_option(option())
        app.wait_text(r"^Gunnison River Basin above Grand Junction, Colorado · Data set \S+ \(1998–2005\) · "
                      r"SYNTHETIC data · result tiny_gunnison$", timeout=SLOW / 1000)
        app.wait_state(lambda s: s["images"] != before, "the Gunnison's maps")
        app.no_errors()
    finally:
        shutil.rmtree(copy, ignore_errors=True)


@browser_only
def test_the_walk_through_left_no_traceback_or_validation_issue_in_the_server_log(app, app_server):
    # after every tab was drawn (Training included): W-1005 was logged once per frame-sized plot
    app.tab("Training")  # drawn here as well: the training run above is a slow test
    app.field("Run name").wait_for(timeout=SLOW)
    app.page.wait_for_timeout(1000)
    assert_clean_log(SERVER_LOGS[app_server])


# ----------------------------------------------------------------------------- one dashboard per notebook

@pytest.mark.slow
@browser_only
def test_each_dashboard_notebook_and_the_tour_are_servable_alone(playwright, tiny_experiment, small_basin):
    # the tour on the small basin (the test data directory holds only that one)
    proc, url, log = start_server([f"dashboards/{n}.ipynb" for n in NOTEBOOKS] + ["notebooks/01_data_tour.ipynb"],
                                  env={"VEGVIZ_VARIANT": "small"})
    try:
        b = Browser(playwright, height=1000)
        for name in NOTEBOOKS:
            b.page.goto(f"{url}/{name}", timeout=SLOW)
            b.page.wait_for_selector("canvas", timeout=SLOW)
            assert b.page.title().startswith("vegviz · "), b.page.title()
        b.page.goto(f"{url}/01_data_tour", timeout=SLOW)
        b.page.locator("canvas").nth(1).wait_for(timeout=SLOW)  # the tour's maps (Playwright pierces shadow roots)
        b.browser.close()
        b.no_errors()
    finally:
        stop_server(proc)
    assert_clean_log(log)


# ----------------------------------------------------------------------------- remote browsers are refused

def _non_loopback_ipv4() -> str | None:
    """An address of this machine that is not loopback (no packet is sent), or None."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the outgoing interface
            ip = s.getsockname()[0]
    except OSError:
        return None
    return None if ip.startswith("127.") or ip == "0.0.0.0" else ip


@browser_only
def test_a_browser_from_another_address_is_refused(playwright, tiny_experiment, monkeypatch):
    ip = _non_loopback_ipv4()
    if ip is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    monkeypatch.delenv("VEGVIZ_ALLOW_REMOTE", raising=False)
    proc, url, log = start_server(["dashboards/"], address=ip)
    try:
        b = Browser(playwright, height=800)
        b.page.goto(f"{url}/dashboards", timeout=SLOW)
        b.page.get_by_text("Access refused").first.wait_for(timeout=SLOW)
        assert b.page.get_by_text(f"refuses a browser from {ip}").count() >= 1
        assert b.page.locator("canvas").count() == 0  # nothing else was built
        assert b.page.locator(".bk-tab").count() == 0
        b.browser.close()
    finally:
        stop_server(proc)
    assert "refused a served session" in log.read_text()


def test_guard_outside_a_server_and_loopback_addresses(monkeypatch):
    from vegviz.dashboards.app import _is_loopback, local_only, remote_refusal

    monkeypatch.delenv("VEGVIZ_ALLOW_REMOTE", raising=False)
    assert remote_refusal() is None  # a notebook or script has no remote client
    assert local_only(dict, a=1) == {"a": 1}
    assert all(_is_loopback(a) for a in ("127.0.0.1", "127.3.2.1", "::1", "::ffff:127.0.0.1"))
    assert not any(_is_loopback(a) for a in ("10.0.0.5", "192.168.1.2", "fe80::1%eth0", "2001:db8::1", "", "x"))


# ----------------------------------------------------------------------------- the app without a browser

def test_app_builds_tabs_on_demand_and_keeps_one_result(tiny_experiment):
    from vegviz.dashboards import App

    app = App()
    assert app.result == "tiny" and app.tab == "LAI maps"
    assert list(app._components) == ["LAI maps"]  # the hidden tabs cost nothing until shown
    assert app.header_text() == ("**Upper Colorado River Basin** · Data set **virtual_ucrb_small** (1998–2005) · "
                                 "**SYNTHETIC** data · result **tiny**")
    app.tab = "Skill"
    assert app.tabs.active == 2 and app.skill.result == "tiny"
    app.skill.result = "tiny/lstm"  # chosen in one tab: every tab and the header follow
    assert app.result == app.maps.result == "tiny/lstm"
    assert app.maps.models == ["lstm"] and app.header.object.endswith("result **tiny/lstm**")
    assert "tiny" in app.refresh()


def test_app_without_results_opens_on_training_and_survives_a_broken_tab(tiny_experiment, tmp_path, monkeypatch):
    import panel as pn

    from vegviz.dashboards import App

    monkeypatch.setenv("VEGVIZ_RUNS_DIR", str(tmp_path))  # no results here
    empty = App()
    assert empty.result is None and empty.tab == "Training"
    assert empty.header_text().startswith("**No results yet**")
    assert empty.training_dashboard.status == "idle"

    monkeypatch.setenv("VEGVIZ_RUNS_DIR", str(tiny_experiment.path.parent))
    broken = App(tab="Training", training={"filters": 0})  # outside the allowed range: the tab cannot be built
    alerts = [a.object for a in broken.tabs.select(pn.pane.Alert)]
    assert any("Training tab could not be built" in a and "filters" in a for a in alerts), alerts
    broken.tab = "LAI maps"  # the other tabs still work
    assert broken.maps.ready and broken.tabs.active == 1


# ----------------------------------------------------------------------------- the notebooks execute

# the default run executes one; the walk-through above draws every component of the app in Chromium
@pytest.mark.parametrize("name", slow_except(NOTEBOOKS, {"skill"}))
def test_dashboard_notebook_executes(name, tiny_experiment, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("VEGVIZ_VARIANT", "small")
    nb = nbformat.read(DASHBOARDS / f"{name}.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(DASHBOARDS)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert not [o for o in outputs if o.get("name") == "stderr" and "Traceback" in o.get("text", "")]
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    shown = [o for o in last.outputs if o.get("output_type") in ("display_data", "execute_result")]
    assert shown, "the last cell should display the dashboard"
    keys = {k for o in shown for k in o.get("data", {})}
    assert "application/vnd.holoviews_exec.v0+json" in keys, keys  # a live Panel view, not a text repr
