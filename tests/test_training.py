"""vegviz.training: config, normalisation, masked loss, trainer, checkpoints, events, predictions.

Everything runs on a tiny synthetic problem (a 4 x 4 window of the study grid, a few
years, 4-filter models) in which LAI is a lagged smooth function of temperature and is
observed every 8 days, so a model can learn it in a few epochs.
"""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from vegviz.contract import ContractError, cf_attrs
from vegviz.data.static import load_static
from vegviz.training.reader import WindowReader
from vegviz.training import (Config, ConfigError, EventLog, Run, Trainer, epoch_windows,
                             fit_normalization, load_checkpoint, masked_loss, save_checkpoint, train)
from vegviz.training.checkpoint import write_atomic

REPO = Path(__file__).resolve().parent.parent
PERIODS = {"train": ["1998-01-01", "2000-12-31"], "validation": ["2001-01-01", "2001-12-31"],
           "test": ["2002-01-01", "2002-12-31"]}


def learnable_dataset(start="1998-01-01", end="2002-12-31", n=4, seed=0) -> xr.Dataset:
    """A contract Dataset on an n x n window of the study grid with a learnable LAI.

    Temperature = seasonal cycle + a slow shared anomaly (AR(1), ~40-day memory) + a
    fixed offset per cell + daily noise; the true LAI follows a logistic function of
    temperature with a 30-day exponential memory, so its anomalies are predictable from
    the temperature history but not from the calendar. Observed every 8 days with noise.
    Cell (0, 0) is outside the mask and has NaN forcings there (allowed by the contract).
    """
    rng = np.random.default_rng(seed)
    static = load_static().isel(lat=slice(30, 30 + n), lon=slice(20, 20 + n))
    time_ = pd.date_range(start, end, freq="D")
    steps = len(time_)
    season = -np.cos(2 * np.pi * (time_.day_of_year.to_numpy() - 20) / 365.25)[:, None, None]
    anomaly = np.zeros(steps)
    shocks = rng.standard_normal(steps)
    for t in range(1, steps):
        anomaly[t] = 0.975 * anomaly[t - 1] + 0.3 * shocks[t]
    offset = rng.normal(0, 2, (n, n))
    tair = 8 + 12 * season + 3 * anomaly[:, None, None] + offset + rng.normal(0, 1.0, (steps, n, n))
    warmth = 1 / (1 + np.exp(-(tair - 8) / 3))
    lai = np.empty_like(tair)
    level = warmth[0]
    for t in range(steps):
        level = level + (warmth[t] - level) / 30
        lai[t] = level
    lai = 0.3 + 2.5 * lai
    obs = np.full_like(lai, np.nan)
    obs[::8] = lai[::8] + rng.normal(0, 0.05, lai[::8].shape)
    shape = (steps, n, n)
    values = {
        "precip": rng.gamma(0.5, 2.0, shape), "tair": tair, "tmin": tair - 6 + rng.normal(0, 1, shape),
        "swdown": 200 + 100 * season + rng.normal(0, 20, shape), "vpd": 1 + rng.random(shape),
        "lai": obs, "lai_process": np.clip(lai + rng.normal(0, 0.3, shape), 0, 10),
    }
    ds = static[["landcover", "elevation"]].assign_coords(time=time_)
    mask = np.ones((n, n), dtype="int8")
    mask[0, 0] = 0
    ds["mask"] = (("lat", "lon"), mask, cf_attrs("mask"))
    for name, v in values.items():
        ds[name] = (("time", "lat", "lon"), v.astype("float32"), cf_attrs(name))
    ds["tair"][:, 0, 0] = np.nan
    ds["lai"][:, 0, 0] = np.nan
    ds.attrs.update(source="vegviz test: learnable synthetic relation", synthetic=1)
    return ds


def tiny_config(**changes) -> Config:
    base = dict(data="unused", hparams={"filters": 4}, periods=PERIODS, window=60, burn_in=20, chunk=20,
                batch_size=4, max_epochs=2, patience=5, device="cpu", num_threads=1, seed=3)
    base.update(changes)
    return Config(**base)


@pytest.fixture(scope="module")
def data() -> xr.Dataset:
    return learnable_dataset()


