"""Benchmark vegviz.physics.add_lai_process on a full-size synthetic study period.

Builds an in-memory Dataset of 13149 days (1981-2016) x 63 x 54 cells on the UCRB grid with
random but plausible forcings and sparse (half-monthly) observed LAI, times
``add_lai_process`` and, as a yardstick on the same machine and arrays, a plain numpy pass
(one elementwise product and one cumulative sum along time). Prints seconds, the ratio and
peak memory (numpy allocations traced by tracemalloc in a second run, and the process's max RSS,
which is dominated by building the synthetic inputs).

    python benchmarks/bench_physics.py            # full size
    python benchmarks/bench_physics.py --days 2000 --dask
"""
from __future__ import annotations

import argparse
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


def timed(fn, *args, **kw):
    """Result, seconds (untraced run), and peak traced allocation (second, traced run).

    Timing and tracing are separate runs because tracemalloc slows Python-heavy code (dask).
    """
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    seconds = time.perf_counter() - t0
    del out
    tracemalloc.start()
    out = fn(*args, **kw)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, seconds, peak


def numpy_reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.cumsum(a * b, axis=0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=13149, help="length of the record (default: 1981-2016)")
    ap.add_argument("--dask", action="store_true", help="also time a dask-backed (chunked) copy")
    args = ap.parse_args(argv)

    ds = synthetic(args.days)
    mb = ds["tmin"].nbytes / 2**20
    print(f"input: {args.days} days x {UCRB.nlat} x {UCRB.nlon}, {mb:.0f} MB per float32 variable")
    add_lai_process(ds.isel(time=slice(0, 800)))  # warm up imports and caches

    _, ref_s, ref_peak = timed(numpy_reference, ds["tmin"].values, ds["vpd"].values)
    out, s, peak = timed(add_lai_process, ds)
    lp = out["lai_process"]
    print(f"numpy reference (product + cumsum): {ref_s:6.2f} s, peak {ref_peak / 2**20:6.0f} MB")
    print(f"add_lai_process:                    {s:6.2f} s, peak {peak / 2**20:6.0f} MB traced "
          f"(output itself {lp.nbytes / 2**20:.0f} MB)")
    print(f"ratio add_lai_process / reference:  {s / ref_s:6.1f}")
    if args.dask:
        lazy = ds.chunk({"time": 365})
        _, ds_s, ds_peak = timed(add_lai_process, lazy)
        print(f"add_lai_process, dask-backed input: {ds_s:6.2f} s, peak {ds_peak / 2**20:6.0f} MB traced")
    print(f"process max RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MB")
    print(f"lai_process: mean {float(lp.mean()):.3f}, min {float(lp.min()):.3f}, max {float(lp.max()):.3f}, "
          f"NaN {int(lp.isnull().sum())}")


if __name__ == "__main__":
    main()
