"""Projections of trained models under a climate scenario, and their known-truth skill (virtual basin)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from tolerance import rounding_tolerance
from vegviz.evaluation import projection as ep
from vegviz.scenarios import projection as sp

SCENARIO = "warm2_dry10"


def _runs() -> Path:
    return Path(os.environ["VEGVIZ_RUNS_DIR"])


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vegviz.cli", *args], capture_output=True, text=True,
                          env=os.environ.copy(), timeout=600)


@pytest.fixture(scope="module")
def scenario(small_basin):
    """+2 K, -10 % precipitation over 2002-2005 of the small virtual basin (built once per module)."""
    from vegviz.scenarios import DeltaChange, build_scenario, list_scenarios

    if SCENARIO not in list_scenarios():
        build_scenario(SCENARIO, "virtual_ucrb_small", "2002:2005", DeltaChange(dt=2, precip=0.9))
    return SCENARIO


@pytest.fixture(scope="module")
def projected(tiny_experiment, scenario):
    """`vegviz project tiny --scenario warm2_dry10`, run as a real process; (its output, the projection)."""
    out = _cli("project", "tiny", "--scenario", scenario, "--device", "cpu")
    assert out.returncode == 0, out.stderr
    return out.stdout, sp.open_projection(sp.projection_name("tiny", scenario))


def test_cli_prints_the_change_and_the_truth_skill(projected):
    stdout, proj = projected
    assert "projection tiny--warm2_dry10" in stdout
    for model in ("convlstm", "convlstm_physics", "lstm", "process", "truth"):
        assert f"| {model}" in stdout
    assert "known-truth skill" in stdout and "sign_agreement" in stdout
    folder = sp.projections_root() / "tiny--warm2_dry10"
    assert {p.name for p in folder.iterdir()} == {"projection.nc", "summary.csv", "skill.csv", "provenance.yaml"}
    assert "tiny--warm2_dry10" in sp.list_projections()


def test_projection_holds_every_model_on_scenario_and_baseline(projected, small_basin):
    _, proj = projected
    models = ["convlstm", "convlstm_physics", "lstm", "process", "truth"]
    assert list(proj["model"].values) == models
    for m in models:
        assert proj[m].dims == ("time", "lat", "lon") and proj[m + "_baseline"].dims == ("time", "lat", "lon")
    assert pd.Timestamp(proj["time"].values[0]) == pd.Timestamp("2002-01-01")
    assert pd.Timestamp(proj["time"].values[-1]) == pd.Timestamp("2005-12-31")
    # the process model's baseline is the data's own lai_process over the same days
    base = small_basin["lai_process"].sel(time=slice("2002", "2005")).where(small_basin["mask"] > 0)
    np.testing.assert_array_equal(proj["process_baseline"].values, base.values)
    assert proj.attrs["synthetic"] == 1 and proj.attrs["scenario"] == SCENARIO
    # burn-in (20 days in the tiny runs) leaves 2002 out: 2003-2005 are the whole years every series has
    assert int(proj["years"].max()) == 3


def test_delta_is_scenario_minus_baseline_of_the_same_model(projected):
    """delta_annual_mean = mean over 2003-2005 of each year's mean of (scenario - baseline): recomputed in
    float64 here; the projection's float32 yearly means of <= 366 values round by at most the sum bound."""
    _, proj = projected
    mask = proj["mask"].values > 0
    for m in ("convlstm", "truth"):
        d = (proj[m].astype("float64") - proj[m + "_baseline"].astype("float64")).sel(time=slice("2003", "2005"))
        expected = d.groupby("time.year").mean().mean("year").values
        got = proj["delta_annual_mean"].sel(model=m).values
        scale = float(np.nanmax(np.abs(proj[m].values)))
        tol = 2 * rounding_tolerance(366, np.float32, scale)  # scenario and baseline means, each a float32 sum
        np.testing.assert_allclose(got[mask], expected[mask], rtol=0, atol=tol)


