"""The virtual UCRB: realism of weather and vegetation, the observation operator, the
contract and labelling, determinism, and the atomic cache.

Most checks read the small variant (1998-2005), built once per session by the
``small_basin`` fixture (tests/conftest.py) into the test data directory.
"""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from vegviz.contract import validate
from vegviz.data.static import load_static
from vegviz.data.virtual import (
    GENERATOR_VERSION,
    VARIANTS,
    VirtualBasin,
    build_store,
    generate,
    open_virtual_basin,
    read_marker,
    store_name,
)
from vegviz.data.virtual import chain
from vegviz.data.virtual import observation, store, vegetation
from vegviz.data.virtual.noise import SpectralField, stream
from vegviz.data.virtual.weather import WeatherGenerator

DYNAMIC = ("precip", "tair", "tmin", "swdown", "vpd", "qair", "lai", "lai_true")


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def basin(small_basin) -> xr.Dataset:
    """The small variant with the fields the realism checks need, loaded once."""
    return small_basin[["precip", "tair", "lai", "lai_true", "elevation", "landcover", "mask"]].load()


@pytest.fixture(scope="module")
def cells(basin):
    e = basin["elevation"].values
    lat = np.broadcast_to(basin["lat"].values[:, None], e.shape)
    return {"elev": e, "lat": lat, "lc": basin["landcover"].values, "mask": basin["mask"].values == 1}


def annual_totals(precip: xr.DataArray) -> np.ndarray:
    """Mean annual precipitation (lat, lon) over the full years."""
    return precip.resample(time="YS").sum().mean("time").values


# ----------------------------------------------------------------------------- contract, labels

def test_small_variant_follows_the_contract(small_basin):
    assert validate(small_basin) is small_basin
    assert set(DYNAMIC) <= set(small_basin.data_vars)
    start, end = VARIANTS["small"]
    t = pd.DatetimeIndex(small_basin["time"].values)
    assert (t[0], t[-1]) == (pd.Timestamp(start), pd.Timestamp(end))
    for name in DYNAMIC:
        assert small_basin[name].dtype == np.float32
        assert small_basin[name].data.chunksize == (365, 63, 54)


def test_small_variant_has_the_process_model_input(small_basin):
    pytest.importorskip("vegviz.physics")
    lp = small_basin["lai_process"]
    assert lp.dims == ("time", "lat", "lon") and lp.dtype == np.float32
    assert "lai_process_calibration" in small_basin.attrs
    assert np.isfinite(lp.isel(time=200).where(small_basin["mask"] == 1)).sum() > 0


def test_labelled_synthetic_everywhere(small_basin):
    a = small_basin.attrs
    assert a["synthetic"] == 1
    assert "SYNTHETIC" in a["title"]
    assert a["source"].startswith("vegviz virtual UCRB (synthetic)")
    assert a["generator"] == "vegviz.data.virtual" and a["generator_version"] == GENERATOR_VERSION
    assert a["seed"] == 42 and (a["period_start"], a["period_end"]) == VARIANTS["small"]
    assert "lai_noise_model" in a and "MODIS" in a["lai_noise_model"] and "AVHRR" in a["lai_noise_model"]
    for name in DYNAMIC:
        assert "SYNTHETIC" in small_basin[name].attrs["comment"], name


# ----------------------------------------------------------------------------- weather realism

def test_orographic_precipitation(basin, cells):
    p = annual_totals(basin["precip"])
    valley, mountain = cells["elev"] < 1500, cells["elev"] > 3200
    assert 180 < p[valley].mean() < 330  # PRISM: ~200-300 mm in the dry valleys
    assert 750 < p[mountain].mean() < 1250  # ~800-1200 mm on the high mountains
    assert np.corrcoef(cells["elev"].ravel(), p.ravel())[0, 1] > 0.8


def test_wet_day_frequency(basin, cells):
    wet = (basin["precip"] >= 0.1).mean("time").values
    high, valley = cells["elev"] > 3000, cells["elev"] < 1500
    assert 0.25 <= wet[high].mean() <= 0.45
    assert wet[valley].mean() < 0.22 < wet[high].mean()


def test_storms_have_spatial_extent(basin):
    wet = (basin["precip"] > 0).values
    # Neighbouring cells share wet days far more often than independent cells would.
    both = (wet[:, :, 1:] & wet[:, :, :-1]).mean()
    independent = wet[:, :, 1:].mean() * wet[:, :, :-1].mean()
    assert both > 2.5 * independent


def test_monsoon_is_stronger_in_the_south(basin, cells):
    p = basin["precip"]
    jas = p.where(p["time"].dt.month.isin([7, 8, 9])).sum("time").values / p.sum("time").values
    south, north = jas[cells["lat"] < 37.5].mean(), jas[cells["lat"] > 41.5].mean()
    assert south > 0.3 and north < 0.25 and south - north > 0.1


