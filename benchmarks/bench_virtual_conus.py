"""Benchmark: the CONUS-size virtual basin builds out of core, with peak memory flat in the number of years.

    python benchmarks/bench_virtual_conus.py [--years 1 4] [--start 2001] [--domain conus] [--dir DIR]

For each number of years N (default 1 and 4: 2001 and 2001-2004):

1. builds the virtual basin of ``--domain`` (default ``conus``, the whole NLDAS-2 grid, 224 x 464
   cells) over N years with :func:`vegviz.data.virtual.build_store` in a child process, into a
   temporary directory, timing its wall clock and reading the child's own peak resident memory
   (``ru_maxrss`` from ``os.wait4``); the build includes SPINUP_YEARS years of spin-up, the
   out-of-core ``lai_process`` and the validation;
2. as the reference, measured in the same run: writes as many float32 values of random noise
   (the store's dynamic variables), with the same chunks and compressor, into a fresh Zarr store
   (also in a child process), and reports the ratios of wall time and peak memory.

Then prints the peak memory of the longest build over that of the shortest (flat: ~1) against the
8 GiB budget of issue 12, and the load average, since other processes on a shared machine slow
both. The domain's static fields are built (about a minute for CONUS, from MCD12C1 and ETOPO5)
and cached in the data directory (``--data-dir``, default $VEGVIZ_DATA_DIR or the user data
directory) before anything is measured.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from bench_virtual import REFERENCE  # noqa: E402  (the same reference write, any grid)
from machine import describe  # noqa: E402  (benchmarks/machine.py)

BUDGET_GIB = 8.0

BUILD = textwrap.dedent("""
    import sys, time
    from vegviz.data.static import static_for
    from vegviz.data.virtual import build_store
    from vegviz.data.virtual.store import DYNAMIC
    domain, start, end, path, data_dir = sys.argv[1:6]
    static = static_for(domain, data_dir or None)
    t = time.perf_counter()
    build_store(path, start, end, seed=int(sys.argv[6]), static=static)
    print("BUILD_SECONDS", time.perf_counter() - t)
    import xarray as xr
    ds = xr.open_zarr(path)
    print("VALUES", sum(ds[v].size for v in ds.data_vars if ds[v].dims == ("time", "lat", "lon")))
    print("SHAPE", *[ds.sizes[d] for d in ("time", "lat", "lon")])
""")

def run_child(code: str, *args: str) -> tuple[float, int, str]:
    """Wall seconds, the child's own peak RSS (bytes, ``ru_maxrss`` of ``os.wait4``) and stdout of
    ``python -c code args``."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's rusage, not the maximum over all children
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode:
        sys.exit(f"child failed ({proc.returncode}):\n{stdout}\n{stderr}")
    return wall, usage.ru_maxrss * 1024, stdout


def value(stdout: str, key: str) -> list[float]:
    for line in stdout.splitlines():
        if line.startswith(key + " "):
            return [float(v) for v in line.split()[1:]]
    raise KeyError(key)



def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--years", type=int, nargs="+", default=[1, 4], help="numbers of years to build")
    ap.add_argument("--start", type=int, default=2001, help="first year of every build")
    ap.add_argument("--domain", default="conus")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--data-dir", default=None, help="where the static fields are cached (default: the data dir)")
    ap.add_argument("--dir", default=None, help="parent of the temporary directory (default: system temp)")
    args = ap.parse_args(argv)

    from vegviz.data.static import static_for

    t = time.perf_counter()
    static = static_for(args.domain, args.data_dir)  # built and cached once, outside the measurements
    static_s = time.perf_counter() - t
    ny, nx = static.sizes["lat"], static.sizes["lon"]
    load_before = os.getloadavg()
    runs = []
    with tempfile.TemporaryDirectory(prefix="vegviz-bench-conus-", dir=args.dir) as tmp:
        for n in args.years:
            store = Path(tmp) / f"{args.domain}-{n}y.zarr"
            wall, peak, out = run_child(BUILD, args.domain, f"{args.start}-01-01", f"{args.start + n - 1}-12-31",
                                        str(store), args.data_dir or "", str(args.seed))
            n_values = int(value(out, "VALUES")[0])
            size = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
            ref = Path(tmp) / f"reference-{n}y.zarr"
            ref_wall, ref_peak, _ = run_child(REFERENCE, str(n_values), str(ny), str(nx), str(ref))
            runs.append({
                "years": n,
                "period": f"{args.start}..{args.start + n - 1}",
                "days": int(value(out, "SHAPE")[0]),
                "build_wall_s": round(wall, 1),
                "build_s_inside_child": round(value(out, "BUILD_SECONDS")[0], 1),
                "build_peak_rss_MiB": round(peak / 2**20),
                "store_MiB": round(size / 2**20),
                "dynamic_values": n_values,
                "reference_random_write_wall_s": round(ref_wall, 1),
                "reference_peak_rss_MiB": round(ref_peak / 2**20),
                "ratio_build_to_reference_wall": round(wall / ref_wall, 1),
            })
            for p in (store, ref):
                subprocess.run(["rm", "-rf", str(p)], check=False)
    load_after = os.getloadavg()
    peaks = [r["build_peak_rss_MiB"] for r in runs]
    result = {
        "domain": args.domain,
        "cells": ny * nx,
        "grid": f"{ny} x {nx}",
        "static_fields_s": round(static_s, 1),
        "runs": runs,
        "peak_rss_longest_over_shortest": round(peaks[-1] / peaks[0], 2),
        "budget_GiB": BUDGET_GIB,
        "within_budget": max(peaks) < BUDGET_GIB * 1024,
        **describe(load_before[0], load_after[0]),
    }
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