def test_warmer_drier_scenario_lowers_true_lai_in_water_limited_cells(projected):
    _, proj = projected
    dry = proj["aridity_index"].values < 0.5  # UNEP arid and semi-arid
    true = proj["delta_annual_mean"].sel(model="truth").values
    inside = (proj["mask"].values > 0) & dry
    assert (true[inside] < 0).mean() > 0.8


def test_skill_table_scores_every_model_against_the_truth(projected):
    _, proj = projected
    folder = sp.projections_root() / "tiny--warm2_dry10"
    skill = pd.read_csv(folder / "skill.csv")
    overall = skill[(skill["quantity"] == "annual_mean") & (skill["grouping"] == "all")].set_index("model")
    assert list(overall.index) == ["convlstm", "convlstm_physics", "lstm", "process"]
    truth = proj["delta_annual_mean"].sel(model="truth").values
    sim = proj["delta_annual_mean"].sel(model="process").values
    ok = np.isfinite(truth)
    assert overall.loc["process", "rmse"] == pytest.approx(np.sqrt(np.mean((sim[ok] - truth[ok]) ** 2)), rel=1e-6)
    assert overall.loc["process", "n_cells"] == ok.sum()
    assert {"vegetation", "aridity"} <= set(skill["grouping"])
    assert set(skill["quantity"]) == set(ep.QUANTITIES)
    assert "Open shrublands" in set(skill["group"])
    md = ep.skill_markdown(skill, grouping="aridity")
    assert md.splitlines()[0].startswith("| group") and "semi-arid" in md


def test_catalog_lists_the_projection(projected):
    from vegviz.catalog import metadata, open_catalog

    cat = open_catalog().projections
    assert "tiny--warm2_dry10" in list(cat)
    entry = cat["tiny--warm2_dry10"]
    assert metadata(entry)["scenario"] == SCENARIO and metadata(entry)["kind"] == "projection"
    assert "truth" in entry.to_dask()


def test_zero_change_gives_zero_change_for_every_model(projected, small_basin):
    """The baseline itself as the scenario: every model, the process model and the truth see identical
    inputs, so each Δ is exactly 0 (the same computation twice) - the bias of each model cancels. Its
    baseline is that of tiny--warm2_dry10 (same runs, same days), so it is read from there, not predicted
    again: the zero change also checks that the series read equal what the models give here."""
    base = small_basin.sel(time=slice("2002", "2005")).drop_vars(["lai", "lai_true"])
    zero = base.assign_attrs(scenario="zero", baseline="virtual_ucrb_small", baseline_start="2002-01-01",
                             baseline_end="2005-12-31")
    log = []
    proj = sp.project("tiny", zero, device="cpu", write=False, log=log.append)
    assert sum("read from projection tiny--warm2_dry10" in line for line in log) == 3, log
    for q in ep.QUANTITIES:
        d = proj[f"delta_{q}"].values
        assert np.nanmax(np.abs(d)) == 0, q
    assert not (sp.projections_root() / "tiny--zero").exists()


def test_reused_baseline_equals_a_fresh_prediction(tiny_experiment, small_basin):
    """A scenario from the data's first day may read the runs' stored predictions as its baseline: they must
    be what predicting the baseline gives."""
    run = tiny_experiment.runs["lstm"]
    base = small_basin.sel(time=slice("1998", "1999"))
    stored = sp._stored_baseline(run, base, "lstm")
    assert stored is not None
    fresh = run.predict(base, write=False, device="cpu")["lstm"]
    scale = float(np.nanmax(np.abs(fresh.values)))
    np.testing.assert_allclose(stored.values, fresh.values, rtol=0, atol=1e-5 * scale, equal_nan=True)
    assert sp._stored_baseline(run, base.sel(time=slice("1999", "1999")), "lstm") is None  # another first day


