"""Climate scenarios (vegviz.scenarios): delta change, QDM of GCM files, stores, catalog, CLI and bad inputs.

Built on the small virtual basin of the gunnison domain (14 x 24 cells, 1998-2005) to stay fast.
Float tolerances: scenario values are float32; a change computed in float32 from a float32
value x is exact to half an ulp of the result, so comparisons use |x| * 2**-23 (one ulp, with
a factor 2 margin) unless said otherwise.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from vegviz import cli
from vegviz.catalog import metadata as catalog_metadata
from vegviz.catalog import open_catalog, open_data
from vegviz.physics import meteo
from vegviz.scenarios import (DeltaChange, GCMScenario, ScenarioError, build_scenario, change_summary,
                              list_scenarios, open_baseline, open_scenario, scenarios_dir)

DATA = "virtual_gunnison_small"
ULP = 2.0 ** -23


@pytest.fixture(scope="module")
def basin(gunnison_basin):
    return gunnison_basin[1]


def _ulps(x):
    return np.abs(np.asarray(x, dtype=np.float64)) * 2 * ULP + 1e-30


def _leftovers():
    root = scenarios_dir()
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_zero_change_reproduces_the_baseline(basin):
    """From the data's first day lai_process is bit for bit the baseline's; later periods use a spin-up."""
    for name, period in (("zero_all", None), ("zero_late", "2004:2005")):
        scen = open_scenario(build_scenario(name, DATA, period, DeltaChange(), overwrite=True))
        base = open_baseline(scen)
        assert "lai" not in scen and scen.sizes == base[["tair"]].sizes
        for v in ("precip", "tair", "tmin", "swdown", "vpd", "qair", "lai_process"):
            np.testing.assert_array_equal(scen[v].values, base[v].values, err_msg=v)
    assert scen.attrs["lai_process_spinup_days"] == 110 and scen.attrs["baseline_start"] == "2004-01-01"


def test_delta_change_values_and_constant_relative_humidity(basin):
    change = DeltaChange(dt=2.0, dt_min=tuple(range(12)), precip=0.9, swdown=1.1)
    scen = open_scenario(build_scenario("warm_dry", DATA, "2005:2005", change, overwrite=True))
    base = open_baseline(scen)
    s, b = scen.load(), base.load()
    month = s["time"].dt.month
    assert np.all(np.abs(s.tair - b.tair - 2) <= _ulps(s.tair) + _ulps(b.tair))
    assert np.all(np.abs(s.tmin - b.tmin - (month - 1)) <= _ulps(s.tmin) + _ulps(b.tmin))
    assert np.all(np.abs(s.precip - 0.9 * b.precip) <= _ulps(s.precip) * 2)
    assert np.all(np.abs(s.swdown - 1.1 * b.swdown) <= _ulps(s.swdown) * 2)
    # constant RH: e/es of the scenario equals the baseline's (float64 recomputation; float32 inputs carry
    # ~3 ulps of rounding through exp, so 1e-5 relative)
    es_b = meteo.mean_saturation_vapour_pressure(b.tair.astype("f8"), b.tmin.astype("f8"))
    es_s = meteo.mean_saturation_vapour_pressure(s.tair.astype("f8"), s.tmin.astype("f8"))
    np.testing.assert_allclose(s.vpd / es_s, b.vpd / es_b, rtol=1e-5, atol=1e-7)
    rh_b = meteo.vapour_pressure_from_qair(b.qair.astype("f8"), b.elevation) / es_b
    rh_s = meteo.vapour_pressure_from_qair(s.qair.astype("f8"), s.elevation) / es_s
    np.testing.assert_allclose(rh_s, rh_b, rtol=1e-5)
    assert (s.vpd.mean() > b.vpd.mean()) and (s.qair.mean() > b.qair.mean())
    table = change_summary(scen, base)
    assert abs(table.loc["tair", "change"] - 2) < 1e-4 and abs(table.loc["precip", "change"] - 0.9) < 1e-5
    a = scen.attrs
    assert a["scenario"] == "warm_dry" and a["scenario_method"] == "delta" and a["baseline"] == DATA
    assert a["synthetic"] == 1 and a["domain"] == "gunnison" and a["lai_calibration"] == "1998-01-01/2001-12-31"


def test_lai_process_uses_the_baseline_calibration_never_refitted(basin):
    """lai_process = lai_min + (lai_max - lai_min) * index, bounds from the baseline's 1998-2001 lai."""
    from vegviz.physics import calibrate_lai_range, process_index
    from vegviz.scenarios.store import baseline_calibration

    scen = open_scenario(build_scenario("hot", DATA, None, DeltaChange(dt=4), overwrite=True)).load()
    cal, params = baseline_calibration(basin)
    bounds = calibrate_lai_range(basin, cal, params=params)
    index = process_index(scen, params=params).values
    expected = bounds.lai_min.values + (bounds.lai_max - bounds.lai_min).values * index
    np.testing.assert_allclose(scen.lai_process.values, expected, rtol=4 * ULP, atol=1e-6)
    assert scen.lai_process.attrs["calibration_period"] == bounds.attrs["calibration_period"]
    # a range fitted to the scenario's own days would differ (here: to its last four years of baseline lai)
    refit = calibrate_lai_range(basin, slice("2002", "2005"), params=params)
    assert not np.allclose(refit.lai_max.values, bounds.lai_max.values)
    assert float((scen.lai_process - basin.lai_process).mean()) != 0


