"""Benchmark: the error of tiled against whole-domain prediction, per halo width, on the full virtual UCRB.

    python benchmarks/bench_tiles.py [--experiment study-virtual-ucrb] [--tile 32] [--halos 0 2 4 8 12 16 24]
                                     [--start 2001-10-01 --end 2004-12-31]

A ConvLSTM's receptive field grows by the kernel radius every day, so no finite halo makes a
tile exact: the zero padding at a tile's outer edge reaches a kept cell after ``halo`` days and
then decays through the gates. This script runs each trained model of the study experiment
(read only) over ``--start``..``--end`` (the first ``burn_in`` days spin up and are not scored)
once over the whole domain, then in ``--tile`` x ``--tile`` tiles with each halo, and prints,
over the basin cells and scored days, the largest and the 99.9th-percentile absolute
difference in LAI (m2 m-2) and as a share of the standard deviation of the LAI (the run's
normalisation: the training period's observed LAI in the basin). Issue 14 asks for a default
halo that keeps the difference below 1 % of that standard deviation
(``vegviz.training.config.HALO``). Reference, in the same run: the whole-domain prediction time.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--experiment", default="study-virtual-ucrb", help="experiment folder or name under the runs dir")
    p.add_argument("--tile", type=int, default=32, help="tile side in cells (UCRB: 63 x 54, so 32 gives 2 x 2 tiles)")
    p.add_argument("--halos", type=int, nargs="+", default=[0, 2, 4, 8, 12, 16, 24])
    p.add_argument("--start", default="2001-10-01", help="first day run (burn-in included)")
    p.add_argument("--end", default="2004-12-31")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = p.parse_args(argv)

    import torch

    from vegviz.experiment import Experiment
    from vegviz.training import open_data, predict
    from vegviz.training.config import HALO
    from vegviz.cli import _find_run

    if args.threads:
        torch.set_num_threads(args.threads)
    exp = Experiment.open(_find_run(args.experiment))
    ds = None
    load = os.getloadavg()[0]
    print(f"experiment {exp.name}; days {args.start}..{args.end}; tile {args.tile}; torch threads "
          f"{torch.get_num_threads()}; load average {load:.1f}; default halo (config.HALO) {HALO}")
    print("| model | halo | max abs diff (LAI) | 99.9 % (LAI) | max / LAI std | 99.9 % / LAI std | seconds |")
    print("|---|---|---|---|---|---|---|")
    for name, run in exp.runs.items():
        cfg = run.config
        stats = run.normalization()
        model = run.model()
        if ds is None:
            ds = open_data(cfg.data, seed=cfg.seed).sel(time=slice(args.start, args.end))
        t = time.perf_counter()
        whole = predict(model, ds, cfg, stats, tile=0, threads=args.threads)[cfg.model].values
        seconds = time.perf_counter() - t
        scored = np.isfinite(whole)
        print(f"| {name} | whole domain | | | | | {seconds:.1f} |")
        for halo in args.halos:
            t = time.perf_counter()
            tiled = predict(model, ds, cfg, stats, tile=args.tile, halo=halo, threads=args.threads)[cfg.model].values
            seconds = time.perf_counter() - t
            diff = np.abs(tiled[scored] - whole[scored])
            mx, q = float(diff.max()), float(np.quantile(diff, 0.999))
            std = stats.target_std
            print(f"| {name} | {halo} | {mx:.2e} | {q:.2e} | {mx / std:.2%} | {q / std:.2%} | {seconds:.1f} |",
                  flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
