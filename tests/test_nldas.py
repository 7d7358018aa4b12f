"""NLDAS-2 forcing: the real GRIB file, NetCDF 2.0 fixtures, daily aggregation, Zarr resume, bad input."""
from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from vegviz.contract import cf_attrs
from vegviz.data import nldas
from vegviz.data.nldas import NldasError
from vegviz.grid import UCRB, Grid

sys.path.insert(0, str(Path(__file__).parent))
import nldas_fixtures as F  # noqa: E402

pytestmark = pytest.mark.skipif(not F.REAL_GRIB.exists(), reason="real NLDAS-2 GRIB file not available")


@pytest.fixture(scope="module")
def nc_dir(tmp_path_factory):
    """2 days x 24 hourly NetCDF 2.0 files (2017-10-23, -24)."""
    d = tmp_path_factory.mktemp("nldas_nc")
    F.make_nc_files(d, "2017-10-23", days=2)
    return d


@pytest.fixture(scope="module")
def nc_daily(nc_dir):
    return nldas.nldas_daily(nc_dir, F.SMALL_GRID).compute()


def _copy(src_dir, dst_dir, pattern="*.nc"):
    dst_dir.mkdir(parents=True, exist_ok=True)
    for p in Path(src_dir).glob(pattern):
        shutil.copy(p, dst_dir / p.name)
    return dst_dir


# --------------------------------------------------------------------------- readers

def test_real_grib_read_and_crop():
    data = nldas.read_granule(F.REAL_GRIB, UCRB, tuple(nldas.FIELDS))
    assert set(data) == set(nldas.FIELDS)
    for a in data.values():
        assert a.shape == UCRB.shape and a.dtype == np.float32 and np.isfinite(a).all()
    t = data["Tair"]
    assert 255 < t.min() < t.max() < 300  # late October, 15 UTC (8 local): -18..27 degC
    assert 0 < data["Qair"].min() < data["Qair"].max() < 0.02
    assert 60_000 < data["PSurf"].min() < data["PSurf"].max() < 90_000  # high terrain: 600-900 hPa
    assert 0 < data["SWdown"].min() and data["SWdown"].max() < 700  # morning sun
    assert (data["Rainf"] >= 0).all() and 150 < data["LWdown"].mean() < 350
    # cropped by coordinates: the UCRB window of the CONUS file, north up = last row
    ds = nldas.open_hourly(F.REAL_GRIB, UCRB)
    assert UCRB.matches(ds.lat, ds.lon) and ds.time.values[0] == np.datetime64("2017-10-24T15:00")
    assert ds.Tair.attrs["units"] == "K"
    # pressure falls with height: the Rockies (north-east of the window) lower than the canyons (south-west)
    assert data["PSurf"][-10:, -20:].mean() < data["PSurf"][:10, :20].mean()


def test_grib_errors_name_the_file(tmp_path):
    renamed = tmp_path / "NLDAS_FORA0125_H.A20171024.1600.002.grb"
    shutil.copy(F.REAL_GRIB, renamed)
    with pytest.raises(NldasError, match="renamed") as e:
        nldas.read_granule(renamed, F.SMALL_GRID)
    assert renamed.name in str(e.value)
    cut = tmp_path / F.REAL_GRIB.name
    cut.write_bytes(F.REAL_GRIB.read_bytes()[:400_000])
    with pytest.raises(NldasError, match="truncated|corrupt") as e:
        nldas.read_granule(cut, F.SMALL_GRID)
    assert cut.name in str(e.value)
    outside = Grid(60.0625, -100.0625, 2, 2, name="Canada")
    with pytest.raises(NldasError, match="does not cover the study grid"):
        nldas.read_granule(F.REAL_GRIB, outside)


