"""Screenshot five tabs of the served app on one trained result (the README's pictures).

    .venv/bin/python scripts/dashboard_screenshots.py --result study-virtual-ucrb

writes docs/images/dashboard_{maps,skill,timeseries,compare,training}.png (``--out`` elsewhere):

* LAI maps: a summer day of the test period with a satellite composite (``--date``, default
  the composite nearest to 15 July of the test period's first year), land-cover outlines on;
* Skill: NSE maps, densities and boxplots by vegetation type, test period;
* Time series: the most common vegetation type of the basin (``--vegetation``), test period;
* Compare: the result's first two models side by side with their difference, test period, and
  the training curves of its runs;
* Training: a short run on ``--train-data`` (default virtual_ucrb_small; filters 4, window
  60, burn-in 20, chunk 20, batch 4, 2 epochs, 1 CPU thread; about 30 s), shot when it has
  finished (its loss curves, NSE curve and preview map drawn); a run still going after
  ``--train-timeout`` is shot as it is, then stopped.

Each shot is a full page of a ``--width`` x ``--height`` window (default 1440 x 900) after its
plots were drawn and no spinner is shown.

``panel serve dashboards/`` runs on 127.0.0.1 (a free port) over ``--runs-dir`` and
``--data-dir`` (default $VEGVIZ_RUNS_DIR / $VEGVIZ_DATA_DIR, else the user's folders) and is
driven by Debian's Chromium through Playwright (never ``playwright install``; needs
``apt-get install chromium`` and the playwright package). Nothing of the result is written:
the server sees a temporary runs folder holding a link to the result, so the training run
goes there. Only when the result lies outside the data folder (the app would refuse the
link) does the run go into the runs folder as ``screenshot-training``, removed at the end.
The server is stopped and temporary files are removed even on error. The exit status is 1
when a page showed an error alert or the browser logged console errors (the shots are
written anyway, so they can be looked at).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshot import CHROMIUM, CHROMIUM_ARGS, free_port, wait_for  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TRAIN_RUN = "screenshot-training"
#: the training form, as (field label, value): tiny settings, so the run takes about a minute
TRAIN_SETTINGS = (("Filters", 4), ("Epochs (max)", 2), ("Batch size", 4), ("Window (days scored)", 60),
                  ("Burn-in (days)", 20), ("Stride (days, 0 = window)", 60), ("BPTT chunk (days)", 20),
                  ("CPU threads", 1))

# What the browser shows, read from the Bokeh documents (the plots are canvases, not text)
BOKEH_STATE = """() => {
  const out = {titles: [], loss: 0, nse: 0};
  for (const doc of Bokeh.documents) for (const m of doc.all_models) {
    if (m.type == 'Title' && m.text) out.titles.push(m.text);
    if (m.type == 'ColumnDataSource' && m.data.epoch && m.data.loss) out.loss = Math.max(out.loss, m.get_length());
    if (m.type == 'ColumnDataSource' && m.data.epoch && m.data['median NSE'])
      out.nse = Math.max(out.nse, m.get_length());
  }
  return out;
}"""
# Moves the visible date slider to a day (ms since 1970): the server receives it like a drag
SET_SLIDER = """(ms) => {
  for (const doc of Bokeh.documents) for (const m of doc.all_models)
    if (m.type == 'DateSlider' && m.title == 'date') { m.value = ms; return true; }
  return false;
}"""


# ----------------------------------------------------------------------------- where the server reads and writes

def most_common_vegetation(result: str) -> str:
    """The IGBP name of the dominant vegetation type with the most basin cells of ``result``'s data."""
    import numpy as np

    from vegviz.contract import IGBP_CLASSES
    from vegviz.dashboards import sources

    obs = sources.observations_for(sources.open_result(result))
    mask = np.asarray(obs["mask"].transpose("lat", "lon").values) == 1
    lc = np.asarray(obs["landcover"].transpose("lat", "lon").values)
    codes, counts = np.unique(lc[mask & (lc != 0)], return_counts=True)  # 0: water
    return IGBP_CLASSES[int(codes[np.argmax(counts)])]


