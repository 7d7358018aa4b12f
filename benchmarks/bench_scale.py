"""Benchmark: training at scale on the CPU: streamed against in-memory data, UCRB against CONUS patches, 1 vs 2 ranks.

    python benchmarks/bench_scale.py --conus-store PATH [--parts ucrb,conus,ranks] [--patch 64]

Every measurement runs in a child process whose peak resident memory is read from ``os.wait4``
(``ru_maxrss``), with the study's settings (ConvLSTM, 16 filters, batch 2, burn-in 90 + window
365 days, TBPTT chunks of 60 days, stride 122 days), one epoch each:

* ``ucrb``: the full virtual UCRB (63 x 54 cells, train 1981-2001, validate 2002-2008), once
  with the data streamed from its Zarr store (the trainer's default) and, as the reference in
  the same run, once with the whole data set loaded into memory first (``Dataset.load()``):
  epoch seconds and their ratio (issue 14: at most +5 %), peak memory of both. With
  ``--repeats N`` the pair runs N times in alternating order and the ratio is the median.
* ``conus``: the virtual CONUS domain (224 x 464 cells) of ``--conus-store`` (a few years,
  e.g. built by ``benchmarks/bench_virtual_conus.py`` or ``vegviz.data.virtual.build_store``),
  trained on ``--patch`` x ``--patch`` patches (train: its first two years, validation: the
  third), validated over the whole domain: epoch seconds and peak memory (issue 14: within
  8 GiB on this 2-core machine).
* Training cost per cell-day (the mean optimiser-step time over batch x (burn-in + window) x
  cells of a sample) for both, and its ratio; then per multiply-add of the ConvLSTM cell, since
  the CONUS domain has more input channels than the UCRB (issue 14: flat within 20 %).
* ``ranks``: a 5-year UCRB period (train 1981-1985, validate 1986) trained by one process with
  two threads, and by two gloo ranks of one thread each under ``torchrun``
  (``vegviz train --nproc 2``): epoch seconds. Two cores bound what two ranks can gain here.

Prints a markdown table with the CPU and the load average before and after (other processes on
a shared machine slow every row).
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
from machine import cpu_model  # noqa: E402  (benchmarks/machine.py)

GIB = 2**30

CHILD = textwrap.dedent("""
    import json, sys, time
    import numpy as np, torch, xarray as xr
    from vegviz.training import Config, Trainer, open_data
    spec = json.loads(sys.argv[1])
    cfg = Config.from_dict(spec["config"])
    ds = open_data(cfg.data) if not cfg.data.endswith(".zarr") else xr.open_zarr(cfg.data)
    t = time.perf_counter()
    if spec.get("in_memory"):
        ds = ds.load()
    load_s = time.perf_counter() - t
    steps = []
    trainer = Trainer(cfg, ds, spec["run_dir"], progress=False,
                      subscribers=[lambda e: steps.append(e.seconds) if e.kind == "batch" else None])
    t = time.perf_counter()
    trainer.fit()
    h = trainer.history[-1]
    h_, w_ = trainer.patch_shape
    print("RESULT", json.dumps({"epoch_s": h["seconds"], "epochs_s": [e["seconds"] for e in trainer.history],
                                "fit_s": time.perf_counter() - t, "load_s": load_s,
                                "steps": steps, "batches": len(steps), "cells": h_ * w_,
                                "samples": int(sum(len(b) for b in trainer.epoch_plan(1))),
                                "val_nse": h["val_nse_median"], "blocks_decoded": trainer.train_reader.cache.misses,
                                "inputs": trainer.stats.n_inputs, "threads": torch.get_num_threads()}))
""")



def run_child(cmd: list[str], env=None) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in bytes (the largest of the process tree's direct children included) and output."""
    t = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        out.seek(0)
        text = out.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark child failed ({' '.join(cmd[:6])} ...):\n{text[-4000:]}")
    return wall, usage.ru_maxrss * 1024, text


