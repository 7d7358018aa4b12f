"""Fluctuation metric of daily LAI (vegviz.evaluation.stability) and summaries by aridity."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from vegviz.evaluation import by_aridity, by_vegetation, fluctuation, stability_table
from vegviz.evaluation.stability import high_pass


def _series(noise: float, seed: int = 0, days: int = 730) -> np.ndarray:
    t = np.arange(days)
    rng = np.random.default_rng(seed)
    return 1.5 + np.sin(2 * np.pi * t / 365.25) + noise * rng.standard_normal(days)


def test_high_pass_removes_slow_signals():
    time = pd.date_range("2001-01-01", periods=730, freq="D")
    smooth = xr.DataArray(_series(0.0), {"time": time}, "time")
    r = high_pass(smooth)
    assert int(r.isnull().sum()) == 30  # 15 days at each end
    # a 31-day mean of a 365-day sine departs from it by at most (1 - sinc) * amplitude ~ 1.2 %
    assert float(abs(r).max()) < 0.013
    noisy = smooth + xr.DataArray(0.2 * np.random.default_rng(1).standard_normal(730), {"time": time}, "time")
    # white noise of std s keeps a share sqrt(1 - 1/31) of it in the residual
    assert float(fluctuation(noisy)) == pytest.approx(0.2 * np.sqrt(30 / 31), rel=0.08)  # sampling error ~ 1/sqrt(700)*2
    with pytest.raises(ValueError, match="odd number"):
        high_pass(smooth, 30)


def test_stability_ratio_and_summaries():
    time = pd.date_range("2001-01-01", periods=730, freq="D")
    lat, lon = [39.0, 39.125, 39.25], [-108.0, -107.875]
    shape = (730, 3, 2)
    truth = np.stack([_series(0.05, seed=k) for k in range(6)], axis=1).reshape(shape)
    jitter = np.random.default_rng(7).standard_normal(shape)
    coords = {"time": time, "lat": lat, "lon": lon}
    dims = ("time", "lat", "lon")
    obs = xr.Dataset({"lai_true": (dims, truth), "lai": (dims, truth), "lai_process": (dims, truth + 0.2 * jitter),
                      "mask": (("lat", "lon"), np.array([[1, 1], [1, 1], [1, 0]])),
                      "landcover": (("lat", "lon"), np.array([[7, 7], [7, 10], [10, 10]]))}, coords)
    pred = xr.Dataset({"smooth": (dims, truth), "jittery": (dims, truth + 0.1 * jitter)}, coords)
    s = stability_table(pred, obs, period=("2001-01-01", "2002-12-31"))
    assert list(s["model"].values) == ["smooth", "jittery", "process"]
    ratio = s["fluctuation_ratio"]
    np.testing.assert_allclose(ratio.sel(model="smooth").values[np.isfinite(ratio.sel(model="smooth").values)], 1.0,
                               rtol=1e-12)
    assert bool(np.isnan(ratio.sel(model="smooth").values[2, 1]))  # outside the mask
    assert (ratio.sel(model="process") > ratio.sel(model="jittery")).sum() == 5
    assert float(ratio.sel(model="jittery").median()) > 1.5
    index = xr.DataArray([[0.1, 0.1], [0.3, 0.3], [0.8, 0.8]], {"lat": lat, "lon": lon}, ("lat", "lon"))
    table = by_aridity(s, index, "fluctuation_ratio", min_cells=1)
    assert list(table.index) == ["arid", "semi-arid", "humid"] and list(table["n_cells"]) == [2, 2, 1]
    assert table.loc["arid", "smooth"] == pytest.approx(1.0)
    veg = by_vegetation(s, obs["landcover"], "fluctuation_ratio", min_cells=1)
    assert set(veg["igbp"]) == {7, 10}
