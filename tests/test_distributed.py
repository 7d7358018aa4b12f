"""Distributed training: real torchrun processes, gloo on the CPU.

Two ranks with the same global batch must train the same weights as one process: every rank
reads its share of each batch and the gradients are all-reduced, so the only difference is
the order of floating-point sums. A killed rank must leave a run that resumes cleanly.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch

from test_training import learnable_dataset, tiny_config
from tolerance import unit_roundoff
from vegviz.training import Trainer, load_checkpoint
from vegviz.training.distributed import DistError, World, check_world, from_env

EPOCHS = 3


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ddp") / "data.zarr"
    learnable_dataset(n=6).to_zarr(path, mode="w", zarr_format=2, consolidated=True)
    return path


def config(store, **changes):
    # stride 10: ~100 samples, ~25 batches an epoch, so an epoch lasts long enough to kill a rank in it
    return tiny_config(data=str(store), max_epochs=EPOCHS, stride=10, patience=EPOCHS, **changes)


def vegviz(*args, env=None, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "vegviz", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, **(env or {})}, **kw)


def ranks_of(mark: str) -> dict[int, int]:
    """{rank: pid} of the processes whose environment holds ``mark`` (Linux /proc)."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            env = dict(e.split("=", 1) for e in (d / "environ").read_text().split("\0") if "=" in e)
        except OSError:
            continue
        if env.get("VEGVIZ_TEST_MARK") == mark and "RANK" in env and "LOCAL_RANK" in env:
            out[int(env["RANK"])] = int(d.name)
    return out


@pytest.fixture(scope="module")
def one_process(store, tmp_path_factory):
    """The reference: the same configuration trained by one process."""
    cfg = config(store)
    one = Trainer(cfg, None, tmp_path_factory.mktemp("one") / "run", progress=False)
    one.fit()
    return cfg, one


def assert_same_training(cfg, one, two: dict) -> None:
    """Two ranks' checkpoint ``two`` holds the weights and losses of the single process ``one``."""
    # Sums of the same terms in another order (each rank sums its share, then the all-reduce) differ by
    # at most 2 gamma_n |terms| (tests/tolerance.py); Adam turns a gradient's relative error d into an
    # update error of about lr d, so after s steps the weights differ by <= s lr d. d = 1e-3 is the bound
    # for n ~ 10^4 terms (2 n u ~ 1.2e-3 in float32) and 100 times what the pairwise summation of torch
    # gives in practice; a sharding bug (a sample seen twice or never) moves weights by ~lr per step.
    lr, steps = cfg.optimizer.lr, sum(len(one.epoch_plan(e)) for e in range(1, EPOCHS + 1))
    tol = steps * lr * 2 * 10_000 * unit_roundoff(torch.float32)
    for key, a in one.model.state_dict().items():
        b = two["model"][key]
        assert torch.allclose(a, b, rtol=0, atol=tol), (key, float((a - b).abs().max()), tol)
    ours = [h["train_loss"] for h in one.history]
    theirs = [h["train_loss"] for h in two["history"]]
    np.testing.assert_allclose(theirs, ours, rtol=1e-4)


def train_two_ranks(cfg_path, run, *extra, env=None) -> subprocess.Popen:
    return vegviz("train", "--config", str(cfg_path), "--run-dir", str(run), "--no-progress", "--nproc", "2", *extra,
                  env=env)


def finished(proc: subprocess.Popen, run: Path) -> dict:
    """The last checkpoint of a 2-rank run that must end cleanly, and promptly (no hang at the exit)."""
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert "median validation NSE" in out and out.count("run: ") == 1  # rank 0 alone reports
    two = load_checkpoint(run / "checkpoints" / "last.pt")
    assert two["epoch"] == EPOCHS and (run / "predictions.nc").exists()
    return two


def test_two_gloo_ranks_train_the_weights_of_one_process(one_process, tmp_path):
    cfg, one = one_process
    cfg_path = tmp_path / "config.yaml"
    cfg.to_yaml(cfg_path)
    run = tmp_path / "two"
    assert_same_training(cfg, one, finished(train_two_ranks(cfg_path, run), run))


@pytest.mark.slow
def test_a_killed_rank_resumes_to_the_weights_of_one_process(one_process, tmp_path):
    cfg, one = one_process
    cfg_path = tmp_path / "config.yaml"
    cfg.to_yaml(cfg_path)
    # two ranks; rank 1 is killed in the middle of epoch 2
    mark = uuid.uuid4().hex
    run = tmp_path / "two"
    proc = train_two_ranks(cfg_path, run, env={"VEGVIZ_TEST_MARK": mark})
    first = run / "checkpoints" / "epoch_001.pt"
    deadline = time.monotonic() + 300
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    ranks = ranks_of(mark)
    assert first.exists() and 1 in ranks, proc.communicate()[0] if proc.poll() is not None else "no epoch 1"
    os.kill(ranks[1], signal.SIGKILL)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, out
    assert not (run / "checkpoints" / f"epoch_{EPOCHS:03d}.pt").exists()
    state = load_checkpoint(run / "checkpoints" / "last.pt")  # complete: written atomically by rank 0
    assert state["epoch"] >= 1 and state["batch"] == 0
    assert_same_training(cfg, one, finished(train_two_ranks(cfg_path, run, "--resume"), run))


def test_a_bad_world_or_rendezvous_gets_a_clear_error(store, tmp_path):
    cfg_path = tmp_path / "config.yaml"
    config(store, batch_size=2).to_yaml(cfg_path)
    # three ranks cannot share a global batch of two
    proc = vegviz("train", "--config", str(cfg_path), "--run-dir", str(tmp_path / "r"), "--no-progress",
                  "--nproc", "3")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0 and "batch_size 2 is smaller than the world size 3" in out, out
    assert not (tmp_path / "r" / "checkpoints").exists()
    with pytest.raises(DistError, match="batch_size 2 is smaller than the world size 3"):  # what torchrun's ranks check
        check_world(World(2, 2, 3), 2, torch.device("cpu"))
    # a rank started by hand, without torchrun's rendezvous variables
    env = {"RANK": "0", "WORLD_SIZE": "2"}
    proc = vegviz("train", "--config", str(cfg_path), "--run-dir", str(tmp_path / "s"), env=env)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 2 and "LOCAL_RANK, MASTER_ADDR, MASTER_PORT not set" in out and "torchrun" in out, out
    with pytest.raises(DistError, match="rank 3 of a world of 2"):
        from_env({"RANK": "3", "LOCAL_RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "x", "MASTER_PORT": "1"})
    assert from_env({}) == World()
    assert World(1, 1, 3).shard(np.arange(7)).tolist() == [1, 4]