# ----------------------------------------------------------------------------- bad input: error, nothing written

def _nothing_written(before):
    root = sp.projections_root()
    now = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
    assert now == before


def _listing():
    root = sp.projections_root()
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def test_unknown_run_or_scenario_is_a_clear_error(tiny_experiment, scenario):
    before = _listing()
    out = _cli("project", "no-such-run", "--scenario", scenario)
    assert out.returncode == 2 and "'no-such-run' is neither a run/experiment folder" in out.stderr
    assert "Fix:" in out.stderr
    out = _cli("project", "tiny", "--scenario", "no_such_scenario")
    assert out.returncode == 2 and "scenario 'no_such_scenario' not found" in out.stderr and "Fix:" in out.stderr
    out = _cli("project", "tiny", "--scenario", scenario, "--threads", "0")
    assert out.returncode == 2 and "threads=0: give a positive number of CPU threads" in out.stderr
    _nothing_written(before)


def test_an_existing_projection_is_kept_without_overwrite(projected):
    before = _listing()
    path = sp.projections_root() / "tiny--warm2_dry10" / "projection.nc"
    stamp = path.stat().st_mtime_ns
    with pytest.raises(FileExistsError, match="Fix: pass overwrite=True"):
        sp.project("tiny", SCENARIO)
    assert path.stat().st_mtime_ns == stamp
    _nothing_written(before)


def test_scenario_on_another_domain_is_refused(tiny_experiment, small_basin):
    before = _listing()
    other = small_basin.isel(lat=slice(0, 20), lon=slice(0, 30)).drop_vars(["lai", "lai_true"]).assign_attrs(
        scenario="elsewhere", domain="gunnison", baseline="virtual_ucrb_small", baseline_start="2002-01-01",
        baseline_end="2005-12-31")
    with pytest.raises(ValueError, match="trained on .* but scenario 'elsewhere' is on gunnison.*Fix: build the "
                                         "scenario from the run's data"):
        sp.project(tiny_experiment, other)
    _nothing_written(before)


def test_scenario_over_days_the_data_or_models_cannot_run_is_refused(tiny_experiment, small_basin):
    before = _listing()
    base = small_basin.sel(time=slice("2004", "2005")).drop_vars(["lai", "lai_true"])
    late = base.assign_coords(time=pd.date_range("2006-01-01", periods=base.sizes["time"])).assign_attrs(
        scenario="late", baseline="virtual_ucrb_small", baseline_start="2006-01-01", baseline_end="2007-12-31")
    with pytest.raises(ValueError, match="its baseline 'virtual_ucrb_small' holds none of its days.*Fix"):
        sp.project(tiny_experiment, late)
    short = small_basin.sel(time=slice("2005-03-01", "2005-08-31")).drop_vars(["lai", "lai_true"]).assign_attrs(
        scenario="short", baseline="virtual_ucrb_small", baseline_start="2005-03-01", baseline_end="2005-08-31")
    with pytest.raises(ValueError, match="no whole calendar year to summarise. Fix: build the scenario over whole "
                                         "years"):
        sp.project(tiny_experiment, short)
    _nothing_written(before)


def test_truth_skill_on_real_data_says_why_not():
    delta = xr.Dataset({q: (("model", "lat", "lon"), np.zeros((1, 2, 2))) for q in ep.QUANTITIES},
                       coords={"model": ["convlstm"]})
    with pytest.raises(ValueError, match="only a virtual basin has.*Fix: project a scenario built from a virtual"):
        ep.skill_table(delta)


# ----------------------------------------------------------------------------- metrics and summaries

