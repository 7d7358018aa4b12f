"""The README's known-truth projection-skill table: the study experiment under four delta-change scenarios.

For +2 K, +4 K, -20 % and +20 % precipitation (vegviz.scenarios.DeltaChange, humidity at constant
relative humidity) over the test period of the full virtual UCRB, every model of the trained study
experiment and the process model are projected (vegviz.scenarios.projection.project) and their
change of annual-mean LAI is scored against the true change (the virtual basin's vegetation model
re-run on scenario and baseline). Scenarios and projections go to a temporary folder (or --out);
the experiment and the data are only read.

    python scripts/projection_skill_table.py                                   # prints two Markdown tables
    python scripts/projection_skill_table.py --period 1981:2016 --out /tmp/p  # whole record, keep the files
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

SCENARIOS = {  # name: (label, DeltaChange arguments)
    "plus2K": ("+2 °C", {"dt": 2.0}),
    "plus4K": ("+4 °C", {"dt": 4.0}),
    "precip_minus20": ("-20 % precipitation", {"precip": 0.8}),
    "precip_plus20": ("+20 % precipitation", {"precip": 1.2}),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--experiment", default=str(Path("~/.local/share/vegviz/runs/study-virtual-ucrb").expanduser()))
    p.add_argument("--data", default="virtual_ucrb")
    p.add_argument("--period", default="2009:2016", help="scenario period (default: the study's test period)")
    p.add_argument("--out", help="folder for scenarios, projections and skill.csv (default: a temporary one)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    import pandas as pd
    import torch

    torch.set_num_threads(args.threads)
    from vegviz.evaluation import markdown_table
    from vegviz.experiment import Experiment
    from vegviz.scenarios import DeltaChange, build_scenario, open_scenario
    from vegviz.scenarios.projection import project

    exp = Experiment.open(args.experiment)
    tmp = None if args.out else tempfile.TemporaryDirectory(prefix="projection-skill-")
    out = Path(args.out or tmp.name)
    rows, started = [], time.perf_counter()
    for name, (label, change) in SCENARIOS.items():
        t0 = time.perf_counter()
        path = build_scenario(name, args.data, args.period, DeltaChange(**change), data_dir=out, overwrite=True)
        proj = project(exp, open_scenario(path), device="cpu", root=out, overwrite=True, log=lambda *_: None)
        skill = pd.read_csv(Path(proj.attrs["path"]) / "skill.csv")
        summary = pd.read_csv(Path(proj.attrs["path"]) / "summary.csv")
        mean = summary[(summary["quantity"] == "annual_mean") & (summary["grouping"] == "all")].set_index("model")
        skill["scenario"] = label
        skill["mean_delta"] = skill["model"].map(mean["delta"])
        skill["true_mean_delta"] = mean.loc["truth", "delta"]
        rows.append(skill)
        print(f"{label}: {time.perf_counter() - t0:.0f} s", flush=True)
    table = pd.concat(rows, ignore_index=True)
    table.to_csv(out / "projection_skill.csv", index=False)

    main_rows = table[(table["quantity"] == "annual_mean") & (table["grouping"] == "all")]
    main_table = main_rows.set_index(["scenario", "model"])[
        ["true_mean_delta", "mean_delta", "bias", "rmse", "r", "sign_agreement"]]
    print(f"\nChange of annual-mean LAI (m2 m-2), {args.period}, {int(main_rows['n_cells'].iloc[0])} basin cells, "
          f"against the true change ({exp.name}; {time.perf_counter() - started:.0f} s):\n")
    print(markdown_table(main_table))
    arid = table[(table["quantity"] == "annual_mean") & (table["grouping"] == "aridity")]
    pivot = arid.pivot_table(index=["scenario", "model"], columns="group", values="sign_agreement", sort=False)
    cells = arid.groupby("group")["n_cells"].first()
    pivot.columns = [f"{c} ({cells[c]})" for c in pivot.columns]
    print("\nSign agreement of the change of annual-mean LAI per UNEP aridity class (cells):\n")
    print(markdown_table(pivot.reindex(main_table.index)))
    timing = table[(table["grouping"] == "all") & (table["quantity"].isin(["peak_doy", "season_length"]))]
    r = timing.pivot_table(index=["scenario", "model"], columns="quantity", values="r", sort=False)
    print("\nSpatial correlation r of the change of peak timing and growing-season length with the true change:\n")
    print(markdown_table(r.reindex(main_table.index)))
    if args.out:
        print(f"\nwrote {out / 'projection_skill.csv'}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