# ----------------------------------------------------------------------------- config

def test_config_defaults_reproduce_the_study():
    c = Config()
    assert (c.model, c.hparams.filters, c.hparams.layers, c.hparams.kernel) == ("convlstm", 16, 1, 3)
    assert c.periods.train == ("1981-01-01", "2001-12-31")
    assert c.periods.validation == ("2002-01-01", "2008-12-31")
    assert c.periods.test == ("2009-01-01", "2016-12-31")
    assert c.batch_size == 2 and c.stride == 122 and c.data == "virtual_ucrb"
    assert c.statics == ("elevation", "landcover") and c.optimizer.scheduler == "plateau"
    assert Config(model="convlstm_physics").channels == (*c.inputs, "lai_process")


def test_config_yaml_round_trip(tmp_path):
    c = Config(model="convlstm_physics", hparams={"filters": 8, "options": {"mode": "residual"}},
               optimizer={"lr": 3e-3, "scheduler": "plateau"}, window=200, burn_in=50, name="x")
    path = tmp_path / "c.yaml"
    c.to_yaml(path)
    back = Config.from_yaml(path)
    assert back == c
    assert back.hparams.options == {"mode": "residual"} and back.optimizer.lr == 3e-3
    assert Config.from_dict({}) == Config()


@pytest.mark.parametrize("d, names", [
    ({"epochs": 3}, ["epochs", "max_epochs"]),
    ({"hparams": {"filtres": 3}}, ["hparams.filtres", "filters"]),
    ({"optimizer": {"learning_rate": 1}}, ["optimizer.learning_rate", "lr"]),
])
def test_config_unknown_key_names_key_and_valid_keys(d, names):
    with pytest.raises(ConfigError) as e:
        Config.from_dict(d)
    for name in names:
        assert name in str(e.value)


@pytest.mark.parametrize("changes, words", [
    ({"periods": {"validation": ["2001-06-01", "2008-12-31"]}}, ["validation", "after train"]),
    ({"periods": {"train": ["2001-12-31", "1981-01-01"]}}, ["periods.train", "before it starts"]),
    ({"window": 60, "burn_in": 60}, ["window", "burn-in"]),
    ({"model": "transformer"}, ["model", "'convlstm'"]),
    ({"device": "tpu"}, ["device", "'cuda'"]),
    ({"batch_size": 0}, ["batch_size", ">= 1"]),
    ({"hparams": {"options": {"dropout": 0.1}}}, ["hparams.options", "dropout"]),
    ({"max_epochs": "ten"}, ["max_epochs", "int"]),
])
def test_config_invalid_values_are_clear_errors(changes, words):
    with pytest.raises(ConfigError) as e:
        Config.from_dict(changes)
    for word in words:
        assert word in str(e.value)


# ----------------------------------------------------------------------------- loss

def test_masked_loss_counts_only_observed_inside_mask_after_burn_in():
    pred = torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(1, 4, 1, 1, 1).repeat(1, 1, 1, 1, 2)
    target = torch.full((1, 4, 1, 2), math.nan)
    target[0, 0, 0, :] = 100.0  # burn-in: ignored
    target[0, 1, 0, 0] = 0.0    # error 2 -> 4
    target[0, 2, 0, 0] = 4.0    # error 1 -> 1
    target[0, 3, 0, 1] = -50.0  # outside the mask: ignored
    mask = torch.tensor([[1, 0]])
    loss = masked_loss(pred, target, mask, burn_in=1)
    assert loss.item() == pytest.approx((4 + 1) / 2)
    assert masked_loss(pred, target, mask, burn_in=1, kind="mae").item() == pytest.approx((2 + 1) / 2)


def test_masked_loss_without_observations_is_zero_with_finite_gradients():
    pred = torch.randn(2, 5, 1, 3, 3, requires_grad=True)
    target = torch.full((2, 5, 3, 3), math.nan)
    target[:, 0] = 1.0  # only in the burn-in
    loss = masked_loss(pred, target, torch.ones(3, 3), burn_in=1)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(pred.grad).all() and (pred.grad == 0).all()


# ----------------------------------------------------------------------------- sampling, normalisation

