"""The series store: the basin cells' daily series, cell-major, for the dashboards' series views.

Its values must be the grid's (copied float32, compared exactly), a vegetation type's stored
statistics those of the cells, and a store of a changed predictions file is built again.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import xarray as xr

from vegviz.evaluation import region_cells
from vegviz.evaluation.regions import region_statistics
from vegviz.evaluation.series import cell_series
from vegviz.evaluation.series_store import (SERIES_STORE, day_statistics, open_series_store, series_store_path,
                                            series_variables)

EPS32 = float(np.finfo(np.float32).eps)


@pytest.fixture(scope="module")
def data(tiny_experiment):
    from vegviz.dashboards import sources

    pred = sources.open_result("tiny")
    return pred, sources.observations_for(pred)


def test_the_store_holds_the_grids_values(tiny_experiment, data):
    pred, obs = data
    assert series_store_path(pred) == tiny_experiment.path / SERIES_STORE
    assert (tiny_experiment.path / SERIES_STORE).exists()  # the experiment made it
    store = open_series_store(pred, obs, build=False)
    assert store is not None and open_series_store(pred, obs) is store  # opened once per process
    assert set(store.data.data_vars) == set(series_variables(pred, obs))
    mask = obs["mask"].values == 1
    assert store.data.sizes["cell"] == mask.sum() and store.data.sizes["time"] == pred.sizes["time"]
    ii, jj = np.nonzero(mask)
    for k in (0, len(ii) // 2, len(ii) - 1):
        assert store.cell(obs, {"lat": float(obs.lat[ii[k]]), "lon": float(obs.lon[jj[k]])}) == k
        for v in store.data.data_vars:
            grid = (pred if v in pred else obs)[v].isel(lat=ii[k], lon=jj[k]).values
            np.testing.assert_array_equal(store.read(v, k, slice(None)), grid)
    outside = np.argwhere(~mask)[0]
    assert store.cell(obs, {"lat": float(obs.lat[outside[0]]), "lon": float(obs.lon[outside[1]])}) is None


def test_a_cells_series_from_the_store_equals_the_grids(tiny_experiment, data):
    pred, obs = data
    store = open_series_store(pred, obs)
    ii, jj = np.nonzero(obs["mask"].values == 1)
    outside = np.argwhere(obs["mask"].values != 1)[0]
    for i, j in ((ii[7], jj[7]), tuple(outside)):  # a basin cell (read from the store) and one outside (grid)
        lat, lon = float(obs.lat[i]), float(obs.lon[j])
        for period in (tiny_experiment.config.periods.test, [1999, 2003]):
            fast = cell_series(pred, obs, lat, lon, period, store=store)
            slow = cell_series(pred, obs, lat, lon, period)
            assert list(fast.data_vars) == list(slow.data_vars)
            for v in fast.data_vars:
                np.testing.assert_array_equal(fast[v].values, slow[v].values)
                for attr in ("units", "kind"):
                    assert fast[v].attrs[attr] == slow[v].attrs[attr]
            np.testing.assert_array_equal(fast["time"].values, slow["time"].values)


def test_region_statistics_from_the_store_equal_the_grids(tiny_experiment, data):
    pred, obs = data
    store = open_series_store(pred, obs)
    z = obs["elevation"].values
    regions = {"shrublands (stored)": region_cells(obs, vegetation=7),
               "band (read)": region_cells(obs, elevation=(np.nanpercentile(z, 40), np.nanpercentile(z, 90)))}
    for name, cells in regions.items():
        for period in (tiny_experiment.config.periods.validation, [2000, 2004]):
            fast = region_statistics(pred, obs, cells, period, store=store, references=("process", "truth"))
            slow = region_statistics(pred, obs, cells, period, references=("process", "truth"))
            assert list(fast.data_vars) == list(slow.data_vars) == [*pred.data_vars, "process", "truth", "satellite"]
            for v in fast.data_vars:
                # the same float32 values through the same reductions: equal but for the one float32
                # rounding of a float64 mean (any summation order: 1 ulp)
                np.testing.assert_allclose(fast[v].values, slow[v].values, rtol=EPS32, atol=0, err_msg=name)
    # a background thread must not read the HDF5 grid: without the store it is refused, naming why
    with pytest.raises(ValueError, match="not in the series store"):
        region_statistics(pred, obs, regions["band (read)"], tiny_experiment.config.periods.test, grid=False)
    # the stored spread is that of the cells: a float64 reference
    cells = regions["shrublands (stored)"]
    veg = store.vegetation.sel(vegetation=7)
    x = pred["lstm"].values[:, cells].astype(np.float64)  # (time, cells)
    ok = ~np.isnan(x).any(axis=1)
    np.testing.assert_allclose(veg["lstm_mean"].values[ok], x[ok].mean(axis=1), rtol=EPS32)
    lo = np.quantile(x[ok], 0.25, axis=1)
    # linear interpolation between two float32 order statistics, done in float32: a few roundings of the larger
    np.testing.assert_allclose(veg["lstm_lo"].values[ok], lo, rtol=0, atol=4 * EPS32 * np.abs(x[ok]).max())


def test_day_statistics_skip_gaps_and_leave_empty_days_nan():
    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, 1.0, (6, 50)).astype(np.float32)
    x[1, :10] = np.nan  # a day with gaps
    x[2] = np.nan  # a day with no value
    out = day_statistics(x, (25, 75))
    assert np.isnan(out["mean"][2]) and np.isnan(out["lo"][2]) and np.isnan(out["hi"][2])
    keep = [0, 1, 3, 4, 5]
    x64 = x[keep].astype(np.float64)
    np.testing.assert_allclose(out["mean"][keep], np.nanmean(x64, axis=1), rtol=EPS32)
    ref = np.nanquantile(x64, [0.25, 0.75], axis=1)
    tol = 4 * EPS32 * np.nanmax(x64)
    np.testing.assert_allclose(out["lo"][keep], ref[0], rtol=0, atol=tol)
    np.testing.assert_allclose(out["hi"][keep], ref[1], rtol=0, atol=tol)
    assert set(day_statistics(x)) == {"mean"}


def test_a_changed_predictions_file_gets_a_new_store_and_a_failed_build_leaves_the_old(tiny_experiment, data,
                                                                                        tmp_path, monkeypatch):
    from vegviz.evaluation import series_store

    _, obs = data
    shutil.copy(tiny_experiment.path / "predictions.nc", tmp_path / "predictions.nc")
    pred = xr.open_dataset(tmp_path / "predictions.nc", chunks={})
    store = open_series_store(pred, obs)
    assert store.path == tmp_path / SERIES_STORE
    ii, jj = np.nonzero(obs["mask"].values == 1)
    before = store.read("lstm", 3, slice(None))
    # the predictions are written again (a re-trained result of the same name)
    changed = pred.load().copy()
    changed["lstm"] = changed["lstm"] + 1
    pred.close()
    changed.to_netcdf(tmp_path / "new.nc")
    (tmp_path / "new.nc").replace(tmp_path / "predictions.nc")
    pred = xr.open_dataset(tmp_path / "predictions.nc", chunks={})
    assert open_series_store(pred, obs, build=False) is None  # stale: not used
    # a build that fails half-way leaves the old store as it was, and no temporary folder
    monkeypatch.setattr(series_store, "_vegetation_statistics", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        open_series_store(pred, obs)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert (tmp_path / SERIES_STORE / "zarr.json").exists()
    monkeypatch.undo()
    again = open_series_store(pred, obs)
    np.testing.assert_array_equal(again.read("lstm", 3, slice(None)), before + np.float32(1))
    np.testing.assert_array_equal(again.read("lstm", 3, slice(None)), pred["lstm"].isel(lat=ii[3], lon=jj[3]).values)
    pred.close()
