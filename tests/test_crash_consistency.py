"""A run folder is consistent after a kill or a full disk at any instant.

``checkpoints/last.pt`` is the one commit point of a training state; ``epoch_NNN.pt``,
``best.pt`` and ``history.csv`` are derived from it and written after it, and a resume
re-derives whichever a kill or a full disk left missing or stale, removes the temporaries a
killed writer left, and predicts a finished run that has no predictions.

Fault injection: a child process trains 2 epochs of a tiny model and exits with
``os._exit(137)`` (what a SIGKILL does to the files) just before the N-th file operation
(``os.fsync`` or ``os.replace``: every write and every rename) of one epoch's commit, for
every N; the test then resumes in this process and requires the run folder to equal an
uninterrupted run's, bit for bit on the CPU with one thread: the weights of ``best.pt``,
``last.pt`` and every ``epoch_NNN.pt``, ``history.csv`` (but the timings) and
``predictions.nc``. A full disk is a small tmpfs filled at the moment one file is written.
"""
from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from marks import slow_except
from conftest import tmpfs
from test_training import learnable_dataset, tiny_config
from vegviz.training import Run, load_checkpoint, train

REPO = Path(__file__).resolve().parent.parent
EPOCHS = 2

#: the file operations of one epoch's commit, in order; "write X": X's temporary is written but not yet
#: flushed (a kill inside the write), "rename X": X's temporary is complete but not yet renamed
COMMIT = ["write last.pt", "rename last.pt", "write epoch_NNN.pt", "rename epoch_NNN.pt", "write best.pt",
          "rename best.pt", "write history.csv", "rename history.csv", "sync checkpoints/", "sync run folder"]
#: after the last epoch's commit, train() writes the predictions
PREDICT = ["write predictions.nc", "rename predictions.nc"]
CASES = [(1, op) for op in COMMIT] + [(EPOCHS, op) for op in COMMIT + PREDICT]
#: the representative kept in the default run: the new last.pt committed, best.pt still the previous
#: epoch's with its new version in a temporary (the first finding of the issue)
QUICK = (EPOCHS, "rename best.pt")

_FAULTY_RUN = textwrap.dedent("""
    import os, sys
    from vegviz.training import Config, train

    config, run_dir, epoch, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    ops = {"armed": False, "count": 0}

    def arm(event):  # the epoch's last batch is done: validation, then the commit, follows
        if event.kind == "batch" and event.epoch == epoch and event.batch == event.batches:
            ops["armed"] = True

    def faulty(real):
        def op(*args, **kw):
            if ops["armed"]:
                ops["count"] += 1
                if ops["count"] == n:
                    os._exit(137)  # no cleanup, no flush: what SIGKILL leaves
            return real(*args, **kw)
        return op

    os.fsync, os.replace = faulty(os.fsync), faulty(os.replace)
    train(Config.from_yaml(config), run_dir, progress=False, subscribers=[arm])
    print("FINISHED", ops["count"])
""")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("crash") / "data.nc"
    learnable_dataset().to_netcdf(path, engine="netcdf4")
    return path


def config(store):
    return tiny_config(data=str(store), max_epochs=EPOCHS, patience=EPOCHS)


def temporaries(run_dir: Path) -> list[str]:
    return sorted(p.name for d in (run_dir, run_dir / "checkpoints") if d.is_dir() for p in d.glob(".*.tmp"))


def snapshot(run_dir: Path) -> dict:
    """What must match bit for bit: weights and bookkeeping of the checkpoints, history, predictions."""
    d = run_dir / "checkpoints"
    out = {}
    for name in ["last", "best"] + [f"epoch_{e:03d}" for e in range(1, EPOCHS + 1)]:
        c = load_checkpoint(d / f"{name}.pt")
        out[name] = {"model": c["model"], "optimizer": c["optimizer"]["state"], "epoch": c["epoch"],
                     "batch": c["batch"], "best_epoch": c["best_epoch"], "best_val_loss": c["best_val_loss"],
                     "history": [{k: v for k, v in h.items() if k != "seconds"} for h in c["history"]]}
    out["history.csv"] = pd.read_csv(run_dir / "history.csv").drop(columns="seconds")
    with xr.open_dataset(run_dir / "predictions.nc", engine="netcdf4") as ds:
        out["predictions"] = {k: ds[k].values.copy() for k in ds.data_vars}
    return out


def assert_same(a: dict, b: dict) -> None:
    for name in b:
        if name == "history.csv":
            pd.testing.assert_frame_equal(a[name], b[name], check_exact=True)
        elif name == "predictions":
            assert a[name].keys() == b[name].keys()
            for k in b[name]:
                assert np.array_equal(a[name][k], b[name][k], equal_nan=True), f"predictions {k} differ"
        else:
            x, y = a[name], b[name]
            assert (x["epoch"], x["batch"], x["best_epoch"], x["best_val_loss"]) == \
                   (y["epoch"], y["batch"], y["best_epoch"], y["best_val_loss"]), name
            assert x["history"] == y["history"], name
            assert x["model"].keys() == y["model"].keys()
            for k in y["model"]:
                assert torch.equal(x["model"][k], y["model"][k]), f"{name}.pt: {k} differs"
            for p, s in y["optimizer"].items():
                for k, v in s.items():
                    assert torch.equal(torch.as_tensor(x["optimizer"][p][k]), torch.as_tensor(v)), name


