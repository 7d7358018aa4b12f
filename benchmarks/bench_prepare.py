"""Benchmark: ``vegviz prepare`` streams, with peak memory flat in the number of years.

    python benchmarks/bench_prepare.py [--years 2 4] [--start 2001] [--domain conus] [--dir DIR]

Once, in a temporary directory: a synthetic archive of max(--years) years from ``--start`` on the
whole grid of ``--domain`` (default ``conus``, 224 x 464 cells): GLOBMAP LAI V3 8-day GeoTIFF
composites in the real layout (:mod:`vegviz.data.samples`: int16 LAI x 100, georeferencing tags,
a seasonal cycle on the land cover), and the names of the hourly NLDAS-2 version 2.0 files,
24 a day (the first one a real sample file; the others empty).

Then, for each number of years N, :func:`vegviz.data.prepare.prepare_real` of the first N years
in a child process, timing its wall clock and reading the child's own peak resident memory
(``ru_maxrss`` from ``os.wait4``). In the child the hourly files' aggregation to days
(:func:`vegviz.data.nldas.daily.aggregate_day`, ~3 s a day of 24 UCRB files on 2 cores, hours
for a year of CONUS files) is replaced by synthetic daily fields, so that a run takes minutes:
the daily forcing store is still written by :func:`vegviz.data.nldas.write_daily_zarr` block by
block, and everything after it (lazy forcings and GLOBMAP LAI written a time chunk at a time,
``lai_process`` out of core, the contract check of the whole store, the rename) is prepare's own code.

Prints the peak memory of the longest run over that of the shortest (flat: ~1), the CPU and the
load average (other processes on a shared machine slow every run). Prepare holds about two time
chunks (a year of days by the domain) at once: one being written while the next is computed.
A period of one year is one time chunk, with no write overlapping a computation, so its peak is
lower by about a chunk (~0.5 GiB on CONUS): the default runs start at two years. The domain's static fields
are built (about a minute for CONUS, from MCD12C1 and ETOPO5) and cached in the data directory
(``--data-dir``, default $VEGVIZ_DATA_DIR or the user data directory) before anything is
measured; nothing is registered in the catalog.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_virtual_conus import run_child, value  # noqa: E402  (one home for the child measurement)
from machine import describe  # noqa: E402  (benchmarks/machine.py)

PREPARE = textwrap.dedent("""
    import sys, time
    import numpy as np
    import pandas as pd
    from vegviz.data.nldas import daily
    nldas, globmap, out, domain, start, end, data_dir = sys.argv[1:8]
    if data_dir:
        import os
        os.environ["VEGVIZ_DATA_DIR"] = data_dir

    def synthetic_day(granules, grid):
        # (DAILY, lat, lon) float32: precip, tair, tmin, swdown, vpd, qair in the contract's units
        day = granules[0].day
        s = np.sin(2 * np.pi * (day.day_of_year - 115) / 365.25)
        rng = np.random.default_rng(day.toordinal())
        shape = (grid.nlat, grid.nlon)
        north = np.linspace(1.0, -1.0, grid.nlat)[:, None] * np.ones(shape)
        tair = 8.0 + 12.0 * s + 6.0 * north + rng.normal(0.0, 2.0, shape)
        tmin = tair - 5.0 - np.abs(rng.normal(0.0, 2.0, shape))
        precip = np.clip(rng.gamma(0.4, 5.0, shape) - 0.5, 0.0, None)
        swdown = np.clip(220.0 + 90.0 * s + rng.normal(0.0, 30.0, shape), 0.0, None)
        vpd = np.clip(0.9 + 0.6 * s + 0.2 * rng.normal(size=shape), 0.0, None)
        qair = np.clip(0.005 + 0.002 * s + 0.0005 * rng.normal(size=shape), 1e-5, None)
        return np.stack([precip, tair, tmin, swdown, vpd, qair]).astype(np.float32)

    daily.aggregate_day = synthetic_day  # nldas_daily's per-day task: no hourly file is read
    from vegviz.data.prepare import prepare_real
    t = time.perf_counter()
    ds = prepare_real(nldas, globmap, out, domain=domain, start=start, end=end, name=False, log=lambda *a: None)
    print("PREPARE_SECONDS", time.perf_counter() - t)
    print("SHAPE", *[ds.sizes[d] for d in ("time", "lat", "lon")])
    print("CHUNKS", *ds["tair"].encoding["chunks"])