def test_change_metrics_on_known_values():
    truth = np.array([0.1, -0.2, 0.005, 0.3, np.nan])
    sim = np.array([0.2, -0.1, -0.5, -0.3, 1.0])
    assert ep.bias(sim, truth) == pytest.approx(np.mean([0.1, 0.1, -0.505, -0.6]))
    assert ep.rmse(sim, truth) == pytest.approx(np.sqrt(np.mean(np.square([0.1, 0.1, -0.505, -0.6]))))
    assert ep.spatial_correlation(sim, truth) == pytest.approx(np.corrcoef(sim[:4], truth[:4])[0, 1])
    # |0.005| < 0.01 has no sign; of the other three, two agree
    assert ep.sign_agreement(sim, truth) == pytest.approx(2 / 3)
    assert np.isnan(ep.sign_agreement(sim, np.zeros(5)))


def test_seasonal_summaries_of_a_known_curve():
    """One bump a year: LAI = 1 + 2 sin(pi (doy - 100) / 150) on days 100..250, 1 elsewhere. Peak 3 on day
    175; the growing season is the days above min + 0.5 amplitude = 2, the middle third of the bump (counted
    on the float32 values: days 125 and 225 sit on the threshold, where rounding decides)."""
    time = pd.date_range("2001-01-01", "2002-12-31")
    doy = time.day_of_year.to_numpy()
    curve = np.where((doy >= 100) & (doy <= 250), 1 + 2 * np.sin(np.pi * (doy - 100) / 150), 1.0)
    da = xr.DataArray(np.repeat(curve[:, None, None], 2, axis=2).repeat(1, axis=1).astype(np.float32),
                      dims=("time", "lat", "lon"), coords={"time": time, "lat": [40.0], "lon": [-110.0, -109.875]})
    da[:10, 0, 1] = np.nan  # an incomplete first year in one cell
    y = ep.yearly_summaries(da)
    assert list(y["year"].values) == [2001, 2002]
    assert float(y["peak_lai"][0, 0, 0]) == pytest.approx(3.0, abs=1e-3)
    assert int(y["peak_doy"][0, 0, 0]) == 175
    first = da.values[:365, 0, 0]
    expected_days = int((first > first.min() + 0.5 * (first.max() - first.min())).sum())
    assert expected_days in (99, 100, 101)
    assert int(y["season_length"][0, 0, 0]) == expected_days
    assert float(y["annual_mean"][0, 0, 0]) == pytest.approx(curve[:365].mean(), rel=1e-6)
    assert np.isnan(y["annual_mean"][0, 0, 1]) and np.isfinite(y["annual_mean"][1, 0, 1])
    s = ep.season_summaries({"a": da, "b": da + 1})
    assert int(s["years"][0, 1]) == 1 and int(s["years"][0, 0]) == 2
    assert float(s["annual_mean"].sel(series="b")[0, 0] - s["annual_mean"].sel(series="a")[0, 0]) == \
        pytest.approx(1.0, abs=1e-6)


def test_ensemble_members_give_mean_and_spread():
    """Two members: the model is their mean, delta_<q>_spread the std across members (ddof 1)."""
    time = pd.date_range("2001-01-01", "2001-12-31")
    coords = {"time": time, "lat": [40.0], "lon": [-110.0]}

    def series(value):
        return xr.DataArray(np.full((len(time), 1, 1), value, np.float32), dims=("time", "lat", "lon"), coords=coords)

    runs = {"m-m0": (series(1.5), series(1.0)), "m-m1": (series(2.0), series(1.0))}
    runs = {"m": (series(1.75), series(1.0)), **runs}
    out = sp._summaries(runs, {"m": ["m-m0", "m-m1"]}, {"lat": coords["lat"], "lon": coords["lon"]})
    d = out["delta_annual_mean"].sel(lat=40.0, lon=-110.0)
    assert d.sel(model="m") == pytest.approx(0.75)
    assert out["delta_annual_mean_spread"].sel(model="m", lat=40.0, lon=-110.0) == pytest.approx(np.std([0.5, 1.0],
                                                                                                         ddof=1))
    assert np.isnan(out["delta_annual_mean_spread"].sel(model="m-m0", lat=40.0, lon=-110.0))
