"""vegviz.physics: GSI indicators, daylength, running means, water limitation, calibration, no leak."""
import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from vegviz import physics
from vegviz.contract import ContractError, cf_attrs
from vegviz.physics import GSIParameters, add_lai_process, calibrate_lai_range

LAT = np.array([37.0625, 39.0625, 41.0625])
LON = np.array([-110.0625, -109.0625])


def make_ds(start="1999-01-01", end="2003-12-31", lat=LAT, lon=LON, seed=0, humidity="vpd") -> xr.Dataset:
    """A small model-ready Dataset: seasonal forcings, half-monthly LAI composites (NaN elsewhere)."""
    rng = np.random.default_rng(seed)
    time = pd.date_range(start, end, freq="D")
    shape = (time.size, lat.size, lon.size)
    season = -np.cos(2 * np.pi * (time.day_of_year.to_numpy() - 15) / 365)[:, None, None]
    tair = 8 + 12 * season + 2 * rng.standard_normal(shape)
    values = {
        "tair": tair,
        "tmin": tair - 7,
        "precip": rng.gamma(0.4, 3.0, shape),
        "swdown": 200 + 100 * season + 0 * tair,
        "vpd": np.clip(1.6 + 1.2 * season + 0.3 * rng.standard_normal(shape), 0, None),
    }
    ds = xr.Dataset(coords={"time": time, "lat": lat, "lon": lon})
    for name, v in values.items():
        ds[name] = (("time", "lat", "lon"), v.astype("float32"), cf_attrs(name))
    if humidity == "qair":
        ds = ds.drop_vars("vpd")
        ds["qair"] = (("time", "lat", "lon"), np.full(shape, 0.004, "float32"), cf_attrs("qair"))
    lai = np.full(shape, np.nan, dtype="float32")
    lai[::16] = (0.3 + 1.2 * np.clip(season, 0, None) + 0.1 * rng.random(shape))[::16]
    ds["lai"] = (("time", "lat", "lon"), lai, cf_attrs("lai"))
    ds["landcover"] = (("lat", "lon"), np.array([[7, 7], [10, 10], [1, 7]], dtype="int16")[: lat.size, : lon.size],
                       cf_attrs("landcover"))
    ds["elevation"] = (("lat", "lon"), np.full((lat.size, lon.size), 1800.0, "float32"), cf_attrs("elevation"))
    ds["mask"] = (("lat", "lon"), np.ones((lat.size, lon.size), "int8"), cf_attrs("mask"))
    ds.attrs.update(source="test", synthetic=1)
    return ds


def constant_ds(days=400, lat=(0.0625,), **values) -> xr.Dataset:
    """One column of cells with constant forcings (overridable per variable by arrays)."""
    time = pd.date_range("2000-01-01", periods=days, freq="D")
    base = {"tmin": 10.0, "tair": 17.0, "vpd": 0.5, "precip": 5.0}
    base.update(values)
    ds = xr.Dataset(coords={"time": time, "lat": np.asarray(lat), "lon": [-110.0625]})
    for name, v in base.items():
        arr = np.broadcast_to(np.asarray(v, dtype="float32").reshape(-1, 1, 1), (days, len(lat), 1))
        ds[name] = (("time", "lat", "lon"), arr.copy(), cf_attrs(name))
    return ds


# -- indicators ------------------------------------------------------------------------------

@pytest.mark.parametrize("func, x, expected", [
    (physics.i_tmin, -10.0, 0.0), (physics.i_tmin, -2.0, 0.0), (physics.i_tmin, 1.5, 0.5),
    (physics.i_tmin, 5.0, 1.0), (physics.i_tmin, 20.0, 1.0),
    (physics.i_vpd, 0.2, 1.0), (physics.i_vpd, 0.9, 1.0), (physics.i_vpd, 2.5, 0.5),
    (physics.i_vpd, 4.1, 0.0), (physics.i_vpd, 6.0, 0.0),
    (physics.i_photoperiod, 9.0, 0.0), (physics.i_photoperiod, 10.0, 0.0), (physics.i_photoperiod, 10.5, 0.5),
    (physics.i_photoperiod, 10.75, 0.75), (physics.i_photoperiod, 11.0, 1.0),
])
def test_indicators_at_and_between_thresholds(func, x, expected):
    assert func(x) == pytest.approx(expected, abs=1e-12)
    arr = func(np.array([x, np.nan], dtype="float32"))
    assert arr.dtype == np.float32 and arr[0] == pytest.approx(expected, abs=1e-6) and np.isnan(arr[1])
    da = func(xr.DataArray([x], dims="time").chunk())
    assert float(da[0]) == pytest.approx(expected, abs=1e-12)


