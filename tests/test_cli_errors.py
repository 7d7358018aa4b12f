"""Every failure of the command line is an exit 2 with one ``error:`` line: the file, the problem, the fix.

Each test makes one failure happen for real (a damaged file, a full disk, a wrong setting)
and checks the exit code, the message and that no traceback escapes. The library raises the
same clear exceptions (a ValueError subclass or an OSError naming the file).
"""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from conftest import tmpfs
from test_training import learnable_dataset, tiny_config
from vegviz import cli
from vegviz.catalog import open_data
from vegviz.stores import DataFileError
from vegviz.training import load_checkpoint, train


@pytest.fixture(scope="module")
def data() -> xr.Dataset:
    return learnable_dataset()  # 1998-2002, a 4 x 4 window


@pytest.fixture(scope="module")
def store(tmp_path_factory, data) -> Path:
    """The data as a NetCDF file, chunked by year with checksums."""
    path = tmp_path_factory.mktemp("store") / "data.nc"
    enc = {v: {"chunksizes": (365, 4, 4), "fletcher32": True} for v in data.data_vars if data[v].ndim == 3}
    data.to_netcdf(path, encoding=enc)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory, store) -> Path:
    """A finished one-epoch run on ``store``."""
    path = tmp_path_factory.mktemp("runs") / "tiny"
    train(tiny_config(data=str(store), max_epochs=1), path, progress=False)
    return path


def fails(args, capsys) -> str:
    """Run the command line; it must exit 2 with one error line and no traceback. Returns stderr."""
    assert cli.main([str(a) for a in args]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("error: "), err
    assert "Fix:" in err or "free space and rerun" in err, err
    return err


def zarr_store(data, path: Path, zarr_format: int) -> Path:
    data.chunk({"time": 365}).to_zarr(path, mode="w", zarr_format=zarr_format, consolidated=False)
    return path


def chunk_file(store: Path, var: str, index: tuple, zarr_format: int) -> Path:
    key = "c/" + "/".join(map(str, index)) if zarr_format == 3 else ".".join(map(str, index))
    return store / var / key


# ----------------------------------------------------------------------------- damaged data files

def test_a_file_that_is_not_netcdf(tmp_path, capsys):
    path = tmp_path / "garbage.nc"
    path.write_bytes(b"this is not a NetCDF file\n" * 100)
    err = fails(["info", path], capsys)
    assert str(path) in err and "cannot open it as NetCDF" in err and "copy it again" in err


def test_a_truncated_netcdf(tmp_path, store, capsys):
    path = tmp_path / "cut.nc"
    raw = store.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])  # an interrupted copy
    err = fails(["info", path], capsys)
    assert str(path) in err and "truncated" in err and "copy it again from its source" in err
    with pytest.raises(DataFileError, match="cut.nc: cannot open it as NetCDF"):
        open_data(path)


def test_a_damaged_block_of_a_netcdf_names_the_variable_and_the_days(tmp_path, store, data, capsys):
    """The file opens, but one block of tair fails its checksum when it is read ("NetCDF: HDF error")."""
    raw = bytearray(store.read_bytes())
    year = np.ascontiguousarray(data["tair"].values[365:730]).astype("<f4").tobytes()
    at = raw.find(year[:256])
    assert at > 0 and raw.count(year[:256]) == 1
    raw[at + 1000: at + 1010] = b"\0" * 10
    path = tmp_path / "damaged.nc"
    path.write_bytes(bytes(raw))
    err = fails(["train", "--data", path, "--run-dir", tmp_path / "run", "--no-progress",
                 "--set", "periods.train=[1998-01-01, 2000-12-31]", "--set", "periods.validation=[2001-01-01, 2001-12-31]",
                 "--set", "periods.test=[2002-01-01, 2002-12-31]"], capsys)
    assert str(path) in err and "'tair'" in err and "1999-01-01..1999-12-31" in err and "HDF error" in err
    assert not (tmp_path / "run" / "checkpoints").exists()
    ds = open_data(path)
    ds["precip"].load()  # the other variables read
    with pytest.raises(DataFileError, match=r"damaged.nc: cannot read 'tair' at the block time 365:730"):
        ds["tair"].load()


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_a_truncated_zarr_chunk_names_the_chunk_file(tmp_path, data, capsys, zarr_format):
    path = zarr_store(data, tmp_path / "data.zarr", zarr_format)
    chunk = chunk_file(path, "tair", (1, 0, 0), zarr_format)
    chunk.write_bytes(chunk.read_bytes()[:100])
    err = fails(["info", path], capsys)
    assert str(path) in err and "'tair'" in err and f"chunk file tair/{chunk.relative_to(path / 'tair')}" in err
    assert "truncated or damaged" in err and "copy it again" in err
    with pytest.raises(DataFileError, match="chunk file tair/"):
        open_data(path)["tair"].load()


