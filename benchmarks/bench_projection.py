"""Benchmark vegviz.scenarios.projection.project on the full virtual UCRB (issue 13 §5: at most 3 minutes).

Projects the trained study experiment (``study-virtual-ucrb``: convlstm, convlstm_physics, lstm,
read only) on a delta-change scenario of the whole record (1981-2016, +2 K) and its baseline,
with the process model and the virtual basin's truth re-run on both forcings, into a temporary
runs root (the experiment's folder is not written). Steps and their times:

* ``scenario``: building the scenario store (not part of the 3 minutes: issue 13 has its own target);
* ``predict``: the three models on the scenario (and on the baseline, unless the runs' stored
  predictions are provably the same computation: same checkpoint, same data content, same first day);
* ``baseline_read``: reading those stored predictions instead;
* ``truth``: the true vegetation model on scenario and baseline;
* ``summaries``: seasonal summaries, groups, skill tables; ``write``: projection.nc and the CSVs.

Reference, measured in the same run: one plain ``Run.predict`` of convlstm over the scenario's days
(over the record, it is what training writes as predictions.nc). Threads: the projection's default (torch's,
every core) and the same number for the reference, although the study's runs were trained with 1.

    python benchmarks/bench_projection.py                         # baseline reused where provably identical
    python benchmarks/bench_projection.py --recompute-baseline    # every model run twice
"""
from __future__ import annotations

import argparse
import ast
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 180.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--experiment", default=str(Path("~/.local/share/vegviz/runs/study-virtual-ucrb").expanduser()))
    p.add_argument("--data", default="virtual_ucrb")
    p.add_argument("--period", default="1981:2016")
    p.add_argument("--dt", type=float, default=2.0)
    p.add_argument("--recompute-baseline", action="store_true")
    p.add_argument("--no-reference", action="store_true", help="skip the reference predict")
    args = p.parse_args()

    import torch

    from vegviz.experiment import Experiment
    from vegviz.scenarios import DeltaChange, build_scenario, open_scenario
    from vegviz.scenarios.projection import project

    exp = Experiment.open(args.experiment)
    with tempfile.TemporaryDirectory(prefix="bench-projection-") as tmp:
        t0 = time.perf_counter()
        path = build_scenario("bench", args.data, args.period, DeltaChange(dt=args.dt), data_dir=tmp)
        t_scenario = time.perf_counter() - t0
        scen = open_scenario(path)
        print(f"scenario +{args.dt} K over {args.period} of {args.data}: built in {t_scenario:.1f} s "
              f"({scen.sizes['time']} days, {scen.sizes['lat']} x {scen.sizes['lon']} cells)", flush=True)
        t0 = time.perf_counter()
        proj = project(exp, scen, device="cpu", root=tmp, reuse_baseline=not args.recompute_baseline,
                       log=lambda m: print(f"  {time.perf_counter() - t0:6.1f} s  {m}", flush=True))
        total = time.perf_counter() - t0
        steps = ast.literal_eval(proj.attrs["seconds"])
        ref = None
        if not args.no_reference:
            from vegviz.catalog import open_data

            run = exp.runs["convlstm"]
            first, last = scen["time"].values[[0, -1]]
            data = open_data(args.data).sel(time=slice(first, last))
            t0 = time.perf_counter()
            run.predict(data, write=False, device="cpu", threads=torch.get_num_threads())  # as the projection
            ref = time.perf_counter() - t0

    print(f"\nprojection of {exp.name} ({', '.join(exp.models)}) + process + truth, scenario and baseline:")
    for k, v in steps.items():
        print(f"  {k:14s} {v:7.1f} s")
    print(f"  {'total':14s} {total:7.1f} s  (target {TARGET_SECONDS:.0f} s: {'met' if total <= TARGET_SECONDS else 'NOT met'})")
    if ref is not None:
        print(f"reference: one Run.predict of convlstm over {args.period} {ref:.1f} s; projection / reference = "
              f"{total / ref:.2f}")


if __name__ == "__main__":
    main()
