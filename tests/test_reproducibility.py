"""Reproducibility: what a run records (provenance.yaml, checkpoints, experiment.yaml), the data
content hash and its cache, and that a run's own YAML repeats it bit for bit on the CPU.

The end-to-end checks reuse the session's tiny experiment (tests/conftest.py) and re-run
one model from its experiment.yaml and from its config.yaml (about 20 s each).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
import yaml

from vegviz import cli
from vegviz.experiment import Experiment
from vegviz.provenance import (HASH_SIDECAR, compare_runs, content_hash, git_info, hash_variables,
                               read_provenance, record)
from vegviz.training import Config, Run

from conftest import make_contract_dataset

REPO = Path(__file__).resolve().parent.parent
VARS = ["precip", "tair", "lai", "mask", "landcover"]


# ----------------------------------------------------------------------------- git

@pytest.mark.skipif(shutil.which("git") is None or not (REPO / ".git").exists(), reason="needs a git checkout")
def test_git_commit_of_the_checkout_and_none_elsewhere(tmp_path, monkeypatch):
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    info = git_info()
    assert info["git_commit"] == head and isinstance(info["git_dirty"], bool)
    assert git_info(tmp_path) == {"git_commit": None, "git_dirty": None}  # not a repository
    monkeypatch.setenv("PATH", str(tmp_path))  # no git binary: null, never an error
    assert git_info() == {"git_commit": None, "git_dirty": None}


def test_git_dirty_flag_follows_tracked_changes(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("no git binary")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    (tmp_path / "f.txt").write_text("a")
    for args in (["init", "-q"], ["add", "f.txt"], ["commit", "-qm", "x"]):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, env=env)
    clean = git_info(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{40}", clean["git_commit"]) and clean["git_dirty"] is False
    (tmp_path / "untracked.txt").write_text("u")
    assert git_info(tmp_path)["git_dirty"] is False  # untracked files do not count
    (tmp_path / "f.txt").write_text("b")
    assert git_info(tmp_path) == {**clean, "git_dirty": True}


# ----------------------------------------------------------------------------- content hash

def test_content_hash_depends_on_values_not_on_storage(tmp_path):
    ds = make_contract_dataset(days=40)
    h = content_hash(ds, VARS)
    assert re.fullmatch(r"[0-9a-f]{64}", h)
    # the same values: another chunking, a NetCDF round trip, a different NaN bit pattern
    assert content_hash(ds.chunk({"time": 7}), VARS) == h
    ds.to_netcdf(tmp_path / "d.nc", engine="netcdf4")
    with xr.open_dataset(tmp_path / "d.nc", engine="netcdf4", chunks={}) as back:
        assert content_hash(back, VARS) == h
    neg_nan = ds.copy(deep=True)
    lai = neg_nan["lai"].values
    lai[np.isnan(lai)] = -np.float32(np.nan)  # x86's default NaN has the sign bit set
    assert content_hash(neg_nan, VARS) == h
    assert content_hash(ds, list(reversed(VARS))) == h  # order of the names does not matter
    # different values, variables, period or grid: a different hash
    changed = ds.copy(deep=True)
    changed["tair"][5, 10, 10] += np.float32(1e-3)
    assert content_hash(changed, VARS) != h
    assert content_hash(ds, VARS[:-1]) != h
    assert content_hash(ds, VARS, ("2000-01-01", "2000-01-31")) != h
    assert content_hash(ds.assign_coords(lon=ds.lon + 0.125), VARS) != h
    parts = hash_variables(ds, VARS, ("2000-01-01", "2000-01-31"))
    assert parts["period"] == ["2000-01-01", "2000-01-31"] and parts["days"] == 31
    assert sorted(parts["variables"]) == sorted(VARS) and parts["cached"] is False
    with pytest.raises(KeyError, match="vpdx"):
        content_hash(ds, ["vpdx"])


def _store(ds, path, marker=True):
    ds = ds.copy()
    if marker:
        ds.attrs["vegviz_prepared"] = "2026-01-01T00:00:00+00:00"  # like vegviz.data.prepare's completion mark
    ds.chunk({"time": 10}).to_zarr(path, mode="w", consolidated=True, zarr_format=2)
    return xr.open_zarr(path)


def test_content_hash_is_cached_in_a_marked_store_until_it_changes(tmp_path):
    ds = make_contract_dataset(days=40)
    store = tmp_path / "s.zarr"
    opened = _store(ds, store)
    first = hash_variables(opened, VARS)
    assert first["cached"] is False and (store / HASH_SIDECAR).exists()
    again = hash_variables(xr.open_zarr(store), VARS)
    assert again["cached"] is True and again["variables"] == first["variables"]
    assert content_hash(opened, VARS) == content_hash(ds, VARS)  # the cache holds the true digests
    # another period is another cache entry; the first one stays
    assert hash_variables(opened, VARS, ("2000-01-01", "2000-01-20"))["cached"] is False
    assert hash_variables(opened, VARS)["cached"] is True
    # the store changes in place (a chunk rewritten): the cache no longer applies
    import zarr

    zarr.open_group(str(store), mode="r+")["tair"][3, 10, 10] = np.float32(99.0)
    after = hash_variables(xr.open_zarr(store), VARS)
    assert after["cached"] is False and after["variables"]["tair"] != first["variables"]["tair"]
    assert after["variables"]["precip"] == first["variables"]["precip"]
    # a cache file that does not match the store's fingerprint is ignored, a broken one too
    (store / HASH_SIDECAR).write_text(json.dumps({"fingerprint": "x", "digests": {"tair|2000-01-01|2000-02-09": "0"}}))
    assert hash_variables(xr.open_zarr(store), VARS)["variables"] == after["variables"]
    (store / HASH_SIDECAR).write_text("{not json")
    assert hash_variables(xr.open_zarr(store), VARS)["variables"] == after["variables"]


def test_unmarked_or_read_only_stores_are_hashed_without_a_cache(tmp_path):
    ds = make_contract_dataset(days=20)
    plain = _store(ds, tmp_path / "plain.zarr", marker=False)
    assert hash_variables(plain, VARS)["cached"] is False and not (tmp_path / "plain.zarr" / HASH_SIDECAR).exists()
    store = tmp_path / "ro.zarr"
    marked = _store(ds, store)
    store.chmod(0o555)
    try:
        if os.access(store, os.W_OK):
            pytest.skip("running as a user who can write anyway (root)")
        assert content_hash(marked, VARS) == content_hash(ds, VARS)
        assert not (store / HASH_SIDECAR).exists()
    finally:
        store.chmod(0o755)


def test_record_is_plain_and_names_the_data(tmp_path):
    ds = make_contract_dataset(days=400, start="2000-01-01")
    cfg = Config(data="fixture", periods={"train": ["2000-01-01", "2000-06-30"], "validation": ["2000-07-01",
                 "2000-09-30"], "test": ["2000-10-01", "2000-12-31"]}, window=60, burn_in=20, seed=7)
    prov = record(cfg, ds)
    assert prov["seed"] == 7 and prov["deterministic"] is True and prov["device"] == "cpu"
    assert prov["versions"]["torch"] == torch.__version__ and prov["versions"]["numpy"] == np.__version__
    assert {"xarray", "panel", "python"} <= set(prov["versions"])
    data = prov["data"]
    assert data["name"] == "fixture" and data["source"] == "test fixture" and data["synthetic"] == 1
    assert data["hashed"]["period"] == ["2000-01-01", "2000-12-31"]  # train start .. test end, not the 400 days
    assert data["content_sha256"] == content_hash(ds, data["hashed"]["variables"], ("2000-01-01", "2000-12-31"))
    assert {"precip", "tair", "tmin", "swdown", "vpd", "lai", "mask", "elevation", "landcover"} == \
        set(data["hashed"]["variables"])
    # plain types only: YAML round trip and torch's weights_only loader accept it
    assert yaml.safe_load(yaml.safe_dump(prov)) == prov
    torch.save({"provenance": prov}, tmp_path / "p.pt")
    assert torch.load(tmp_path / "p.pt", weights_only=True)["provenance"] == prov


# ----------------------------------------------------------------------------- runs and experiments

def test_runs_and_experiment_record_provenance(tiny_experiment):
    from vegviz.experiment import Experiment

    # read afresh: other tests resume the shared experiment, which rewrites experiment.yaml
    exp_prov = Experiment.open(tiny_experiment.path).info["provenance"]
    assert read_provenance(tiny_experiment.path / "experiment.yaml") == exp_prov
    assert read_provenance(tiny_experiment.path) == exp_prov
    assert exp_prov["data"]["name"] == "virtual_ucrb_small" and exp_prov["data"]["synthetic"] == 1
    assert exp_prov["data"]["generator_version"] and exp_prov["seed"] == tiny_experiment.config.seed
    assert "lai_process" in exp_prov["data"]["hashed"]["variables"]  # the union over the three models
    assert exp_prov["num_threads"] == 1 and exp_prov["deterministic_algorithms"] is True
    assert "vegviz experiment --config" in exp_prov["reproduce"]
    for model, run in tiny_experiment.runs.items():
        prov = run.provenance
        assert prov == yaml.safe_load((run.path / "provenance.yaml").read_text())
        assert prov["vegviz_version"] and prov["versions"]["torch"] == torch.__version__
        assert prov["device"] == "cpu" and prov["num_threads"] == 1 and prov["seed"] == 42
        assert ("git_commit" in prov and "git_dirty" in prov)
        assert re.fullmatch(r"[0-9a-f]{64}", prov["data"]["content_sha256"])
        assert ("lai_process" in prov["data"]["hashed"]["variables"]) == (model == "convlstm_physics")
        assert prov["data"]["variable_sha256"]["precip"] == exp_prov["data"]["variable_sha256"]["precip"]
        ckpt = run.load_checkpoint("best")
        assert ckpt["provenance"]["data"]["content_sha256"] == prov["data"]["content_sha256"]
        assert ckpt["provenance"]["git_commit"] == prov["git_commit"]


def test_experiment_yaml_and_config_yaml_reproduce_a_run_bit_for_bit(tiny_experiment):
    """`vegviz experiment --config experiment.yaml` and `vegviz train --config config.yaml` repeat a run."""
    runs = tiny_experiment.path.parent
    assert cli.main(["experiment", "--config", str(tiny_experiment.path / "experiment.yaml"), "--models", "convlstm",
                     "--name", "tiny_again", "--runs-dir", str(runs), "--no-progress", "--no-figures"]) == 0
    again = Experiment.open(runs / "tiny_again")
    assert again.config.replace(name=None) == tiny_experiment.config.replace(name=None)  # only the name differs
    original = tiny_experiment.runs["convlstm"]
    repeat = again.runs["convlstm"]
    same = compare_runs(original, repeat)
    assert same["identical"] and same["max_abs_diff_predictions"] == 0.0 and same["max_abs_diff_val_loss"] == 0.0
    assert repeat.provenance["data"]["content_sha256"] == original.provenance["data"]["content_sha256"]
    assert repeat.provenance["config_sha256"] != original.provenance["config_sha256"]  # only the name differs
    assert repeat.config.replace(name=None) == original.config.replace(name=None)


@pytest.mark.slow
def test_a_member_runs_config_yaml_reproduces_it_with_train(tiny_experiment):
    """A member run's config.yaml works as `vegviz train --config` (the second path of the test above)."""
    runs = tiny_experiment.path.parent
    original = tiny_experiment.runs["convlstm"]
    assert cli.main(["train", "--config", str(original.path / "config.yaml"), "--name", "convlstm_again",
                     "--no-progress"]) == 0
    trained = Run(runs / "convlstm_again")
    assert compare_runs(original, trained)["identical"]


def test_compare_runs_reports_differences(tiny_experiment):
    runs = tiny_experiment.runs
    d = compare_runs(runs["convlstm"], runs["lstm"])  # two different models on the same grid
    assert not d["identical"] and d["same_nan_mask"] and d["max_abs_diff_predictions"] > 0
    assert d["epochs"] == 1 and d["max_abs_diff_val_loss"] > 0
    assert compare_runs(runs["lstm"], runs["lstm"].path)["identical"]
