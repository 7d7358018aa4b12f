"""One writer per run folder (vegviz.training.lock): real processes, threads and dashboard sessions.

Two writers of one folder used to both succeed and leave a folder mixed from the two runs; now the
second is refused with the holder's pid and the fix, and a holder that dies leaves no stale lock.
"""
from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from test_training import PERIODS, learnable_dataset, tiny_config
from vegviz.training import Config, EventLog, Trainer, load_checkpoint
from vegviz.training.lock import LOCK_FILE, RunBusyError, RunLock

LOCK_MODULE = Path(__file__).resolve().parent.parent / "vegviz" / "training" / "lock.py"

# a process that holds a folder's lock (and, with "fork", has a forked child that inherits it); the lock
# module alone is loaded (no torch), so it starts in a fraction of a second
_HOLDER = """
import importlib.util, os, sys, time
spec = importlib.util.spec_from_file_location("lock", sys.argv[1])
lock = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lock)
held = lock.RunLock(sys.argv[2], "the holder").acquire()
child = os.fork() if sys.argv[3] == "fork" else 0
if sys.argv[3] == "fork" and child == 0:
    time.sleep(300)
    os._exit(0)
print("HELD", child, flush=True)
time.sleep(300)
"""


def holder(folder: Path, mode: str = "") -> tuple[subprocess.Popen, int]:
    """A process holding ``folder``'s lock, once it holds it; (process, pid of its forked child or 0)."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(LOCK_MODULE), str(folder), mode or "-"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline().split()
    assert line[:1] == ["HELD"], proc.stderr.read()
    return proc, int(line[1])


def record(folder: Path) -> dict:
    """What the lock file of ``folder`` says about its holder ({} when free, or not written yet)."""
    try:
        return json.loads((folder / LOCK_FILE).read_text() or "{}")
    except (OSError, ValueError):
        return {}


def acquired_within(folder: Path, seconds: float) -> RunLock:
    """The lock of ``folder`` once it is free (RunBusyError after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return RunLock(folder).acquire()
        except RunBusyError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("lock") / "data.zarr"
    learnable_dataset().to_zarr(path, mode="w", zarr_format=2, consolidated=True)
    return path


# ----------------------------------------------------------------------------- two CLI processes

def vegviz(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "vegviz", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_a_second_vegviz_train_into_the_same_folder_is_refused_and_the_first_run_stays_whole(store, tmp_path):
    first_cfg, second_cfg = tmp_path / "first.yaml", tmp_path / "second.yaml"
    tiny_config(data=str(store), max_epochs=1).to_yaml(first_cfg)
    tiny_config(data=str(store), max_epochs=1, hparams={"filters": 3}, seed=7).to_yaml(second_cfg)
    run = tmp_path / "same"
    first = vegviz("train", "--config", str(first_cfg), "--run-dir", str(run), "--no-progress")
    try:
        deadline = time.monotonic() + 180
        while record(run).get("pid") != first.pid and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert record(run).get("pid") == first.pid, first.communicate(timeout=60)[0] if first.poll() is not None \
            else "the first run never took the lock"
        # frozen, so that it is certainly still writing while the second one starts; its lock stays
        os.kill(first.pid, signal.SIGSTOP)
        assert record(run).get("pid") == first.pid, "the first run ended before it could be frozen"
        second = vegviz("train", "--config", str(second_cfg), "--run-dir", str(run), "--no-progress")
        out2, _ = second.communicate(timeout=180)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert second.returncode == 2, out2
    assert f"is being written by pid {first.pid} on host" in out2 and "Fix: wait for it to finish" in out2, out2
    assert "--run-dir" in out2 and "Traceback" not in out2, out2
    out1, _ = first.communicate(timeout=300)
    assert first.returncode == 0, out1
    # the folder is the first run's alone: its config, its checkpoints, its predictions
    assert Config.from_yaml(run / "config.yaml").hparams.filters == 4
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["epoch"] == 1 and last["config"]["hparams"]["filters"] == 4 and last["config"]["seed"] == 3
    assert (run / "predictions.nc").exists() and "median validation NSE" in out1
    assert (run / LOCK_FILE).exists() and record(run) == {}  # released: kept, emptied


# ----------------------------------------------------------------------------- crashes

def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    folder = tmp_path / "run"
    proc, _ = holder(folder)
    try:
        with pytest.raises(RunBusyError, match=f"by pid {proc.pid} on host .* \\(`the holder`\\)"):
            RunLock(folder).acquire()
    finally:
        proc.kill()
        proc.wait(30)
    assert record(folder)["pid"] == proc.pid  # the dead holder's record is still there; its lock is not
    with RunLock(folder, "the next writer") as lock:
        assert lock.held and record(folder)["command"] == "the next writer" and record(folder)["pid"] == os.getpid()
    assert record(folder) == {}


def test_a_lock_kept_by_a_forked_child_of_a_dead_holder_is_refused_and_said_so(tmp_path):
    folder = tmp_path / "run"
    proc, child = holder(folder, "fork")
    try:
        proc.kill()
        proc.wait(30)
        with pytest.raises(RunBusyError) as e:
            RunLock(folder).acquire()
        assert f"pid {proc.pid}" in str(e.value) and "has ended but the lock is still held" in str(e.value)
        assert "fuser" in str(e.value) and e.value.holder["pid"] == proc.pid
    finally:
        os.kill(child, signal.SIGKILL)
    acquired_within(folder, 30).release()


@pytest.mark.slow  # a second path (two trainings, one in a process of its own: 20-40 s on 2 cores)
def test_a_killed_trainer_is_resumed_by_the_next_writer(store, tmp_path):
    script = ("import sys\nfrom vegviz.training import Config, Trainer\n"
              "def hang(e):\n    if e.kind == 'batch':\n        print('TRAINING', flush=True)\n"
              "        import time; time.sleep(300)\n"
              "Trainer(Config.from_yaml(sys.argv[1]), run_dir=sys.argv[2], progress=False, subscribers=[hang]).fit()\n")
    cfg = tiny_config(data=str(store), max_epochs=1)
    cfg.to_yaml(tmp_path / "config.yaml")
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "config.yaml"), str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "TRAINING", proc.stderr.read()
        assert record(run)["pid"] == proc.pid
        with pytest.raises(RunBusyError, match=f"pid {proc.pid}"):
            Trainer(cfg, None, run, progress=False).fit()  # refused before the data are even opened
    finally:
        proc.kill()
        proc.wait(30)
    log = EventLog()
    Trainer(cfg, None, run, progress=False, subscribers=[log]).fit(resume=True)
    assert log.of("end")[0].epochs == 1 and record(run) == {}


# ----------------------------------------------------------------------------- one process

def test_two_threads_of_one_process_cannot_both_hold_a_folder(tmp_path):
    folder = tmp_path / "run"
    first = RunLock(folder, "session one").acquire()
    errors = []

    def second():
        try:
            RunLock(folder).acquire()
        except RunBusyError as e:
            errors.append(e)

    t = threading.Thread(target=second)
    t.start()
    t.join()
    assert len(errors) == 1 and f"this process (pid {os.getpid()}" in str(errors[0])
    assert "`session one`" in str(errors[0])
    # the kernel agrees: another open file description of the lock file cannot take it either
    fd = os.open(first.path, os.O_RDONLY)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
    with pytest.raises(RuntimeError, match="held by this RunLock already"):
        first.acquire()
    first.release()
    first.release()  # a second release is harmless
    t = threading.Thread(target=lambda: RunLock(folder).acquire().release())
    t.start()
    t.join()
    assert RunLock(folder).acquire().held


def test_the_trainer_lock_is_reentrant_and_a_new_folder_is_made_only_when_written(tmp_path):
    # fit() of a folder another writer holds is refused before anything is read (data "unused" would fail)
    busy = tmp_path / "busy"
    with RunLock(busy, "another writer"):
        log = EventLog()
        with pytest.raises(RunBusyError, match="`another writer`"):
            Trainer(tiny_config(), None, busy, progress=False, subscribers=[log]).fit()
        assert "RunBusyError" in log.of("error")[0].error and sorted(p.name for p in busy.iterdir()) == [LOCK_FILE]
    t = Trainer(tiny_config(), None, tmp_path / "new", progress=False)
    with t.writing():
        assert not t.lock.held and not (tmp_path / "new").exists()  # nothing written yet: nothing claimed
        with t.writing(create=True):
            assert t.lock.held
        assert t.lock.held  # held until the outermost block ends (train() around fit())
        with pytest.raises(RunBusyError):
            RunLock(tmp_path / "new").acquire()
    assert not t.lock.held and record(tmp_path / "new") == {}


def test_an_experiment_folder_being_written_is_refused_with_exit_code_2(tmp_path, capsys):
    from vegviz import cli

    with RunLock(tmp_path / "exp", "another experiment"):  # refused before the data are opened
        assert cli.main(["experiment", "--data", "virtual_ucrb_small", "--name", "exp", "--runs-dir",
                         str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"error: run folder {tmp_path / 'exp'} is being written by" in err and "`another experiment`" in err
    assert sorted(p.name for p in (tmp_path / "exp").iterdir()) == [LOCK_FILE]


def test_evaluate_and_predict_into_a_folder_another_process_writes_are_refused(tiny_experiment, tmp_path, capsys):
    """``vegviz evaluate`` and ``Run.predict()`` write into the folder: not while another process holds it; the
    folder is left as it was. Free again, both work (``train()`` predicts inside its own lock)."""
    import shutil

    from vegviz import cli
    from vegviz.training import Run

    run_dir = tmp_path / "convlstm"
    shutil.copytree(tiny_experiment.path / "convlstm", run_dir)
    def stamps():
        return {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir() if p.name != LOCK_FILE}

    before = stamps()
    proc, _ = holder(run_dir)
    try:
        assert cli.main(["evaluate", str(run_dir), "--period", "validation"]) == 2
        err = capsys.readouterr().err
        assert f"error: run folder {run_dir} is being written by" in err and "`the holder`" in err
        with pytest.raises(RunBusyError, match="the holder"):
            Run(run_dir).predict()
        assert stamps() == before
    finally:
        proc.kill()
        proc.wait()
    assert cli.main(["evaluate", str(run_dir), "--period", "validation"]) == 0
    assert (run_dir / "comparison_validation.md").exists() and record(run_dir) == {}


# ----------------------------------------------------------------------------- dashboard sessions

@pytest.fixture
def dashboard(store, tmp_path, monkeypatch):
    """A factory of training dashboards (browser sessions of one server) on the learnable data set; (factory, runs)."""
    import shutil

    from vegviz.dashboards.training import TrainingDashboard

    runs = tmp_path / "runs"
    monkeypatch.setenv("VEGVIZ_RUNS_DIR", str(runs))
    data = Path(os.environ["VEGVIZ_DATA_DIR"]) / f"learnable-{tmp_path.name}.zarr"  # the app reads only there
    shutil.copytree(store, data)
    settings = dict(data=str(data), filters=4, window=60, burn_in=20, chunk=20, batch_size=4, stride=30,
                    device="cpu", threads=1, max_epochs=20, extra={"periods": PERIODS})
    yield (lambda **kw: TrainingDashboard(**{**settings, **kw})), runs
    shutil.rmtree(data, ignore_errors=True)


def test_two_dashboard_sessions_cannot_train_or_resume_one_run_at_once(dashboard):
    make, runs = dashboard
    one, two = make(run_name="same"), make(run_name="same")
    assert one.start(), one.alert.object
    try:
        assert not two.start()  # at once: the folder may hold nothing but the lock yet
        assert "being written by this process" in two.alert.object and "Fix:" in two.alert.object
        assert not two.running and two.status == "idle"
    finally:
        one.stop()
    assert one.wait(120) == "stopped", one.alert.object
    assert one.resume(), one.alert.object  # the lock went with the job
    try:
        assert not two.resume()
        assert "being written by this process" in two.alert.object
    finally:
        one.stop()
    assert one.wait(120) == "stopped", one.alert.object
    assert two.resume(), two.alert.object
    two.stop()
    assert two.wait(120) == "stopped", two.alert.object
    assert record(runs / "same") == {}


def test_an_empty_folder_being_written_is_busy_and_a_free_lock_file_is_no_obstacle(dashboard):
    make, runs = dashboard
    other = RunLock(runs / "held", "another writer").acquire()  # claimed, nothing written yet
    dash = make(run_name="held")
    try:
        assert not dash.start()
        assert "`another writer`" in dash.alert.object and not (runs / "held" / "config.yaml").exists()
    finally:
        other.release()
    assert dash._run_dir(False) == (runs / "held").resolve()
    dash._check_free(runs / "held", resume=False)  # only a released lock file in it: free
