"""Benchmark the dashboards' responsiveness: date-slider moves, first render, moves during training.

(a) Server-side time of one date-slider move of the LAI maps on the FULL virtual basin
    (``virtual_ucrb``, 1981-2016, 13149 days): :meth:`LaiMaps.render_date` (new arrays and
    titles written into the drawn Bokeh sources) plus building the PATCH-DOC message a
    server would send. Moves jump across years (a storage chunk is read) and step within
    a year (the usual drag). Target <= 150 ms. Reference, same days, same files: reading
    that day's two arrays with xarray, and a numpy slice+copy of in-memory arrays.
(b) First render of the app: ``App().__panel__().get_root()`` in a fresh process (imports
    included) and again in the same process (what each further browser session costs);
    with Chromium, the browser's time from opening the page to the first drawn plot under
    ``panel serve dashboards/``. Target < 5 s.
(c) Slider moves while a model trains in the background (TrainingDashboard on the small
    basin, events drained between moves as the server's periodic callback does). Target < 1 s.
(d) Switches: the server-side time from a changed control (metric, period, vegetation, model
    of the Skill tab; vegetation, period (also to the 21-year training period, and with an
    elevation band as the region), clicked cell, region of the Time series tab; model B of the
    Compare tab) to the drawn Bokeh models of every view it redraws; the first and the repeated
    switch, each once the page has settled (background prefetches done). An experiment's series
    store and training-period scores exist (made at its end; ``vegviz.experiment.prepare_dashboards``
    makes them for an older one). And the data tour's forcing change (notebook 01: two daily maps of
    the virtual basin, ``--tour-variant``). Targets: a switch <= 1 s, the tour <= 2 s.
    Reference: drawing one 365-point curve, the least any redraw costs.

The full-basin result is the first run or experiment in the runs directory trained on
``virtual_ucrb``; without one, predictions are made from any run's checkpoint (minutes), or
as a last resort the process-model LAI stands in for a model (said in the output).

    python benchmarks/bench_dashboards.py                    # all three, ~50 moves each
    python benchmarks/bench_dashboards.py --moves 20 --no-browser
    python benchmarks/bench_dashboards.py --only a --result study-virtual-ucrb/convlstm
    python benchmarks/bench_dashboards.py --only d --switch-result tiny --tour-variant small
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FULL = "virtual_ucrb"
CHROMIUM = os.environ.get("VEGVIZ_CHROMIUM", "/usr/bin/chromium")


def stats(seconds: list[float]) -> str:
    ms = np.asarray(seconds) * 1000

    def f(x):  # sub-millisecond references keep their digits
        return f"{x:7.1f}" if x >= 1 else f"{x:7.4f}"

    return f"median {f(np.median(ms))} ms, p95 {f(np.percentile(ms, 95))} ms, max {f(ms.max())} ms (n={ms.size})"


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{os.cpu_count()} CPUs, load average {load:.1f}"


# ----------------------------------------------------------------------------- the full-basin result

def full_result(name: str | None) -> tuple[str, str]:
    """(result name, how it was obtained): an existing full-basin result, else one made now."""
    from vegviz.dashboards import sources

    results = sources.list_results()
    if name:
        if name not in results:
            raise SystemExit(f"error: no result {name!r} in {sorted(results)}")
        return name, "given"
    for n, md in results.items():
        if md.get("data") == FULL:
            return n, "existing"
    return _make_full_result(results)


def _make_full_result(results: dict) -> tuple[str, str]:
    """Predictions for the full basin in a temporary runs dir (VEGVIZ_RUNS_DIR points there afterwards)."""
    import xarray as xr

    from vegviz.dashboards import sources
    from vegviz.training import Run
    from vegviz.training.inference import write_predictions

    tmp = Path(tempfile.mkdtemp(prefix="vegviz-bench-runs-"))
    obs = sources.open_observations(FULL)
    how = None
    for n, md in results.items():
        if md.get("kind") != "run":
            continue
        try:
            print(f"no {FULL} result: predicting {FULL} from {n}'s checkpoint (takes minutes) ...", flush=True)
            pred = Run(md["path"]).predict(data=obs, write=False)
            how = f"predicted now from {n}'s checkpoint"
            break
        except Exception as e:  # a run without a usable checkpoint: try the next
            print(f"  {n}: {type(e).__name__}: {e}")
    if how is None:
        # last resort: the data set's own process-model LAI as the "model"; same sizes, same reads
        pred = xr.Dataset({"process_standin": obs["lai_process"].astype("float32")})
        how = "STAND-IN: no run could predict, the process-model LAI is mapped as the model"
    pred.attrs.update(data=FULL, synthetic=1)
    write_predictions(pred, tmp / "bench-full" / "predictions.nc")
    os.environ["VEGVIZ_RUNS_DIR"] = str(tmp)
    return "bench-full", how


# ----------------------------------------------------------------------------- (a) slider moves

def drawn_maps(result: str):
    """A LaiMaps on ``result``, drawn into a Bokeh document whose changes are collected."""
    import panel as pn
    from bokeh.document import Document

    from vegviz.dashboards import LaiMaps

    maps = LaiMaps(result=result)
    if not maps.ready:
        raise SystemExit(f"error: LaiMaps could not open {result!r}: {maps.error}")
    doc = Document()
    root = pn.panel(maps).get_root(doc)
    doc.add_root(root)
    events: list = []
    doc.on_change(events.append)
    return maps, events


def move(maps, events, day) -> float:
    """One slider move: render the day, then build the PATCH-DOC message of its changes."""
    from bokeh.protocol import Protocol

    t0 = time.perf_counter()
    maps.render_date(day)
    patch = [e for e in events if hasattr(e, "to_serializable")]
    if patch:
        Protocol().create("PATCH-DOC", patch)
    events.clear()
    return time.perf_counter() - t0


def days_across_years(maps, n: int, seed: int = 0) -> list:
    import pandas as pd

    days = maps.observations["time"].values.astype("datetime64[D]")
    rng = np.random.default_rng(seed)
    years = np.unique(days.astype("datetime64[Y]"))
    picks = []
    for y in rng.permutation(np.resize(years, n)):  # every year before any repeats, in random order
        in_year = days[days.astype("datetime64[Y]") == y]
        picks.append(pd.Timestamp(rng.choice(in_year)).date())
    return picks


def bench_moves(result: str, how: str, n: int) -> None:
    import pandas as pd

    maps, events = drawn_maps(result)
    obs, pred = maps.observations, maps.predictions
    print(f"(a) date-slider move, LaiMaps on {pred.attrs.get('data')} ({obs.sizes['time']} days, "
          f"{obs.sizes['lat']}x{obs.sizes['lon']}), result {result} [{how}], model {maps.model}")
    move(maps, events, maps.date)  # warm: the first draw is done, caches filled
    across = days_across_years(maps, n)
    t_across = [move(maps, events, d) for d in across]
    start, last = across[-1], pd.Timestamp(obs["time"].values[-1]).date()
    within = [d for d in (start + dt.timedelta(days=k) for k in range(1, n + 1)) if d <= last]
    t_within = [move(maps, events, d) for d in within] or [float("nan")]
    verdict = "PASS" if np.percentile(t_across, 95) <= 0.15 else "FAIL"
    print(f"    across years : {stats(t_across)}   target <= 150 ms: {verdict} (p95)")
    print(f"    within a year: {stats(t_within)}")

    # references on the same days: the plain ways to get the day's satellite and model arrays
    lai, sim = obs["lai"], pred[maps.model]
    days = obs["time"].values.astype("datetime64[D]")
    index = {d: int(np.searchsorted(days, np.datetime64(d, "D"))) for d in across}
    t_read = []
    for d in across:
        t0 = time.perf_counter()
        np.asarray(lai[index[d]].values), np.asarray(sim[index[d]].values)
        t_read.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    lai_all, sim_all = np.asarray(lai.values, dtype="float32"), np.asarray(sim.values, dtype="float32")
    load = time.perf_counter() - t0
    t_copy = []
    for d in across:
        t0 = time.perf_counter()
        lai_all[index[d]].copy(), sim_all[index[d]].copy()
        t_copy.append(time.perf_counter() - t0)
    med = np.median(t_across)
    print(f"    reference, xarray read of the day's 2 arrays: {stats(t_read)}  -> move/reference "
          f"{med / np.median(t_read):.1f}x")
    print(f"    reference, numpy slice+copy in memory      : {stats(t_copy)}  -> move/reference "
          f"{med / np.median(t_copy):.0f}x (after loading both arrays whole: {load:.1f} s, "
          f"{(lai_all.nbytes + sim_all.nbytes) / 2**20:.0f} MiB)")
    del lai_all, sim_all


# ----------------------------------------------------------------------------- (b) first render

FIRST_RENDER = """
import time
t0 = time.perf_counter()
from vegviz.dashboards import App
t1 = time.perf_counter()
App().__panel__().get_root()
t2 = time.perf_counter()
App().__panel__().get_root()
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def bench_first_render(browser: bool) -> None:
    out = subprocess.run([sys.executable, "-c", FIRST_RENDER], capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise SystemExit(f"error: first render failed:\n{out.stderr[-3000:]}")
    imp, first, second = map(float, out.stdout.split()[-3:])
    print("(b) first render of the app (App().__panel__().get_root(), the tab shown: LAI maps when a result exists)")
    print(f"    fresh process: imports {imp:.2f} s + build {first:.2f} s = {imp + first:.2f} s   "
          f"target < 5 s: {'PASS' if imp + first < 5 else 'FAIL'}")
    print(f"    next session in the same process: {second:.2f} s   target < 5 s: {'PASS' if second < 5 else 'FAIL'}")
    if browser:
        bench_browser()


def bench_browser() -> None:
    if not Path(CHROMIUM).exists():
        print(f"    browser: skipped (no Chromium at {CHROMIUM})")
        return
    import socket
    import urllib.request

    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "panel", "serve", "dashboards/", "--address", "127.0.0.1",
                               "--port", str(port), "--liveness"], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/liveness", timeout=30)
                break
            except OSError:
                if time.perf_counter() - t0 > 300:
                    raise SystemExit("error: panel serve did not start in 300 s")
                time.sleep(0.5)
        started = time.perf_counter() - t0
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            times = []
            for _ in range(2):
                page = browser.new_page(viewport={"width": 1400, "height": 1200})
                t1 = time.perf_counter()
                page.goto(f"http://127.0.0.1:{port}/dashboards", wait_until="commit", timeout=300_000)
                t_html = time.perf_counter() - t1
                page.wait_for_selector("canvas", timeout=300_000)
                times.append((t_html, time.perf_counter() - t1))
                page.close()
            browser.close()
        print(f"    browser (Chromium, panel serve dashboards/, server ready incl. warm-up in {started:.1f} s):")
        for k, (html, canvas) in enumerate(times, 1):
            print(f"      session {k}: page from the server {html:.2f} s, first plot drawn {canvas:.2f} s   "
                  f"target < 5 s: {'PASS' if canvas < 5 else 'FAIL'}")
    finally:
        server.terminate()
        server.wait(15)