def test_normalisation_uses_training_period_and_mask_only(data):
    cfg = tiny_config()
    stats = fit_normalization(data, cfg)
    train = data.sel(time=slice(*PERIODS["train"]))
    inside = data["mask"].values.astype(bool)
    tair = train["tair"].values[:, inside]
    assert stats.mean[cfg.channels.index("tair")] == pytest.approx(tair.mean(dtype="float64"), rel=1e-9)
    assert stats.std[cfg.channels.index("tair")] == pytest.approx(tair.std(dtype="float64"), rel=1e-9)
    lai = train["lai"].values[:, inside]
    assert stats.target_mean == pytest.approx(np.nanmean(lai.astype("float64")), rel=1e-9)

    after = data.copy(deep=True)
    later = after["time"] > np.datetime64(PERIODS["train"][1])
    for name in ("tair", "precip", "lai"):
        after[name] = after[name].where(~later, after[name] * 10 + 5)
    assert fit_normalization(after, cfg) == stats  # nothing after the training period leaks in

    before = data.copy(deep=True)
    before["tair"] = before["tair"] + 1.0
    assert fit_normalization(before, cfg) != stats  # ...while the training period does count


def test_epoch_windows_are_reproducible_and_tile_the_period():
    a = epoch_windows(1000, burn_in=20, window=60, seed=1, epoch=4)
    assert np.array_equal(a, epoch_windows(1000, burn_in=20, window=60, seed=1, epoch=4))
    assert not np.array_equal(a, epoch_windows(1000, burn_in=20, window=60, seed=1, epoch=5))
    s = np.sort(a)
    assert np.all(np.diff(s) == 60) and s[0] < 60 and s[-1] + 80 <= 1000
    assert 1000 - (s[-1] + 80) < 60  # the scored windows reach the end of the period


def test_trainer_rejects_data_that_break_the_contract(data, tmp_path):
    bad = data.copy()
    bad["tair"] = bad["tair"].assign_attrs(units="K")
    with pytest.raises(ContractError, match="tair"):
        Trainer(tiny_config(), bad, tmp_path / "r", progress=False).fit()


def test_validation_period_without_observations_is_a_clear_error_event(data, tmp_path):
    from vegviz.training import DataError

    blind = data.copy()
    blind["lai"] = blind["lai"].where(blind["time"] < np.datetime64(PERIODS["validation"][0]))
    log = EventLog()
    with pytest.raises(DataError, match="periods.validation.*no observed lai"):
        Trainer(tiny_config(), blind, tmp_path / "r", progress=False, subscribers=[log]).fit()
    (error,) = log.of("error")
    assert "DataError" in error.error and "Traceback" in error.traceback


# ----------------------------------------------------------------------------- training

def test_fit_writes_run_layout_checkpoints_and_events(data, tmp_path):
    log = EventLog()
    run = train(tiny_config(), tmp_path / "run", data=data, progress=False, subscribers=[log])
    assert isinstance(run, Run) and Config.from_yaml(run.path / "config.yaml") == tiny_config()
    for name in ("epoch_001.pt", "epoch_002.pt", "last.pt", "best.pt"):
        state = torch.load(run.path / "checkpoints" / name, weights_only=True)
        assert {"model", "optimizer", "scheduler", "epoch", "best_val_loss", "bad_epochs", "normalization",
                "config"} <= set(state)
    assert list(run.history["epoch"]) == [1, 2] and run.history["val_loss"].notna().all()

    kinds = [e.kind for e in log.events]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("epoch") == 2
    batch = log.of("batch")[0]
    assert batch.epoch == 1 and batch.batch == 1 and math.isfinite(batch.loss) and batch.seconds > 0
    assert batch.device == "cpu"
    epoch = log.of("epoch")[-1]
    assert epoch.epoch == 2 and Path(epoch.checkpoint).exists() and epoch.device == "cpu"
    assert math.isfinite(epoch.train_loss) and math.isfinite(epoch.val_loss) and -10 < epoch.val_nse_median <= 1
    assert epoch.best_val_loss == run.history["val_loss"].min()
    assert log.of("end")[0].reason == "max_epochs"

    pred = run.predictions
    assert list(pred.data_vars) == ["convlstm"] and pred["convlstm"].dtype == np.float32
    assert pred["convlstm"].attrs["units"] == "m2 m-2" and "long_name" in pred["convlstm"].attrs
    values = pred["convlstm"].values
    assert np.isnan(values[:, 0, 0]).all()  # outside the mask
    assert np.isnan(values[:20]).all() and np.isfinite(values[20:, 1:, 1:]).all()
    assert Config.from_yaml(pred.attrs["config"]) == tiny_config()
    from vegviz.training import file_sha256
    assert pred.attrs["checkpoint_sha256"] == file_sha256(run.best_checkpoint)
    assert pred.attrs["data_source"] == data.attrs["source"] and pred.attrs["vegviz_version"]
    pred.close()


