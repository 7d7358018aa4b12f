"""The served app over many browser sessions: what a closed session held is given back.

Sessions are real Chromium pages (a browser context each) that open the app, wait for the LAI
map to be drawn, and close; ``--unused-session-lifetime 1000 --check-unused-sessions 500`` has
Bokeh destroy a closed session within about a second, and Panel collects garbage 5 s later.
Before the fix (issue 15 section 4) each session kept ~11.6 MiB for good: LaiMaps' plot hooks held
the viewer, and HoloViews keeps every element's options (the hooks) in its module-level Store.
"""
from __future__ import annotations

import time

import pytest

from test_browser import CHROMIUM, CHROMIUM_ARGS, browser_only, start_server, stop_server
from vegviz.dashboards.app import MAP_DRAWN_JS

#: MiB a session may leave behind, on average. A plain Panel + HoloViews app grows ~0.2 MiB per
#: session; RSS is noisy by a few MiB (allocator arenas, data chunks read lazily), ~0.5 MiB per
#: session over 12. 2 MiB stays far below the 11.6 MiB per session of the leak and lets Binder's
#: 1.5 GiB serve hundreds of page views.
BOUND_MIB = 2.0
WARM_UP, SESSIONS = 3, 12


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS"))


def _settled_rss(pid: int, below: float | None = None, timeout: float = 60) -> float:
    """RSS once the closed sessions are destroyed and collected: after 8 s, then until it stops falling for 5 s
    (a loaded machine runs Panel's collection late) or drops below ``below``."""
    time.sleep(8)
    t0, low, since = time.time(), _rss_mib(pid), time.time()
    while time.time() - t0 < timeout and time.time() - since < 5 and (below is None or low > below):
        time.sleep(1)
        now = _rss_mib(pid)
        if now < low - 0.5:
            low, since = now, time.time()
    return min(low, _rss_mib(pid))


@pytest.mark.slow  # ~3 minutes: 15 browser sessions of the full app on 2 cores
@browser_only
def test_sessions_give_their_memory_back(tiny_experiment):
    from playwright.sync_api import sync_playwright

    proc, url, log = start_server(["dashboards", "--unused-session-lifetime", "1000", "--check-unused-sessions",
                                   "500"], env={"VEGVIZ_RUNS_DIR": str(tiny_experiment.path.parent)})
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

            def session():
                ctx = browser.new_context(viewport={"width": 1440, "height": 900})
                page = ctx.new_page()
                page.goto(f"{url}/dashboards")
                page.wait_for_function(MAP_DRAWN_JS, timeout=180_000, polling=250)
                ctx.close()  # the websocket closes: the server destroys the session

            for _ in range(WARM_UP):
                session()
            before = _settled_rss(proc.pid)
            for _ in range(SESSIONS):
                session()
            browser.close()
        after = _settled_rss(proc.pid, below=before + BOUND_MIB * SESSIONS)
    finally:
        stop_server(proc)
    per_session = (after - before) / SESSIONS
    print(f"server RSS {before:.0f} -> {after:.0f} MiB over {SESSIONS} sessions: {per_session:+.2f} MiB each")
    assert per_session < BOUND_MIB, (f"the server grew {after - before:.0f} MiB over {SESSIONS} sessions "
                                     f"({per_session:.1f} MiB each, {before:.0f} -> {after:.0f} MiB); log: {log}")
