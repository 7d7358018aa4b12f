"""Peak memory of the Binder demo: serve the dashboards, open them, train one model (budget 1.5 GiB).

    python benchmarks/bench_binder_memory.py                 # convlstm, the demo settings (vegviz.demo)
    python benchmarks/bench_binder_memory.py --model convlstm_physics --json out.json

What it does, each step in a fresh subprocess with the Binder environment of ``binder/start``
(``VEGVIZ_DEMO=binder``, ``OMP_NUM_THREADS=2``, ``MALLOC_ARENA_MAX=2``; a temporary runs directory):

1. reference: ``import vegviz`` and open the small virtual basin, loaded into memory: the
   floor any session on this data set pays;
2. the demo: ``panel serve dashboards/`` on 127.0.0.1; Chromium (/usr/bin/chromium through
   Playwright) opens the app, clicks **Start** in the Training tab (the demo defaults), waits
   for the run to finish, then opens the LAI maps, Skill and Time series tabs on the new result.

Memory is the resident set size (RSS) of the process and all its children, sampled every
0.2 s with psutil; summing RSS counts shared pages more than once, so it errs high. Chromium
is not counted: on Binder the browser runs on the user's machine. The small basin is built
first (as binder/postBuild does) and not measured.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
BUDGET = 1.5 * 2**30
CHROMIUM = os.environ.get("VEGVIZ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
REFERENCE = """
import vegviz
from vegviz.data.virtual import open_virtual_basin
ds = open_virtual_basin("small").load()
print(f"{ds.nbytes / 2**20:.0f} MiB of data")
"""


class PeakSampler(threading.Thread):
    """The peak RSS (bytes) of a process and its descendants, sampled every ``interval`` s until stopped."""

    def __init__(self, pid: int, interval: float = 0.2):
        super().__init__(daemon=True)
        self.proc, self.interval = psutil.Process(pid), interval
        self.peak = 0
        self.timeline: list[tuple[float, int]] = []  # (time.perf_counter(), bytes) of every sample
        self._stop_event = threading.Event()

    def rss(self) -> int:
        total = 0
        for p in [self.proc, *self.proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:  # a child that just ended
                pass
        return total

    def run(self):
        while not self._stop_event.is_set():
            try:
                rss = self.rss()
                self.peak = max(self.peak, rss)
                self.timeline.append((time.perf_counter(), rss))
            except psutil.NoSuchProcess:
                return
            self._stop_event.wait(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


def binder_env(runs: Path) -> dict:
    """The environment binder/start exports (it keeps the caller's data cache and the given runs folder)."""
    from vegviz.paths import cache_dir

    env = {**os.environ, "VEGVIZ_DATA_DIR": str(cache_dir()), "VEGVIZ_RUNS_DIR": str(runs),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for key in ("VEGVIZ_DEMO", "VEGVIZ_VARIANT", "OMP_NUM_THREADS", "MALLOC_ARENA_MAX"):
        env.pop(key, None)
    out = subprocess.run([str(ROOT / "binder" / "start"), "env", "-0"], env=env, capture_output=True,
                         check=True).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def reference_peak(env: dict) -> int:
    proc = subprocess.Popen([sys.executable, "-c", REFERENCE], env=env, cwd=ROOT)
    sampler = PeakSampler(proc.pid)
    sampler.start()
    if proc.wait() != 0:
        raise RuntimeError("the reference process failed")
    return sampler.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_idle(pid: int, timeout: float = 300) -> None:
    """Wait until the process has been nearly idle (< 10 % of a core) for one second."""
    proc, t0 = psutil.Process(pid), time.perf_counter()
    time.sleep(1)
    while proc.cpu_percent(interval=1.0) > 10 and time.perf_counter() - t0 < timeout:
        pass


def _progress(what: str, now: int, sampler: PeakSampler) -> None:
    print(f"  {what}: {gib(now)} now, peak so far {gib(sampler.peak)}", flush=True)


def demo_peak(env: dict, model: str, log: Path, timeout: float = 1200) -> dict:
    """Serve, open, train one model, open the result tabs; the server tree's peak RSS and the timings."""
    from playwright.sync_api import sync_playwright

    port = _free_port()
    cmd = [sys.executable, "-m", "panel", "serve", str(ROOT / "dashboards"), "--address", "127.0.0.1",
           "--port", str(port), "--liveness"]
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    sampler = PeakSampler(server.pid)
    sampler.start()
    out = {}
    try:
        t0 = time.perf_counter()
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/liveness", timeout=30)
                break
            except OSError:
                if server.poll() is not None or time.perf_counter() - t0 > 300:
                    raise RuntimeError(f"panel serve did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
        out["server_start_s"] = time.perf_counter() - t0
        out["after_start_bytes"] = sampler.rss()
        _progress("server started", out["after_start_bytes"], sampler)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1300})
            t0 = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/dashboards", timeout=300_000)
            page.get_by_text("No results yet").first.wait_for(timeout=300_000)
            out["page_open_s"] = time.perf_counter() - t0
            out["after_page_bytes"] = sampler.rss()
            _progress("app opened", out["after_page_bytes"], sampler)
            if model != "convlstm":
                page.locator("select").first.wait_for(timeout=120_000)
                page.get_by_label("Model").select_option(model)
            start = page.locator("button").filter(has_text=re.compile("^Start$")).first
            start.wait_for(timeout=120_000)
            page.wait_for_timeout(500)
            t0 = time.perf_counter()
            start.click()
            out["train_start"] = t0
            page.get_by_text(re.compile(r"Run \S+ finished")).first.wait_for(timeout=timeout * 1000)
            out["train_s"] = time.perf_counter() - t0
            out["after_training_bytes"] = sampler.rss()
            _progress(f"trained in {out['train_s']:.0f} s", out["after_training_bytes"], sampler)
            for tab in ("LAI maps", "Skill", "Time series"):
                page.locator(".bk-tab", has_text=tab).first.click()
                _wait_idle(server.pid)  # the tab is built on the server and its plots sent
            out["after_tabs_bytes"] = sampler.rss()
            browser.close()
    finally:
        out["peak_bytes"] = sampler.stop()
        t_train = out.pop("train_start", None)
        if t_train is not None and sampler.timeline:  # when the peak happened, seconds after Start
            t_peak = max(sampler.timeline, key=lambda s: s[1])[0]
            out["peak_after_start_s"] = t_peak - t_train
            out["timeline"] = [(round(t - t_train, 1), b) for t, b in sampler.timeline[::5]]
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="convlstm", choices=("convlstm", "convlstm_physics", "lstm"))
    p.add_argument("--json", help="also write the numbers to this JSON file")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from vegviz.demo import DEMO_SETTINGS

    with tempfile.TemporaryDirectory(prefix="vegviz-binder-bench-") as tmp:
        env = binder_env(Path(tmp) / "runs")
        # build (or find) the small basin first, as binder/postBuild does: not part of the measurement
        subprocess.run([sys.executable, "-m", "vegviz.cli", "build-basin", "--variant", "small"], env=env,
                       cwd=ROOT, check=True)
        ref = reference_peak(env)
        demo = demo_peak(env, args.model, Path(tmp) / "panel-serve.log")
    ratio = demo["peak_bytes"] / ref
    print(f"\nBinder demo memory ({args.model}; settings {DEMO_SETTINGS}); RSS of the process tree, peak:")
    print(f"  reference: import vegviz + small basin in memory        {gib(ref)}")
    print(f"  panel serve dashboards/ started (app warmed up)         {gib(demo['after_start_bytes'])}"
          f"  ({demo['server_start_s']:.0f} s)")
    print(f"  + the app opened in a browser                           {gib(demo['after_page_bytes'])}"
          f"  ({demo['page_open_s']:.0f} s)")
    print(f"  + one model trained                                     {gib(demo['after_training_bytes'])}"
          f"  ({demo['train_s']:.0f} s)")
    print(f"  + LAI maps, Skill and Time series tabs opened           {gib(demo['after_tabs_bytes'])}")
    print(f"  peak of the whole session                               {gib(demo['peak_bytes'])}"
          f"  = {ratio:.1f} x the reference; budget {gib(BUDGET)}: "
          f"{'within' if demo['peak_bytes'] <= BUDGET else 'OVER'}"
          + (f"; the peak came {demo['peak_after_start_s']:.0f} s after Start" if "peak_after_start_s" in demo else ""))
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "settings": DEMO_SETTINGS,
                                               "reference_bytes": ref, "ratio": ratio, **demo}, indent=2))
    return 0 if demo["peak_bytes"] <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