def test_device_cpu_is_forced_and_cuda_without_gpu_is_an_error(data, tmp_path):
    t = Trainer(tiny_config(device="cpu"), data, tmp_path / "r", progress=False)
    assert t.device.type == "cpu" and t.hardware.precision == "fp32"
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="cuda"):
            Trainer(tiny_config(device="cuda"), data, tmp_path / "r2")


def test_stop_request_from_another_thread(data, tmp_path):
    log = EventLog()
    first_batch, requested = threading.Event(), threading.Event()

    def hold_first_batch(event):  # keeps the stop deterministic: it lands after batch 1 of epoch 1
        if event.kind == "batch" and not first_batch.is_set():
            first_batch.set()
            requested.wait(30)

    trainer = Trainer(tiny_config(max_epochs=50), data, tmp_path / "run", progress=False,
                      subscribers=[log, hold_first_batch])
    thread = trainer.start()
    assert first_batch.wait(60)
    trainer.request_stop()
    requested.set()
    t0 = time.perf_counter()
    thread.join(30)
    assert not thread.is_alive() and time.perf_counter() - t0 < 10 and trainer.error is None
    assert trainer.result == "stopped" and log.of("end")[0].reason == "stopped"
    stop = log.of("stop")[0]
    assert (stop.epoch, stop.batch) == (1, 1) and not log.of("epoch")
    state = load_checkpoint(stop.checkpoint)
    assert (state["epoch"], state["batch"]) == (1, 1)
    # a resumed run continues inside epoch 1, with the second batch
    resumed = EventLog()
    Trainer(tiny_config(max_epochs=1), data, tmp_path / "run", progress=False, subscribers=[resumed]).fit(resume=True)
    assert resumed.of("batch")[0].batch == 2 and [e.epoch for e in resumed.of("epoch")] == [1]


def test_burn_in_and_unobserved_targets_do_not_change_the_loss(data, tmp_path):
    trainer = Trainer(tiny_config(), data, tmp_path / "run", progress=False)
    trainer.setup()
    sample = trainer.epoch_plan(1)[0][:1]  # one window: its burn-in is nobody's scored window
    weights = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    loss, n = trainer.train_step(sample)
    # targets in the burn-in days and outside the mask must not count: change them in the data
    s = int(sample[0, 0]) + trainer.train_reader.first
    changed = data.copy(deep=True)
    lai = changed["lai"].values
    lai[s:s + trainer.config.burn_in] = 9.5
    outside = changed["mask"].values != 1
    assert outside.any()
    lai[:, outside] = 0.25
    other = Trainer(tiny_config(), changed, tmp_path / "other", progress=False)
    other.setup()
    r = trainer.train_reader  # the same normalisation (the changed days would move the training mean)
    other.train_reader = WindowReader(changed, trainer.stats, r.time[0], r.time[-1])
    other.model.load_state_dict(weights)
    assert other.train_step(sample) == (pytest.approx(loss, rel=1e-6), n)
    y = data["lai"].values
    inside = ~outside
    burn = trainer.config.burn_in
    assert n == np.isfinite(y[s + burn:s + trainer.config.sample_days][:, inside]).sum()


def test_runs_root_follows_environment(monkeypatch, tmp_path):
    from vegviz.training import default_run_dir, runs_root

    monkeypatch.setenv("VEGVIZ_RUNS_DIR", str(tmp_path))
    assert runs_root() == tmp_path
    assert default_run_dir(Config(name="study")) == tmp_path / "study"
    assert default_run_dir(Config()).parent == tmp_path and default_run_dir(Config()).name.startswith("convlstm-")