""")


def write_archive(root: Path, grid, start: pd.Timestamp, end: pd.Timestamp) -> dict:
    """NLDAS-2 hourly file names (the first a real sample file, the others empty) and GLOBMAP composites."""
    from vegviz.data import samples
    from vegviz.data.nldas import granule_name

    nldas, globmap = root / "nldas", root / "globmap"
    # the first hour a real 2.0 file (prepare reads its title: a sample archive is labelled synthetic)
    samples.write_nc_granule(nldas, start, samples.hourly_values(start, 0))
    for t in pd.date_range(start, end + pd.Timedelta(hours=23), freq="h")[1:]:
        (nldas / granule_name(t, "020")).touch()
    globmap.mkdir(parents=True)
    # the same helpers as vegviz.data.samples.write_sample_archive, on any grid: the GLOBMAP lattice around
    # it and the land cover of the committed UCRB fields (nearest cell) to scale the seasonal cycle
    west, north, lat, lon = samples._globmap_subset(grid)
    codes = samples._pixel_landcover(lat, lon)
    n = 0
    for year in range(start.year, end.year + 1):
        for doy in range(1, 367, 8):
            date = pd.Timestamp(year, 1, 1) + pd.Timedelta(days=doy - 1)
            if date.year == year and start <= date <= end:
                samples.write_globmap_tif(globmap / f"GlobMapLAIV3.A{year}{doy:03d}.Global.LAI.tif",
                                          samples.sample_lai(date, lat, lon, codes), west, north)
                n += 1
    return {"nldas": nldas, "globmap": globmap, "composites": n}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--years", type=int, nargs="+", default=[2, 4], help="numbers of years to prepare")
    ap.add_argument("--start", type=int, default=2001, help="first year of every run")
    ap.add_argument("--domain", default="conus")
    ap.add_argument("--data-dir", default=None, help="where the static fields are cached (default: the data dir)")
    ap.add_argument("--dir", default=None, help="parent of the temporary directory (default: system temp)")
    args = ap.parse_args(argv)

    from vegviz import domains
    from vegviz.data.static import static_for

    grid = domains.get(args.domain, args.data_dir).grid
    t = time.perf_counter()
    static_for(args.domain, args.data_dir)  # built and cached once, outside the measurements
    static_s = time.perf_counter() - t
    start = pd.Timestamp(args.start, 1, 1)
    last = pd.Timestamp(args.start + max(args.years) - 1, 12, 31)
    load_before = os.getloadavg()
    runs = []
    with tempfile.TemporaryDirectory(prefix="vegviz-bench-prepare-", dir=args.dir) as tmp:
        t = time.perf_counter()
        archive = write_archive(Path(tmp) / "archive", grid, start, last)
        archive_s = time.perf_counter() - t
        for n in sorted(args.years):
            end = pd.Timestamp(args.start + n - 1, 12, 31)
            out = Path(tmp) / f"{args.domain}-{n}y.zarr"
            wall, peak, stdout = run_child(PREPARE, str(archive["nldas"]), str(archive["globmap"]), str(out),
                                           args.domain, f"{start:%Y-%m-%d}", f"{end:%Y-%m-%d}", args.data_dir or "")
            size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
            runs.append({
                "years": n,
                "period": f"{start:%Y-%m-%d}..{end:%Y-%m-%d}",
                "days": int(value(stdout, "SHAPE")[0]),
                "chunks": [int(c) for c in value(stdout, "CHUNKS")],
                "wall_s": round(wall, 1),
                "prepare_s_inside_child": round(value(stdout, "PREPARE_SECONDS")[0], 1),
                "peak_rss_MiB": round(peak / 2**20),
                "store_MiB": round(size / 2**20),
            })
            shutil.rmtree(out, ignore_errors=True)
    load_after = os.getloadavg()
    peaks = [r["peak_rss_MiB"] for r in runs]
    result = {
        "domain": args.domain,
        "grid": f"{grid.nlat} x {grid.nlon}",
        "cells": grid.nlat * grid.nlon,
        "static_fields_s": round(static_s, 1),
        "archive_s": round(archive_s, 1),
        "composites": archive["composites"],
        "runs": runs,
        "peak_rss_longest_over_shortest": round(peaks[-1] / peaks[0], 2),
        **describe(load_before[0], load_after[0]),
    }
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