# ----------------------------------------------------------------------------- (c) moves during training

def bench_during_training(result: str, n: int) -> None:
    from vegviz.dashboards import TrainingDashboard

    maps, events = drawn_maps(result)
    days = days_across_years(maps, n, seed=1)
    runs = Path(tempfile.mkdtemp(prefix="vegviz-bench-train-"))
    old = os.environ.get("VEGVIZ_RUNS_DIR")
    os.environ["VEGVIZ_RUNS_DIR"] = str(runs)  # the training run is written here and removed afterwards
    try:
        train = TrainingDashboard(data="virtual_ucrb_small", model="convlstm", max_epochs=1)
        if not train.start():
            raise SystemExit(f"error: training did not start: {train.alert.object}")
        t0 = time.perf_counter()
        while train.status in ("idle", "starting") and train.running and time.perf_counter() - t0 < 300:
            train.poll()
            time.sleep(0.1)
        if train.status != "training":
            raise SystemExit(f"error: training is not running ({train.status}): {train.alert.object}")
        times, polls = [], []
        for d in days:
            t1 = time.perf_counter()
            train.poll()  # the server's periodic callback shares the page's thread with the moves
            polls.append(time.perf_counter() - t1)
            times.append(move(maps, events, d))
            time.sleep(0.2)
            if not train.running:
                break
        status = train.status
        train.stop()
        train.wait(timeout=600)
        print(f"(c) slider moves during background training (convlstm on virtual_ucrb_small, "
              f"{train.device_used or '?'}, status while measuring: {status})")
        print(f"    moves : {stats(times)}   target < 1 s: {'PASS' if max(times) < 1 else 'FAIL'} (max)")
        print(f"    drains of the training events between them: {stats(polls)}")
    finally:
        if old is None:
            os.environ.pop("VEGVIZ_RUNS_DIR", None)
        else:
            os.environ["VEGVIZ_RUNS_DIR"] = old
        shutil.rmtree(runs, ignore_errors=True)