def test_netcdf_fixture_crops_by_coordinates(nc_dir):
    f = nc_dir / nldas.granule_name("2017-10-23T05:00", "020")
    data = nldas.read_granule(f, F.SMALL_GRID)
    written = F.hourly_values(pd.Timestamp("2017-10-23T05:00"), 0)
    # the small grid sits 2 cells inside the fixture window on every side
    for k in nldas.REQUIRED:
        np.testing.assert_array_equal(data[k], written[k][2:-2, 2:-2])
    # and the GRIB and NetCDF readers agree on the same cells (the fixture came from the GRIB)
    g = nldas.read_granule(F.REAL_GRIB, F.SMALL_GRID)
    np.testing.assert_array_equal(F.real_fields()["Qair"][2:-2, 2:-2], g["Qair"])
    # one internal hourly layout for both versions: same names, units, dims, grid
    a, b = nldas.open_hourly(f, F.SMALL_GRID), nldas.open_hourly(F.REAL_GRIB, F.SMALL_GRID)
    assert set(a.data_vars) == set(b.data_vars) == set(nldas.FIELDS)
    for k in a.data_vars:
        assert a[k].dims == b[k].dims == ("time", "lat", "lon") and a[k].attrs["units"] == b[k].attrs["units"]
    xr.testing.assert_equal(a.lat, b.lat)


# --------------------------------------------------------------------------- daily aggregation

def test_daily_by_hand(tmp_path):
    """One cell's numbers worked out by hand (FAO-56 eq. 11 and q -> e)."""
    def values(t, d, window):
        shape = window.shape
        h = t.hour
        full = lambda v: np.full(shape, v, np.float32)  # noqa: E731
        return {"Tair": full(283.15 + h), "Qair": full(0.01), "PSurf": full(100_000.0),
                "SWdown": full(100.0 if 12 <= h < 18 else 0.0), "Rainf": full(0.5 if h < 4 else 0.0)}

    F.make_nc_files(tmp_path, "2001-07-01", days=1, values=values)
    ds = nldas.nldas_daily(tmp_path, F.SMALL_GRID).compute()
    cell = ds.isel(time=0, lat=1, lon=2)
    assert float(cell.precip) == pytest.approx(2.0)  # 4 hours x 0.5 kg m-2
    assert float(cell.tair) == pytest.approx(10 + 11.5, abs=1e-4)  # mean of 10..33 degC
    assert float(cell.tmin) == pytest.approx(10.0, abs=1e-4)
    assert float(cell.swdown) == pytest.approx(25.0)  # 6 hours x 100 / 24
    assert float(cell.qair) == pytest.approx(0.01)
    # e = 0.01 * 100 / (0.622 + 0.378 * 0.01) = 1.597973 kPa; es(T) = 0.6108 exp(17.27 T / (T + 237.3))
    e = 1.0 / (0.622 + 0.00378)
    hours = 10.0 + np.arange(24)
    vpd = np.mean(np.maximum(0.6108 * np.exp(17.27 * hours / (hours + 237.3)) - e, 0))
    assert float(cell.vpd) == pytest.approx(vpd, rel=1e-5)
    assert float(cell.vpd) == pytest.approx(1.2094, abs=1e-3)  # the same as a number (hours 10-13 degC floored at 0)


def test_daily_matches_hourly_values(nc_dir, nc_daily):
    ds = nc_daily
    assert list(ds.time.values) == list(pd.date_range("2017-10-23", periods=2).values)
    assert F.SMALL_GRID.matches(ds.lat, ds.lon)
    for name in nldas.DAILY:
        assert {k: ds[name].attrs[k] for k in cf_attrs(name)} == cf_attrs(name)
    hours = [F.hourly_values(pd.Timestamp("2017-10-23") + pd.Timedelta(hours=h), 0) for h in range(24)]
    cut = lambda k: np.stack([v[k][2:-2, 2:-2] for v in hours])  # noqa: E731
    np.testing.assert_allclose(ds.precip[0], cut("Rainf").sum(0), rtol=1e-5)
    # expected in float64; the float32 pipeline's own error (t = T - 273.15f, then a mean of 24 values
    # of |t| < 40 degC) is at most 6e-6 + 24 * 2^-24 * 40 = 6e-5, far below one hour too many or too few (~0.1 K)
    np.testing.assert_allclose(ds.tair[0], cut("Tair").astype("float64").mean(0) - 273.15, atol=1e-4)
    np.testing.assert_allclose(ds.tmin[0], cut("Tair").min(0) - 273.15, atol=1e-4)
    np.testing.assert_allclose(ds.swdown[0], cut("SWdown").mean(0), rtol=1e-5)
    assert ds.precip[0].max() > 1 and float(ds.precip[1].max()) == 0  # showers on the first day only
    assert (ds.vpd > 0).all() and (ds.vpd < 3).all() and (ds.tmin < ds.tair).all()


# --------------------------------------------------------------------------- bad input

