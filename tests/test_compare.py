"""The Compare tab: two results' skill side by side with the difference map, and overlaid training curves,
on the shared tiny experiment; readable result labels; TensorBoard's smoothing."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import panel as pn
import pytest
from bokeh.models import Plot

from vegviz.dashboards import Compare, sources
from vegviz.dashboards.compare import smooth
from vegviz.evaluation import score


@pytest.fixture(scope="module")
def runs_dir(tiny_experiment):
    return tiny_experiment.path.parent


def test_smoothing_is_a_debiased_moving_average():
    v = np.array([1.0, 2.0, np.nan, 4.0, 8.0])
    np.testing.assert_array_equal(smooth(v, 0.0), v)
    np.testing.assert_allclose(smooth(np.full(6, 3.0), 0.9), 3.0)  # debiased: a constant stays constant
    s = smooth(v, 0.5)
    assert np.isnan(s[2]) and s[0] == 1.0
    # by hand: acc = .5*.5*1 ... the debiased averages of the finite values in order
    acc, out = 0.0, []
    for n, x in enumerate([1.0, 2.0, 4.0, 8.0], start=1):
        acc = 0.5 * acc + 0.5 * x
        out.append(acc / (1 - 0.5 ** n))
    np.testing.assert_allclose(s[[0, 1, 3, 4]], out)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        smooth(v, 1.0)


def test_two_models_side_by_side_and_their_difference(runs_dir, tiny_experiment):
    c = Compare()
    root = pn.panel(c).get_root()
    # by default two models of the experiment, over its test period
    assert (c.a, c.b) == ("tiny", "tiny") and (c.model_a, c.model_b) == ("convlstm", "convlstm_physics")
    titles = [f.title.text for f in root.select({"type": Plot}) if f.title is not None]
    assert any(t.startswith("A tiny: convlstm (") for t in titles) and any(t.startswith("B - A (") for t in titles)
    pred = tiny_experiment.predictions
    obs = sources.observations_for(pred)
    direct = score(pred, obs, period=c.period_dates(), references=())["nse"]
    a, b = direct.sel(model="convlstm").values, direct.sel(model="convlstm_physics").values
    f = c.skill_fields()
    np.testing.assert_allclose(f["diff"].values, b - a, rtol=1e-6, atol=1e-12, equal_nan=True)
    ok = np.isfinite(b - a)
    assert f["better"] == pytest.approx(float(((b - a)[ok] > 0).mean()))
    table = c.table()
    assert table.iloc[0, 0] == pytest.approx(float(np.nanmedian(a))) and \
        table.iloc[1, 0] == pytest.approx(float(np.nanmedian(b)))
    # RMSE: B is better where its error is smaller
    c.metric = "rmse"
    f = c.skill_fields()
    d = f["diff"].values
    assert f["better"] == pytest.approx(float((d[np.isfinite(d)] < 0).mean()))
    assert list(c.table().columns)[0] == "median RMSE"
    # another result: a run of the experiment, with its own model list
    c.b = "tiny/lstm"
    assert c.param.model_b.objects == ["lstm"] and c.model_b == "lstm"
    # the selectors show readable labels: name, model, data set, date
    labels = list(c.param.a.names)
    assert any(lbl.startswith("tiny/lstm · lstm · virtual_ucrb_small · 20") for lbl in labels), labels


def test_training_curves_overlay_runs_with_smoothing_and_a_log_scale(runs_dir, tiny_experiment, tmp_path):
    c = Compare()
    pn.panel(c).get_root()
    assert c.runs == ["tiny/convlstm", "tiny/convlstm_physics", "tiny/lstm"]  # the experiment's runs
    el = c.curves()
    h = pd.read_csv(tiny_experiment.path / "lstm" / "history.csv")
    curve = next(e for e in el if type(e).__name__ == "Curve" and e.label == "tiny/lstm")
    np.testing.assert_allclose(curve.dimension_values(1), h["val_loss"].to_numpy())
    c.param.update(quantity="train_loss", smoothing=0.5, log_scale=True)
    el = c.curves()
    assert el.opts.get().kwargs["logy"] is True and "smoothed (0.5)" in el.opts.get().kwargs["title"]
    curve = next(e for e in el if type(e).__name__ == "Curve" and e.label == "tiny/lstm")
    np.testing.assert_allclose(curve.dimension_values(1), smooth(h["train_loss"].to_numpy(), 0.5))


def test_a_run_still_training_is_listed_by_its_history(runs_dir, tiny_experiment):
    live = runs_dir / "live-run"
    live.mkdir()
    try:
        shutil.copy(tiny_experiment.path / "lstm" / "history.csv", live / "history.csv")
        shutil.copy(tiny_experiment.path / "lstm" / "config.yaml", live / "config.yaml")
        c = Compare()
        assert "live-run" in c.param.runs.objects and "live-run" not in c.param.a.objects  # no predictions yet
        label = next(k for k, v in c.param.runs.names.items() if v == "live-run")
        assert label == "live-run · lstm · virtual_ucrb_small", label
        c.runs = ["live-run", "tiny/lstm"]
        assert {e.label for e in c.curves()} == {"live-run", "tiny/lstm"}
    finally:
        shutil.rmtree(live)
