"""The training dashboard without a browser: real training on the small basin, events drained by poll()."""
from __future__ import annotations

import numpy as np
import panel as pn
import pytest
from bokeh.models import GlyphRenderer, Image, Plot

from vegviz.dashboards import sources
from vegviz.dashboards.training import TrainingDashboard
from vegviz.training import Run
from vegviz.training.events import EpochEvent

#: a run of a few seconds per epoch on the small basin (4 batches per epoch); the predictions over
#: the basin's 8 years at the end cost more than training
TINY = dict(data="virtual_ucrb_small", filters=4, window=60, burn_in=20, chunk=20, batch_size=4, stride=122,
            device="cpu", threads=1)
TIMEOUT = 240


@pytest.fixture
def runs(tmp_path, monkeypatch, small_basin):
    """An empty runs directory of this test's own (the small basin is built first)."""
    root = tmp_path / "runs"
    monkeypatch.setenv("VEGVIZ_RUNS_DIR", str(root))
    return root


@pytest.fixture(scope="module")
def finished(tmp_path_factory, small_basin):
    """A dashboard, rendered, that trained a 2-epoch run to the end; (dashboard, callback calls, runs dir)."""
    root = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VEGVIZ_RUNS_DIR", str(root))
        dash = TrainingDashboard(max_epochs=2, **TINY)
        bokeh_root = pn.panel(dash).get_root()  # the stream updates below then go through real bokeh plots
        calls = []
        dash.on_finished(calls.append)
        refreshed = []

        def refresh(reload: bool = False):  # like the other dashboards' refresh(): called without the run
            refreshed.append(reload)

        dash.on_finished(refresh)
        assert dash.start(), dash.alert.object
        assert dash.status == "starting" and dash.running
        assert dash.wait(TIMEOUT) == "finished", dash.alert.object
        yield dash, calls, refreshed, root, bokeh_root


def test_run_to_the_end_streams_losses_previews_and_publishes_the_run(finished):
    dash, calls, refreshed, root, page = finished
    assert not dash.alert.visible
    assert not dash.running and dash.status == "finished"
    # the live curves: one point per batch, one row per epoch
    batches = dash._batch_buffer.data
    n = dash._progress.max // 2  # batches per epoch
    assert n >= 2 and len(batches) == 2 * n and np.isfinite(batches["loss"]).all()
    assert batches["epoch"].iloc[-1] == pytest.approx(2.0)
    epochs = dash._epoch_buffer.data
    assert list(epochs["epoch"]) == [1, 2]
    assert np.isfinite(epochs[["train_loss", "val_loss", "val_nse"]].to_numpy()).all()
    assert list(dash.history["epoch"]) == [1, 2]
    assert dash.device_used == "cpu (fp32)" and "cpu" in dash._device_text.object
    assert Run(dash.run_dir).config.num_threads == 1  # the form's CPU threads reach the run
    assert dash._progress.value == dash._progress.max
    # the preview: the model's map next to the satellite composite of the same validation day
    sat, pred = dash._satellite_pipe.data, dash._predicted_pipe.data
    assert sat.dims == pred.dims == ("lat", "lon") and sat.shape == pred.shape
    assert np.isfinite(sat.values).sum() > 50 and np.isfinite(pred.values).sum() >= np.isfinite(sat.values).sum()
    assert "epoch 2" in pred.attrs["title"]
    day = sat.attrs["title"].split()[-1]
    assert day.startswith(("2003", "2004")) and day in dash._preview_text.object  # a validation day
    # ... and the rendered page shows them
    glyphs = list(page.select({"type": GlyphRenderer}))
    images = [r.data_source.data["image"][0] for r in glyphs if isinstance(r.glyph, Image)]
    assert len(images) == 2 and all(np.isfinite(i).sum() > 50 for i in images)
    points = [len(r.data_source.data["loss"]) for r in glyphs if "loss" in r.data_source.data]
    assert 2 * n in points and 2 in points  # the batch curve and the epoch curves
    # the run is on disk, listed for the other dashboards, and the callbacks were told
    run_dir = root / dash.run_name
    assert dash.run_dir == str(run_dir)
    assert (run_dir / "predictions.nc").exists()
    assert list(Run(run_dir).history["epoch"]) == [1, 2]
    listed = sources.list_results()
    assert dash.run_name in listed and listed[dash.run_name]["models"] == ["convlstm"]
    assert [c.path for c in calls] == [run_dir] and refreshed == [False]