def _gcm(path, *, tas_shift=0.0, pr_factor=1.0, units_pr="kg m-2 s-1", lat=(37.0, 40.0), lon=(-109.5, -105.5),
         drop=None, years=3):
    """A GCM-like file on a 0.5 degree grid; the same draws (seed) in every file, so a shift is exact."""
    rng = np.random.default_rng(7)
    t = pd.date_range("1990-01-01", periods=365 * years, freq="D")
    la, lo = np.arange(lat[0] + 0.25, lat[1], 0.5), np.arange(lon[0] + 0.25, lon[1], 0.5)
    shape = (t.size, la.size, lo.size)
    season = 10 * np.sin(2 * np.pi * (t.day_of_year.to_numpy() - 100) / 365)[:, None, None]
    tas = 280 + season + 3 * rng.standard_normal(shape)
    pr = rng.gamma(0.8, 2.0, shape) + 0.2  # always wet: multiplicative quantile ratios are defined everywhere
    variables = {"tas": (tas + tas_shift, "K"), "tasmin": (tas - 7 + tas_shift, "K"),
                 "pr": (pr * pr_factor / 86400, units_pr), "rsds": (150 + 80 * rng.random(shape), "W m-2")}
    ds = xr.Dataset({k: (("time", "lat", "lon"), v, {"units": u}) for k, (v, u) in variables.items() if k != drop},
                    coords={"time": t, "lat": la, "lon": lo})
    ds.to_netcdf(path)
    return str(path)


def test_qdm_reproduces_a_known_quantile_shift(basin, tmp_path):
    """future = hist + 3 K and precip x 1.2 in every quantile (same draws): the scenario gets exactly that.

    With identical draws the sampling error is 0; left are float32 rounding (the ulps) and the
    quantile interpolation of a constant change (exact), so the tolerance is a few ulps.
    """
    hist = _gcm(tmp_path / "hist.nc")
    fut = _gcm(tmp_path / "fut.nc", tas_shift=3.0, pr_factor=1.2)
    scen = open_scenario(build_scenario("gcm3", DATA, "2005:2005", GCMScenario(hist, fut), overwrite=True)).load()
    base = open_baseline(scen).load()
    assert np.all(np.abs(scen.tair - base.tair - 3) <= 4 * (_ulps(scen.tair) + _ulps(base.tair)) + 1e-5)
    assert np.all(np.abs(scen.tmin - base.tmin - 3) <= 4 * (_ulps(scen.tmin) + _ulps(base.tmin)) + 1e-5)
    assert np.all(np.abs(scen.precip - 1.2 * base.precip) <= 8 * _ulps(scen.precip) + 1e-6)
    # rsds drawn again with the same seed: unchanged distribution, ratio 1
    assert np.all(np.abs(scen.swdown - base.swdown) <= 8 * _ulps(scen.swdown) + 1e-4)
    a = scen.attrs
    assert a["scenario_method"] == "qdm" and a["gcm_hist"].endswith("hist.nc") and len(a["gcm_future_sha256"]) == 64


