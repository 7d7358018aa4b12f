"""Benchmark vegviz.training at the study's scale: peak memory and time per batch on the CPU.

Scale of the reference study: 63 x 54 cells, 16 filters, year-long windows (365 scored days
after a 90-day burn-in), batch 8, train 1981-2001 / validation 2002-2008. Each measurement
runs in a fresh process so that its peak resident memory (``ru_maxrss``) is its own:

* ``hold``: open the data, fit the normalisation and load the training and validation
  arrays (what the trainer holds for the whole run) -- the reference;
* ``train``: the same, then ``--steps`` optimiser steps (truncated BPTT, chunks of
  ``--chunk`` days) and one validation pass.

It prints peak RSS, seconds per batch (steps after the first, which warms up), the
validation time and the expected time per epoch (batches per epoch x time per batch of
``--batch`` windows, scaled for the smaller last batch, + validation).

    python benchmarks/bench_training.py                       # full virtual basin (built on first use)
    python benchmarks/bench_training.py --data random         # same-size random input, nothing to build
    python benchmarks/bench_training.py --models convlstm,convlstm_physics,lstm
    python benchmarks/bench_training.py --chunk 365           # untruncated BPTT over the window (~5+ GB)
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

GIB = 1024**3


def random_basin(start="1981-01-01", end="2016-12-31", seed=0):
    """A lazily generated (dask) contract Dataset of the study's size with plausible random values."""
    import dask.array as dsa
    import numpy as np
    import pandas as pd

    from vegviz.contract import cf_attrs
    from vegviz.data.static import load_static

    static = load_static()
    time_ = pd.date_range(start, end, freq="D")
    shape = (len(time_), static.sizes["lat"], static.sizes["lon"])
    chunks = (365, *shape[1:])
    rs = dsa.random.RandomState(seed)
    observed = dsa.from_array((np.arange(shape[0]) % 8 == 0)[:, None, None], chunks=(365, 1, 1))
    values = {
        "precip": rs.gamma(0.5, 2.0, size=shape, chunks=chunks),
        "tair": rs.normal(8, 10, size=shape, chunks=chunks).clip(-40, 40),
        "tmin": rs.normal(0, 10, size=shape, chunks=chunks).clip(-50, 35),
        "swdown": rs.uniform(50, 350, size=shape, chunks=chunks),
        "vpd": rs.uniform(0, 3, size=shape, chunks=chunks),
        "lai": dsa.where(observed, rs.uniform(0.1, 3, size=shape, chunks=chunks), np.nan),
        "lai_process": rs.uniform(0.1, 3, size=shape, chunks=chunks),
    }
    ds = static[["landcover", "elevation", "mask"]].assign_coords(time=time_)
    for name, v in values.items():
        ds[name] = (("time", "lat", "lon"), v.astype("float32"), cf_attrs(name))
    ds.attrs.update(source="random benchmark input", synthetic=1)
    return ds


def peak_rss() -> int:
    """Peak resident set size of this process in bytes (Linux reports KiB, macOS bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def child(args) -> dict:
    """One measurement in this (fresh) process."""
    import torch

    from vegviz.training import Config, Trainer, open_data

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = Config(data=args.data if args.data != "random" else "random", model=args.model, window=args.window,
                 burn_in=args.burn_in, chunk=args.chunk, batch_size=args.batch, max_epochs=1, device="cpu",
                 num_threads=args.threads or None, hparams={"filters": args.filters})
    ds = random_basin() if args.data == "random" else open_data(args.data)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(cfg, ds, run_dir, progress=False)
        t0 = time.perf_counter()
        trainer.setup()
        out = {"phase": args.phase, "model": args.model, "setup_s": time.perf_counter() - t0,
               "data_bytes": trainer.train_reader.cache.nbytes, "chunk": args.chunk,
               "threads": torch.get_num_threads()}
        if args.phase == "train":
            plan = trainer.epoch_plan(1)
            full = [b for b in plan if len(b) == args.batch] or plan
            times = []
            for k in range(args.steps):
                t = time.perf_counter()
                trainer.train_step(full[k % len(full)])
                times.append(time.perf_counter() - t)
            t = time.perf_counter()
            trainer.validate()
            out["val_s"] = time.perf_counter() - t
            out["batch_s"] = times
            steady = sorted(times[1:] or times)
            per_window = steady[len(steady) // 2] / len(full[0])  # median: robust to a busy machine
            out["windows_per_epoch"] = int(sum(len(b) for b in plan))
            out["batches_per_epoch"] = len(plan)
            out["epoch_s_expected"] = per_window * out["windows_per_epoch"] + out["val_s"]
        out["peak_rss"] = peak_rss()
    return out


def run_child(argv: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", *argv], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="virtual_ucrb", help="catalog entry, Zarr/NetCDF path, or 'random'")
    p.add_argument("--models", default="convlstm", help="comma-separated registry names")
    p.add_argument("--steps", type=int, default=3, help="optimiser steps to time (the first is a warm-up)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--window", type=int, default=365)
    p.add_argument("--burn-in", type=int, default=90)
    p.add_argument("--chunk", type=int, default=60, help="truncated-BPTT chunk length in days")
    p.add_argument("--filters", type=int, default=16)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--phase", default="train", help=argparse.SUPPRESS)
    p.add_argument("--model", default="convlstm", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return 0

    common = ["--data", args.data, "--steps", str(args.steps), "--batch", str(args.batch), "--window",
              str(args.window), "--burn-in", str(args.burn_in), "--chunk", str(args.chunk), "--filters",
              str(args.filters), "--threads", str(args.threads)]
    if args.data.startswith("virtual_ucrb"):  # build the cache outside the measurements
        from vegviz.training import open_data

        t = time.perf_counter()
        open_data(args.data)
        print(f"data {args.data!r} ready in {time.perf_counter() - t:.1f} s")
    print(f"scale: 63 x 54 cells, {args.filters} filters, batch {args.batch}, burn-in {args.burn_in} + window "
          f"{args.window} days, TBPTT chunk {args.chunk} days, data {args.data!r}")
    worst = 0
    for model in args.models.split(","):
        hold = run_child([*common, "--phase", "hold", "--model", model])
        r = run_child([*common, "--phase", "train", "--model", model])
        worst = max(worst, r["peak_rss"])
        times = ", ".join(f"{t:.2f}" for t in r["batch_s"])
        print(f"{model}: ({r['threads']} torch threads)\n"
              f"  setup only:      peak RSS {hold['peak_rss'] / GIB:.2f} GiB (cached blocks {hold['data_bytes'] / GIB:.2f} GiB, "
              f"setup {hold['setup_s']:.1f} s)\n"
              f"  training:        peak RSS {r['peak_rss'] / GIB:.2f} GiB "
              f"({(r['peak_rss'] - hold['peak_rss']) / GIB:+.2f} GiB over holding the data)\n"
              f"  s/batch [{times}]; validation {r['val_s']:.1f} s; expected epoch "
              f"({r['windows_per_epoch']} windows in {r['batches_per_epoch']} batches + validation) "
              f"{r['epoch_s_expected']:.0f} s")
    budget = 3 * GIB
    print(f"largest peak RSS {worst / GIB:.2f} GiB: {'within' if worst <= budget else 'OVER'} the 3 GiB budget")
    return 0


if __name__ == "__main__":
    sys.exit(main())
