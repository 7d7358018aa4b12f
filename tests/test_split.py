"""Differential split-sample test (vegviz.training.split), year-set periods and seed ensembles."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from conftest import TINY
from vegviz.evaluation.periods import period_days, period_label, select_period
from vegviz.training import Config, ConfigError
from vegviz.training.split import rank_years, resolve_split, split_years, year_climate

TINY_CONFIG = dict(max_epochs=1, hparams={"filters": 4}, window=60, burn_in=20, chunk=20, stride=60, batch_size=4,
                   num_threads=1, device="cpu")


def _climate_ds(annual_tair: dict[int, float], annual_precip: dict[int, float]) -> xr.Dataset:
    """2 x 2 cells (one outside the mask, far hotter and wetter: it must not count), daily, constant per year."""
    time = pd.date_range(f"{min(annual_tair)}-01-01", f"{max(annual_tair)}-12-31", freq="D")
    years = time.year.to_numpy()
    tair = np.array([annual_tair[y] for y in years])[:, None, None] * np.ones((1, 2, 2))
    precip = np.array([annual_precip[y] / (366 if y % 4 == 0 else 365) for y in years])[:, None, None] * np.ones((1, 2, 2))
    mask = np.array([[1, 1], [1, 0]])
    tair[:, 1, 1], precip[:, 1, 1] = 50.0, 100.0
    return xr.Dataset({"tair": (("time", "lat", "lon"), tair), "precip": (("time", "lat", "lon"), precip),
                       "mask": (("lat", "lon"), mask)},
                      coords={"time": time, "lat": [39.0, 39.125], "lon": [-108.0, -107.875]})


def test_years_ranked_by_basin_climate():
    tair = {2000: 5.0, 2001: 9.0, 2002: 6.0, 2003: 8.0, 2004: 7.0, 2005: 4.0, 2006: 10.0, 2007: 7.5, 2008: 6.5,
            2009: 5.5}
    precip = {y: 300.0 + 10 * ((y * 7) % 10) for y in tair}
    ds = _climate_ds(tair, precip)
    climate = year_climate(ds, "warm", list(tair))
    np.testing.assert_allclose(climate.to_numpy(), [tair[y] for y in sorted(tair)])  # the masked cell is left out
    totals = year_climate(ds, "dry", list(tair))
    np.testing.assert_allclose(totals.to_numpy(), [precip[y] for y in sorted(tair)], rtol=1e-12)
    coolest_first = sorted(tair, key=tair.get)
    assert rank_years(climate, "warm") == coolest_first
    assert rank_years(climate, "cool") == coolest_first[::-1]
    # the rule: 10 years -> 6 train, 2 validation, 2 test (the warmest)
    sets = split_years(rank_years(climate, "warm"))
    assert sets == {"train": sorted(coolest_first[:6]), "validation": sorted(coolest_first[6:8]),
                    "test": sorted(coolest_first[8:])}
    base = Config(periods={"train": ["2000-01-01", "2005-12-31"], "validation": ["2006-01-01", "2007-12-31"],
                           "test": ["2008-01-01", "2009-12-31"]}, window=200, burn_in=10)
    warm = resolve_split(base.replace(split="warm"), ds)
    assert warm.periods.test == (2001, 2006) and warm.periods.train == tuple(sorted(coolest_first[:6]))
    dry = resolve_split(base.replace(split="dry"), ds)
    driest = sorted(precip, key=lambda y: (precip[y], y))[:2]
    assert dry.periods.test == tuple(sorted(driest))
    # resolved once: a resolved config is kept as it is, and its YAML records the years
    assert resolve_split(warm, ds.isel(time=slice(0, 800))) is warm
    again = Config.from_yaml(warm.to_yaml())
    assert again.periods == warm.periods and again.split == "warm"
    assert resolve_split(base, ds) is base  # temporal: unchanged


def test_split_errors_name_the_fix():
    with pytest.raises(ConfigError, match="split: unknown value 'hot'.*'warm'"):
        Config(split="hot")
    ds = _climate_ds({2004: 5.0, 2005: 6.0}, {2004: 300.0, 2005: 200.0})
    short = Config(split="warm", window=100, burn_in=10,
                   periods={"train": ["2004-01-01", "2004-12-31"], "validation": ["2005-01-01", "2005-06-30"],
                            "test": ["2005-07-01", "2005-12-31"]})
    with pytest.raises(ConfigError, match="at least 3 complete calendar years.*give 2.*Fix"):
        resolve_split(short, ds)
    with pytest.raises(ConfigError, match="split is 'temporal'.*Fix"):
        Config(periods={"train": [2000, 2001], "validation": [2002], "test": [2003]})
    with pytest.raises(ConfigError, match=r"years \[2001\] are in both train and test"):
        Config(split="warm", periods={"train": [2000, 2001], "validation": [2002], "test": [2001]})
    with pytest.raises(ConfigError, match="hold lists of years.*Fix"):
        Config(split="warm", periods={"train": [2000, 2001], "validation": [2002], "test": ["2003-01-01", "2003-12-31"]})


def test_year_set_periods():
    time = pd.date_range("2000-12-30", "2003-01-02", freq="D")
    days = period_days(time, [2001, 2003])
    assert days.sum() == 365 + 2 and not days[:2].any() and days[2] and not days[367:367 + 365].any()
    da = xr.DataArray(np.arange(time.size), {"time": time}, "time")
    assert select_period(da, [2002]).sizes["time"] == 365
    with pytest.raises(ValueError, match="holds no dates"):
        select_period(da, [1990])
    assert period_label([1981, 1982, 1983, 1990], "test") == "test 4 years (1981-1983, 1990)"


def _trainer(ds, config, run_dir):
    from vegviz.training import Trainer

    t = Trainer(config, ds, run_dir, progress=False)
    t.setup()
    return t


def test_training_never_sees_other_years_targets(small_basin, tmp_path):
    import torch

    cfg = Config.for_data("virtual_ucrb_small", split="warm", **TINY_CONFIG)
    t = _trainer(small_basin, cfg, tmp_path / "a")
    p = t.config.periods
    assert p.year_sets and Config.from_yaml(tmp_path / "a" / "config.yaml").periods == p
    r, v = t.train_reader, t.val_reader
    train_years = pd.DatetimeIndex(r.time).year
    scored = np.isfinite(r.read_target(0, r.shape[0])).any(axis=(1, 2))
    assert scored.any() and set(train_years[scored]) <= set(p.train)
    val = pd.DatetimeIndex(v.time).year
    assert set(val[np.isfinite(v.read_target(0, v.shape[0])).any(axis=(1, 2))]) <= set(p.validation)
    # every sample scores mostly training days
    for samples in t.epoch_plan(1):
        for s, _, _ in samples:
            inside = np.isin(train_years[s + cfg.burn_in:s + cfg.sample_days], p.train)
            assert inside.mean() >= 0.5
    # normalisation from the training years only (float64 on both sides)
    lai = select_period(small_basin["lai"], list(p.train)).where(small_basin["mask"] == 1).values.astype("float64")
    np.testing.assert_allclose(t.stats.target_mean, np.nanmean(lai), rtol=1e-9)

    # changing the LAI of every validation and test year changes nothing in a training step
    other = list(p.validation) + list(p.test)
    changed = small_basin.copy()
    changed["lai"] = small_basin["lai"].where(~xr.DataArray(period_days(small_basin.time, other), dims="time"),
                                              10 - small_basin["lai"])
    u = _trainer(changed, cfg, tmp_path / "b")
    assert u.config.periods == p and u.stats.target_mean == t.stats.target_mean
    plan = t.epoch_plan(1)
    assert all(np.array_equal(a, b) for a, b in zip(plan, u.epoch_plan(1)))
    for trainer in (t, u):
        torch.manual_seed(0)
        trainer.train_step(plan[0])
    for a, b in zip(t.model.parameters(), u.model.parameters()):
        assert torch.equal(a, b)
    assert t.validate()[0] != u.validate()[0]  # (the validation does see the validation years)


@pytest.mark.slow
def test_dsst_experiment_with_ensemble_end_to_end(small_basin, tiny_experiment, capsys):
    """vegviz experiment --split warm --members 2: year sets recorded, members with seeds, mean and spread,
    ensemble table, compare; rerun after losing a member trains only that member."""
    import shutil

    from vegviz import cli
    from vegviz.evaluation import model_variables
    from vegviz.experiment import Experiment

    args = ["experiment", "--data", "virtual_ucrb_small", "--name", "dsst", "--split", "warm", "--members", "2",
            "--models", "convlstm", "--no-figures", *TINY]
    assert cli.main(args) == 0
    runs = Path(os.environ["VEGVIZ_RUNS_DIR"])
    exp = Experiment.open(runs / "dsst")
    info = yaml.safe_load((exp.path / "experiment.yaml").read_text())
    assert info["members"] == 2 and info["config"]["split"] == "warm"
    assert all(isinstance(y, int) for y in info["config"]["periods"]["test"])
    members = exp.members("convlstm")
    assert [r.name for r in members] == ["convlstm-m0", "convlstm-m1"]
    assert [r.config.seed for r in members] == [42, 43] and members[0].config.periods == exp.config.periods
    pred = exp.predictions
    assert model_variables(pred) == ["convlstm"] and pred["convlstm_spread"].attrs["ensemble"] == "spread"
    m0, m1 = (r.predictions["convlstm"].isel(time=slice(400, 420)).values.astype("float64") for r in members)
    np.testing.assert_allclose(pred["convlstm"].isel(time=slice(400, 420)).values, (m0 + m1) / 2, rtol=1e-6,
                               atol=1e-6)  # float32 storage of a mean of two float32 values
    np.testing.assert_allclose(pred["convlstm_spread"].isel(time=slice(400, 420)).values, np.abs(m0 - m1) / np.sqrt(2),
                               rtol=1e-5, atol=1e-6)
    scores = exp.scores("test")
    assert "convlstm_spread" not in scores["model"].values
    assert scores.attrs["time_coverage_start"][:4] == str(exp.config.periods.test[0])
    ens = pd.read_csv(exp.path / "ensemble.csv", index_col=[0, 1])
    assert list(ens.index.get_level_values(1)) == ["ensemble mean", "convlstm-m0", "convlstm-m1", "members: mean",
                                                   "members: best"]
    assert ens.loc[("convlstm", "ensemble mean"), "median NSE"] == pytest.approx(
        exp.table.loc["convlstm", "median NSE"], abs=1e-9)

    capsys.readouterr()
    assert cli.main(["compare", "tiny", "dsst"]) == 0
    out = capsys.readouterr().out
    assert "tiny (temporal)" in out and "dsst (warm)" in out and "difference" in out

    # an interrupted ensemble: member 1 lost; the rerun trains it alone
    shutil.rmtree(exp.path / "convlstm-m1")
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "[convlstm-m0] finished earlier" in out and "[convlstm-m1] training into" in out


def test_bad_split_and_members_on_the_command_line(small_basin, capsys):
    from vegviz import cli

    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--data", "virtual_ucrb_small", "--split", "hot"])
    assert e.value.code == 2 and "invalid choice: 'hot'" in capsys.readouterr().err
    assert cli.main(["train", "--data", "virtual_ucrb_small", "--members", "0", "--name", "m0", *TINY]) == 2
    assert "members: expected a whole number >= 1" in capsys.readouterr().err
    few = ["--set", "periods.train=[2004-01-01, 2004-12-31]", "--set", "periods.validation=[2005-01-01, 2005-06-30]",
           "--set", "periods.test=[2005-07-01, 2005-12-31]"]
    assert cli.main(["train", "--data", "virtual_ucrb_small", "--split", "dry", "--name", "few", *TINY, *few]) == 2
    assert "at least 3 complete calendar years" in capsys.readouterr().err
    assert not (Path(os.environ["VEGVIZ_RUNS_DIR"]) / "few").exists()


def test_train_members_from_the_command_line(small_basin, capsys):
    from vegviz import cli
    from vegviz.training import Run

    args = ["train", "--data", "virtual_ucrb_small", "--members", "2", "--name", "ens", *TINY]
    assert cli.main(args) == 0
    runs = Path(os.environ["VEGVIZ_RUNS_DIR"])
    assert [Run(runs / f"ens-m{k}").config.seed for k in range(2)] == [42, 43]
    capsys.readouterr()
    assert cli.main(args) == 0  # both finished: nothing is trained again
    assert capsys.readouterr().out.count("finished earlier") == 2