def test_indicator_rejects_reversed_thresholds():
    with pytest.raises(ValueError, match="increasing=False"):
        physics.indicator(1.0, 4.1, 0.9)
    with pytest.raises(ValueError, match="vpd_lo"):
        GSIParameters(vpd_lo=5.0)


# -- sun geometry and meteorology (FAO-56 worked examples) -----------------------------------

def test_daylength_equinox_and_solstices_at_40n():
    t = pd.to_datetime(["2001-03-21", "2001-06-21", "2001-12-21"])
    d = physics.daylength(40.0, t)
    assert d.dims == ("time",) and d.attrs["units"] == "h"
    # sunrise to sunset with refraction: the equinox day is ~7 minutes longer than 12 h
    assert d.values == pytest.approx([12.1, 15.0, 9.3], abs=0.05)
    fao = physics.daylength(40.0, t, sun_altitude=0.0).values  # FAO-56 eq. 34 exactly
    assert fao == pytest.approx([11.97, 14.84, 9.16], abs=0.01)
    # geometric daylengths of opposite latitudes add up to 24 h on every day
    both = physics.daylength([-40.0, 40.0], pd.date_range("2001-01-01", periods=365), sun_altitude=0.0)
    np.testing.assert_allclose(both.sum("lat"), 24.0, atol=1e-9)
    assert both.dims == ("time", "lat")


def test_fao56_worked_examples():
    # FAO-56 examples 8 and 9: 20 S on 3 September: Ra = 32.2 MJ m-2 day-1, N = 11.7 h
    t = pd.to_datetime(["2001-09-03"])
    ra = physics.extraterrestrial_radiation(-20.0, t).values[0] / 0.408
    assert ra == pytest.approx(32.2, abs=0.05)
    assert physics.daylength(-20.0, t, sun_altitude=0.0).values[0] == pytest.approx(11.7, abs=0.05)
    # example 2: P = 81.8 kPa at 1800 m; table 2.3: es(25 degC) = 3.168 kPa
    assert physics.surface_pressure(1800.0) == pytest.approx(81.8, abs=0.05)
    assert physics.saturation_vapour_pressure(25.0) == pytest.approx(3.168, abs=0.001)


def test_vpd_from_qair_inverts_specific_humidity():
    tair, tmin, z = 20.0, 12.0, 1800.0
    p = physics.surface_pressure(z)
    e = 1.0  # kPa
    q = 0.622 * e / (p - 0.378 * e)
    es = 0.5 * (physics.saturation_vapour_pressure(28.0) + physics.saturation_vapour_pressure(12.0))
    assert physics.vpd_from_qair(q, tair, tmin, z) == pytest.approx(es - e, rel=1e-9)


def test_hargreaves_pet():
    ds = constant_ds(days=3, tair=20.0, tmin=15.0)  # Tmax - Tmin = 10 K
    ra = physics.extraterrestrial_radiation(ds.lat, ds.time).values[:, 0]
    pet = physics.potential_evapotranspiration(ds)
    assert pet.dims == ("time", "lat", "lon")
    np.testing.assert_allclose(pet.values[:, 0, 0], 0.0023 * ra * 37.8 * 10**0.5, rtol=1e-5)
    cold = physics.potential_evapotranspiration(constant_ds(days=3, tair=-25.0, tmin=-30.0))
    assert (cold.values == 0).all()


# -- running means and the indices -------------------------------------------------------------

def test_trailing_mean_uses_exactly_the_window_and_shortens_at_the_start():
    x = np.zeros(200, dtype="float32")
    x[100] = 21.0
    m = physics.trailing_mean(x, 21)
    assert m[:100].max() == 0 and m[121:].max() == 0
    np.testing.assert_allclose(m[100:121], 1.0)
    ramp = np.arange(1, 31, dtype="float32")
    np.testing.assert_allclose(physics.trailing_mean(ramp, 21)[:21], np.cumsum(ramp[:21]) / np.arange(1, 22))
    np.testing.assert_allclose(physics.trailing_mean(ramp, 21)[25], ramp[5:26].mean())
    gap = ramp.copy()
    gap[3] = np.nan  # NaN days are skipped, not propagated
    assert physics.trailing_mean(gap, 21)[5] == pytest.approx((1 + 2 + 3 + 5 + 6) / 5)


