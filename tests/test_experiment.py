"""The experiment, the runs catalog and the train/evaluate/experiment commands, end to end.

One tiny experiment (4 filters, 60-day windows, one epoch per model) on the small virtual
basin is run once through the command line and shared by the tests.
"""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import yaml

from vegviz import cli
from vegviz.catalog import RunsCatalog, metadata, open_catalog
from vegviz.experiment import Experiment
from vegviz.training import Config, ConfigError, Run, epoch_windows, fit_normalization
from vegviz.training.windows import DataError, load_period

from conftest import TINY


@pytest.fixture(scope="module")
def runs_dir(tiny_experiment):
    return tiny_experiment.path.parent


@pytest.fixture(scope="module")
def experiment(tiny_experiment):
    return tiny_experiment


def test_experiment_writes_runs_predictions_table_and_figures(experiment, small_basin):
    models = ["convlstm", "convlstm_physics", "lstm"]
    assert experiment.models == models
    assert sorted(experiment.runs) == sorted(models)
    pred = experiment.predictions
    assert sorted(pred.data_vars) == sorted(models)
    assert pred.sizes == {"time": small_basin.sizes["time"], "lat": 63, "lon": 54}
    # provenance travels with each variable: its run's config and checkpoint hash
    for m in models:
        assert len(pred[m].attrs["run_checkpoint_sha256"]) == 64
        assert Config.from_yaml(pred[m].attrs["run_config"]).model == m
    # the small basin's own split (from the catalog metadata), not the study's 2009-2016
    assert experiment.config.periods.test == ("2005-01-01", "2005-12-31")
    scores = experiment.scores("test")
    assert scores.attrs["period"] == "test" and scores.attrs["period_start"] == "2005-01-01"
    assert {"convlstm", "lstm", "noise_ceiling", "climatology", "process"} <= set(scores["model"].values.tolist())
    table = experiment.table
    assert list(table.index[:3]) == models
    ceiling = table.loc["noise_ceiling", "median NSE"]
    assert 0.8 < ceiling < 1.0 and np.isfinite(table.loc[models, "median NSE"]).all()
    assert any(c.startswith("median NSE: Open shrublands") for c in table.columns)
    md = (experiment.path / "comparison.md").read_text()
    assert "## test period" in md and "noise_ceiling" in md
    stems = ["a_nse_map_convlstm", "a_nse_map_convlstm_physics", "a_nse_map_lstm", "b_nse_boxplots",
             "c_lai_map_convlstm", "d_timeseries"]
    for fmt in ("html", "png", "svg"):  # to explore, and for papers
        assert sorted(p.stem for p in (experiment.path / "figures").glob(f"*.{fmt}")) == stems, fmt
    info = yaml.safe_load((experiment.path / "experiment.yaml").read_text())
    assert info["runs"]["lstm"]["epochs"] == 1 and info["runs"]["lstm"]["device"] == "cpu"
    assert info["runs"]["convlstm"]["wall_seconds"] > 0


def test_rerunning_an_experiment_skips_finished_models(experiment, runs_dir, capsys):
    before = (experiment.path / "convlstm" / "checkpoints" / "best.pt").stat().st_mtime_ns
    assert cli.main(["experiment", "--data", "virtual_ucrb_small", "--name", "tiny", "--runs-dir", str(runs_dir),
                     "--no-figures", *TINY]) == 0
    out = capsys.readouterr().out
    assert out.count("finished earlier") == 3
    assert (experiment.path / "convlstm" / "checkpoints" / "best.pt").stat().st_mtime_ns == before


def test_experiment_with_another_configuration_under_the_same_name_is_refused(experiment, runs_dir, capsys):
    code = cli.main(["experiment", "--data", "virtual_ucrb_small", "--name", "tiny", "--runs-dir", str(runs_dir),
                     *TINY, "--set", "window=90"])
    assert code == 2
    err = capsys.readouterr().err
    assert "different configuration (window)" in err and "--name" in err