@pytest.fixture(scope="module")
def reference(store, tmp_path_factory) -> dict:
    """The uninterrupted run (in this process), and the number of file operations of its last epoch's commit."""
    run_dir = tmp_path_factory.mktemp("crash-reference") / "run"
    ops = {"armed": False, "count": 0}

    def arm(event):
        if event.kind == "batch" and event.epoch == EPOCHS and event.batch == event.batches:
            ops["armed"] = True

    def counted(real):
        def op(*args, **kw):
            ops["count"] += ops["armed"]
            return real(*args, **kw)
        return op

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "fsync", counted(os.fsync))
        mp.setattr(os, "replace", counted(os.replace))
        run = train(config(store), run_dir, progress=False, subscribers=[arm])
    h = run.history
    # the cases below assume every epoch improves (so best.pt is rewritten in each commit)
    assert list(h["epoch"]) == [1, 2] and list(h["best"]) == [True, True]
    return {"run_dir": run_dir, "ops": ops["count"], "snapshot": snapshot(run_dir)}


def test_the_cases_cover_every_operation_of_an_epochs_commit(reference):
    assert reference["ops"] == len(COMMIT + PREDICT)


def _kill_at(store, run_dir: Path, epoch: int, op: str) -> subprocess.CompletedProcess:
    cfg_path = run_dir.parent / f"config-{uuid.uuid4().hex[:8]}.yaml"
    config(store).to_yaml(cfg_path)
    script = run_dir.parent / "faulty_run.py"
    script.write_text(_FAULTY_RUN)
    n = (COMMIT + PREDICT).index(op) + 1
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, str(script), str(cfg_path), str(run_dir), str(epoch), str(n)],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=600)


@pytest.mark.parametrize("case", slow_except(CASES, [QUICK]), ids=lambda c: f"epoch{c[0]}-{c[1].replace(' ', '-')}")
def test_kill_at_any_operation_of_the_commit_then_resume_equals_the_uninterrupted_run(store, reference, tmp_path,
                                                                                       case):
    epoch, op = case
    run_dir = tmp_path / "run"
    proc = _kill_at(store, run_dir, epoch, op)
    assert proc.returncode == 137, proc.stdout + proc.stderr[-3000:]
    if op.startswith("rename"):  # its temporary is complete and still there
        name = op.split()[1].replace("NNN", f"{epoch:03d}")
        assert any(t.startswith(f".{name}.") for t in temporaries(run_dir)), temporaries(run_dir)
    if (epoch, op) == QUICK:  # before the resume, a reader already sees the committed state
        run = Run(run_dir)
        assert list(run.history["epoch"]) == [1, 2]
        assert run.load_checkpoint("best")["epoch"] == 2
        assert load_checkpoint(run_dir / "checkpoints" / "best.pt")["epoch"] == 1  # not yet re-derived

    resumed = train(config(store), run_dir, resume=True, progress=False)
    assert temporaries(run_dir) == []
    assert list(resumed.history["epoch"]) == [1, 2] and int(resumed.best["epoch"]) == 2
    assert_same(snapshot(run_dir), reference["snapshot"])


# ----------------------------------------------------------------------------- a full disk

@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs (a disk that can fill up); skipped where it cannot be mounted."""
    with tmpfs(tmp_path / "disk", "4m") as path:
        yield path


def fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte; returns the file that holds the space."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 8, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
    return filler


@pytest.mark.parametrize("name", slow_except(["best.pt", "last.pt", "history.csv", "predictions.nc"], ["best.pt"]))
def test_full_disk_at_a_write_then_resume_completes_the_run(store, reference, small_disk, name, monkeypatch):
    run_dir = small_disk / "run"
    real = tempfile.mkstemp
    seen = {"n": 0, "filler": None}

    def mkstemp(*args, **kw):  # the disk fills up as the last epoch's `name` is about to be written
        if kw.get("prefix") == f".{name}.":
            seen["n"] += 1
            if seen["n"] == (1 if name == "predictions.nc" else EPOCHS):
                seen["filler"] = fill(small_disk)
        return real(*args, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    with pytest.raises((OSError, RuntimeError)) as e:  # netCDF4 reports a full disk as "NetCDF: HDF error"
        train(config(store), run_dir, progress=False)
    assert seen["filler"] is not None, "the disk was never filled"
    if name != "predictions.nc":
        assert isinstance(e.value, OSError) and e.value.errno == errno.ENOSPC, e.value
    monkeypatch.undo()
    assert temporaries(run_dir) == []  # the failed write took its temporary away
    seen["filler"].unlink()  # space is freed

    resumed = train(config(store), run_dir, resume=True, progress=False)
    assert list(resumed.history["epoch"]) == [1, 2] and resumed.predictions_path.exists()
    assert_same(snapshot(run_dir), reference["snapshot"])
