"""Shared fixtures: tiny real contract Datasets, and an isolated data cache."""
from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from vegviz.contract import cf_attrs
from vegviz.data.static import load_static


def make_contract_dataset(start="2000-01-01", days=40, seed=0) -> xr.Dataset:
    """A small valid model-ready Dataset on the study grid (real static fields, simple forcings)."""
    rng = np.random.default_rng(seed)
    static = load_static()
    time = pd.date_range(start, periods=days, freq="D")
    shape = (days, static.sizes["lat"], static.sizes["lon"])
    ds = static[["landcover", "elevation", "mask"]].assign_coords(time=time)
    t = 10 + 5 * rng.standard_normal(shape)
    values = {
        "precip": rng.gamma(0.5, 2.0, shape),
        "tair": t,
        "tmin": t - 6,
        "swdown": 150 + 50 * rng.random(shape),
        "vpd": 1 + rng.random(shape),
    }
    for name, v in values.items():
        ds[name] = (("time", "lat", "lon"), v.astype("float32"), cf_attrs(name))
    lai = np.full(shape, np.nan, dtype="float32")
    lai[::8] = 0.5 + rng.random(lai[::8].shape)
    ds["lai"] = (("time", "lat", "lon"), lai, cf_attrs("lai"))
    ds.attrs.update(source="test fixture", synthetic=1)
    return ds


@pytest.fixture
def contract_ds() -> xr.Dataset:
    return make_contract_dataset()


def pytest_configure(config):
    """Keep tests away from the user's cache and runs: every test session gets its own folders.

    Set VEGVIZ_TEST_DATA_DIR to reuse one data directory across runs (the small basin then
    builds once). Runs always go to a fresh temporary VEGVIZ_RUNS_DIR, one per xdist worker.
    The controller (or the single process) also makes a folder that its workers inherit through
    VEGVIZ_TEST_SHARED: the small basin and the tiny experiment are built there once per test
    session, by whichever worker needs them first, and copied by the others (:func:`shared`).
    """
    import os
    import tempfile

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ[SHARED_ENV] = config._vegviz_shared = tempfile.mkdtemp(prefix="vegviz-test-shared-")

    if os.environ.get("PYTEST_XDIST_WORKER"):
        # one thread per worker (and in the kernels and servers it starts): the workers already use every core
        os.environ["OMP_NUM_THREADS"] = "1"
        import torch

        torch.set_num_threads(1)
    os.environ["VEGVIZ_RUNS_DIR"] = config._vegviz_runs = tempfile.mkdtemp(prefix="vegviz-test-runs-")
    reuse = os.environ.get("VEGVIZ_TEST_DATA_DIR")
    if reuse:
        os.environ["VEGVIZ_DATA_DIR"] = reuse
    else:
        os.environ["VEGVIZ_DATA_DIR"] = config._vegviz_tmp = tempfile.mkdtemp(prefix="vegviz-test-data-")


def pytest_unconfigure(config):
    import shutil

    for attr in ("_vegviz_tmp", "_vegviz_runs", "_vegviz_shared"):
        tmp = getattr(config, attr, None)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


SHARED_ENV = "VEGVIZ_TEST_SHARED"


@contextlib.contextmanager
def shared(name: str):
    """The folder ``name`` of this test session's shared folder, held exclusively (an flock) while in use.

    For what every xdist worker needs and takes minutes to build: the first worker builds it,
    the others wait on the lock and then find it built.
    """
    import fcntl
    import os
    from pathlib import Path

    root = Path(os.environ[SHARED_ENV])
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield root / name


def _copy_tree(src, dst):
    """``src`` copied to ``dst`` (modification times kept: run folders order their files by them), atomically."""
    import shutil

    tmp = dst.with_name(f".{dst.name}.copying")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    tmp.rename(dst)


@pytest.fixture(scope="session")
def small_basin():
    """The small virtual basin (1998-2005), built once per test session and copied into each worker's data dir."""
    import os

    from vegviz.data.virtual import open_virtual_basin
    from vegviz.paths import cache_dir

    if os.environ.get("VEGVIZ_TEST_DATA_DIR"):  # the user's reused data dir: built there once already
        return open_virtual_basin("small")
    with shared("data") as seed:
        if not seed.exists():
            open_virtual_basin("small", data_dir=seed)
        for store in seed.glob("virtual_*.zarr"):
            if not (cache_dir() / store.name).exists():
                cache_dir().mkdir(parents=True, exist_ok=True)
                _copy_tree(store, cache_dir() / store.name)
    return open_virtual_basin("small")


