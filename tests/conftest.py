"""Shared fixtures: tiny real contract Datasets, and an isolated data cache."""
from __future__ import annotations

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
    """Keep tests away from the user's cache: every run gets its own data directory.

    Set VEGVIZ_TEST_DATA_DIR to reuse one across runs (the small basin then builds once).
    """
    import os
    import tempfile

    reuse = os.environ.get("VEGVIZ_TEST_DATA_DIR")
    if reuse:
        os.environ["VEGVIZ_DATA_DIR"] = reuse
    else:
        os.environ["VEGVIZ_DATA_DIR"] = config._vegviz_tmp = tempfile.mkdtemp(prefix="vegviz-test-data-")


def pytest_unconfigure(config):
    import shutil

    tmp = getattr(config, "_vegviz_tmp", None)
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def small_basin():
    """The small virtual basin (1998-2005), built once per test session in the test data dir."""
    from vegviz.data.virtual import open_virtual_basin

    return open_virtual_basin("small")