def test_a_taken_run_name_is_refused_and_an_auto_name_renewed(finished, monkeypatch):
    dash, calls, _, root, _ = finished
    monkeypatch.setenv("VEGVIZ_RUNS_DIR", str(root))
    old = dash.run_name
    other = TrainingDashboard(run_name=old, **TINY)  # a name the user typed
    assert not other.start()
    assert other.alert.visible and "already holds a run" in other.alert.object and "Resume" in other.alert.object
    assert not other.running and other.status == "idle"
    # the dashboard's own default name moves on instead of being refused
    assert dash._run_dir(resume=False) != root / old and dash.run_name != old
    assert dash.run_name.startswith("convlstm-")


def test_stop_writes_a_checkpoint_and_resume_continues(runs):
    dash = TrainingDashboard(max_epochs=1, **TINY)
    assert dash.start()
    dash.stop()  # before the first batch ends: honoured right after it
    assert dash.status == "stopping"
    assert dash.wait(TIMEOUT) == "stopped", dash.alert.object
    run_dir = runs / dash.run_name
    assert (run_dir / "checkpoints" / "last.pt").exists()
    assert not (run_dir / "predictions.nc").exists()
    assert len(dash._batch_buffer.data) == 1 and len(dash.history) == 0
    assert "Resume" in dash._status_text.object and "epoch 1, batch 1" in dash._status_text.object
    state = Run(run_dir).load_checkpoint("last")
    assert (state["epoch"], state["batch"]) == (1, 1)

    assert dash.resume(), dash.alert.object
    assert dash.wait(TIMEOUT) == "finished", dash.alert.object
    # the resumed run did batches 2-4 of epoch 1 only, then predicted
    n = dash._progress.max
    assert list(dash._batch_buffer.data["epoch"]) == pytest.approx([b / n for b in range(2, n + 1)])
    assert list(dash.history["epoch"]) == [1]
    assert (run_dir / "predictions.nc").exists() and dash.run_name in sources.list_results()

    # more epochs for a finished run: its past epochs come back into the curves
    dash.max_epochs = 2
    assert dash.resume(), dash.alert.object
    dash.stop()
    assert dash.wait(TIMEOUT) == "stopped", dash.alert.object
    assert list(dash._epoch_buffer.data["epoch"]) == [1] and list(dash.history["epoch"]) == [1]
    assert list(dash._batch_buffer.data["epoch"]) == pytest.approx([1 + 1 / n])
    assert (Run(run_dir).load_checkpoint("last")["epoch"], Run(run_dir).load_checkpoint("last")["batch"]) == (2, 1)


def test_resume_without_a_checkpoint_says_so(runs):
    dash = TrainingDashboard(run_name="never-trained", **TINY)
    assert not dash.resume()
    assert "no checkpoint to resume from" in dash.alert.object and "Start" in dash.alert.object
    assert not runs.exists() or not any(runs.iterdir())


@pytest.mark.parametrize("change, message", [
    ({"lr": 0.0}, "optimizer.lr: must be > 0"),
    ({"window": 20, "burn_in": 20}, "window: the scored window (20 days) must be longer than the burn-in"),
    ({"device": "cuda"}, "device: 'cuda' was requested"),
    ({"data": "no_such_data"}, "neither a model-ready catalog entry"),
    ({"data": "/etc/hostname"}, "outside the folders this app may read"),
])
def test_bad_settings_show_an_alert_and_write_nothing(runs, change, message):
    if change.get("device") == "cuda":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    dash = TrainingDashboard(**{**TINY, **change})
    assert not dash.start()
    assert dash.alert.visible and dash.alert.alert_type == "danger"
    assert message in dash.alert.object
    assert not dash.running and dash.status == "idle"
    assert not runs.exists() or not any(runs.iterdir())


