"""Benchmark: static fields of a large domain (default: CONUS, 224 x 464 cells) from the global sources.

    python benchmarks/bench_static.py [--domain conus] [--outlet-domain ucrb]

Each measurement runs in a fresh child process (wall clock, peak resident memory from its
``ru_maxrss``), with a private data directory so nothing is cached:

1. ``build_static(domain)``: MODIS MCD12C1 land cover (majority and fractions), ETOPO5
   elevation, the basin mask (target: at most 60 s and 2 GiB for CONUS);
2. the continental D8 routing that outlet domains need, computed once per data directory
   (``vegviz.data.basin.routing``), and an outlet domain built on it;
3. the reference, measured in the same run: reading the two source rasters alone (the
   MCD12C1 GeoTIFF window and ETOPO5), with the ratio of (1) to it.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time

BUILD = textwrap.dedent("""
    import sys, time
    from vegviz.data.static import build_static
    t = time.perf_counter()
    ds = build_static(sys.argv[1])
    print("SECONDS", time.perf_counter() - t, "CELLS", ds.sizes["lat"] * ds.sizes["lon"], "MASK", int(ds["mask"].sum()))
""")

ROUTING = textwrap.dedent("""
    import sys, time
    from vegviz.data.basin import routing
    from vegviz.data.static import build_static
    t = time.perf_counter()
    routing()
    r = time.perf_counter() - t
    t = time.perf_counter()
    ds = build_static(sys.argv[1])
    print("SECONDS", r, "OUTLET_DOMAIN_SECONDS", time.perf_counter() - t)
""")

REFERENCE = textwrap.dedent("""
    import sys, time
    from vegviz import domains
    from vegviz.data.landcover import read_mcd12c1
    from vegviz.data.static import read_etopo5
    grid = domains.get(sys.argv[1]).grid
    t = time.perf_counter()
    lc = read_mcd12c1(grid=grid).load()
    z = read_etopo5().load()
    print("SECONDS", time.perf_counter() - t)
""")


def child(code: str, *args: str, data_dir: str) -> tuple[dict, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    env = dict(os.environ, VEGVIZ_DATA_DIR=data_dir)
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    if proc.returncode:
        sys.exit(proc.stderr)
    words = proc.stdout.split()
    out = {words[i]: float(words[i + 1]) for i in range(0, len(words) - 1, 2)}
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return out, max(peak, before) * 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domain", default="conus")
    ap.add_argument("--outlet-domain", default="ucrb", help="an outlet domain timed after the routing")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d1, tempfile.TemporaryDirectory() as d2, tempfile.TemporaryDirectory() as d3:
        # ru_maxrss of RUSAGE_CHILDREN is the largest child so far: the smallest job runs first
        ref, ref_rss = child(REFERENCE, args.domain, data_dir=d3)
        built, rss = child(BUILD, args.domain, data_dir=d1)
        routed, routed_rss = child(ROUTING, args.outlet_domain, data_dir=d2)
    gib = 2**30
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"reference (read MCD12C1 window + ETOPO5): {ref['SECONDS']:.1f} s, peak {ref_rss / gib:.2f} GiB")
    print(f"build_static({args.domain!r}): {built['SECONDS']:.1f} s for {int(built['CELLS']):,} cells "
          f"({int(built['MASK']):,} in the mask), peak {rss / gib:.2f} GiB so far "
          f"(target <= 60 s, <= 2 GiB); ratio to the reference {built['SECONDS'] / ref['SECONDS']:.1f}")
    print(f"continental routing (once per data dir): {routed['SECONDS']:.1f} s; then build_static("
          f"{args.outlet_domain!r}) {routed['OUTLET_DOMAIN_SECONDS']:.1f} s; peak {routed_rss / gib:.2f} GiB so far")


if __name__ == "__main__":
    main()