def _settle(obj) -> None:
    """Wait for what a component works out in the background after a redraw (the Time series tab's
    prefetch of a region's other periods): a user reads a plot before the next click."""
    for job in list(getattr(obj, "_stats", {}).values()):
        if job.future is not None:
            job.future.result()


def _switch(obj, **change) -> float:
    """Seconds from setting ``change`` on a drawn component to its redrawn Bokeh models (Panel updates them
    as the parameters change, as a server does before it sends the patch), once the page has settled."""
    _settle(obj)
    t0 = time.perf_counter()
    obj.param.update(**change)
    return time.perf_counter() - t0


def bench_switches(result: str | None, variant: str) -> None:
    import holoviews as hv
    import pandas as pd
    import panel as pn
    from bokeh.document import Document

    from vegviz.dashboards import Compare, Skill, TimeSeries, sources

    results = sources.list_results()
    result = result or next(iter(results), None)
    if result is None:
        print("(d) no result in the runs directory: train one (README quick start), or pass --switch-result")
        return
    frame = pd.DataFrame({"time": pd.date_range("2005-01-01", periods=365), "LAI": np.linspace(0, 1, 365)})
    ref = []
    for _ in range(5):
        t0 = time.perf_counter()
        pn.panel(hv.Curve(frame, "time", "LAI")).get_root(Document())
        ref.append(time.perf_counter() - t0)
    reference = float(np.median(ref))
    obs = sources.observations_for(sources.open_result(result))
    print(f"(d) switches on result {result!r} ({obs.sizes['lat']} x {obs.sizes['lon']} cells, "
          f"{obs.sizes['time']} days); reference: one 365-point curve drawn in {reference * 1000:.0f} ms")
    rows = []

    def measure(tab, obj, label, changes):
        for k, change in enumerate(changes):
            sec = _switch(obj, **change)
            rows.append((tab, label, "first" if k == 0 else "again", sec))

    s = Skill(result=result)
    pn.panel(s).get_root(Document())
    types = [t for t in s.param.vegetation.objects if t != "all types"]
    measure("Skill", s, "metric", [{"metric": "kge"}, {"metric": "rmse"}, {"metric": "nse"}])
    measure("Skill", s, "period", [{"period": "validation"}, {"period": "test"}])
    measure("Skill", s, "vegetation", [{"vegetation": types[0]}, {"vegetation": "all types"}])
    models = s.param.model.objects
    measure("Skill", s, "model", [{"model": models[-1]}, {"model": models[0]}])
    t = TimeSeries(result=result)
    pn.panel(t).get_root(Document())
    others = [v for v in t.param.vegetation.objects if v != t.vegetation]
    measure("Time series", t, "vegetation", [{"vegetation": others[0]}, {"vegetation": t.vegetation}])
    measure("Time series", t, "period", [{"period": "validation"}, {"period": "test"}])
    measure("Time series", t, "to train", [{"period": "train"}, {"period": "test"}, {"period": "train"}])
    t.period = "test"
    lat, lon = t._lat, t._lon
    ii, jj = np.nonzero(t._mask)
    cells = [{"lat": float(lat[ii[k]]), "lon": float(lon[jj[k]])} for k in (len(ii) // 3, len(ii) // 2)]
    measure("Time series", t, "clicked cell", cells)
    measure("Time series", t, "region", [{"region": "elevation band"}, {"region": "vegetation type"}])
    t.region = "elevation band"
    measure("Time series", t, "band period", [{"period": "validation"}, {"period": "train"}, {"period": "test"}])
    c = Compare(a=result)
    pn.panel(c).get_root(Document())
    cm = c.param.model_b.objects
    if len(cm) > 1:
        measure("Compare", c, "model B", [{"model_b": cm[-1]}, {"model_b": cm[0]}])
    for tab, label, which, sec in rows:
        print(f"    {tab:12s} {label:13s} {which:6s} {sec * 1000:7.0f} ms   ratio to the reference "
              f"{sec / reference:5.1f}   {'PASS' if sec <= 1 else 'FAIL'} (<= 1 s)")
    bench_tour(variant, reference)


def bench_tour(variant: str, reference: float) -> None:
    import panel as pn
    from bokeh.document import Document

    from vegviz.catalog import open_catalog
    from vegviz.explore import composite_dates, daily_map

    entry = "virtual_ucrb" if variant == "full" else "virtual_ucrb_small"
    ds = open_catalog()[entry].to_dask()
    dates = composite_dates(ds)
    day = dates[dates.month == 7][-1]
    near = dates[dates.get_indexer([day], method="nearest")[0]]
    times = []
    for v in ("tair", "precip", "swdown", "vpd", "tmin"):
        t0 = time.perf_counter()
        el = (daily_map(ds, v, day) + daily_map(ds, "lai", near)).cols(2)  # what the tour's pn.bind redraws
        pn.panel(el).get_root(Document())
        times.append(time.perf_counter() - t0)
    print(f"    tour forcing change ({entry}, {ds.sizes['lat']} x {ds.sizes['lon']} cells): first "
          f"{times[0] * 1000:.0f} ms, then {stats(times[1:])}; ratio {np.median(times[1:]) / reference:.1f}; "
          f"{'PASS' if max(times) <= 2 else 'FAIL'} (<= 2 s)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--moves", type=int, default=50, help="slider moves per measurement (default 50)")
    ap.add_argument("--result", help="full-basin run or experiment to map (default: the first on virtual_ucrb)")
    ap.add_argument("--only", choices=("a", "b", "c", "d"), action="append", help="run only these parts")
    ap.add_argument("--switch-result", help="(d) the result to switch on (default: the first in the runs directory)")
    ap.add_argument("--tour-variant", choices=("small", "full"), default="full",
                    help="(d) the virtual basin of the tour's maps (default full: 1981-2016, built once)")
    ap.add_argument("--no-browser", action="store_true", help="(b) without the Chromium measurement")
    args = ap.parse_args()
    parts = set(args.only or "abcd")
    print(f"vegviz dashboards benchmark · {machine()}")
    result = how = None
    if parts & {"a", "c"}:
        result, how = full_result(args.result)
    if "a" in parts:
        bench_moves(result, how, args.moves)
    if "b" in parts:
        bench_first_render(browser=not args.no_browser)
    if "c" in parts:
        bench_during_training(result, max(5, args.moves // 2))
    if "d" in parts:
        bench_switches(args.switch_result, args.tour_variant)
    return 0


if __name__ == "__main__":
    sys.exit(main())