def test_an_error_inside_the_run_is_shown_and_a_new_start_works(runs, tmp_path):
    import os

    from conftest import make_contract_dataset

    # a NetCDF in the data directory that lacks a forcing: the contract check fails on the training thread
    bad = os.path.join(os.environ["VEGVIZ_DATA_DIR"], f"broken-{tmp_path.name}.nc")
    make_contract_dataset(days=10).drop_vars("tair").to_netcdf(bad, engine="netcdf4")
    dash = TrainingDashboard(**{**TINY, "data": bad})
    assert dash.start()  # the settings are fine; the data are not
    assert dash.wait(TIMEOUT) == "failed"
    assert dash.alert.visible and "tair" in dash.alert.object and "failed" in dash.alert.object
    assert not dash.running and not dash._start_button.disabled
    assert not (runs / dash.run_name / "config.yaml").exists()

    dash.data = "virtual_ucrb_small"
    assert dash.start(), dash.alert.object
    assert not dash.alert.visible  # the old error is cleared
    dash.stop()
    assert dash.wait(TIMEOUT) == "stopped", dash.alert.object
    assert (runs / dash.run_name / "checkpoints" / "last.pt").exists()


@pytest.mark.parametrize("name", ["../../escape", "/etc/escape", "a/b/c", "  "])
def test_run_names_outside_the_runs_folder_are_refused(runs, tmp_path, name):
    dash = TrainingDashboard(run_name=name, **TINY)
    assert not dash.start()
    assert dash.alert.visible and "Run name" in dash.alert.object and "Fix:" in dash.alert.object
    assert not (tmp_path / "escape").exists() and not (runs.parent.parent / "escape").exists()
    assert not runs.exists() or not any(runs.iterdir())


def test_each_dashboard_gets_its_own_run_name(runs):
    a, b = TrainingDashboard(), TrainingDashboard()
    assert a.run_name != b.run_name
    assert a.run_name.startswith("convlstm-")
    a.model = "lstm"  # a default name follows the model ...
    assert a.run_name.startswith("lstm-")
    b.run_name = "mine"
    b.model = "lstm"  # ... a typed one stays
    assert b.run_name == "mine"


def _epoch_event(epoch: int) -> EpochEvent:
    return EpochEvent(epoch=epoch, train_loss=0.5, val_loss=0.6, val_nse_median=0.3, seconds=1.0, device="cpu",
                      lr=1e-3, checkpoint="", improved=True, best_epoch=epoch, best_val_loss=0.6)


def test_loss_and_nse_plots_show_every_epoch_from_zero(tmp_path, monkeypatch):
    """Epoch 1's batch losses lie at x in (0, 1]: the epoch axis starts at 0 in both plots, whatever arrives last."""
    monkeypatch.setenv("VEGVIZ_RUNS_DIR", str(tmp_path / "runs"))
    dash = TrainingDashboard(**TINY)
    page = pn.panel(dash).get_root()
    figures = {f.title.text: f for f in page.select({"type": Plot}) if f.title is not None}
    plots = [figures["Loss (normalised LAI)"], figures["Validation NSE (median over cells)"]]
    n = 4
    for epoch in (1, 2):  # as _drain sends them: a poll's batch losses, then the epoch's row
        dash._flush([{"epoch": epoch - 1 + b / n, "loss": 1.0 / b} for b in range(1, n + 1)], [])
        dash._flush([], [_epoch_event(epoch)])
        for fig in plots:
            assert fig.x_range.start == 0 and epoch < fig.x_range.end <= 1.1 * epoch, (epoch, fig.x_range)
    loss = next(r.data_source.data["epoch"] for r in plots[0].renderers if "loss" in r.data_source.data)
    assert loss.min() == pytest.approx(1 / n) and loss.min() > plots[0].x_range.start  # epoch 1's first batch

    resumed = TrainingDashboard(**TINY)  # a resumed run's past epochs arrive without batch losses
    page = pn.panel(resumed).get_root()
    resumed._flush([], [_epoch_event(e) for e in (1, 2, 3)])
    for fig in (f for f in page.select({"type": Plot}) if f.title is not None and "LAI " not in f.title.text):
        assert fig.x_range.start == 0 and 3 < fig.x_range.end <= 3.3


