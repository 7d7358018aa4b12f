"""Split-sample table: each model's median test NSE under the temporal split and under a differential
split (Klemeš 1986), at the same training budget, with the climate gap each split asks the models to bridge.

    python scripts/split_sample_table.py [TEMPORAL] [DSST]

TEMPORAL and DSST default to the study experiment ``study-virtual-ucrb`` and its twin
``study-virtual-ucrb-warm`` (``vegviz experiment --split warm``) under the runs directory; both are
read only. When the DSST twin trained fewer epochs than the temporal experiment, the temporal models
are also scored at the same budget: the checkpoint with the lowest validation loss among the first
as many epochs (predicted again, not written), so neither split gets more training than the other.
Prints Markdown for the README.
"""
from __future__ import annotations

import argparse
import time

import pandas as pd


def climate_gap(obs, config) -> dict[str, float]:
    """Basin-mean annual tair (degC) and precip (mm) of the test years minus those of the training years."""
    from vegviz.evaluation.periods import select_period

    mask = obs["mask"].fillna(0) > 0
    out = {}
    for var, how in (("tair", "mean"), ("precip", "sum")):
        daily = obs[var].where(mask).mean(("lat", "lon"))
        means = []
        for period in (config.periods.train, config.periods.test):
            sub = select_period(daily, period).to_series()
            annual = sub.groupby(sub.index.year)
            means.append(float((annual.mean() if how == "mean" else annual.sum()).mean()))
        out[var] = means[1] - means[0]
    return out


def median_nse(pred, obs, config, model: str) -> float:
    from vegviz.evaluation import score

    s = score(pred, obs, config.periods.test, metrics=("nse",), models=[model], references=(), with_reason=False)
    return float(s["nse"].sel(model=model).median())


def main() -> None:
    from vegviz.evaluation import markdown_table
    from vegviz.experiment import Experiment, _experiment_path
    from vegviz.training.data import open_data

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("temporal", nargs="?", default="study-virtual-ucrb")
    p.add_argument("dsst", nargs="?", default="study-virtual-ucrb-warm")
    args = p.parse_args()
    t0 = time.perf_counter()
    temporal, dsst = (Experiment.open(_experiment_path(x)) for x in (args.temporal, args.dsst))
    obs = open_data(temporal.config.data, seed=temporal.config.seed)
    rows = []
    for model in dsst.models:
        d_run, t_run = dsst.runs[model], temporal.runs[model]
        d_hist, t_hist = d_run.history, t_run.history
        budget = int(d_hist["epoch"].max())
        row = {"model": model, "DSST epochs": budget,
               f"temporal ({int(t_hist['epoch'].max())} epochs)": median_nse(t_run.predictions, obs, t_run.config, model)}
        if budget < int(t_hist["epoch"].max()):
            early = t_hist[t_hist["epoch"] <= budget]
            epoch = int(early.loc[early["val_loss"].idxmin(), "epoch"])
            pred = t_run.predict(obs, which=epoch, write=False)
            row[f"temporal (best of first {budget})"] = median_nse(pred, obs, t_run.config, model)
        row[f"DSST {dsst.config.split}"] = median_nse(d_run.predictions, obs, d_run.config, model)
        rows.append(row)
    table = pd.DataFrame(rows).set_index("model")
    same = [c for c in table.columns if c.startswith("temporal (best")] or \
           [c for c in table.columns if c.startswith("temporal (")]
    table["DSST - temporal (same budget)"] = table[f"DSST {dsst.config.split}"] - table[same[0]]
    print(markdown_table(table.round(3)))
    for exp in (temporal, dsst):
        gap = climate_gap(obs, exp.config)
        print(f"\n{exp.name} ({exp.config.split}): test years minus training years: "
              f"tair {gap['tair']:+.2f} degC, precip {gap['precip']:+.0f} mm/yr "
              f"(test {exp.config.periods.test})")
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