def serving_runs_dir(result: str, runs_dir: Path, data_dir: Path, tmp: Path) -> tuple[Path, Path | None]:
    """(runs folder for the server, training run folder to delete afterwards or None).

    A temporary runs folder with a link to the result keeps the training run out of the
    user's runs folder. The app follows the link only into its data folder (it refuses
    paths outside its two folders), so a result elsewhere is served from ``runs_dir``.
    """
    target = (runs_dir / result.split("/")[0]).resolve()
    if data_dir.resolve() in target.parents:
        (tmp / "runs").mkdir()
        (tmp / "runs" / target.name).symlink_to(target, target_is_directory=True)
        return tmp / "runs", None
    leftover = runs_dir / TRAIN_RUN
    if leftover.exists():
        raise SystemExit(f"{leftover} exists already. Fix: remove it (a left-over screenshot run?) or rename it")
    return runs_dir, leftover


def start_server(env: dict, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "panel", "serve", "dashboards/", "--address", "127.0.0.1", "--port", str(port),
         "--liveness"], cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/liveness", timeout=300)
    except TimeoutError:
        stop(proc)
        raise RuntimeError(f"panel serve did not start: {log.read_text()[-3000:]}") from None
    return proc, url


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ----------------------------------------------------------------------------- the browser

class Page:
    """One Chromium page on the app: fields by label, waits on what the plots show, shots with checks."""

    def __init__(self, page, out: Path):
        self.page, self.out = page, out
        self.errors: list[str] = []  # console errors since the last shot
        self.problems: list[str] = []  # everything wrong, for the summary
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

    def state(self) -> dict:
        return self.page.evaluate(BOKEH_STATE)

    def field(self, label: str):
        """The visible input or select whose label is exactly ``label``."""
        group = self.page.locator(".bk-input-group:visible").filter(
            has=self.page.locator("label", has_text=re.compile(rf"^{re.escape(label)}$")))
        return group.locator("input, select").first

    def tab(self, name: str) -> None:
        self.page.locator(".bk-tab", has_text=name).first.click()

    def button(self, text: str):
        return self.page.locator("button:visible").filter(has_text=re.compile(rf"^{re.escape(text)}$")).first

    def choose(self, label: str, value: str) -> None:
        """Choose ``value`` in the select ``label`` unless it is chosen already; a result selector's options
        read "name · model · data set · date", and ``value`` is the name."""
        select = self.field(label)
        select.wait_for(timeout=300_000)
        options = select.evaluate("e => [...e.options].map(o => o.value)")
        match = next((o for o in options if o == value or o.startswith(f"{value} · ")), None)
        if match is None:
            raise SystemExit(f"{label!r} offers no {value!r}; it offers {options}")
        if select.input_value() != match:
            select.select_option(match)

    def settle(self, check, what: str, timeout: float = 300) -> dict:
        """Wait until ``check(state)`` holds and no loading spinner is shown, then for the canvases to paint."""
        t0 = time.time()
        while time.time() - t0 < timeout:
            state = self.state()
            if check(state) and self.page.locator(".pn-loading:visible").count() == 0:
                self.page.wait_for_timeout(2000)  # Bokeh paints the canvases after the data arrived
                if check(state := self.state()) and self.page.locator(".pn-loading:visible").count() == 0:
                    return state
            self.page.wait_for_timeout(500)
        self.shot(f"failed-{re.sub(r'[^a-z0-9]+', '-', what.lower())[:40]}")
        raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}; plot titles: {self.state()['titles']}")

    def shot(self, name: str) -> Path:
        """Full-page screenshot ``out/name.png``; errors shown in the page are recorded.

        The page template scrolls inside its main area, not the page, so ``full_page``
        alone would cut at the window's height: the window grows to the content for the shot.
        """
        self.page.mouse.move(0, 0)  # no hover tooltip in the picture
        size = self.page.viewport_size
        main = self.page.evaluate("() => { const m = document.querySelector('#main') || document.body; "
                                  "return {top: m.getBoundingClientRect().top, height: m.scrollHeight, "
                                  "width: m.scrollWidth, inner: m.clientWidth}; }")
        if main["width"] > main["inner"] + 1:
            self.problems.append(f"{name}: the content is {main['width']} px wide, wider than the "
                                 f"{main['inner']} px of the window (cut at the right)")
        self.page.set_viewport_size({"width": size["width"],
                                     "height": max(size["height"], int(main["top"] + main["height"]) + 10)})
        self.page.wait_for_timeout(1500)  # Bokeh re-lays out for the new window
        path = self.out / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.page.set_viewport_size(size)
        alerts = self.page.locator(".alert-danger:visible, .alert-warning:visible").all_inner_texts()
        self.problems += [f"{name}: alert shown: {a.strip()[:300]}" for a in alerts if a.strip()]
        self.problems += [f"{name}: browser console: {e[:300]}" for e in self.errors]
        self.errors = []
        print(f"wrote {path}", flush=True)
        return path