def train_child(config: dict, in_memory: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as run_dir:
        spec = {"config": config, "run_dir": run_dir, "in_memory": in_memory}
        wall, rss, text = run_child([sys.executable, "-c", CHILD, json.dumps(spec)])
    result = json.loads(next(line for line in text.splitlines() if line.startswith("RESULT "))[7:])
    result.update(wall_s=wall, peak_rss=rss)
    return result


def per_cell_day(r: dict, cfg: dict) -> float:
    """Mean step seconds per cell-day of a sample (first step excluded: it reads cold blocks)."""
    steps = r["steps"][1:] or r["steps"]
    per_step = sum(steps) / len(steps)
    return per_step / (cfg["batch_size"] * (cfg["burn_in"] + cfg["window"]) * r["cells"])


def macs_per_cell_day(r: dict, cfg: dict) -> float:
    """Multiply-adds of one ConvLSTM cell-day, forward: the 3 x 3 gate convolution over inputs and state."""
    h = cfg["hparams"]
    f, k, layers = h["filters"], h["kernel"], h["layers"]
    return k * k * 4 * f * ((r["inputs"] + f) + (layers - 1) * 2 * f)


def median(values):
    v = sorted(values)
    return (v[(len(v) - 1) // 2] + v[len(v) // 2]) / 2


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", default="ucrb,conus,ranks")
    p.add_argument("--conus-store", help="a virtual CONUS Zarr store of at least three years")
    p.add_argument("--patch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2, help="torch threads of the single-process runs")
    p.add_argument("--reference-last", action="store_true", help="run the streamed UCRB epochs before the reference")
    p.add_argument("--ucrb-epochs", type=int, default=2, help="epochs of the UCRB pair: the first decodes every "
                   "block once, later ones read the cache")
    p.add_argument("--repeats", type=int, default=1, help="UCRB pairs, in alternating order (reference first, then "
                   "streamed first, ...): the ratio is their median, so a machine that drifts during the run "
                   "does not decide it")
    args = p.parse_args(argv)
    parts = set(args.parts.split(","))
    from vegviz.training import Config, open_data

    base = dict(device="cpu", num_threads=args.threads, max_epochs=1)
    rows, results = [], {}
    load0 = os.getloadavg()[0]
    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical CPUs); load average before {load0:.1f}", flush=True)
    if {"ucrb", "ranks"} & parts:
        open_data("virtual_ucrb")  # built (or found) before anything is timed
    if "ucrb" in parts:
        cfg = Config(data="virtual_ucrb", **{**base, "max_epochs": args.ucrb_epochs}).to_dict()
        ratios = {}
        for rep in range(args.repeats):
            # the order of the two runs alternates, to tell a drifting machine from the code
            if (rep % 2 == 1) != args.reference_last:
                lazy, mem = train_child(cfg), train_child(cfg, in_memory=True)
            else:
                mem, lazy = train_child(cfg, in_memory=True), train_child(cfg)
            first = "streamed first" if (rep % 2 == 1) != args.reference_last else "reference first"
            results["ucrb"] = (cfg, lazy)
            for k, (m, z) in enumerate(zip(mem["epochs_s"], lazy["epochs_s"]), start=1):
                ratios.setdefault(k, []).append(z / m)
                rows.append((f"full UCRB epoch {k}, data in memory (reference; pair {rep + 1}, {first})", f"{m:.1f} s",
                             mem["peak_rss"], f"{len(mem['steps']) // len(mem['epochs_s'])} steps; load "
                             f"{mem['load_s']:.1f} s before epoch 1"))
                rows.append((f"full UCRB epoch {k}, streamed from Zarr (pair {rep + 1})", f"{z:.1f} s ({z / m:.3f} x "
                             "reference)", lazy["peak_rss"], f"{lazy['blocks_decoded']} blocks decoded in all"))
            print(rows, flush=True)
        for k, r in ratios.items():
            rows.append((f"full UCRB epoch {k}: streamed / in memory, median of {len(r)}", f"{median(r):.3f} x (target "
                         "<= 1.05)", 0, ", ".join(f"{x:.3f}" for x in r)))
    if "conus" in parts:
        if not args.conus_store:
            raise SystemExit("--conus-store PATH: a virtual CONUS store (build one with "
                             "benchmarks/bench_virtual_conus.py or vegviz.data.virtual.build_store)")
        import pandas as pd
        import xarray as xr

        years = sorted(set(pd.DatetimeIndex(xr.open_zarr(args.conus_store)["time"].values).year))
        if len(years) < 3:
            raise SystemExit(f"--conus-store {args.conus_store}: {len(years)} years; three are needed")
        y0 = years[0]
        periods = {"train": [f"{y0}-01-01", f"{y0 + 1}-12-31"], "validation": [f"{y0 + 2}-01-01", f"{y0 + 2}-12-31"],
                   "test": [f"{years[-1]}-01-01", f"{years[-1]}-12-31"]}
        if years[-1] == y0 + 2:
            periods["test"] = [f"{y0 + 2}-12-31", f"{y0 + 2}-12-31"]
        cfg = Config(data=str(Path(args.conus_store).absolute()), patch=args.patch, periods=periods, **base).to_dict()
        r = train_child(cfg)
        results["conus"] = (cfg, r)
        rows.append((f"CONUS epoch, {args.patch} x {args.patch} patches ({r['samples']} samples), whole-domain "
                     "validation", f"{r['epoch_s']:.1f} s", r["peak_rss"],
                     f"budget 8 GiB: {'within' if r['peak_rss'] <= 8 * GIB else 'OVER'}; "
                     f"{r['blocks_decoded']} blocks decoded"))
        print(rows[-1], flush=True)
    if "ucrb" in results and "conus" in results:
        u, c = (per_cell_day(r, cfg) for cfg, r in (results["ucrb"], results["conus"]))
        rows.append(("training cost per cell-day: UCRB / CONUS patches", f"{u * 1e9:.0f} / {c * 1e9:.0f} ns "
                     f"(ratio {c / u:.2f})", 0, f"{results['ucrb'][1]['inputs']} / {results['conus'][1]['inputs']} "
                     "input channels"))
        # the domains differ in their channels (CONUS has more land-cover fractions): per multiply-add is
        # the cost the grid size alone decides
        mu, mc = (macs_per_cell_day(r, cfg) for cfg, r in (results["ucrb"], results["conus"]))
        ratio = (c / mc) / (u / mu)
        rows.append(("the same per multiply-add of the ConvLSTM cell", f"{u / mu * 1e12:.1f} / {c / mc * 1e12:.1f} ps "
                     f"(ratio {ratio:.2f}; flat within 20 %: {'yes' if abs(ratio - 1) <= 0.2 else 'NO'})", 0,
                     f"{mu:.0f} / {mc:.0f} multiply-adds a cell-day")),
    if "ranks" in parts:
        periods = {"train": ["1981-01-01", "1985-12-31"], "validation": ["1986-01-01", "1986-12-31"],
                   "test": ["1987-01-01", "1987-12-31"]}
        cfg = Config(data="virtual_ucrb", periods=periods, **base)
        one = train_child(cfg.to_dict())
        with tempfile.TemporaryDirectory() as d:
            yaml = Path(d) / "config.yaml"
            cfg.replace(num_threads=1).to_yaml(yaml)
            wall, rss, text = run_child([sys.executable, "-m", "vegviz", "train", "--config", str(yaml), "--run-dir",
                                         str(Path(d) / "run"), "--no-progress", "--nproc", "2"])
            import pandas as pd

            two = pd.read_csv(Path(d) / "run" / "history.csv")["seconds"].iloc[-1]
        rows.append((f"UCRB 1981-1985 epoch, 1 process x {one['threads']} threads", f"{one['epoch_s']:.1f} s",
                     one["peak_rss"], f"{one['batches']} steps"))
        rows.append(("the same, 2 gloo ranks x 1 thread (torchrun)", f"{two:.1f} s ({two / one['epoch_s']:.2f} x)",
                     rss, "peak RSS: the torchrun launcher's largest child"))
    print(f"\nCPU: {cpu_model()}; load average before {load0:.1f}, after {os.getloadavg()[0]:.1f}\n")
    print("| measurement | time | peak RSS | notes |\n|---|---|---|---|")
    for what, t, rss, note in rows:
        print(f"| {what} | {t} | {f'{rss / GIB:.2f} GiB' if rss else ''} | {note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
