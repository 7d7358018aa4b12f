"""Stability table: sub-monthly fluctuation of each model's daily LAI relative to the truth, by aridity class
and vegetation type (vegviz.evaluation.stability), for a trained experiment on a virtual basin.

    python scripts/stability_table.py [EXPERIMENT] [--period test]

EXPERIMENT defaults to the study experiment ``study-virtual-ucrb`` under the user's runs directory (read only;
nothing is written). Prints Markdown tables for the README.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    from vegviz.evaluation import aridity_index, by_aridity, by_vegetation, markdown_table, stability_table
    from vegviz.evaluation.periods import period_label
    from vegviz.experiment import Experiment
    from vegviz.training.data import open_data

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("experiment", nargs="?", default=str(Path("~/.local/share/vegviz/runs/study-virtual-ucrb")))
    p.add_argument("--period", default="test", choices=("train", "validation", "test"))
    args = p.parse_args()
    t0 = time.perf_counter()
    exp = Experiment.open(args.experiment)
    cfg = exp.config
    obs = open_data(cfg.data, seed=cfg.seed)
    when = getattr(cfg.periods, args.period)
    s = stability_table(exp.predictions, obs, period=when)
    ai = aridity_index(obs, period=cfg.periods.train)
    metric = "fluctuation_ratio"
    overall = s[metric].median(("lat", "lon")).to_pandas().rename("all cells").to_frame().T
    overall.insert(0, "n_cells", int((s["reference_fluctuation"] > 0).sum()))
    print(f"experiment {exp.name} on {cfg.data}, {period_label(when, args.period, years=True)}; reference "
          f"{s.attrs['reference']}; median per-cell fluctuation ratio F(model)/F(truth), "
          f"F = std of the departure from a centred {s.attrs['window_days']}-day mean\n")
    print(markdown_table(overall.rename_axis("cells")))
    print()
    print(markdown_table(by_aridity(s, ai, metric)))
    print()
    print(markdown_table(by_vegetation(s, obs["landcover"], metric)))
    print("\nmedian fluctuation F (m2 m-2):", {str(m): round(float(s["fluctuation"].sel(model=m).median()), 4)
                                             for m in s["model"].values},
          "truth:", round(float(s["reference_fluctuation"].median()), 4))
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
