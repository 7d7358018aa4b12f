"""Serve a notebook or dashboard with `panel serve` and screenshot it in headless Chromium.

    .venv/bin/python scripts/screenshot.py notebooks/01_data_tour.ipynb docs/images/tour.png

Needs Debian's chromium (`apt-get install chromium`) and the playwright Python package;
never `playwright install`. The server binds to 127.0.0.1 and is stopped afterwards.
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = os.environ.get("VEGVIZ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, timeout: float = 60) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            urllib.request.urlopen(url, timeout=30)
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("app", help="notebook or script to serve")
    ap.add_argument("out", help="PNG to write")
    ap.add_argument("--width", type=int, default=1140)
    ap.add_argument("--height", type=int, default=1500)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    port = free_port()
    app = Path(args.app)
    server = subprocess.Popen(
        [sys.executable, "-m", "panel", "serve", str(app), "--address", "127.0.0.1", "--port", str(port),
         "--liveness"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/{app.stem}"
    try:
        wait_for(f"http://127.0.0.1:{port}/liveness")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            errors = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(url, wait_until="networkidle", timeout=120_000)
            page.wait_for_selector("canvas", timeout=120_000)
            page.wait_for_timeout(4000)
            page.screenshot(path=args.out, full_page=True)
            browser.close()
        print(f"wrote {args.out}" + (f"; browser console errors: {errors}" if errors else ""))
        return 1 if errors else 0
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    sys.exit(main())
