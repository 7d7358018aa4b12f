"""Benchmark a Scenarios-dashboard job: 8 years, one model (issue 13 §5: at most 60 s).

What a user waits for after pressing **Run** in the Scenarios dashboard with a new delta change
(+2 K, 90 % precipitation) over 2009-2016 (the test period) of the full virtual UCRB for one model
(``study-virtual-ucrb/convlstm``, read only): the dashboard's background job builds the scenario,
runs the model on scenario and baseline, re-runs the virtual basin's truth on both, computes the
summaries and skill and writes the projection; the page's thread only drains the job's messages
(as the server's periodic callback does). The time is from ``start()`` to the finished status.
Then a second scenario (+4 K) of the same baseline, as a user trying another ΔT: its projection
reads the model's and the truth's baseline series from the first one instead of recomputing them.

Reference, measured in the same run on the same machine: one plain ``Run.predict`` of the same
model over the same 8 baseline years (the forward pass a projection needs at least twice).

Nothing is written to the user's folders: the data directory is a temporary folder whose entries
link to the user's (the virtual basin store, static caches), the runs directory a temporary folder
mirroring the study experiment's folders with its files linked; the scenario and projection go there
and are removed afterwards.

    python benchmarks/bench_scenario_dashboard.py
    python benchmarks/bench_scenario_dashboard.py --source study-virtual-ucrb/lstm --period 2009:2016
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 60.0


def _linked(src: Path, dst: Path, skip=(), tree: bool = False) -> None:
    """``dst`` holding a symbolic link to every entry of ``src`` except ``skip``; with ``tree``, folders are
    made as real folders (the dashboard refuses a run folder that resolves outside the runs directory)
    and only files are linked."""
    dst.mkdir(parents=True, exist_ok=True)
    for p in src.iterdir():
        if p.name in skip:
            continue
        if tree and p.is_dir():
            _linked(p, dst / p.name, tree=True)
        else:
            (dst / p.name).symlink_to(p)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", default="study-virtual-ucrb/convlstm", help="run (or experiment) to project")
    p.add_argument("--period", default="2009:2016")
    p.add_argument("--dt", type=float, default=2.0)
    p.add_argument("--precip", type=float, default=0.9)
    args = p.parse_args()

    import torch

    from vegviz.paths import cache_dir, runs_root

    data, runs = cache_dir(), runs_root()
    experiment = args.source.split("/")[0]
    if not (runs / experiment).is_dir():
        raise SystemExit(f"error: no {experiment} in {runs}. Fix: train it (README: the study experiment) or pass "
                         "--source with a run of the full virtual basin")
    with tempfile.TemporaryDirectory(prefix="bench-scenario-dashboard-") as tmp:
        _linked(data, Path(tmp) / "data", skip=("runs", "scenarios"))
        _linked(runs / experiment, Path(tmp) / "runs" / experiment, tree=True)
        os.environ["VEGVIZ_DATA_DIR"], os.environ["VEGVIZ_RUNS_DIR"] = str(Path(tmp) / "data"), str(Path(tmp) / "runs")

        from vegviz.dashboards import ScenariosDashboard, sources

        dash = ScenariosDashboard(source=args.source, period=args.period)
        if dash.source != args.source:
            raise SystemExit(f"error: {args.source!r} is not a result in {runs}: {sorted(sources.list_results())}")
        # the first scenario computes everything; a second one on the same baseline (a user trying another
        # ΔT) reads the model and truth baselines of the first projection (vegviz.scenarios.projection)
        totals = [_job(dash, args.dt, args.precip, "first scenario"),
                  _job(dash, args.dt + 2, args.precip, "second scenario, same baseline")]

        from vegviz.catalog import open_data
        from vegviz.training import Run

        run = Run(Path(sources.list_results()[args.source]["path"]))
        a, b = args.period.split(":")
        base = open_data(run.config.data).sel(time=slice(f"{a}-01-01", f"{b}-12-31"))
        t1 = time.perf_counter()
        run.predict(base, write=False, threads=torch.get_num_threads())[run.config.model].load()  # as the projection
        reference = time.perf_counter() - t1
        shutil.rmtree(Path(tmp) / "runs" / "projections", ignore_errors=True)

    load = os.getloadavg()[0]
    print(f"dashboard scenario jobs, {args.source}, {args.period}: first (+{args.dt:g} K, precip x{args.precip:g}) "
          f"{totals[0]:.1f} s, second (+{args.dt + 2:g} K) {totals[1]:.1f} s (target <= {TARGET_SECONDS:.0f} s) | "
          f"reference, one Run.predict over the same years: {reference:.1f} s (ratios {totals[0] / reference:.1f}, "
          f"{totals[1] / reference:.1f}) | {os.cpu_count()} CPUs, load average {load:.1f}")


def _job(dash, dt: float, precip: float, what: str) -> float:
    """Seconds from Run to the finished status of one new delta-change scenario; prints its steps."""
    from vegviz.dashboards.scenarios import NEW

    dash.param.update(scenario=NEW, dt=dt, precip=precip)
    steps, t0 = [], time.perf_counter()
    show = dash._on_progress

    def timed(fraction, text):
        steps.append((time.perf_counter() - t0, text))
        show(fraction, text)

    if not dash.start():
        raise SystemExit(f"error: {dash.alert.object}")
    dash.job.on_progress = timed
    status = dash.wait()
    total = time.perf_counter() - t0
    if status != "finished":
        raise SystemExit(f"error: the job ended {status}: {dash.alert.object}")
    print(f"{what}: {total:.1f} s")
    for t, text in steps:
        print(f"  {t:6.1f} s  {text}")
    return total


if __name__ == "__main__":
    main()