#: command-line options of a tiny experiment: 4 filters, 60-day windows, one epoch per model
TINY = ["--epochs", "1", "--set", "hparams.filters=4", "--set", "window=60", "--set", "burn_in=20",
        "--set", "chunk=20", "--set", "batch_size=4", "--set", "stride=60", "--set", "num_threads=1",
        "--set", "device=cpu", "--no-progress"]


@pytest.fixture(scope="session")
def tiny_experiment(small_basin):
    """A three-model experiment on the small virtual basin, named ``tiny``, in the test runs dir.

    Built once per test session through the command line (about a minute, in the shared folder)
    and copied into each worker's runs dir; tests must not modify it.
    """
    import os
    from pathlib import Path

    from vegviz import cli
    from vegviz.experiment import Experiment

    runs = Path(os.environ["VEGVIZ_RUNS_DIR"])
    if not (runs / "tiny" / "comparison.csv").exists():
        with shared("runs") as seed:
            if not (seed / "tiny" / "comparison.csv").exists():
                assert cli.main(["experiment", "--data", "virtual_ucrb_small", "--name", "tiny", "--runs-dir",
                                 str(seed), *TINY]) == 0
            _copy_tree(seed / "tiny", runs / "tiny")
    return Experiment.open(runs / "tiny")


@pytest.fixture(scope="session")
def gunnison_basin():
    """A second domain's data: the small virtual basin of the built-in ``gunnison`` domain (14 x 24 cells,
    1998-2005, catalog entry ``virtual_gunnison_small``, built once per session in the test data dir), as
    (data choice, Dataset)."""
    from vegviz.catalog import open_data

    return "virtual_gunnison_small", open_data("virtual_gunnison_small")


@pytest.fixture(scope="session")
def gunnison_experiment(gunnison_basin, tmp_path_factory):
    """A tiny three-model experiment (4 filters, 60-day windows, one epoch) on the ``gunnison`` domain, named
    ``tiny_gunnison``, trained, predicted and scored in a runs folder of its own (point VEGVIZ_RUNS_DIR at
    ``.path.parent`` to browse it); tests must not modify it."""
    from vegviz.experiment import run_experiment
    from vegviz.training import Config

    data, ds = gunnison_basin
    config = Config.for_data(data, max_epochs=1, hparams={"filters": 4}, window=60, burn_in=20, chunk=20,
                             stride=60, batch_size=4, num_threads=1, device="cpu")  # the entry's 1998-2005 split
    return run_experiment(config, name="tiny_gunnison", root=tmp_path_factory.mktemp("gunnison-runs"), data=ds,
                          progress=False, figures=False, log=lambda *_: None)


def pytest_collection_modifyitems(config, items):
    """``gpu`` tests skip, with the reason, where torch sees no CUDA device (CI, this machine)."""
    gpu = [item for item in items if "gpu" in item.keywords]
    if not gpu:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in gpu:
        item.add_marker(skip)


@contextlib.contextmanager
def tmpfs(path, size: str):
    """A tmpfs of ``size`` (e.g. "4m": a disk that can fill up) mounted on the new folder ``path``, unmounted
    afterwards; the test is skipped, with the reason, where it cannot be mounted (needs root on Linux)."""
    import subprocess

    path.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                              text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"cannot mount a tmpfs to fill up: {e}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill up (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield path
    finally:  # lazily when a file is still open there (xarray's file cache)
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def wait_until_up(url: str, proc, log, what: str, timeout: float = 120, on_fail=None, request_timeout: float = 30):
    """Poll ``url`` until it answers; RuntimeError with the tail of ``log`` when ``proc`` ends or ``timeout`` passes
    (``on_fail(proc)`` first: stop the server)."""
    import time
    import urllib.request
    from pathlib import Path

    t0 = time.time()
    while True:
        try:
            urllib.request.urlopen(url, timeout=request_timeout)
            return
        except OSError:
            if proc.poll() is not None or time.time() - t0 > timeout:
                if on_fail is not None:
                    on_fail(proc)
                raise RuntimeError(f"{what} did not start: {Path(log).read_text()[-3000:]}") from None
            time.sleep(0.5)