def test_interrupted_checkpoint_write_keeps_the_last_good_one(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    good = {"format": 1, "w": torch.arange(3.0)}
    save_checkpoint(good, path)

    def crash(fd):
        raise OSError("disk gone mid-write")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="mid-write"):
        save_checkpoint({"format": 1, "w": torch.zeros(10_000)}, path)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["w"], good["w"])
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind
    write_atomic(path, b"x")  # the ordinary path still works
    assert path.read_bytes() == b"x"


_KILLED_RUN = textwrap.dedent("""
    import sys, time
    from vegviz.training import Config, Trainer

    def hang(event):  # stand still mid-epoch 2, after the first checkpoint, until killed
        if event.kind == "batch" and event.epoch == 2 and event.batch == 2:
            print("CHECKPOINTED", flush=True)
            time.sleep(300)

    Trainer(Config.from_yaml(sys.argv[1]), run_dir=sys.argv[2], progress=False, subscribers=[hang]).fit()
""")


def test_resume_after_sigkill_matches_uninterrupted_run(data, tmp_path):
    store = tmp_path / "data.nc"
    data.to_netcdf(store, engine="netcdf4")
    cfg = tiny_config(data=str(store), max_epochs=3)
    cfg.to_yaml(tmp_path / "config.yaml")
    script = tmp_path / "killed_run.py"
    script.write_text(_KILLED_RUN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "config.yaml"), str(tmp_path / "killed")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "CHECKPOINTED", proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    assert load_checkpoint(tmp_path / "killed" / "checkpoints" / "last.pt")["epoch"] == 1

    resumed = Trainer(cfg, run_dir=tmp_path / "killed", progress=False)
    log = EventLog()
    resumed.subscribe(log)
    resumed.fit(resume=True)
    assert log.of("start")[0].resumed and log.of("start")[0].epoch == 2
    reference = Trainer(cfg, run_dir=tmp_path / "reference", progress=False)
    reference.fit()
    a, b = resumed.model.state_dict(), reference.model.state_dict()
    for k in b:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)
    assert resumed.history_frame()["val_loss"].tolist() == pytest.approx(
        reference.history_frame()["val_loss"].tolist(), abs=1e-6)
    assert list(Run(tmp_path / "killed").history["epoch"]) == [1, 2, 3]


def test_resume_refuses_a_different_configuration(data, tmp_path):
    Trainer(tiny_config(max_epochs=1), data, tmp_path / "run", progress=False).fit()
    with pytest.raises(ValueError, match="window"):
        Trainer(tiny_config(window=50), data, tmp_path / "run", progress=False).fit(resume=True)


def test_physics_model_trains_with_lai_process_channel(data, tmp_path):
    cfg = tiny_config(model="convlstm_physics", max_epochs=1)
    trainer = Trainer(cfg, data, tmp_path / "run", progress=False)
    history = trainer.fit()
    assert trainer.stats.channels[-1] == "lai_process" and math.isfinite(history["val_loss"].iloc[0])
    # lai_process is scaled like the target (the residual modes add it to the output)
    assert trainer.stats.mean[-1] == trainer.stats.target_mean


def test_end_to_end_beats_climatology(data, tmp_path):
    """A short run learns the temperature-LAI relation better than the day-of-year mean."""
    from vegviz.evaluation import climatology_baseline, nse

    cfg = tiny_config(max_epochs=8, optimizer={"lr": 1e-2}, hparams={"filters": 8}, batch_size=2)
    run = train(cfg, tmp_path / "run", data=data, progress=False)
    val = slice(*PERIODS["validation"])
    obs = data["lai"].sel(time=val)
    model = nse(run.predictions["convlstm"].sel(time=val).load(), obs, mask=data["mask"])
    clim = climatology_baseline(data, tuple(PERIODS["train"]), time=data["time"].sel(time=val))
    baseline = nse(clim, obs, mask=data["mask"])
    assert float(model.median()) > float(baseline.median()) + 0.05, (float(model.median()), float(baseline.median()))


