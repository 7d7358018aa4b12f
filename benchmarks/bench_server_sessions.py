"""Benchmark: several browsers opening the served app at once. When does each one's first plot arrive?

`vegviz serve` (what users run) is started twice over the same runs directory: once with its
default thread pool (VEGVIZ_SERVER_THREADS, 8 threads) and once without one (``--threads 0``,
the reference: every session is built on Bokeh's event loop). In each, one Chromium page is
opened alone (the single-session time), then N pages at once. For each page it records the
seconds from the request until its LAI map holds data. Target (issue 15): the last of five
concurrent sessions gets its first plot within 2x the time of the first.

The result is the first run or experiment in $VEGVIZ_RUNS_DIR. Without one, a three-model experiment
with the quick preset (the small virtual basin) is trained into a temporary runs dir first.
The browser is Debian's Chromium (VEGVIZ_CHROMIUM overrides), driven by Playwright.

    python benchmarks/bench_server_sessions.py               # 5 sessions, with and without threads
    python benchmarks/bench_server_sessions.py --sessions 8 --json out.json
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe, load_average  # noqa: E402

from vegviz.dashboards.app import MAP_DRAWN_JS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("VEGVIZ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def ensure_result() -> str:
    """A runs directory holding a result: the runs directory when it has one, else a quick experiment made now."""
    from vegviz import paths
    from vegviz.dashboards import sources

    if sources.list_results():
        return str(paths.runs_root())
    runs = tempfile.mkdtemp(prefix="bench-sessions-runs-")
    print(f"no result in the runs directory: training a quick experiment into {runs} (a few minutes)", flush=True)
    subprocess.run([sys.executable, "-m", "vegviz", "experiment", "--preset", "quick", "--name", "quick",
                    "--runs-dir", runs, "--no-progress", "--no-figures"], check=True, stdout=subprocess.DEVNULL)
    return runs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(threads: int, runs: str, log: Path):
    port = free_port()
    env = {**os.environ, "VEGVIZ_RUNS_DIR": runs}
    proc = subprocess.Popen([sys.executable, "-m", "vegviz", "serve", "--port", str(port), "--threads", str(threads)],
                            cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    t0 = time.time()
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            break
        except OSError:
            if proc.poll() is not None or time.time() - t0 > 300:
                proc.kill()
                raise SystemExit(f"the server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.5)
    return proc, f"http://127.0.0.1:{port}/dashboards"


async def first_plots(browser, url: str, n: int, timeout: float) -> list[float]:
    """Open ``n`` pages at once (a browser context each: separate sessions); seconds until each map is drawn."""
    async def one():
        ctx = await browser.new_context(viewport={"width": 1440, "height": 900})
        page = await ctx.new_page()
        t0 = time.perf_counter()
        try:
            await page.goto(url, timeout=timeout * 1000)
            await page.wait_for_function(MAP_DRAWN_JS, timeout=timeout * 1000, polling=100)
            return time.perf_counter() - t0
        finally:
            await ctx.close()

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def measure(url: str, n: int, timeout: float) -> dict:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            await first_plots(browser, url, 1, timeout)  # warm: the server's lazy imports, the browser's cache
            single = (await first_plots(browser, url, 1, timeout))[0]
            together = sorted(await first_plots(browser, url, n, timeout))
        finally:
            await browser.close()
    return {"single_s": round(single, 2), "concurrent_s": [round(t, 2) for t in together],
            "last_over_first": round(together[-1] / together[0], 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=5, help="pages opened at once (default 5)")
    ap.add_argument("--threads", type=int, default=8, help="the server's threads in the measured setting (default 8)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds a page may take")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; or set VEGVIZ_CHROMIUM)")
    runs = ensure_result()
    load0 = load_average()
    out = {"sessions": args.sessions, "settings": {}}
    logs = Path(tempfile.mkdtemp(prefix="bench-sessions-logs-"))
    for threads in (args.threads, 0):
        proc, url = start(threads, runs, logs / f"serve-{threads}.log")
        try:
            r = asyncio.run(measure(url, args.sessions, args.timeout))
        finally:
            proc.terminate()
            proc.wait(30)
        out["settings"][f"threads={threads}"] = r
        print(f"threads={threads:<2}  one session alone: first plot after {r['single_s']:5.1f} s;  {args.sessions} at "
              f"once: {', '.join(f'{t:.1f}' for t in r['concurrent_s'])} s  (last/first {r['last_over_first']:.2f}, "
              f"target <= 2)", flush=True)
    out.update(describe(load0, load_average()))
    a, b = out["settings"][f"threads={args.threads}"], out["settings"]["threads=0"]
    out["mean_concurrent_s_ratio_threads_vs_none"] = round(float(np.mean(a["concurrent_s"]) /
                                                                 np.mean(b["concurrent_s"])), 2)
    print(f"mean wait of the {args.sessions} sessions, threads against none: "
          f"{out['mean_concurrent_s_ratio_threads_vs_none']:.2f}x   ({out['cpu']}, {out['cpus']} CPUs, load "
          f"{out['loadavg_1min_before_after']})")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
