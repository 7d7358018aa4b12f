"""Benchmark vegviz.physics.add_lai_process on a full-size synthetic study period.

Builds an in-memory Dataset of 13149 days (1981-2016) x 63 x 54 cells on the UCRB grid with
random but plausible forcings and sparse (half-monthly) observed LAI, times
``add_lai_process`` and, as a yardstick on the same machine and arrays, a plain numpy pass
(one elementwise product and one cumulative sum along time). Prints seconds, the ratio and
peak memory (numpy allocations traced by tracemalloc in a separate run, and the process's max RSS,
which is dominated by building the synthetic inputs).

Both are timed ``--repeats`` times, interleaved (reference, add_lai_process, reference, ...), so
a slow spell of a shared machine hits both alike; the best, median and worst run of each are
printed and the ratio is that of the best runs (a single run of the reference swung 0.4-1.1 s).

    python benchmarks/bench_physics.py            # full size
    python benchmarks/bench_physics.py --days 2000 --dask --repeats 3
"""
from __future__ import annotations

import argparse
import gc
import resource
import time
import tracemalloc

import numpy as np
import pandas as pd
import xarray as xr

from vegviz.contract import cf_attrs
from vegviz.grid import UCRB
from vegviz.physics import add_lai_process


def synthetic(days: int, seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    time_ = pd.date_range("1981-01-01", periods=days, freq="D")
    shape = (days, *UCRB.shape)
    season = -np.cos(2 * np.pi * (time_.day_of_year.to_numpy() - 15) / 365).astype("float32")[:, None, None]
    elev = (1500 + 1500 * rng.random(UCRB.shape)).astype("float32")
    ds = UCRB.template().assign_coords(time=time_)

    def add(name, values):
        ds[name] = (("time", "lat", "lon"), values.astype("float32", copy=False), cf_attrs(name))

    tair = rng.standard_normal(shape, dtype="float32")
    tair *= 3
    tair += 12 * season + 15 - 0.0065 * elev
    add("tair", tair)
    add("tmin", tair - 7 - 2 * rng.random(shape, dtype="float32"))
    add("precip", rng.gamma(0.3, 4.0, shape).astype("float32"))
    add("vpd", np.clip(1.5 + 1.2 * season + 0.4 * rng.standard_normal(shape, dtype="float32"), 0, None))
    lai = np.full(shape, np.nan, dtype="float32")
    lai[::16] = 0.3 + 1.5 * np.clip(season[::16], 0, None) + 0.2 * rng.random(lai[::16].shape, dtype="float32")
    add("lai", lai)
    ds["landcover"] = (("lat", "lon"), rng.choice([1, 7, 10], UCRB.shape).astype("int16"), cf_attrs("landcover"))
    ds["elevation"] = (("lat", "lon"), elev, cf_attrs("elevation"))
    return ds


def traced(fn):
    """Output and peak traced allocation (bytes) of one run of its own: tracemalloc slows dask."""
    tracemalloc.start()
    out = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, peak


def interleaved_seconds(calls: dict, repeats: int) -> dict[str, list[float]]:
    """Seconds of each ``name: callable`` over ``repeats`` rounds, one run of each per round.

    Each run's output is freed before the next, so every run starts from the same memory state.
    """
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            gc.collect()
            t0 = time.perf_counter()
            out = fn()
            seconds[name].append(time.perf_counter() - t0)
            del out
    return seconds


def spread(runs: list[float]) -> str:
    """'best 0.38 s, median 0.41 s, worst 1.08 s of 7' for a list of seconds."""
    return (f"best {min(runs):4.2f} s, median {float(np.median(runs)):4.2f} s, worst {max(runs):4.2f} s "
            f"of {len(runs)}")


def numpy_reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.cumsum(a * b, axis=0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=13149, help="length of the record (default: 1981-2016)")
    ap.add_argument("--dask", action="store_true", help="also time a dask-backed (chunked) copy")
    ap.add_argument("--repeats", type=int, default=7, help="timed runs of each, interleaved (default 7)")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")

    ds = synthetic(args.days)
    mb = ds["tmin"].nbytes / 2**20
    print(f"input: {args.days} days x {UCRB.nlat} x {UCRB.nlon}, {mb:.0f} MB per float32 variable")
    add_lai_process(ds.isel(time=slice(0, 800)))  # warm up imports and caches

    a, b = ds["tmin"].values, ds["vpd"].values
    calls = {"reference": lambda: numpy_reference(a, b), "physics": lambda: add_lai_process(ds)}
    if args.dask:
        lazy = ds.chunk({"time": 365})
        calls["dask"] = lambda: add_lai_process(lazy)
    runs = interleaved_seconds(calls, args.repeats)
    ref_peak = traced(calls["reference"])[1]
    out, peak = traced(calls["physics"])
    lp = out["lai_process"]
    print(f"numpy reference (product + cumsum): {spread(runs['reference'])}, peak {ref_peak / 2**20:4.0f} MB traced")
    print(f"add_lai_process:                    {spread(runs['physics'])}, peak {peak / 2**20:4.0f} MB traced "
          f"(output itself {lp.nbytes / 2**20:.0f} MB)")
    print(f"ratio add_lai_process / reference:  {min(runs['physics']) / min(runs['reference']):.1f} (best runs), "
          f"{np.median(runs['physics']) / np.median(runs['reference']):.1f} (medians)")
    if args.dask:
        ds_peak = traced(calls["dask"])[1]
        print(f"add_lai_process, dask-backed input: {spread(runs['dask'])}, peak {ds_peak / 2**20:4.0f} MB traced")
    print(f"process max RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MB")
    print(f"lai_process: mean {float(lp.mean()):.3f}, min {float(lp.min()):.3f}, max {float(lp.max()):.3f}, "
          f"NaN {int(lp.isnull().sum())}")


if __name__ == "__main__":
    main()