@pytest.mark.slow
def test_small_virtual_basin_physics_model_beats_climatology(small_basin, tmp_path):
    """The study's physics-encoded ConvLSTM on the small virtual basin (whole 63 x 54 grid), ~1 min.

    Short windows and 8 filters keep it to 12 quick epochs; the scored quantity is the
    median over cells of the validation NSE of the saved (best-checkpoint) predictions.
    """
    from vegviz.evaluation import climatology_baseline, nse

    periods = {"train": ["1998-01-01", "2001-12-31"], "validation": ["2002-01-01", "2003-12-31"],
               "test": ["2004-01-01", "2005-12-31"]}
    cfg = Config(data="virtual_ucrb_small", model="convlstm_physics", periods=periods, window=120, burn_in=60,
                 chunk=60, batch_size=4, max_epochs=12, optimizer={"lr": 1e-2}, hparams={"filters": 8},
                 device="cpu", num_threads=1, seed=1)
    run = train(cfg, tmp_path / "run", data=small_basin, progress=False)
    val = slice(*periods["validation"])
    obs = small_basin["lai"].sel(time=val).load()
    mask = small_basin["mask"].load()
    model = nse(run.predictions["convlstm_physics"].sel(time=val).load(), obs, mask=mask)
    clim = climatology_baseline(small_basin, tuple(periods["train"]), time=obs["time"])
    baseline = nse(clim.load(), obs, mask=mask)
    assert float(model.median()) > float(baseline.median()) + 0.02, (float(model.median()), float(baseline.median()))


def test_a_damaged_checkpoint_names_the_file_and_the_fix(tmp_path):
    d = tmp_path / "checkpoints"
    d.mkdir()
    (d / "epoch_001.pt").write_bytes(b"")
    (d / "last.pt").write_bytes(b"cut short by a full disk")
    with pytest.raises(ValueError, match=r"last.pt cannot be read .* damaged .* Fix: copy an earlier epoch's "
                                         r"checkpoint over it \(the latest is epoch_001.pt\)"):
        load_checkpoint(d / "last.pt")


def test_the_time_estimate_comes_from_the_first_batches_then_from_the_first_epoch():
    """The session's first batch (allocation, kernel choice) is left out; the median of the next three sets the pace;
    after the first epoch (validation included) the epochs left are estimated from it."""
    from vegviz.training.estimate import TimeEstimate, duration
    from vegviz.training.events import BatchEvent, EpochEvent, StartEvent

    lines: list[str] = []
    est = TimeEstimate(log=lines.append, sample=3)
    est(StartEvent(epoch=1, max_epochs=10, batches_per_epoch=20, device="cpu", precision="fp32", resumed=False,
                   config={"patience": 4}))
    for b, seconds in enumerate([5.0, 1.0, 1.2, 0.8, 9.0], start=1):
        est(BatchEvent(epoch=1, batch=b, batches=20, loss=0.1, seconds=seconds, device="cpu"))
    assert len(lines) == 1, lines  # said once, after batch 4
    assert "1 s per batch on cpu (20 batches per epoch)" in lines[0] and "about 20 s of training steps" in lines[0]
    assert "10 epochs at most: about 3.3 min plus validation" in lines[0] and "early stopping after 4" in lines[0]
    est(EpochEvent(epoch=1, train_loss=0.1, val_loss=0.2, val_nse_median=0.5, seconds=30.0, device="cpu", lr=1e-3,
                   checkpoint="", improved=True, best_epoch=1, best_val_loss=0.2))
    assert len(lines) == 2 and "epoch 1 took 30 s with validation; the 9 epochs left take at most about 4.5 min" \
        in lines[1]
    assert [duration(s) for s in (40, 210, 3 * 3600)] == ["40 s", "3.5 min", "3.0 h"]
    # an epoch shorter than the sample: said at its last batch
    short: list[str] = []
    est = TimeEstimate(log=short.append)
    est(StartEvent(epoch=1, max_epochs=1, batches_per_epoch=2, device="cpu", precision="fp32", resumed=False,
                   config={}))
    for b in (1, 2):
        est(BatchEvent(epoch=1, batch=b, batches=2, loss=0.1, seconds=0.25, device="cpu"))
    assert len(short) == 1 and "250 ms per batch" in short[0] and "early stopping" not in short[0]