def test_a_missing_zarr_chunk_is_not_a_gap_to_interpolate(tmp_path, data, capsys):
    path = zarr_store(data, tmp_path / "data.zarr", 3)
    chunk_file(path, "tair", (1, 0, 0), 3).unlink()
    err = fails(["info", path], capsys)
    assert "interpolate" not in err
    assert str(path) in err and "tair/c/1/0/0" in err and "missing" in err and "incomplete" in err
    assert "copy the store again" in err


# ----------------------------------------------------------------------------- checkpoints

def resume(run_dir: Path) -> list:
    return ["train", "--config", run_dir / "config.yaml", "--run-dir", run_dir, "--resume", "--epochs", "2",
            "--no-progress"]


def test_a_truncated_checkpoint(tmp_path, run, capsys):
    copy = Path(shutil.copytree(run, tmp_path / "run"))
    last = copy / "checkpoints" / "last.pt"
    raw = last.read_bytes()
    last.write_bytes(raw[: len(raw) // 2])  # cut short: torch raises OSError EINVAL
    with pytest.raises(OSError):
        torch.load(last, weights_only=True)
    with pytest.raises(ValueError, match="last.pt cannot be read .* damaged"):
        load_checkpoint(last)
    err = fails(resume(copy), capsys)
    assert str(last) in err and "damaged" in err and "train into a new run folder" in err


class _Payload:
    """Unpickling this runs code: it creates a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_foreign_pickle_checkpoint_is_not_trusted(tmp_path, run, capsys):
    copy = Path(shutil.copytree(run, tmp_path / "run"))
    last = copy / "checkpoints" / "last.pt"
    marker = tmp_path / "code-ran"
    torch.save({"format": 1, "model": _Payload(marker)}, last)
    err = fails(resume(copy), capsys)
    assert str(last) in err and "is not a vegviz checkpoint" in err and "must not be trusted" in err
    assert "will likely succeed" not in err and "add_safe_globals" not in err  # torch's advice to unpickle it
    assert not marker.exists()
    with pytest.raises(ValueError, match="not a vegviz checkpoint"):
        load_checkpoint(last)
    assert not marker.exists()


# ----------------------------------------------------------------------------- configuration

def test_an_unknown_input_is_a_config_error(tmp_path, store, capsys):
    err = fails(["train", "--data", store, "--run-dir", tmp_path / "run", "--set", "inputs=[precip,foo]"], capsys)
    assert "inputs: 'foo'" in err and "valid inputs are precip, tair" in err
    assert not (tmp_path / "run").exists()


def test_periods_outside_a_data_set_given_by_path(tmp_path, data, capsys):
    path = zarr_store(data, tmp_path / "data.zarr", 3)
    err = fails(["train", "--data", path, "--run-dir", tmp_path / "run", "--no-progress"], capsys)
    assert str(path) in err and "cover 1998-01-01..2002-12-31" in err
    assert "periods.test 2009-01-01..2016-12-31 lies outside them" in err and "default periods" in err
    assert "--set 'periods.train=[1998-01-01, 2000-12-31]'" in err and "--config" in err
    assert not (tmp_path / "run" / "config.yaml").exists()


# ----------------------------------------------------------------------------- a full disk

def test_disk_full_while_writing_names_the_file_and_keeps_nothing(tmp_path, run, monkeypatch, capsys):
    """The writer fails as Python does on a full disk (ENOSPC, no file named), half way through."""
    copy = Path(shutil.copytree(run, tmp_path / "run"))

    def full(self, path=None, *args, **kwargs):
        Path(path).write_bytes(b"CDF half a file")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(xr.Dataset, "to_netcdf", full)
    err = fails(["evaluate", copy], capsys)
    target = copy / "scores_test.nc"
    assert err.strip() == f"error: disk full at {target}: free space and rerun; partial outputs were not kept"
    assert not target.exists() and not list(copy.glob(".*.tmp"))


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (root on Linux only), unmounted afterwards."""
    with tmpfs(tmp_path / "disk", "1m") as path:
        yield path


def test_a_real_full_disk(small_disk, run, capsys):
    """The run sits on a disk with no room for the scores: HDF5 fails ("NetCDF: HDF error", no file named)."""
    copy = small_disk / "run"
    copy.mkdir()
    for name in ("config.yaml", "predictions.nc"):
        shutil.copy(run / name, copy / name)
    used = shutil.disk_usage(small_disk).used
    # room for one page of the folder's lock record (evaluate holds the lock while it writes), one more for HDF5
    subprocess.run(["mount", "-o", f"remount,size={used + 2 * 4096}", str(small_disk)], check=True, timeout=20)
    err = fails(["evaluate", copy], capsys)
    target = copy / "scores_test.nc"
    assert err.strip() == f"error: disk full at {target}: free space and rerun; partial outputs were not kept"
    assert not target.exists() and not list(copy.glob(".*.tmp"))  # nothing half-written