def test_the_form_fits_its_column_and_labels_the_device_choice(tmp_path, monkeypatch):
    monkeypatch.setenv("VEGVIZ_RUNS_DIR", str(tmp_path / "runs"))
    dash = TrainingDashboard(**TINY)
    form = pn.panel(dash).objects[0]
    assert form.width
    widgets = [w for w in form.select(pn.widgets.Widget) if not isinstance(w, pn.widgets.Button)]
    assert len(widgets) == len(TrainingDashboard._SETTINGS)
    for w in widgets:  # the widget and its margins inside the column (arrows used to stick out)
        m = w.margin if isinstance(w.margin, tuple) else (w.margin, w.margin)
        left, right = (m[1], m[1]) if len(m) == 2 else (m[3], m[1])
        assert w.width is not None and left + w.width + right <= form.width, (w.name, w.width, w.margin)
    # the device buttons show no label of their own: a "Device" label right above them
    device = next(w for w in widgets if isinstance(w, pn.widgets.RadioButtonGroup))
    assert device.value == "cpu" and list(device.options) == ["auto", "cpu", "cuda"]
    above = form.objects[form.objects.index(device) - 1]
    assert isinstance(above, pn.pane.Markdown) and above.object == "Device"
    # every setting explains itself in a tooltip (the "?" beside its label), the ML terms in words
    assert all(w.description for w in widgets if w is not device), [w.name for w in widgets if not w.description]
    by_name = {name: w for name, w in dash.form.items()}
    assert "backpropagation through time" in by_name["chunk"].description
    assert "overlapping" in by_name["stride"].description and "not scored" in by_name["burn_in"].description
    from vegviz.dashboards.training import LOSS_HELP

    tips = [t.value for t in pn.panel(dash).select(pn.widgets.TooltipIcon)]
    assert LOSS_HELP in tips and "normalised" in LOSS_HELP


def test_data_choices_are_every_model_ready_entry_and_the_maps_show_the_chosen_domain(tmp_path, monkeypatch):
    import holoviews as hv

    from vegviz import domains
    from vegviz.catalog import model_ready

    monkeypatch.setenv("VEGVIZ_RUNS_DIR", str(tmp_path))
    ready = model_ready()
    dash = TrainingDashboard()
    assert set(ready) <= set(dash.param.data.objects)  # every domain's virtual basins and prepared data
    assert dash.domain == domains.get("ucrb") and "Upper Colorado River Basin" in dash.domain_text()

    def empty_map_domain():
        (img,) = [el for el in dash.satellite_map[()] if isinstance(el, hv.Image)]
        lat, lon = (img.dimension_values(k, expanded=False) for k in ("lat", "lon"))
        return next(d for d in domains.all_domains().values() if d.grid.matches(lat, lon)), img

    assert empty_map_domain()[0].name == "ucrb"
    others = [c for c in ready if c.startswith("virtual_") and sources.data_domain(c) not in (None, domains.get("ucrb"))]
    if others:  # the other domains' virtual basins (their entries say their domain; nothing is built here)
        dash.data = others[0]
        d = sources.data_domain(others[0])
        assert d.title in dash.domain_text() and "Upper Colorado" not in dash.domain_text()
        shown, img = empty_map_domain()
        assert shown == d and d.title in img.opts.get().kwargs["title"]

    monkeypatch.setenv("VEGVIZ_DEMO", "binder")  # the demo offers small basins of domains up to the UCRB's size
    demo = TrainingDashboard().param.data.objects
    assert "virtual_ucrb_small" in demo
    for c in demo:
        assert not (c.startswith("virtual_") and not c.endswith("_small")), c
        assert c != "virtual_conus_small"


def test_a_preset_fills_the_form_in_one_choice(tmp_path, monkeypatch):
    """quick: the small basin, 8 filters, 90-day windows, 3 epochs (vegviz.presets); study: the Config defaults
    on the full virtual basin of the same domain. The thread count and a typed run name stay."""
    from vegviz.presets import dashboard_settings
    from vegviz.training import Config

    monkeypatch.setenv("VEGVIZ_RUNS_DIR", str(tmp_path / "runs"))
    dash = TrainingDashboard(**TINY, run_name="mine")
    threads = dash.threads
    dash.preset = "quick"
    quick = dashboard_settings("quick")
    assert (dash.data, dash.filters, dash.window, dash.max_epochs, dash.extra["patience"]) == \
        ("virtual_ucrb_small", 8, 90, 3, 3) == (quick["data"], quick["filters"], quick["window"],
                                                 quick["max_epochs"], quick["extra"]["patience"])
    dash.preset = "study"
    assert dash.data == "virtual_ucrb" and (dash.window, dash.burn_in, dash.max_epochs, dash.batch_size) == \
        (Config.window, Config.burn_in, Config.max_epochs, Config.batch_size)
    assert dash.threads == threads and dash.run_name == "mine"