def test_gsi_is_the_21_day_trailing_mean_of_the_daily_index():
    tmin = np.full(300, -10.0)
    tmin[150] = 10.0  # a single growing day (equator: daylength > 11 h, vpd low)
    gsi = physics.growing_season_index(constant_ds(days=300, tmin=tmin))
    g = gsi.values[:, 0, 0]
    assert gsi.dtype == np.float32 and gsi.dims == ("time", "lat", "lon")
    np.testing.assert_allclose(g[150:171], 1 / 21, rtol=1e-6)
    assert g[:150].max() == 0 and g[171:].max() == 0
    assert physics.growing_season_index(constant_ds(days=300, tmin=tmin), window=5).values[150:155, 0, 0] \
        == pytest.approx([0.2] * 5)


def test_gsi_follows_season_and_is_never_nan_at_the_start():
    ds = make_ds()
    gsi = physics.growing_season_index(ds)
    assert not np.isnan(gsi.values).any()
    assert float(gsi.sel(time="2000-01-15").max()) == 0  # winter: frost and short days
    assert float(gsi.sel(time="2000-06-15").min()) > 0.4


def test_water_limitation_dry_spell_and_wet():
    precip = np.full(400, 5.0)
    precip[150:300] = 0.0  # 150 dry days in a warm climate
    w = physics.water_limitation(constant_ds(precip=precip, tair=25.0, tmin=15.0)).values[:, 0, 0]
    assert w[100] == 1.0  # 5 mm day-1 against ~6 mm day-1 PET: M ~ 0.8
    assert w[240:300].max() == 0.0  # 90 days without rain
    assert 1.0 == w[149] > w[200] > w[220] > 0.0  # drying out as the rain leaves the window
    assert (np.diff(w[150:240]) <= 1e-7).all()
    wet = physics.water_limitation(constant_ds(precip=20.0, tair=25.0, tmin=15.0))
    assert (wet.values == 1).all()
    frozen = physics.water_limitation(constant_ds(precip=0.0, tair=-25.0, tmin=-30.0))
    assert (frozen.values == 1).all()  # no evaporative demand, no water stress


def test_water_term_shuts_down_the_process_index_in_drought():
    precip = np.full(400, 5.0)
    precip[100:] = 0.0
    ds = constant_ds(precip=precip, tair=25.0, tmin=15.0)
    idx = physics.process_index(ds).values[:, 0, 0]
    gsi = physics.growing_season_index(ds).values[:, 0, 0]
    assert idx[90] == pytest.approx(gsi[90]) and gsi[350] == 1.0 and idx[350] == 0.0


def test_forcing_gaps_are_skipped_and_empty_cells_stay_nan():
    ds = make_ds()
    ds["precip"][100:110, 0, 0] = np.nan
    ds["tmin"][200:205, 0, 1] = np.nan
    for name in ("tmin", "tair", "precip", "vpd"):
        ds[name][:, 2, 1] = np.nan  # a cell without forcing (outside the basin)
    lp = add_lai_process(ds).lai_process
    assert lp.isnull().sum() == ds.sizes["time"] and lp[:, 2, 1].isnull().all()
    ref = add_lai_process(make_ds()).lai_process
    np.testing.assert_array_equal(lp[:100, 0, 0], ref[:100, 0, 0])  # causal: earlier days unchanged


# -- calibration and lai_process -----------------------------------------------------------------

def test_add_lai_process_output():
    ds = make_ds()
    out = add_lai_process(ds)
    lp = out["lai_process"]
    assert lp.dtype == np.float32 and lp.dims == ("time", "lat", "lon")
    assert "lai_process" not in ds  # a copy
    for k, v in cf_attrs("lai_process").items():
        assert lp.attrs[k] == v
    assert lp.attrs["calibration_period"] == "1999-01-01/2001-12-31"
    assert "Jolly" in lp.attrs["method"] and "Hargreaves" in lp.attrs["method"]
    assert "5th/95th percentiles" in lp.attrs["lai_range_method"]
    assert json.loads(lp.attrs["parameters"])["window"] == 21
    bounds = calibrate_lai_range(ds)
    assert (lp >= bounds.lai_min - 1e-6).all() and (lp <= bounds.lai_max + 1e-6).all()
    assert not lp.isnull().any()
    # bounds are the percentiles of the observations in the calibration period
    cell = ds.lai.sel(time=slice("1999", "2001"))[:, 1, 0]
    expected = np.nanpercentile(cell.values, [5, 95])
    np.testing.assert_allclose([bounds.lai_min[1, 0], bounds.lai_max[1, 0]], expected, rtol=1e-6)
    assert (bounds.lai_range_source == 0).all() and (bounds.n_obs == 69).all()


