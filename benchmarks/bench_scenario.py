"""Benchmark: a delta-change scenario of the full virtual UCRB (1981-2016) and of 8 years (2009-2016).

    python benchmarks/bench_scenario.py [--periods 1981:2016,2009:2016]

Target (issue 13 §5): the full 36 years in at most 30 s on the 2-core CI machine. For each
period, in a child process (so ``ru_maxrss`` is that build's own peak memory):

1. ``build_scenario(..., DeltaChange(dt=2, precip=0.9))`` end to end: opening the baseline
   (the full virtual UCRB of the default data directory; built on first use), the change,
   the contract checks of every block, ``lai_process`` with the baseline's calibration, and
   the Zarr write, into a temporary data directory;
2. the reference, measured in the same run: the baseline's six forcings over the same days
   copied as they are into a Zarr store with the same chunks and compressor (``to_zarr``
   of the lazily opened data): the read-and-write floor any scenario build pays.

Prints seconds, peak RSS, the ratio build / reference and the load average (other processes
on a shared machine slow both).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap

CHILD = textwrap.dedent("""
    import resource, sys, time
    kind, period, out = sys.argv[1:4]
    from vegviz.catalog import open_data
    base = open_data("virtual_ucrb")  # built on first use, outside the timing
    a, _, b = period.partition(":")
    t = time.perf_counter()
    if kind == "scenario":
        from vegviz.scenarios import DeltaChange, build_scenario
        build_scenario("bench", "virtual_ucrb", period, DeltaChange(dt=2, precip=0.9), data_dir=out)
    else:
        from vegviz.data.virtual.store import _encoding, chunk_shape
        forc = base[["precip", "tair", "tmin", "swdown", "vpd", "qair"]].sel(time=slice(a + "-01-01", b + "-12-31"))
        chunks = chunk_shape(forc.sizes["lat"], forc.sizes["lon"])
        forc = forc.chunk(dict(zip(("time", "lat", "lon"), chunks)))
        for v in forc.data_vars:
            forc[v].encoding = {}
        forc.to_zarr(out + "/copy.zarr", zarr_format=3, consolidated=False,
                     encoding={v: _encoding(chunks) for v in forc.data_vars})
    seconds = time.perf_counter() - t
    print("SECONDS", seconds, "PEAK_MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
""")


def run(kind: str, period: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="vegviz-bench-scenario-") as out:
        res = subprocess.run([sys.executable, "-c", CHILD, kind, period, out], capture_output=True, text=True,
                             check=True)
    words = res.stdout.split()
    return float(words[words.index("SECONDS") + 1]), float(words[words.index("PEAK_MB") + 1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--periods", default="1981:2016,2009:2016")
    args = p.parse_args()
    for period in args.periods.split(","):
        ref, ref_mb = run("reference", period)
        sec, mb = run("scenario", period)
        print(f"delta-change scenario {period}: {sec:.1f} s, peak RSS {mb:.0f} MB; reference (copy of the "
              f"forcings to Zarr) {ref:.1f} s, peak RSS {ref_mb:.0f} MB; ratio {sec / ref:.2f}")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