def test_bad_names_versions_hours(nc_dir, tmp_path):
    with pytest.raises(NldasError, match="not an NLDAS-2 hourly forcing file name"):
        nldas.parse_name("NLDAS_NOAH0125_H.A20171023.0000.020.nc")
    with pytest.raises(NldasError, match="does not go with extension"):
        nldas.parse_name("NLDAS_FORA0125_H.A20171023.0000.002.nc")
    # mixed versions
    mixed = _copy(nc_dir, tmp_path / "mixed")
    shutil.copy(F.REAL_GRIB, mixed / F.REAL_GRIB.name)
    with pytest.raises(NldasError, match="mixed NLDAS-2 versions"):
        nldas.nldas_daily(mixed, F.SMALL_GRID)
    # duplicated hour (the same file in two folders)
    dup = _copy(nc_dir, tmp_path / "dup")
    name = nldas.granule_name("2017-10-24T07:00")
    (dup / "again").mkdir()
    shutil.copy(dup / name, dup / "again" / name)
    with pytest.raises(NldasError, match="day 2017-10-24: hour 07:00 is there twice"):
        nldas.nldas_daily(dup, F.SMALL_GRID)
    # missing hours: an error naming day and hours, or averaged when allowed
    gap = _copy(nc_dir, tmp_path / "gap")
    for h in (3, 4):
        (gap / nldas.granule_name(f"2017-10-23T{h:02d}:00")).unlink()
    with pytest.raises(NldasError, match=r"day 2017-10-23: missing hour\(s\) 03, 04 UTC"):
        nldas.nldas_daily(gap, F.SMALL_GRID)
    ds = nldas.nldas_daily(gap, F.SMALL_GRID, allow_missing_hours=2).compute()
    assert np.isfinite(ds.tair).all()
    # a whole day missing inside the period
    with pytest.raises(NldasError, match="1 day\\(s\\) have no NLDAS-2 files at all: 2017-10-25"):
        nldas.nldas_daily(nc_dir, F.SMALL_GRID, end="2017-10-25")


def _broken(nc_dir, folder, hour, **kw):
    """The fixture folder with the file of 2017-10-23 ``hour`` replaced by a broken variant."""
    d = _copy(nc_dir, folder)
    t = pd.Timestamp(f"2017-10-23T{hour:02d}:00")
    values = F.hourly_values(t, 0)
    drop = kw.pop("drop", None)
    if drop:
        values.pop(drop)
    if "window" in kw:  # values of the variant's shape
        values = {k: np.resize(v, kw["window"].shape) for k, v in values.items()}
    (d / nldas.granule_name(t)).unlink()
    return d, F.write_nc_granule(d, t, values, **kw)


@pytest.mark.parametrize("case", ["missing_variable", "wrong_grid", "off_lattice", "wrong_units", "truncated"])
def test_bad_content_clear_error_and_no_store(nc_dir, tmp_path, case):
    folder = tmp_path / "in"
    if case == "missing_variable":
        d, bad = _broken(nc_dir, folder, 5, drop="Qair")
        match = "lacks variable\\(s\\) Qair"
    elif case == "wrong_grid":  # a window of Nevada
        d, bad = _broken(nc_dir, folder, 5, window=Grid(38.0625, -117.0625, 8, 9))
        match = "does not cover the study grid"
    elif case == "off_lattice":  # a 0.1-degree grid
        lat, lon = 37.6 + 0.1 * np.arange(9), -108.5 + 0.1 * np.arange(12)
        d, bad = _broken(nc_dir, folder, 5, lat=lat, lon=lon, window=Grid(37.6, -108.5, 9, 12, res=0.1))
        match = "not on the NLDAS-2 1/8-degree lattice"
    elif case == "wrong_units":
        d, bad = _broken(nc_dir, folder, 5, units={"Tair": "degC"})
        match = "Tair has units 'degC'"
    else:
        d = _copy(nc_dir, folder)
        bad = d / nldas.granule_name("2017-10-24T11:00")
        bad.write_bytes(bad.read_bytes()[:3000])
        match = "corrupt or truncated"
    store = tmp_path / "forcing.zarr"
    with pytest.raises(NldasError, match=match) as e:
        nldas.write_daily_zarr(d, store, F.SMALL_GRID, block_days=1)
    assert bad.name in str(e.value)
    assert not store.exists()  # nothing half-written at the target
    with pytest.raises(NldasError, match="not a finished"):
        nldas.open_daily_zarr(store)