def test_no_leak_from_after_the_calibration_period():
    ds = make_ds()
    base = add_lai_process(ds)
    later = dict(time=slice("2002-01-01", None))
    changed = ds.copy(deep=True)
    for name in ("lai", "tmin", "tair", "precip", "vpd"):
        changed[name].loc[later] = changed[name].loc[later] * 1.7 + 3.0
    again = add_lai_process(changed)
    early = dict(time=slice(None, "2001-12-31"))
    np.testing.assert_array_equal(again.lai_process.sel(**early), base.lai_process.sel(**early))
    assert not np.array_equal(again.lai_process.sel(**later), base.lai_process.sel(**later))
    for v in ("lai_min", "lai_max"):
        np.testing.assert_array_equal(calibrate_lai_range(changed)[v], calibrate_lai_range(ds)[v])
    inside = ds.copy(deep=True)
    inside["lai"].loc[dict(time=slice("2000-01-01", "2000-12-31"))] *= 3.0
    assert not np.array_equal(calibrate_lai_range(inside).lai_max, calibrate_lai_range(ds).lai_max)
    assert not np.array_equal(add_lai_process(inside).lai_process.sel(**early), base.lai_process.sel(**early))


def test_cells_with_few_observations_fall_back():
    ds = make_ds()
    lai = ds.lai.values.copy()
    lai[:, 0, 1] = np.nan  # open shrubland (7): median of the shrubland cells (0, 0) and (2, 1)
    lai[:, 1, :] = np.nan  # grassland (10): no calibrated grassland left -> median of all calibrated cells
    ds["lai"].values[:] = lai
    b = calibrate_lai_range(ds)
    assert b.lai_range_source.values.tolist() == [[0, 1], [2, 2], [0, 0]]
    assert float(b.lai_max[0, 1]) == pytest.approx(float(np.median([b.lai_max[0, 0], b.lai_max[2, 1]])))
    own = b.lai_max.values[b.lai_range_source.values == 0]
    assert float(b.lai_max[1, 0]) == pytest.approx(float(np.median(own)))
    assert b.n_obs.values[0, 1] == 0


def test_dask_backed_input_gives_the_same_result():
    ds = make_ds()
    lazy = ds.chunk({"time": 365})
    assert lazy.tmin.chunks is not None
    np.testing.assert_allclose(add_lai_process(lazy).lai_process, add_lai_process(ds).lai_process, rtol=1e-6)


def test_qair_instead_of_vpd():
    ds = make_ds(humidity="qair")
    out = add_lai_process(ds)
    assert not out.lai_process.isnull().any()
    with pytest.raises(ContractError, match="elevation.*Fix"):
        add_lai_process(ds.drop_vars("elevation"))


# -- errors ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("drop, fragment", [
    ("tmin", "tmin: variable is missing"), ("precip", "precip: variable is missing"),
    ("tair", "tair: variable is missing"), ("lai", "lai: variable is missing"),
    (("vpd",), "vpd/qair"),
])
def test_missing_variables_raise_a_clear_error(drop, fragment):
    with pytest.raises(ContractError) as err:
        add_lai_process(make_ds().drop_vars(drop))
    assert fragment in str(err.value) and "Fix:" in str(err.value)


def test_wrong_units_and_time_raise():
    ds = make_ds()
    kelvin = ds.assign(tmin=(ds.tmin + 273.15).assign_attrs(units="K"))
    with pytest.raises(ContractError, match="tmin.*'K'.*subtract 273.15"):
        add_lai_process(kelvin)
    with pytest.raises(ContractError, match="gap-free daily"):
        add_lai_process(ds.isel(time=slice(None, None, 2)))


def test_empty_calibration_period_raises():
    ds = make_ds(start="2005-01-01", end="2006-12-31")
    with pytest.raises(ContractError) as err:
        add_lai_process(ds)
    msg = str(err.value)
    assert "1981-01-01..2001-12-31" in msg and "2005-01-01..2006-12-31" in msg and "calibration=slice" in msg
    ok = add_lai_process(ds, calibration=slice("2005-01-01", "2005-12-31"))
    assert ok.lai_process.attrs["calibration_period"] == "2005-01-01/2005-12-31"
    ds = make_ds()
    ds["lai"].loc[dict(time=slice(None, "2001-12-31"))] = np.nan
    with pytest.raises(ContractError, match="no observations in the calibration period.*observed 2002"):
        add_lai_process(ds)