def shoot_maps(b: Page, date: dt.date | None) -> str:
    """LAI maps on a summer test-period day with a satellite composite, land-cover outlines on."""
    b.tab("LAI maps")
    day = re.compile(r"^satellite LAI (\d{4})-(\d{2})-(\d{2})$")
    first = b.settle(lambda s: any(day.match(t) for t in s["titles"]), "the first maps")
    if date is None:  # the app opens on the test period's best-observed composite of its first year
        year = int(next(day.match(t).group(1) for t in first["titles"] if day.match(t)))
        date = dt.date(year, 7, 15)
    ms = int(dt.datetime(date.year, date.month, date.day, tzinfo=dt.timezone.utc).timestamp() * 1000)
    if not b.page.evaluate(SET_SLIDER, ms):
        raise RuntimeError("no date slider found on the LAI maps page")
    b.settle(lambda s: any(t.startswith(f"satellite LAI {date:%Y-%m-%d}") for t in s["titles"]), f"the maps of {date}")
    box = b.page.locator(".bk-Checkbox:visible", has_text="land-cover outlines").locator("input")
    if not box.is_checked():
        box.check()
    b.button("Nearest composite").click()
    state = b.settle(lambda s: any(day.match(t) for t in s["titles"]), "a composite date")
    shown = next(t for t in state["titles"] if day.match(t))
    b.page.wait_for_timeout(2000)  # the land-cover outlines follow the maps
    b.shot("dashboard_maps")
    return shown


def shoot_skill(b: Page) -> None:
    """NSE maps and density (panel a) and boxplots by vegetation type (panel b), test period."""
    b.tab("Skill")
    b.field("vegetation").wait_for(timeout=300_000)
    for text in ("nse", "test"):  # the defaults, chosen explicitly
        button = b.button(text)
        if "bk-active" not in (button.get_attribute("class") or ""):
            button.click()
    b.choose("vegetation", "all types")
    b.settle(lambda s: any(t.startswith("NSE per dominant vegetation type") and " test " in t for t in s["titles"])
             and any(": NSE test" in t for t in s["titles"]) and any(t.startswith("NSE density") for t in s["titles"]),
             "the NSE map, density and boxplots of the test period", timeout=600)
    b.shot("dashboard_skill")


def shoot_timeseries(b: Page, vegetation: str) -> None:
    """The models against satellite LAI for one vegetation type (panel d), test period."""
    b.tab("Time series")
    b.field("vegetation").wait_for(timeout=300_000)
    b.choose("vegetation", vegetation)
    test = b.button("test")
    if "bk-active" not in (test.get_attribute("class") or ""):
        test.click()
    b.settle(lambda s: any(t.startswith(f"{vegetation} (") for t in s["titles"]),
             f"the {vegetation} series of the test period", timeout=600)
    b.shot("dashboard_timeseries")


def shoot_compare(b: Page) -> None:
    """Two models of the result side by side with their difference, and the training curves of its runs."""
    b.tab("Compare")
    b.settle(lambda s: any(t.startswith("B - A") for t in s["titles"])
             and any(" per epoch" in t for t in s["titles"]), "the difference map and the training curves",
             timeout=600)
    b.shot("dashboard_compare")


def shoot_training(b: Page, data: str, timeout: float) -> str:
    """Start a tiny run, shoot once its loss curves and its preview map are drawn; stop it if still running."""
    b.tab("Training")
    b.field("Run name").wait_for(timeout=300_000)
    b.choose("Data", data)
    b.choose("Model", "convlstm")
    b.page.wait_for_timeout(500)  # a new model resets an automatic run name: set the name after it
    for label, value in (*TRAIN_SETTINGS, ("Run name", TRAIN_RUN)):
        box = b.field(label)
        box.fill(str(value))
        box.press("Enter")
    b.page.wait_for_timeout(1000)  # the last value reaches the server
    b.button("Start").click()
    b.settle(lambda s: s["loss"] > 1 and s["nse"] >= 1 and any(t.startswith("convlstm LAI") for t in s["titles"]),
             "loss curves and the predicted map", timeout=timeout)
    try:  # the second epoch joins the curves up: worth a short wait
        b.page.get_by_text(re.compile(rf"Run {TRAIN_RUN} (finished|stopped)")).first.wait_for(timeout=timeout * 1000)
    except Exception:
        print("the run did not end in time: shooting it while it trains", flush=True)
    b.settle(lambda s: s["loss"] > 1, "the curves")
    b.shot("dashboard_training")
    stop_button = b.button("Stop")
    if stop_button.is_enabled():
        stop_button.click()
        b.page.get_by_text(re.compile(rf"Run {TRAIN_RUN} (finished|stopped|failed)")).first.wait_for(timeout=300_000)
    return b.page.get_by_text(re.compile(rf"Run {TRAIN_RUN} ")).first.inner_text()