# --------------------------------------------------------------------------- Zarr, resume, distributed

def test_resume_after_sigkill(nc_dir, nc_daily, tmp_path):
    store = tmp_path / "forcing.zarr"
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import nldas_fixtures as F
        from vegviz.data import nldas

        def progress(done, total):
            if done == 1:  # killed right after the first block, mid-run
                os.kill(os.getpid(), signal.SIGKILL)

        nldas.write_daily_zarr({str(nc_dir)!r}, {str(store)!r}, F.SMALL_GRID, block_days=1, progress=progress)
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == -9, r.stderr
    assert not store.exists()
    part = nldas.partial_path(store)
    assert sorted(p.name for p in (part / "blocks").glob("*.done")) == ["block-00000.done"]
    seen = []
    nldas.write_daily_zarr(nc_dir, store, F.SMALL_GRID, block_days=1, progress=lambda d, t: seen.append(d))
    assert seen == [2]  # only the second block was computed again
    assert not part.exists() and nldas.read_marker(store)["request"]["block_days"] == 1
    out = nldas.open_daily_zarr(store)
    xr.testing.assert_allclose(out.load(), nc_daily[list(out.data_vars)], rtol=1e-6)
    assert out.attrs["nldas_complete"] == 1
    # a finished store is returned as it is; a different request is refused
    assert nldas.write_daily_zarr(nc_dir, store, F.SMALL_GRID, block_days=1) == store
    with pytest.raises(NldasError, match="another request"):
        nldas.write_daily_zarr(nc_dir, store, F.SMALL_GRID, block_days=2)


@pytest.mark.parametrize("processes", [False, True])
def test_local_cluster_equals_local(nc_dir, nc_daily, tmp_path, processes):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=processes, dashboard_address=None) as cluster, \
            Client(cluster):
        store = nldas.write_daily_zarr(nc_dir, tmp_path / "forcing.zarr", F.SMALL_GRID, block_days=2)
    out = nldas.open_daily_zarr(store).load()
    xr.testing.assert_allclose(out, nc_daily[list(out.data_vars)], rtol=1e-6)


# --------------------------------------------------------------------------- plan and fetch

def test_plan_granules_offline():
    plan = nldas.plan_granules("2016-12-31", "2017-01-01")
    assert len(plan) == 48
    assert plan[0].name == "NLDAS_FORA0125_H.A20161231.0000.020.nc"
    assert plan[-1].url.endswith("/NLDAS_FORA0125_H.2.0/2017/001/NLDAS_FORA0125_H.A20170101.2300.020.nc")
    assert plan[23].url.split("/")[-3:-1] == ["2016", "366"]  # day of year in a leap year
    grb = nldas.plan_granules("2017-10-24", "2017-10-24", version="002")
    assert grb[15].name == F.REAL_GRIB.name and "/NLDAS_FORA0125_H.002/2017/297/" in grb[15].url
    with pytest.raises(NldasError, match="1979-01-02"):
        nldas.plan_granules("1979-01-01", "1979-01-03")


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    for k in ("EARTHDATA_USERNAME", "EARTHDATA_PASSWORD", "EARTHDATA_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    (tmp_path / "netrc").write_text("machine example.org login x password y\n")
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))


def test_fetch_without_credentials_stops_clearly(no_credentials, tmp_path, capsys):
    from vegviz import cli

    assert nldas.earthdata_credentials() is None
    with pytest.raises(nldas.CredentialsMissing, match="EARTHDATA_USERNAME.*netrc"):
        nldas.fetch("2017-10-24", "2017-10-24", tmp_path / "dl")
    assert cli.main(["fetch", "nldas", "--start", "2017-10-24", "--end", "2017-10-24", "--out",
                     str(tmp_path / "dl")]) == 2
    assert "urs.earthdata.nasa.gov" in capsys.readouterr().err
    assert cli.main(["fetch", "nldas", "--start", "2017-10-24", "--end", "2017-10-25", "--out",
                     str(tmp_path / "dl"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "48 granules" in out and "NLDAS_FORA0125_H.A20171025.2300.020.nc" in out
    assert cli.main(["fetch", "nldas", "--start", "2017-10-25", "--end", "2017-10-24", "--out", "x"]) == 2
