"""Atomic NetCDF writing, and why text is stored as characters (an HDF5 crash hazard)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import netCDF4
import numpy as np
import pytest
import xarray as xr

from vegviz.data.static import STATIC_FILE
from vegviz.io import write_netcdf_atomic


def _text_dataset() -> xr.Dataset:
    return xr.Dataset(
        {"score": (("model", "cell"), np.arange(6.0).reshape(2, 3)),
         "kind": ("model", np.array(["network", "process model"], dtype=object))},
        coords={"model": ["convlstm", "lai_process"], "cell": [1, 2, 3]})


def _variable_length_strings(path) -> list[str]:
    with netCDF4.Dataset(path) as nc:
        return [name for name, v in nc.variables.items() if v.dtype is str]


def test_text_is_written_as_characters_and_read_back_as_text(tmp_path):
    ds = _text_dataset()
    path = write_netcdf_atomic(ds, tmp_path / "scores.nc", {"score": {"zlib": True}})
    assert _variable_length_strings(path) == []
    with xr.open_dataset(path) as back:
        xr.testing.assert_identical(back.load(), ds)
        assert back["score"].encoding["zlib"]  # the caller's encoding is kept alongside


@pytest.mark.parametrize("path", [STATIC_FILE], ids=["committed static fields"])
def test_committed_files_have_no_variable_length_strings(path):
    assert _variable_length_strings(path) == []


def test_a_file_open_twice_with_its_text_read_can_be_reopened(tmp_path):
    # The sequence that crashed the test suite (and would crash a long-lived server):
    # one handle kept open (a lazy dataset), a second one reads the text and closes,
    # then the file is opened again. With variable-length strings HDF5 fails here.
    path = write_netcdf_atomic(_text_dataset(), tmp_path / "scores.nc")
    script = textwrap.dedent(f"""
        import netCDF4, xarray as xr
        held = xr.open_dataset({str(path)!r}, chunks={{}})
        with netCDF4.Dataset({str(path)!r}) as nc:
            nc["kind"][:]
        for _ in range(3):
            with xr.open_dataset({str(path)!r}) as ds:
                assert list(ds["kind"].values) == ["network", "process model"]
        print("reopened")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "reopened" in out.stdout, out.stderr[-2000:]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = write_netcdf_atomic(_text_dataset(), tmp_path / "scores.nc")
    before = path.read_bytes()
    bad = _text_dataset().assign(broken=("cell", np.array([{"a": 1}, None, 3], dtype=object)))
    with pytest.raises(Exception):
        write_netcdf_atomic(bad, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.nc"]