def test_snow_months_in_the_north_and_at_altitude(basin, cells):
    monthly = basin["tair"].groupby("time.month").mean().values  # (12, lat, lon)
    freezing = (monthly < 0).sum(axis=0)
    assert freezing[cells["elev"] > 3200].mean() >= 5
    assert freezing[(cells["lat"] > 42) & (cells["elev"] > 2000)].mean() >= 4
    low_south = (cells["elev"] < 1400) & (cells["lat"] < 37.5)
    assert low_south.any() and freezing[low_south].max() == 0


def test_warming_trend():
    """+0.3 K per decade is imposed; each seed adds its own interannual noise (sd ~0.14 K/decade)."""
    static = load_static()
    years = np.arange(1981, 2017, 2)
    slopes = []
    for seed in (42, 43, 44, 45):
        gen = WeatherGenerator(static, seed=seed)
        basin_mean = [float(gen.temperature(int(y)).mean()) for y in years]
        slopes.append(10 * np.polyfit(years, basin_mean, 1)[0])
    assert min(slopes) > 0
    assert 0.15 < np.mean(slopes) < 0.45


def test_forcings_are_physically_consistent(small_basin):
    day = small_basin[["tair", "tmin", "swdown", "vpd", "qair", "precip"]].isel(time=slice(150, 250)).load()
    assert (day["tmin"] <= day["tair"]).all()
    assert (day["vpd"] >= 0).all() and (day["qair"] > 0).all() and (day["precip"] >= 0).all()
    # Rainy days are cloudier: less sunshine and smaller vapour pressure deficit.
    wet = day["precip"] > 5
    assert float(day["swdown"].where(wet).mean()) < 0.8 * float(day["swdown"].where(~wet).mean())
    assert float(day["vpd"].where(wet).mean()) < float(day["vpd"].where(~wet).mean())


# ----------------------------------------------------------------------------- vegetation realism

def test_lai_peaks_in_summer(basin, cells):
    monthly = basin["lai_true"].groupby("time.month").mean()
    assert int(monthly.where(basin["mask"] == 1).mean(["lat", "lon"]).argmax("month")) + 1 in (6, 7, 8)
    peak = monthly.argmax("month").values + 1
    vegetated = cells["mask"] & (basin["lai_true"].max("time").values > 0.3)
    assert np.isin(peak[vegetated], [6, 7, 8]).mean() > 0.8


def test_lai_ordering_by_vegetation_type(basin, cells):
    peak = basin["lai_true"].resample(time="YS").max().mean("time").values
    by_type = {c: peak[cells["lc"] == c].mean() for c in (0, 7, 8, 9, 10, 16)}
    assert min(by_type[8], by_type[9]) > by_type[10] > by_type[7] > by_type[16]
    assert by_type[0] < 0.05  # open water
    assert 0.5 < by_type[10] < 2.0 and by_type[16] < 0.4


def test_run_on_feeds_valley_cells():
    static = load_static()
    land = vegetation.Landscape.from_static(static)
    isolated = dataclasses.replace(land, donors=land.donors[:0], receivers=land.receivers[:0])
    weather = WeatherGenerator(static, seed=3)
    lai = {}
    for name, lnd in (("routed", land), ("isolated", isolated)):
        state = vegetation.VegetationState.initial(lnd)
        for year in (1990, 1991):
            out = vegetation.run_year(weather.year(year), lnd, state)
        lai[name] = out.lai.mean(axis=0).reshape(-1)
    receives = np.zeros(land.size, bool)
    receives[land.receivers] = True
    # Cells nothing drains into see no difference; some receiving cells get markedly greener.
    np.testing.assert_array_equal(lai["routed"][~receives], lai["isolated"][~receives])
    gain = lai["routed"][receives] - lai["isolated"][receives]
    assert gain.mean() > 0 and gain.max() > 0.05
    assert gain.min() > -0.01  # (a wetter normal can make a later year count as drier: tiny losses)


def test_drought_legacy_caps_and_recovers():
    state = vegetation.VegetationState(*(np.ones(1) for _ in range(6)), normal_water=np.array([0.6]))
    vegetation._update_vigour(state, np.array([0.2]))  # a dry growing season
    after_drought = float(state.vigour[0])
    assert after_drought < 0.8
    path = []
    for _ in range(5):
        vegetation._update_vigour(state, state.normal_water.copy())
        path.append(float(state.vigour[0]))
    assert np.all(np.diff(path) > 0) and path[0] < 0.85 and path[-1] > 0.9  # recovery takes years


