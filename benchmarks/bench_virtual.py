"""Benchmark: build the full 36-year virtual UCRB and compare with a plain Zarr write.

    python benchmarks/bench_virtual.py [--variant full] [--seed 42] [--dir DIR]

1. builds the store with ``open_virtual_basin`` in a child process (a first open), timing its
   wall clock and reading its peak resident memory (``ru_maxrss`` of the child);
2. opens it again in this process (a second open, from the cache);
3. as the reference, measured in the same run: writes as many float32 values of random
   noise, with the same chunks and compressor, into a fresh Zarr store (also in a child
   process), and reports the ratio of the two wall times;
4. prints the load average, since other processes on a shared machine slow both.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

BUILD = textwrap.dedent("""
    import sys, time
    from vegviz.data.virtual import open_virtual_basin
    t = time.perf_counter()
    ds = open_virtual_basin(sys.argv[1], seed=int(sys.argv[2]), data_dir=sys.argv[3])
    print("BUILD_SECONDS", time.perf_counter() - t)
    n = sum(ds[v].size for v in ds.data_vars if ds[v].dims == ("time", "lat", "lon"))
    print("VALUES", n)
""")

REFERENCE = textwrap.dedent("""
    import sys, time
    import numpy as np, zarr
    from vegviz.data.virtual.store import CHUNK_DAYS, COMPRESSOR, chunk_shape
    n_values, ny, nx, path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    nt = n_values // (ny * nx)
    t = time.perf_counter()
    z = zarr.create_array(path, shape=(nt, ny, nx), chunks=chunk_shape(ny, nx), dtype="float32",
                          compressors=(COMPRESSOR,), fill_value=np.nan)
    rng = np.random.default_rng(0)
    for a in range(0, nt, CHUNK_DAYS):
        b = min(a + CHUNK_DAYS, nt)
        z[a:b] = rng.standard_normal((b - a, ny, nx), dtype=np.float32)
    print("REFERENCE_SECONDS", time.perf_counter() - t)
""")  # argv: n_values, ny, nx, path; also bench_virtual_conus.py's reference


def run_child(code: str, *args: str) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (bytes) and stdout of ``python -c code args``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode:
        sys.exit(f"child failed:\n{proc.stdout}\n{proc.stderr}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # max over waited children
    if peak_kib < before:  # pragma: no cover
        peak_kib = before
    return wall, peak_kib * 1024, proc.stdout


def value(stdout: str, key: str) -> float:
    for line in stdout.splitlines():
        if line.startswith(key + " "):
            return float(line.split()[1])
    raise KeyError(key)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="full")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--dir", default=None, help="parent of the temporary directory (default: system temp)")
    args = ap.parse_args(argv)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="vegviz-bench-", dir=args.dir) as tmp:
        wall, peak, out = run_child(BUILD, args.variant, str(args.seed), tmp)
        n_values = int(value(out, "VALUES"))

        from vegviz.data.virtual import open_virtual_basin
        from vegviz.data.virtual.store import cache_dir, store_name

        t = time.perf_counter()
        ds = open_virtual_basin(args.variant, seed=args.seed, data_dir=tmp)
        second_open = time.perf_counter() - t
        store = cache_dir(tmp) / store_name(args.variant, args.seed)
        size = sum(f.stat().st_size for f in Path(store).rglob("*") if f.is_file())
        ntime = ds.sizes["time"]
        ds.close()

        ref_wall, ref_peak, ref_out = run_child(REFERENCE, str(n_values), "63", "54", str(Path(tmp) / "reference.zarr"))
    load_after = os.getloadavg()
    result = {
        "variant": args.variant,
        "days": ntime,
        "dynamic_values": n_values,
        "build_wall_s": round(wall, 2),
        "build_s_inside_child": round(value(out, "BUILD_SECONDS"), 2),
        "build_peak_rss_MiB": round(peak / 2**20),
        "second_open_s": round(second_open, 3),
        "store_MiB": round(size / 2**20),
        "reference_random_write_wall_s": round(ref_wall, 2),
        "ratio_build_to_reference": round(wall / ref_wall, 1),
        "loadavg_1min_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