# ----------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    from vegviz import paths

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--result", help="run or experiment shown (default: the first listed, experiments first)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images", help="folder of the PNGs")
    ap.add_argument("--runs-dir", type=Path, default=paths.runs_root(), help="runs folder (default: %(default)s)")
    ap.add_argument("--data-dir", type=Path, default=paths.cache_dir(), help="data folder (default: %(default)s)")
    ap.add_argument("--date", type=dt.date.fromisoformat,
                    help="LAI maps day, YYYY-MM-DD (moved to the nearest composite; default 15 July of the test "
                         "period's first year)")
    ap.add_argument("--vegetation", help="vegetation type of the time series (default: the most common)")
    ap.add_argument("--train-data", default="virtual_ucrb_small", help="data set of the training run")
    ap.add_argument("--width", type=int, default=1440)
    ap.add_argument("--height", type=int, default=900)
    ap.add_argument("--train-timeout", type=float, default=600, help="seconds to wait for the training run")
    args = ap.parse_args(argv)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"no Chromium at {CHROMIUM}. Fix: apt-get install chromium (never `playwright install`)")
    from playwright.sync_api import sync_playwright

    runs_dir, data_dir = args.runs_dir.expanduser().resolve(), args.data_dir.expanduser().resolve()
    os.environ.update({paths.RUNS_ENV: str(runs_dir), paths.DATA_ENV: str(data_dir)})  # for the look-ups here
    from vegviz.dashboards import sources

    results = list(sources.list_results())
    result = args.result or (results[0] if results else None)
    if result not in results:
        raise SystemExit(f"no result {result!r} in {runs_dir}; there are: {', '.join(results) or 'none'}")
    vegetation = args.vegetation or most_common_vegetation(result)
    args.out.mkdir(parents=True, exist_ok=True)

    t0 = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="vegviz-shots-"))
    proc = train_dir = None
    try:
        served_runs, train_dir = serving_runs_dir(result, runs_dir, data_dir, tmp)
        # one torch thread for the server's imports and scoring: other work shares the machine
        env = {**os.environ, paths.RUNS_ENV: str(served_runs), paths.DATA_ENV: str(data_dir), "OMP_NUM_THREADS": "1"}
        proc, url = start_server(env, tmp / "panel-serve.log")
        print(f"serving {served_runs} (data {data_dir}) at {url}/dashboards", flush=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                b = Page(browser.new_page(viewport={"width": args.width, "height": args.height}), args.out)
                b.page.goto(f"{url}/dashboards", timeout=300_000)
                b.page.wait_for_selector("canvas", timeout=300_000)
                b.choose("result", result)
                header = b.page.locator("#header").get_by_text(re.compile(r"Data set ")).first.inner_text().strip()
                print(f"header: {header}", flush=True)
                if "SYNTHETIC" not in header and "real observations" not in header:
                    b.problems.append(f"the header does not say whether the data are synthetic: {header!r}")
                print(f"maps: {shoot_maps(b, args.date)}", flush=True)
                shoot_skill(b)
                shoot_timeseries(b, vegetation)
                shoot_compare(b)
                print(f"training: {shoot_training(b, args.train_data, args.train_timeout)}", flush=True)
            finally:
                browser.close()
    finally:
        if proc is not None:
            stop(proc)
            log = (tmp / "panel-serve.log").read_text()
            if "Traceback" in log:
                print(f"server log (tracebacks):\n{log[-4000:]}", file=sys.stderr)
        for link in (tmp / "runs").glob("*"):
            if link.is_symlink():
                link.unlink()  # the link only, never what it points to
        shutil.rmtree(tmp, ignore_errors=True)  # the log and a temporary training run
        if train_dir is not None and train_dir.is_dir():
            shutil.rmtree(train_dir)
    print(f"done in {time.time() - t0:.0f} s")
    for problem in b.problems:
        print(f"PROBLEM {problem}", file=sys.stderr)
    return 1 if b.problems else 0


if __name__ == "__main__":
    sys.exit(main())
