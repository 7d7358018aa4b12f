"""Training at any size: windows read out of core, spatial patches, tiled prediction.

The data go through real Zarr stores with small chunks, so every window spans several blocks
in time and space, and through a cache too small to hold them, so blocks are evicted and read
again.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from test_training import learnable_dataset, tiny_config
from tolerance import convlstm_scan_roundings, rounding_tolerance
from vegviz.training import Config, ConfigError, DataError, Trainer, fit_normalization, load_period, predict
from vegviz.training.device import resolve
from vegviz.training.reader import BlockCache, WindowReader, patch_origins, prefetched
from vegviz.training.tiles import stream, tiles


@pytest.fixture(scope="module")
def grid_store(tmp_path_factory) -> xr.Dataset:
    """A 10 x 12 learnable data set in a Zarr store of 200-day x 4 x 5-cell chunks, opened lazily."""
    ds = learnable_dataset(n=12).isel(lat=slice(0, 10))
    path = tmp_path_factory.mktemp("scale") / "grid.zarr"
    chunks = {"time": 200, "lat": 4, "lon": 5}
    ds.chunk(chunks).to_zarr(path, mode="w", consolidated=True, zarr_format=2)
    return xr.open_zarr(path)


def test_windows_equal_the_in_memory_period_bitwise(grid_store):
    cfg = tiny_config()
    stats = fit_normalization(grid_store, cfg)
    loaded = grid_store.load()
    years = [1998, 2000]
    whole = load_period(loaded, stats, "1998-01-01", "2000-12-31", pad_before=30, target_period=years)
    # a cache of a few blocks: windows are assembled from blocks decoded again after eviction
    cache = BlockCache(3 * 200 * 4 * 5 * 4)
    reader = WindowReader(grid_store, stats, "1998-01-01", "2000-12-31", pad_before=30, target_period=years,
                          cache=cache)
    assert reader.pad == whole.pad and (reader.time == whole.time).all()
    rng = np.random.default_rng(0)
    for _ in range(12):
        t0 = int(rng.integers(0, len(whole.time) - 150))
        t1 = t0 + int(rng.integers(1, 150))
        r0, c0 = int(rng.integers(0, 9)), int(rng.integers(0, 11))
        rows, cols = slice(r0, int(rng.integers(r0 + 1, 11))), slice(c0, int(rng.integers(c0 + 1, 13)))
        x, y = reader.read(t0, t1, rows, cols)
        expected_x = np.concatenate([whole.x[t0:t1, :, rows, cols],
                                     np.broadcast_to(whole.statics[None, :, rows, cols],
                                                     (t1 - t0, *whole.statics[:, rows, cols].shape))], axis=1)
        np.testing.assert_array_equal(x, expected_x)
        np.testing.assert_array_equal(y, whole.y[t0:t1, rows, cols])
    assert cache.nbytes <= cache.max_bytes and cache.misses > len(cache._items)


def test_patches_lie_inside_the_grid_and_hold_enough_basin_cells():
    mask = np.zeros((30, 50), dtype=bool)
    mask[5:25, 10:45] = True
    rng = np.random.default_rng(1)
    covered = np.zeros_like(mask)
    for _ in range(5):
        origins = patch_origins(mask, 8, 0.25, rng)
        assert origins
        for r, c in origins:
            assert 0 <= r <= 30 - 8 and 0 <= c <= 50 - 8
            assert mask[r:r + 8, c:c + 8].mean() >= 0.25
            covered[r:r + 8, c:c + 8] = True
    assert covered[mask].all()  # every basin cell is in some patch
    assert patch_origins(mask, None, 0.1) == [(0, 0)] == patch_origins(mask, 64, 0.1)
    assert patch_origins(np.zeros((30, 50), bool), 8, 0.0) == []


def test_patch_training_samples_cover_the_grid_and_change_each_epoch(grid_store, tmp_path):
    cfg = tiny_config(patch=5, patch_min_basin=0.2, max_epochs=1, batch_size=3)
    t = Trainer(cfg, grid_store, tmp_path / "run", progress=False)
    t.setup()
    plans = [np.concatenate(t.epoch_plan(e)) for e in (1, 2)]
    for plan in plans:
        assert len(np.unique(plan, axis=0)) == len(plan)  # no sample twice in an epoch
        assert (plan[:, 1] <= 10 - 5).all() and (plan[:, 2] <= 12 - 5).all()
    assert not np.array_equal(plans[0], plans[1])
    batch = t._read_batch(t.epoch_plan(1)[0])
    assert batch["x"].shape == (3, cfg.sample_days, t.train_reader.n_channels, 5, 5)
    history = t.fit()
    assert np.isfinite(history["train_loss"]).all() and np.isfinite(history["val_loss"]).all()


def test_the_cache_size_changes_nothing(grid_store, tmp_path):
    weights = []
    for name, cache_mb in (("big", 64), ("none", 0)):
        t = Trainer(tiny_config(max_epochs=1, cache_mb=cache_mb), grid_store, tmp_path / name, progress=False)
        t.fit()
        weights.append([p.detach().clone() for p in t.model.parameters()])
    for a, b in zip(*weights):
        assert torch.equal(a, b)


def test_prefetched_keeps_order_and_cancels_on_close():
    seen = []
    gen = prefetched(range(10), lambda i: seen.append(i) or i * i, depth=2)
    assert [next(gen) for _ in range(3)] == [0, 1, 4]
    gen.close()
    assert len(seen) <= 5  # at most depth items read ahead of the consumer


def test_tiles_cover_the_grid_once():
    for tile, halo in ((4, 2), (5, 0), (7, 3), (None, 3)):
        seen = np.zeros((10, 12), int)
        for t in tiles(10, 12, tile, halo):
            seen[t.rows, t.cols] += 1
            assert t.outer_rows.start <= t.rows.start and t.outer_rows.stop >= t.rows.stop
            inner = np.zeros((t.outer_rows.stop - t.outer_rows.start, t.outer_cols.stop - t.outer_cols.start))
            assert inner[t.crop].shape == (t.rows.stop - t.rows.start, t.cols.stop - t.cols.start)
        assert (seen == 1).all()


def test_tiled_prediction_with_a_halo_beyond_the_receptive_field_is_exact(grid_store):
    """Over d days a 3 x 3 ConvLSTM cell sees d cells away: a halo of d makes tiles exact (up to rounding)."""
    from vegviz.training.trainer import build_model

    cfg = tiny_config(burn_in=0, window=5, periods={"train": ["1998-01-01", "1998-01-20"],
                                                    "validation": ["1998-02-01", "1998-02-10"],
                                                    "test": ["1998-03-01", "1998-03-10"]})
    stats = fit_normalization(grid_store, cfg)
    torch.manual_seed(0)
    model = build_model(cfg, stats.n_inputs)
    days = 6
    reader = WindowReader(grid_store, stats, "1998-01-01", f"1998-01-{days:02d}", with_target=False)
    hw = resolve(cfg)

    def run(tile, halo):
        out = np.full(reader.shape, np.nan, np.float32)
        for t0, t1, piece, y in stream(model, reader, hw, chunk=4, tile=tile, halo=halo):
            out[t0:t1, piece.rows, piece.cols] = y
        return out

    whole, exact, short = run(None, 0), run(4, days), run(4, 1)
    m = reader.mask
    steps = convlstm_scan_roundings(stats.n_inputs, cfg.hparams.filters, 3, days)
    tol = rounding_tolerance(steps, torch.float32, scale=float(np.abs(whole[:, m]).max()))
    assert np.abs(exact[:, m] - whole[:, m]).max() <= tol
    assert np.abs(short[:, m] - whole[:, m]).max() > 10 * tol  # a short halo is not exact: the test can fail


def test_predict_streams_and_tiles(grid_store, tmp_path):
    cfg = tiny_config(max_epochs=1)
    t = Trainer(cfg, grid_store, tmp_path / "run", progress=False)
    t.fit()
    whole = predict(t.model, grid_store, cfg, t.stats)["convlstm"]
    tiled = predict(t.model, grid_store, cfg, t.stats, tile=4, halo=3)["convlstm"]
    assert whole.shape == tiled.shape and np.isnan(whole[: cfg.burn_in]).all()
    inside = grid_store["mask"].values == 1
    w, d = whole.values[cfg.burn_in:][:, inside], tiled.values[cfg.burn_in:][:, inside]
    assert np.isfinite(w).all() and np.isfinite(d).all()
    # tiles differ near their edges only: bounded by the LAI's own range
    assert np.abs(w - d).max() < np.ptp(w)

    # into a file, piece by piece: the same numbers bit for bit, the same metadata
    for tile, expected in ((None, whole), (4, tiled)):
        path = tmp_path / f"pred-{tile}.nc"
        kw = {"tile": tile, "halo": 3} if tile else {}
        stored = predict(t.model, grid_store, cfg, t.stats, path=path, chunk=7, **kw)
        assert stored["convlstm"].chunks is not None  # lazily opened, not held in memory
        np.testing.assert_array_equal(stored["convlstm"].values, expected.values)
        assert stored["convlstm"].attrs["units"] == expected.attrs["units"]
        assert stored.attrs["burn_in_days"] == cfg.burn_in and stored.attrs["model"] == "convlstm"
        np.testing.assert_array_equal(stored["time"].values, expected["time"].values)
        stored.close()
    with xr.open_dataset(tmp_path / "pred-4.nc", engine="netcdf4") as f:
        # chunks a piece fills whole: days of one forward call by one tile
        assert f["convlstm"].encoding["chunksizes"] == (7, 4, 4)


def test_a_failed_prediction_leaves_no_file(grid_store, tmp_path, monkeypatch):
    import vegviz.training.inference as inference

    cfg = tiny_config(max_epochs=1)
    t = Trainer(cfg, grid_store, tmp_path / "run", progress=False)
    t.setup()
    path = tmp_path / "pred.nc"
    path.write_bytes(b"the earlier file")
    calls = []

    def failing(*args, **kw):
        for i, piece in enumerate(stream(*args, **kw)):
            calls.append(i)
            if i == 2:
                raise OSError(28, "No space left on device")
            yield piece

    monkeypatch.setattr(inference, "stream", failing)
    with pytest.raises(OSError, match="No space left"):
        predict(t.model, grid_store, cfg, t.stats, path=path, chunk=50)
    assert calls == [0, 1, 2]
    assert path.read_bytes() == b"the earlier file"  # untouched
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_bad_scale_settings_name_the_fix(grid_store, tmp_path):
    with pytest.raises(ConfigError, match="patch: must be at least 4"):
        tiny_config(patch=2)
    with pytest.raises(ConfigError, match="patch_min_basin"):
        tiny_config(patch_min_basin=1.5)
    with pytest.raises(ConfigError, match="halo"):
        tiny_config(halo=-1)
    holes = grid_store["mask"].values.copy()
    holes[::3, ::3] = 0  # every 4 x 4 patch holds a cell outside the basin
    t = Trainer(tiny_config(patch=4, patch_min_basin=1.0), grid_store.assign(mask=grid_store["mask"].copy(data=holes)),
                tmp_path / "r", progress=False)
    with pytest.raises(DataError, match="patch 4: no 4 x 4 patch .* Fix: a larger patch"):
        t.setup()
    assert Config.from_yaml(Config(patch=64, tile=128).to_yaml()).patch == 64