def test_snowpack_matches_the_daily_bucket():
    rng = np.random.default_rng(0)
    swe0 = rng.random(50) * 40
    snowfall = (rng.random((200, 50)) < 0.3) * rng.random((200, 50)).astype(np.float32) * 10
    potential = rng.random((200, 50)).astype(np.float32) * 4
    swe, melt = vegetation.snowpack(swe0, snowfall.astype(np.float32), potential)
    x = swe0.copy()
    for d in range(200):
        x = x + snowfall[d]
        m = np.minimum(x, potential[d])
        x = x - m
        np.testing.assert_allclose(swe[d], x, atol=1e-3)
        np.testing.assert_allclose(melt[d], m, atol=1e-3)


# ----------------------------------------------------------------------------- observations

def test_composite_dates(small_basin):
    t = pd.DatetimeIndex(small_basin["time"].values)
    observed = small_basin["lai"].notnull().any(["lat", "lon"]).values
    before, after = t < "2001-01-01", t >= "2001-01-01"
    assert set(t[observed & before].day) == {1, 16}
    assert observed[before].sum() == 24 * 3
    doy = t[observed & after].day_of_year
    assert set(doy) == set(range(1, 366, 8)) and observed[after].sum() == 46 * 5
    np.testing.assert_array_equal(observed, observation.composite_dates(t))


def test_lai_is_nan_off_composite_dates(small_basin):
    off = ~observation.composite_dates(small_basin["time"].values)
    assert int(small_basin["lai"].isel(time=off).count()) == 0


def test_winter_snow_gaps(basin, cells):
    obs = basin["lai"].isel(time=observation.composite_dates(basin["time"].values))
    seen = obs.notnull().groupby("time.month").mean().values
    high = cells["elev"] > 3000
    assert seen[0][high].mean() < 0.1  # January: snow covers the mountains
    assert seen[6][high].mean() > 0.9  # July: seen, up to random gaps
    assert seen[6][cells["mask"]].mean() > 0.9


def _window_means(basin: xr.Dataset):
    """(dates, composite of lai_true over each window, lai) on the composite dates."""
    t = pd.DatetimeIndex(basin["time"].values)
    starts = np.flatnonzero(observation.composite_dates(t))
    lengths = np.diff(np.append(starts, t.size))[:, None, None]
    truth = np.add.reduceat(basin["lai_true"].values, starts, axis=0) / lengths
    return t[starts], truth, basin["lai"].values[starts]


def test_noise_level_and_sensor_change(basin):
    dates, truth, lai = _window_means(basin)
    ok = np.isfinite(lai) & (truth > 0.6) & (truth < 1.5)
    for modis, sensor in ((False, observation.AVHRR), (True, observation.MODIS)):
        period = ((dates.year >= 2001) == modis)[:, None, None] & ok
        ratio = lai[period].mean() / truth[period].mean()
        assert abs(ratio - sensor.bias) < 0.015
        rel = (lai[period] / sensor.bias - truth[period]) / truth[period]
        expected = np.sqrt(sensor.relative**2 + np.mean((sensor.absolute / (sensor.bias * truth[period])) ** 2))
        assert 0.85 < rel.std() / expected < 1.15


def test_noise_ceiling(basin, cells):
    """NSE of the truth against the observations, per cell: high, but not perfect."""
    t = observation.composite_dates(basin["time"].values)
    o, s = basin["lai"].values[t][:, cells["mask"]], basin["lai_true"].values[t][:, cells["mask"]]
    s = np.where(np.isfinite(o), s, np.nan)
    nse = 1 - np.nansum((o - s) ** 2, 0) / np.nansum((o - np.nanmean(o, 0)) ** 2, 0)
    median = np.median(nse)
    assert 0.8 < median < 0.98


def test_composite_starts():
    assert list(observation.composite_starts(2000)[:4]) == [0, 15, 31, 46]
    assert len(observation.composite_starts(2000)) == 24
    s = observation.composite_starts(2004)
    assert s[0] == 0 and set(np.diff(s)) == {8} and len(s) == 46


# ----------------------------------------------------------------------------- determinism

def _one_year(seed: int) -> xr.Dataset:
    return next(VirtualBasin(seed=seed).years("2001-05-01", "2001-06-30", spinup_years=0))


def test_same_seed_same_numbers_other_seed_other_numbers():
    a, b, c = _one_year(7), _one_year(7), _one_year(8)
    for name in DYNAMIC:
        np.testing.assert_array_equal(a[name].values, b[name].values)
        assert not np.array_equal(a[name].values, c[name].values, equal_nan=True), name


def test_weather_is_a_function_of_seed_and_year(small_basin):
    """The small variant's weather equals that of an independent run starting elsewhere."""
    ds = generate("2003-07-01", "2003-07-10", seed=42)
    store_part = small_basin[["precip", "tair", "vpd"]].sel(time=ds["time"]).load()
    for name in ("precip", "tair", "vpd"):
        np.testing.assert_array_equal(ds[name].values, store_part[name].values)
    validate(ds)
    assert ds.attrs["synthetic"] == 1