def test_runs_catalog_lists_runs_and_experiments_without_editing(experiment, runs_dir, monkeypatch):
    monkeypatch.setenv("VEGVIZ_RUNS_DIR", str(runs_dir))
    runs = open_catalog().runs
    assert isinstance(runs, RunsCatalog)
    assert {"tiny", "tiny/convlstm", "tiny/convlstm_physics", "tiny/lstm"} <= set(runs)
    entry = runs["tiny"]
    assert metadata(entry)["kind"] == "experiment"
    ds = entry.to_dask()
    assert sorted(ds.data_vars) == ["convlstm", "convlstm_physics", "lstm"]
    single = runs["tiny/lstm"].to_dask()
    assert list(single.data_vars) == ["lstm"]



def test_runs_catalog_rescans_so_new_runs_appear_without_a_restart(experiment, tmp_path):
    import shutil
    import time

    runs = RunsCatalog(root=tmp_path)
    assert list(runs) == []
    shutil.copytree(experiment.path / "lstm", tmp_path / "copied-run")
    time.sleep(1.1)  # the catalog's ttl
    assert list(runs) == ["copied-run"]
    assert metadata(runs["copied-run"])["models"] == ["lstm"]
    (tmp_path / "copied-run" / "config.yaml").write_text("model: [broken\n")
    time.sleep(1.1)
    assert "unreadable run description" in metadata(runs["copied-run"])["error"]  # listed, not fatal


def test_evaluate_a_single_run_on_the_validation_period(experiment, capsys):
    run_dir = experiment.path / "lstm"
    assert cli.main(["evaluate", str(run_dir), "--period", "validation"]) == 0
    out = capsys.readouterr().out
    assert "| lstm" in out and "noise_ceiling" in out
    scores = xr.open_dataset(run_dir / "scores_validation.nc")
    assert scores.attrs["period_start"] == "2003-01-01"
    # the terminal gets the overall columns, the file also the medians per vegetation type
    assert "median NSE: " not in out and "median NSE: " in (run_dir / "comparison_validation.md").read_text()


def test_evaluating_an_experiment_on_another_period_keeps_its_test_outputs(experiment, capsys):
    outputs = [experiment.path / "comparison.md", experiment.path / "comparison.csv",
               *sorted((experiment.path / "figures").glob("*.html"))]
    before = {p: p.read_bytes() for p in outputs}
    assert cli.main(["evaluate", str(experiment.path), "--period", "train", "--no-figures"]) == 0
    assert "train period 1998-01-01.." in capsys.readouterr().out
    assert {p: p.read_bytes() for p in outputs} == before
    assert "| convlstm" in (experiment.path / "comparison_train.md").read_text()
    assert xr.open_dataset(experiment.path / "scores_train.nc").attrs["period"] == "train"