def test_cli_builds_lists_and_the_catalog_opens_it(basin, capsys):
    assert cli.main(["scenario", "cli_warm", "--data", DATA, "--period", "2005:2005", "--dt", "-1.5",
                     "--precip", "1.2", "--overwrite"]) == 0
    out = capsys.readouterr().out
    assert "wrote scenario 'cli_warm' (delta)" in out and "precip" in out and "lai_process" in out
    assert cli.main(["scenario", "--list"]) == 0
    assert "cli_warm: delta on virtual_gunnison_small 2005-01-01..2005-12-31" in capsys.readouterr().out
    assert "cli_warm" in list_scenarios()
    via_prefix = open_data("scenario:cli_warm")
    entry = open_catalog().scenarios["cli_warm"]
    assert catalog_metadata(entry)["method"] == "delta"
    xr.testing.assert_identical(entry.to_dask().tair, via_prefix.tair)
    base = open_baseline(via_prefix)
    assert abs(float((via_prefix.tair - base.tair).mean()) + 1.5) < 1e-4


def _refused(argv, *needles, capsys):
    before = _leftovers()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "Fix:" in err, err
    for n in needles:
        assert n in err, err
    assert _leftovers() == before  # nothing written, no temporary folder left
    return err


def test_bad_inputs_are_refused_and_write_nothing(basin, tmp_path, capsys):
    d = ["--data", DATA]
    _refused(["scenario", "late", *d, "--period", "2004:2009", "--dt", "1"], "not inside the data",
             "1998-01-01..2005-12-31", capsys=capsys)
    _refused(["scenario", "dry0", *d, "--precip", "0"], "factor must be > 0", capsys=capsys)
    _refused(["scenario", "m11", *d, "--dt", ",".join(["1"] * 11)], "11 values given", capsys=capsys)
    _refused(["scenario", "abc", *d, "--dt", "two"], "--dt 'two'", capsys=capsys)
    hist = _gcm(tmp_path / "h.nc")
    _refused(["scenario", "g1", *d, "--gcm-hist", hist, "--gcm-future", _gcm(tmp_path / "far.nc", lon=(-120, -115))],
             "covers the whole domain", capsys=capsys)
    _refused(["scenario", "g2", *d, "--gcm-hist", hist, "--gcm-future", _gcm(tmp_path / "nopr.nc", drop="pr")],
             "no precip variable", "--gcm-var precip=NAME", capsys=capsys)
    _refused(["scenario", "g3", *d, "--gcm-hist", hist, "--gcm-future", _gcm(tmp_path / "u.nc", units_pr="inch")],
             "has units 'inch'", capsys=capsys)
    _refused(["scenario", "g4", *d, "--gcm-hist", hist, "--dt", "1"], "either the GCM files or the deltas",
             capsys=capsys)
    assert cli.main(["scenario", "twice", *d, "--period", "2005:2005", "--dt", "1", "--overwrite"]) == 0
    capsys.readouterr()
    stamp = (scenarios_dir() / "twice.zarr" / "zarr.json").stat().st_mtime_ns
    _refused(["scenario", "twice", *d, "--period", "2005:2005", "--dt", "2"], "exists", "--overwrite",
             capsys=capsys)
    assert (scenarios_dir() / "twice.zarr" / "zarr.json").stat().st_mtime_ns == stamp
    with pytest.raises(FileNotFoundError, match="not found"):
        open_scenario("no_such_scenario")
    with pytest.raises(ScenarioError, match="12"):
        DeltaChange(precip=[1.0] * 13)