def test_spectral_fields_have_unit_variance_and_the_correlation_length():
    static = load_static()
    f = SpectralField(static["lat"].values, static["lon"].values, 150.0)
    x = f.synthesize(f.innovations(stream(0, "test"), 400))
    assert abs(x.var() - 1) < 0.1
    d = round(150 / 13.9)  # cells of 1/8 degree latitude, ~13.9 km
    r = np.corrcoef(x[:, 10, 20], x[:, 10 + d, 20])[0, 1]
    assert abs(r - np.exp(-0.5)) < 0.12


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("start, end, match", [
    ("2001-02-01", "2001-01-01", "before its start"),
    ("not a date", "2001-01-01", "not a pair of dates"),
    ("1850-01-01", "1850-12-31", "outside"),
])
def test_bad_period(start, end, match):
    with pytest.raises(ValueError, match=match) as err:
        generate(start, end)
    assert "Fix:" in str(err.value)


def test_bad_seed_variant_and_static(tmp_path):
    with pytest.raises(ValueError, match="seed"):
        generate("2001-01-01", "2001-01-02", seed=-1)
    with pytest.raises(ValueError, match="unknown variant"):
        open_virtual_basin("huge", data_dir=tmp_path)
    with pytest.raises(ValueError, match="landcover_fraction"):
        generate("2001-01-01", "2001-01-02", static=load_static().drop_vars("landcover_fraction"))


# ----------------------------------------------------------------------------- the cache

@pytest.fixture
def tiny(monkeypatch):
    """A one-month variant without spin-up, so cache tests build in a second or two."""
    monkeypatch.setitem(VARIANTS, "tiny", ("2001-07-01", "2001-07-31"))
    monkeypatch.setattr(chain, "SPINUP_YEARS", 0)
    return "tiny"


def test_cache_builds_once_then_opens_fast(tiny, tmp_path, capsys):
    ds = open_virtual_basin(tiny, data_dir=tmp_path)
    assert "Building" in capsys.readouterr().out
    path = tmp_path / store_name(tiny, 42)
    marker = read_marker(path)
    assert marker["generator_version"] == GENERATOR_VERSION and marker["seed"] == 42
    assert ds["precip"].chunks is not None  # lazy
    import time

    t = time.perf_counter()
    again = open_virtual_basin(tiny, data_dir=tmp_path)
    assert time.perf_counter() - t < 2.0
    assert "Building" not in capsys.readouterr().out
    xr.testing.assert_identical(ds["tair"].isel(time=3), again["tair"].isel(time=3))


def test_store_without_marker_is_rebuilt(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VEGVIZ_DATA_DIR", str(tmp_path))
    open_virtual_basin(tiny)
    path = tmp_path / store_name(tiny, 42)
    (path / store.MARKER).unlink()
    capsys.readouterr()
    open_virtual_basin(tiny)
    assert "incomplete or outdated" in capsys.readouterr().out
    assert read_marker(path) is not None
    # A marker from another generator version counts as outdated, too.
    info = read_marker(path) | {"generator_version": "0"}
    (path / store.MARKER).write_text(json.dumps(info))
    open_virtual_basin(tiny)
    assert read_marker(path)["generator_version"] == GENERATOR_VERSION


def test_interrupted_build_leaves_nothing_at_the_target(tmp_path, monkeypatch):
    class Interrupted(Exception):
        pass

    def years(self, start, end, **kw):
        yield from []
        raise Interrupted

    monkeypatch.setattr(VirtualBasin, "years", years)
    target = tmp_path / "basin.zarr"
    with pytest.raises(Interrupted):
        build_store(target, "2001-07-01", "2001-07-31")
    assert list(tmp_path.iterdir()) == []


def test_build_refuses_to_replace_what_is_not_a_store(tmp_path):
    keep = tmp_path / "notes"
    keep.mkdir()
    (keep / "thesis.tex").write_text("precious")
    with pytest.raises(FileExistsError, match="not a Zarr store"):
        build_store(keep, "2001-07-01", "2001-07-31")
    assert (keep / "thesis.tex").read_text() == "precious"


def test_abandoned_temporary_builds_are_removed(tiny, tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    target = tmp_path / "basin.zarr"
    leftover = tmp_path / f".basin.zarr.building-{int(dead.stdout)}-deadbeef"
    (leftover / "precip").mkdir(parents=True)
    build_store(target, *VARIANTS[tiny])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["basin.zarr"]
    assert read_marker(target)["period_start"] == VARIANTS[tiny][0]