def test_resume_without_a_checkpoint_is_refused_before_training(small_basin, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VEGVIZ_RUNS_DIR", str(tmp_path))
    assert cli.main(["train", "--data", "virtual_ucrb_small", "--name", "typo", "--resume", *TINY]) == 2
    assert "no checkpoint to resume" in capsys.readouterr().err
    assert cli.main(["train", "--data", "virtual_ucrb_small", "--resume", *TINY]) == 2
    assert "--resume needs the run" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_train_command_writes_a_run(small_basin, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VEGVIZ_RUNS_DIR", str(tmp_path))
    assert cli.main(["train", "--data", "virtual_ucrb_small", "--model", "lstm", "--name", "one", *TINY]) == 0
    out = capsys.readouterr().out
    assert f"run: {tmp_path / 'one'}" in out and "median validation NSE" in out
    assert "time: " in out and "per batch on cpu" in out  # how long these settings take here, said early
    run = Run(tmp_path / "one")
    assert run.config.model == "lstm" and run.predictions is not None
    assert "one" in open_catalog().runs


@pytest.mark.parametrize("args, message", [
    (["--set", "windw=60"], "windw: unknown configuration key"),
    (["--set", "optimizer.lr=-1"], "optimizer.lr: must be > 0"),
    (["--set", "nonsense"], "expected KEY=VALUE"),
    (["--model", "transformer"], "model: unknown value 'transformer'"),
    (["--data", "no_such_entry"], "neither an existing Zarr/NetCDF path nor an entry"),
    (["--config", "missing.yaml"], "no such file"),
])
def test_train_command_bad_input_is_a_clear_error(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VEGVIZ_RUNS_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--data", "virtual_ucrb_small", *args]) == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.rglob("*.pt"))


def test_train_on_a_store_that_breaks_the_contract(contract_ds, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VEGVIZ_RUNS_DIR", str(tmp_path / "runs"))
    bad = contract_ds.copy()
    bad["precip"] = bad["precip"] - 5.0  # negative precipitation
    path = tmp_path / "bad.nc"
    bad.to_netcdf(path)
    assert cli.main(["train", "--data", str(path), "--name", "bad", *TINY]) == 2
    err = capsys.readouterr().err
    assert "precip" in err and "outside the plausible range" in err
    assert not (tmp_path / "runs" / "bad" / "checkpoints").exists()


def test_config_yaml_with_bad_types_is_a_clear_error(tmp_path, capsys):
    f = tmp_path / "c.yaml"
    f.write_text("batch_size: eight\n")
    assert cli.main(["train", "--config", str(f)]) == 2
    assert "batch_size: expected int" in capsys.readouterr().err
    f.write_text("model: [unclosed\n")
    assert cli.main(["train", "--config", str(f)]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_evaluate_unknown_run_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VEGVIZ_RUNS_DIR", str(tmp_path))
    assert cli.main(["evaluate", "nope"]) == 2
    assert "neither a run/experiment folder nor a name under" in capsys.readouterr().err


# ----------------------------------------------------------------------------- config pieces

def test_config_for_data_takes_the_catalog_split_unless_given():
    assert Config.for_data("virtual_ucrb_small").periods.train == ("1998-01-01", "2002-12-31")
    assert Config.for_data("virtual_ucrb").periods.test == ("2009-01-01", "2016-12-31")
    own = {"train": ["1998-01-01", "2001-12-31"], "validation": ["2002-01-01", "2003-12-31"],
           "test": ["2004-01-01", "2005-12-31"]}
    assert Config.for_data("virtual_ucrb_small", periods=own).periods.test == ("2004-01-01", "2005-12-31")


def test_stride_gives_overlapping_windows():
    plain = np.sort(epoch_windows(1000, 20, 100, seed=1, epoch=1))
    assert np.all(np.diff(plain) == 100)
    dense = np.sort(epoch_windows(1000, 20, 100, seed=1, epoch=1, stride=25))
    assert np.all(np.diff(dense) == 25) and len(dense) >= 3 * len(plain)
    assert dense.max() + 120 <= 1000 and dense.min() < 25
    with pytest.raises(ConfigError, match="stride"):
        Config(stride=0)


def test_static_inputs_one_hot_land_cover_and_standardised_elevation(small_basin):
    cfg = Config.for_data("virtual_ucrb_small", window=60, burn_in=20)
    stats = fit_normalization(small_basin, cfg)
    mask = small_basin["mask"].values == 1
    classes = np.unique(small_basin["landcover"].values[mask])
    assert stats.static_channels == ("elevation", *(f"landcover={c}" for c in classes))
    assert stats.n_inputs == len(cfg.channels) + 1 + len(classes)
    fields = stats.static_fields(small_basin)
    onehot = fields[1:]
    assert np.all(onehot[:, mask].sum(axis=0) == 1)  # exactly one class per mask cell
    assert abs(fields[0][mask].mean()) < 1e-3 and abs(fields[0][mask].std() - 1) < 1e-3
    arrays = load_period(small_basin, stats, "1999-01-01", "1999-01-31")
    assert arrays.statics.shape == (len(stats.static_channels), 63, 54) and arrays.x.shape[1] == 5
    # a class never seen in training gets zeros everywhere
    other = small_basin.copy()
    other["landcover"] = xr.where(other["landcover"] == classes[0], 99, other["landcover"])
    moved = stats.static_fields(other)
    assert np.all(moved[1][other["landcover"].values == 99] == 0)


def test_static_inputs_errors_and_opt_out(small_basin):
    with pytest.raises(DataError, match="'soil' is not a variable of the data"):
        fit_normalization(small_basin, Config.for_data("virtual_ucrb_small", statics=["soil"]))
    with pytest.raises(DataError, match=r"needs \(lat, lon\)"):
        fit_normalization(small_basin, Config.for_data("virtual_ucrb_small", statics=["tair"]))
    stats = fit_normalization(small_basin, Config.for_data("virtual_ucrb_small", statics=[]))
    assert stats.static_channels == () and stats.static_fields(small_basin) is None
    with pytest.raises(DataError, match="static input 'elevation' is missing"):
        fit_normalization(small_basin, Config.for_data("virtual_ucrb_small")).static_fields(
            small_basin.drop_vars("elevation"))


def test_more_epochs_make_a_finished_model_unfinished(experiment):
    from vegviz.experiment import _finished

    run_dir = experiment.path / "lstm"
    cfg = Run(run_dir).config
    assert _finished(run_dir, cfg.replace(max_epochs=1))
    assert not _finished(run_dir, cfg.replace(max_epochs=5))  # rerun with --epochs 5 continues it


def test_experiment_on_data_that_break_the_contract_writes_nothing(contract_ds, tmp_path, capsys):
    bad = contract_ds.copy()
    bad["tair"] = (bad["tair"] + 273.15).assign_attrs(units="K")
    path = tmp_path / "bad.nc"
    bad.to_netcdf(path)
    assert cli.main(["experiment", "--data", str(path), "--name", "bad", "--runs-dir", str(tmp_path / "runs"),
                     *TINY]) == 2
    assert "tair" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_an_experiment_on_a_second_domain_is_trained_scored_and_named_after_it(gunnison_experiment, gunnison_basin,
                                                                              tmp_path):
    """The tiny experiment on the built-in ``gunnison`` domain (shared with the dashboards' test): predictions
    and scores on its 14 x 24 window, every basin cell of the test period scored, reports titled by it."""
    from vegviz import domains
    from vegviz.figures import figure_title, overview_figure

    gun = domains.get("gunnison")
    exp, (data, ds) = gunnison_experiment, gunnison_basin
    models = ["convlstm", "convlstm_physics", "lstm"]
    assert exp.models == models and exp.config.data == data
    pred = exp.predictions
    assert gun.grid.matches(pred.lat, pred.lon) and sorted(pred.data_vars) == sorted(models)
    assert domains.of_dataset(exp.observations()) == gun
    scores = exp.scores("test")
    assert gun.grid.matches(scores.lat, scores.lon)
    inside = ds["mask"].values == 1
    nse = scores["nse"].sel(model=models).values[:, inside]
    assert inside.sum() > 50 and np.isfinite(nse).mean() > 0.9
    assert list(exp.table.index[:3]) == models and np.isfinite(exp.table.loc[models, "median NSE"]).all()
    md = (exp.path / "comparison.md").read_text()
    assert gun.title in md and "Upper Colorado" not in md
    assert gun.title in figure_title(ds) and "UCRB" not in figure_title(ds)
    assert overview_figure(ds.sel(time=slice("2004-01-01", "2005-12-31")), tmp_path / "overview.png").stat().st_size


# ----------------------------------------------------------------------------- parallel experiments

def test_parallel_experiment_skips_keeps_failures_apart_resumes_and_equals_the_sequential_one(experiment,
                                                                                               tmp_path, capsys):
    """``--parallel``: runs in processes of their own (logs in their folders); a finished run is skipped, a
    failing run leaves the others to finish and be kept, the rerun trains only it; weights, predictions and
    scores equal the sequential ``tiny`` experiment's (same seeds, one thread per run, deterministic CPU)."""
    import shutil

    import pandas as pd
    import torch

    par = tmp_path / "par"
    shutil.copytree(experiment.path / "convlstm_physics", par / "convlstm_physics")  # finished earlier: skipped
    broken = par / "convlstm" / "checkpoints" / "last.pt"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not a checkpoint")  # e.g. cut short by a full disk: resuming it fails
    args = ["experiment", "--data", "virtual_ucrb_small", "--name", "par", "--runs-dir", str(tmp_path),
            "--parallel", "--no-figures", *TINY]
    assert cli.main(args) == 1
    out, err = capsys.readouterr()
    assert "[convlstm_physics] finished earlier" in out and "training 2 runs in parallel: 2 processes" in out
    log = par / "convlstm" / "train.log"
    assert "1 of 3 runs of experiment" in err and "\n  [convlstm] " in err  # what torch.load said
    assert f"(log: {log})" in err and "rerun" in err
    assert "Traceback" in log.read_text()
    # the other run finished, is recorded and kept; nothing was combined
    info = yaml.safe_load((par / "experiment.yaml").read_text())
    assert list(info["runs"]) == ["lstm"] and info["runs"]["lstm"]["parallel"]["threads"] == 1
    assert (par / "lstm" / "finished").exists() and not (par / "predictions.nc").exists()
    text = (par / "lstm" / "train.log").read_text()
    assert "process 2 of 2, 1 thread(s)" in text and "[lstm] epoch 1: train loss" in text

    broken.unlink()
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert out.count("finished earlier") == 2 and "training 1 run in parallel: 1 process at a time" in out
    exp = Experiment.open(par)
    assert list(exp.info["runs"]) == ["convlstm", "lstm"] and "finished" in exp.info  # in the models' order
    for m in exp.models:
        a = torch.load(experiment.path / m / "checkpoints" / "best.pt", weights_only=True)["model"]
        b = torch.load(par / m / "checkpoints" / "best.pt", weights_only=True)["model"]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), m
    xr.testing.assert_equal(exp.predictions[exp.models].load(), experiment.predictions[exp.models].load())
    pd.testing.assert_frame_equal(exp.table, experiment.table)


def test_interrupting_a_parallel_experiment_ends_its_processes(experiment, tmp_path, monkeypatch):
    """Ctrl-C (or any error) in the experiment's process ends the runs' processes instead of orphaning them."""
    import signal

    from vegviz import experiment as ex

    started = []

    def start(*args, **kwargs):
        started.append(real(*args, **kwargs))
        return started[-1]

    def log(text):
        if "training into" in text and len(started) == 2:
            raise KeyboardInterrupt

    real = ex._start_child
    monkeypatch.setattr(ex, "_start_child", start)
    jobs = [(m, experiment.config.replace(model=m, name=f"stopped/{m}")) for m in ("convlstm", "lstm")]
    with pytest.raises(KeyboardInterrupt):
        ex._train_parallel(jobs, tmp_path / "stopped", experiment.observations(), True, {"runs": {}}, log)
    assert [c.process.returncode for c in started] == [-signal.SIGTERM] * 2
    assert not any((tmp_path / "stopped" / m / "finished").exists() for m in ("convlstm", "lstm"))


@pytest.mark.gpu
def test_parallel_experiment_on_gpus_one_run_per_device(small_basin, tmp_path, capsys):
    """On a GPU machine: one process per GPU, each pinned to its own through CUDA_VISIBLE_DEVICES and training on
    it (``cuda`` there); skipped without CUDA."""
    import torch

    from vegviz.experiment import _visible_gpus

    args = ["experiment", "--data", "virtual_ucrb_small", "--name", "gpus", "--runs-dir", str(tmp_path),
            "--parallel", "--no-figures", *TINY, "--set", "device=cuda"]  # the last --set wins
    assert cli.main(args) == 0
    gpus, n = _visible_gpus(), min(torch.cuda.device_count(), 3)
    assert f"{n} process{'es' if n > 1 else ''} at a time on GPU" in capsys.readouterr().out
    exp = Experiment.open(tmp_path / "gpus")
    used = {r["parallel"]["cuda_visible_devices"] for r in exp.info["runs"].values()}
    assert used == set(gpus[:n]) and all(r["device"].startswith("cuda") for r in exp.info["runs"].values())
    assert np.isfinite(exp.table.loc[exp.models, "median NSE"]).all()


def test_parallel_plan_one_process_per_gpu_or_cores_shared_out(monkeypatch):
    import torch

    from vegviz.experiment import ParallelPlan, plan_parallel

    cpu = Config(device="cpu")
    assert plan_parallel(cpu, 3, cores=2) == ParallelPlan(2, 1)  # one per core, never more than the runs
    assert plan_parallel(cpu, 3, cores=16) == ParallelPlan(3, 5)
    assert plan_parallel(cpu, 6, 2, cores=16) == ParallelPlan(2, 8)
    assert plan_parallel(cpu.replace(num_threads=1), 3, cores=16) == ParallelPlan(3, 1)  # the runs' own count
    assert "2 processes at a time on the CPU, 1 thread each" in plan_parallel(cpu, 3, cores=2).describe()
    with pytest.raises(ConfigError, match="parallel: expected True or a number of processes >= 1"):
        plan_parallel(cpu, 3, 0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    gpu = Config(device="cuda", precision="fp32")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert plan_parallel(gpu, 3, cores=16) == ParallelPlan(2, 8, ("0", "1"))  # one run per GPU
    assert plan_parallel(gpu, 3, 3, cores=16) == ParallelPlan(3, 5, ("0", "1", "0"))  # shared round-robin
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")  # the children see our devices by their own numbers
    plan = plan_parallel(gpu, 4, cores=16)
    assert plan.devices == ("3", "5") and "on GPU 3, 5 (CUDA_VISIBLE_DEVICES)" in plan.describe()


def test_parallel_option_parses_and_bad_counts_are_refused_before_anything_is_written(tmp_path, capsys):
    parser = cli.build_parser()
    assert parser.parse_args(["experiment"]).parallel is None
    assert parser.parse_args(["experiment", "--parallel", "--no-figures"]).parallel is True
    assert parser.parse_args(["experiment", "--parallel", "3"]).parallel == 3
    assert cli.main(["experiment", "--data", "virtual_ucrb_small", "--runs-dir", str(tmp_path), "--name", "x",
                     "--parallel", "0"]) == 2
    assert "parallel: expected True or a number of processes >= 1, got 0" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_parallel_run_with_another_thread_count_scores_the_same_within_rounding(experiment, tmp_path, capsys):
    """Two threads instead of one: the multi-threaded kernels sum in another order, so weights differ in the last
    bits (measured: the LSTM's by 1.5e-8 after one epoch, its predictions by one float32 step, per-cell NSE by
    4e-6; the ConvLSTMs came out identical). Longer training can amplify that; the scores stay equal to rounding."""
    import pandas as pd

    args = ["experiment", "--data", "virtual_ucrb_small", "--name", "threads", "--runs-dir", str(tmp_path),
            "--models", "lstm", "--parallel", "--no-figures", *TINY, "--set", "num_threads=2"]
    assert cli.main(args) == 0
    assert "1 process at a time on the CPU, 2 threads each" in capsys.readouterr().out
    exp = Experiment.open(tmp_path / "threads")
    assert exp.info["runs"]["lstm"]["parallel"]["threads"] == 2 and exp.runs["lstm"].config.num_threads == 2
    a, b = experiment.table.loc[["lstm"]], exp.table.loc[["lstm"]]
    pd.testing.assert_frame_equal(a, b, check_exact=False, atol=1e-4, rtol=0)
    np.testing.assert_allclose(exp.predictions["lstm"].values, experiment.predictions["lstm"].values, atol=1e-5)
