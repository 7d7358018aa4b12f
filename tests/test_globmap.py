"""GLOBMAP LAI V3 reader on fixtures in the real layouts, generated here.

Fixtures are full-size global rasters (2090 x 4950 int16, the documented GLOBMAP grid),
written compressed so they stay small: the HDF4 ones with SDS ``LAI`` and the attributes
``scale_factor``/``add_offset``/``_FillValue``/``valid_range``, the GeoTIFF ones with
ModelPixelScale/ModelTiepoint/GeoKeyDirectory and GDAL_NODATA tags. The reader reads a
window of each, never the whole raster.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from vegviz import grid as G
from vegviz.contract import cf_attrs, check_time, validate
from vegviz.data import globmap as gm
from vegviz.data.samples import write_latlon_tif

REF = gm.GLOBMAP_GRID
FILL = -1


def pattern() -> np.ndarray:
    """Raw global values with structure in both directions (LAI 0.5-4.49)."""
    r, c = np.indices((REF.nrows, REF.ncols))
    return (50 + (r * 7 + c * 3) % 400).astype(np.int16)


def write_hdf(path, raw, *, sds="LAI", attrs=True):
    from pyhdf.SD import SD, SDC

    f = SD(str(path), SDC.WRITE | SDC.CREATE)
    s = f.create(sds, SDC.INT16, raw.shape)
    s.setcompress(SDC.COMP_DEFLATE, value=1)
    s[:] = raw
    if attrs:
        s.setfillvalue(FILL)
        s.scale_factor = 0.01
        s.add_offset = 0.0
        s.attr("valid_range").set(SDC.INT16, [0, 1000])
        s.long_name = "Leaf Area Index"
    s.endaccess()
    f.end()
    return path


def write_tif(path, raw, *, west=REF.west, north=REF.north, res=REF.dx, nodata=FILL, tags=True, model=2):
    return write_latlon_tif(path, raw, west=west, north=north, res=res, nodata=nodata, tags=tags, model=model,
                             tile=(256, 256))


def pixel_bounds(r, c, ref=REF):
    """(south, north, west, east) of a native pixel, from the documented grid by hand."""
    north = ref.north - r * ref.dy
    west = ref.west + c * ref.dx
    return north - ref.dy, north, west, west + ref.dx


def hand_mean(raw_lai, grid, i, j, ref=REF):
    """Area-weighted mean for target cell (i, j) by explicit summation over pixels."""
    s, n = grid.lat[i] - grid.res / 2, grid.lat[i] + grid.res / 2
    w, e = grid.lon[j] - grid.res / 2, grid.lon[j] + grid.res / 2
    num = den = 0.0
    r0, c0 = int((ref.north - n) / ref.dy) - 1, int((w - ref.west) / ref.dx) - 1
    for r in range(r0, r0 + 5):
        for c in range(c0, c0 + 5):
            ps, pn, pw, pe = pixel_bounds(r, c, ref)
            dlon = max(0.0, min(e, pe) - max(w, pw))
            lo, hi = max(s, ps), min(n, pn)
            dlat = max(0.0, np.sin(np.deg2rad(hi)) - np.sin(np.deg2rad(lo))) if hi > lo else 0.0
            v = raw_lai[r, c]
            if dlon * dlat > 0 and np.isfinite(v):
                num += v * dlon * dlat
                den += dlon * dlat
    return num / den


@pytest.fixture(scope="module")
def raw():
    return pattern()


@pytest.fixture(scope="module")
def series(tmp_path_factory, raw):
    """Two AVHRR-era half-monthly composites (HDF4) and two MODIS-era 8-day ones (GeoTIFF)."""
    d = tmp_path_factory.mktemp("globmap")
    write_hdf(d / "GlobMapLAIV3.A2000336.Global.hdf", raw)  # 1 Dec 2000 (leap year)
    write_hdf(d / "GlobMapLAIV3.A2000351.Global.hdf", raw + 100)  # 16 Dec
    write_tif(d / "GlobMapLAIV3.A2001001.Global.LAI.tif", raw + 200)  # 1 Jan 2001
    sub = d / "sub"
    sub.mkdir()
    write_tif(sub / "GlobMapLAIV3.A2001009.Global.LAI.tif", raw + 300)  # 9 Jan; found recursively
    return d


def test_scaling_fill_and_windowed_read(tmp_path, raw):
    x = raw.copy()
    r, c = 650, 950  # a pixel inside the window around the basin
    x[r, c], x[r, c + 1], x[r, c + 2], x[r, c + 3] = FILL, 1200, 0, -5
    path = write_hdf(tmp_path / "GlobMapLAIV3.A2005001.Global.hdf", x)
    lai = gm.read_composite(path)
    assert lai.shape[0] < 150 and lai.shape[1] < 150  # a window, not the 2090 x 4950 globe
    assert lai.attrs["units"] == "m2 m-2" and lai.attrs["georef_from"] == "default"
    row = np.argmin(np.abs(lai.lat.values - (REF.north - (r + 0.5) * REF.dy)))
    col = np.argmin(np.abs(lai.lon.values - (REF.west + (c + 0.5) * REF.dx)))
    assert np.isnan(lai.values[row, col]) and np.isnan(lai.values[row, col + 1])  # fill, above valid range
    assert lai.values[row, col + 2] == 0.0 and np.isnan(lai.values[row, col + 3])  # LAI 0 valid, negative not
    assert lai.values[row + 1, col] == pytest.approx(raw[r + 1, c] * 0.01)
    assert np.nanmax(lai.values) <= 10.0


def test_hdf_without_attributes_uses_documented_scale(tmp_path, raw):
    x = raw.copy()
    x[650, 950] = 1500
    path = write_hdf(tmp_path / "GlobMapLAIV3.A2005009.Global.hdf", x, attrs=False)
    lai = gm.read_composite(path)
    finite = lai.values[np.isfinite(lai.values)]
    assert finite.min() >= 0.5 and finite.max() <= 4.5  # x 0.01, and 1500 dropped as invalid
    assert np.isnan(lai.values).sum() == 1


@pytest.mark.parametrize("fmt", ["hdf", "tif"])
def test_known_pixel_lands_in_its_cell(tmp_path, fmt):
    grid = G.UCRB

    def inside(i, j):  # the first native pixel that lies wholly inside target cell (i, j), or None
        s, n = grid.lat[i] - grid.res / 2, grid.lat[i] + grid.res / 2
        w, e = grid.lon[j] - grid.res / 2, grid.lon[j] + grid.res / 2
        r = int(np.ceil((REF.north - n) / REF.dy))
        c = int(np.ceil((w - REF.west) / REF.dx))
        ps, pn, pw, pe = pixel_bounds(r, c)
        ok = s <= ps and pn <= n and w <= pw and pe <= e
        return (r, c, (s, n, w, e), (ps, pn, pw, pe)) if ok else None

    i, j = next((i, j) for i in range(30, 63) for j in range(20, 54) if inside(i, j))
    r, c, (s, n, w, e), (ps, pn, pw, pe) = inside(i, j)
    x = np.full((REF.nrows, REF.ncols), 100, np.int16)
    x[r, c] = 900
    name = f"GlobMapLAIV3.A2003001.Global{'.hdf' if fmt == 'hdf' else '.LAI.tif'}"
    path = write_hdf(tmp_path / name, x) if fmt == "hdf" else write_tif(tmp_path / name, x)
    ds = gm.globmap_lai(path)
    lai = ds["lai"].isel(time=0).values
    frac = (pe - pw) * (np.sin(np.deg2rad(pn)) - np.sin(np.deg2rad(ps))) / (
        (e - w) * (np.sin(np.deg2rad(n)) - np.sin(np.deg2rad(s))))
    assert lai[i, j] == pytest.approx(1.0 + 8.0 * frac, rel=1e-5)
    others = np.delete(lai.ravel(), i * grid.nlon + j)
    np.testing.assert_allclose(others, 1.0, rtol=1e-6)


def test_area_weighted_regrid_matches_hand_computation(series, raw):
    ds = gm.globmap_lai(series / "GlobMapLAIV3.A2000336.Global.hdf")
    raw_lai = raw * 0.01
    lai = ds["lai"].isel(time=0).values
    for i, j in [(0, 0), (31, 17), (62, 53), (10, 40)]:
        assert lai[i, j] == pytest.approx(hand_mean(raw_lai, G.UCRB, i, j), rel=1e-6)


def test_georef_from_geotiff_tags_of_a_regional_subset(tmp_path, raw):
    """A cropped GeoTIFF places its pixels by its own tie point, not the global grid."""
    r0, c0 = 600, 900
    sub = raw[r0:r0 + 150, c0:c0 + 150]
    path = write_tif(tmp_path / "GlobMapLAIV3.A2004161.Global.LAI.tif", sub,
                     west=REF.west + c0 * REF.dx, north=REF.north - r0 * REF.dy)
    full = write_hdf(tmp_path / "GlobMapLAIV3.A2004169.Global.hdf", raw)
    a = gm.globmap_lai(path)["lai"].isel(time=0).values
    b = gm.globmap_lai(full)["lai"].isel(time=0).values
    np.testing.assert_allclose(a, b, rtol=1e-6)
    assert gm.read_composite(path).attrs["georef_from"] == "file"


def test_composite_dates_nan_days_and_contract(series):
    ds = gm.globmap_lai(series, start="2000-11-28")
    t = pd.DatetimeIndex(ds.time.values)
    assert t[0] == pd.Timestamp("2000-11-28") and t[-1] == pd.Timestamp("2001-01-09")
    assert (np.diff(t.values).astype("timedelta64[D]").astype(int) == 1).all()
    have = np.isfinite(ds["lai"].values).any(axis=(1, 2))
    assert list(t[have].strftime("%Y-%m-%d")) == ["2000-12-01", "2000-12-16", "2001-01-01", "2001-01-09"]
    means = ds["lai"].values[have].mean(axis=(1, 2))
    np.testing.assert_allclose(np.diff(means), 1.0, rtol=1e-4)  # +100 raw per file = +1 LAI
    assert "half-monthly" in ds["lai"].attrs["composite_cadence"] and "8-day" in ds["lai"].attrs["composite_cadence"]
    assert ds.attrs["synthetic"] == 0
    check_time(ds)  # gap-free daily axis
    assert {k: ds["lai"].attrs[k] for k in cf_attrs("lai")} == cf_attrs("lai")
    # with a humidity forcing beside it, the contract check accepts the LAI variable as it is
    validate(ds.assign(vpd=ds["lai"].fillna(1.0).assign_attrs(cf_attrs("vpd"))), require=("lai",))
    only = gm.globmap_lai(series, start="2000-12-10", end="2000-12-31")
    assert int(only["lai"].attrs["n_composites"]) == 1


def test_daily_interpolation_linear_and_gap_limited(series):
    ds = gm.globmap_lai(series, daily=True)
    lai, daily = ds["lai"], ds["lai_daily"]
    assert daily.attrs["units"] == "m2 m-2" and daily.attrs["standard_name"] == "leaf_area_index"
    a, b = lai.sel(time="2000-12-01").values, lai.sel(time="2000-12-16").values
    np.testing.assert_allclose(daily.sel(time="2000-12-06").values, a + (b - a) * 5 / 15, rtol=1e-5)
    np.testing.assert_allclose(daily.sel(time="2001-01-01").values, lai.sel(time="2001-01-01").values, rtol=1e-6)
    # 16 Dec -> 1 Jan is 16 days (<= 20): interpolated; a 24-day gap is not.
    assert np.isfinite(daily.sel(time="2000-12-24").values).all()
    strict = gm.globmap_lai(series, daily=True, max_gap=15)["lai_daily"]
    assert np.isnan(strict.sel(time="2000-12-24").values).all()
    assert np.isfinite(strict.sel(time="2001-01-05").values).all()


@pytest.mark.parametrize("time_chunk", [5, 16])
def test_lazy_chunks_equal_the_in_memory_arrays(series, time_chunk):
    """time_chunk=N: dask arrays whose chunks read their own composites (HDF4 ones under a lock, on several
    threads), lai_daily also those within max_gap of the chunk: the values of the in-memory arrays, exactly."""
    import dask

    eager = gm.globmap_lai(series, daily=True)
    lazy = gm.globmap_lai(series, daily=True, time_chunk=time_chunk)
    assert lazy["lai"].chunks[0][0] == time_chunk and lazy["lai_daily"].chunks == lazy["lai"].chunks
    with dask.config.set(scheduler="threads", num_workers=4):
        computed = lazy.compute()
    xr.testing.assert_identical(computed, eager.drop_attrs(deep=False).assign_attrs(
        {k: v for k, v in eager.attrs.items() if k != "globmap_georeference"}))  # known once the files are read


def test_interpolation_per_cell_gaps():
    t = pd.date_range("2001-01-01", periods=41)
    x = np.full((41, 1, 2), np.nan)
    x[0], x[8], x[40] = 1.0, 3.0, 5.0
    x[8, 0, 1] = np.nan  # cell 1 misses the middle composite: 0 -> 40 is a 40-day gap
    import xarray as xr

    da = xr.DataArray(x, dims=("time", "lat", "lon"), coords={"time": t})
    out = gm.interpolate_daily(da, max_gap=20).values
    np.testing.assert_allclose(out[:9, 0, 0], 1 + 2 * np.arange(9) / 8)
    assert np.isnan(out[9:40, 0, 0]).all() and out[40, 0, 0] == 5.0
    assert out[0, 0, 1] == 1.0 and np.isnan(out[1:40, 0, 1]).all()


# ------------------------------------------------------------------------------ bad input

def test_bad_names_and_cadence(tmp_path, raw):
    with pytest.raises(gm.GlobmapError, match="not a valid date"):
        gm.parse_name("GlobMapLAIV3.A2001367.Global.hdf")
    with pytest.raises(gm.GlobmapError, match="not a GLOBMAP"):
        gm.parse_name("LAI_2001_001.hdf")
    with pytest.raises(gm.GlobmapError, match="8-day"):
        gm.parse_name("GlobMapLAIV3.A2005005.Global.hdf")
    with pytest.raises(gm.GlobmapError, match="half-monthly"):
        gm.composites(["GlobMapLAIV3.A1995001.Global.hdf", "GlobMapLAIV3.A1995009.Global.hdf"])
    with pytest.raises(gm.GlobmapError, match="same composite"):
        gm.composites(["GlobMapLAIV3.A2005009.Global.hdf", "GlobMapLAIV3.A2005009.Global.LAI.tif"])
    with pytest.raises(gm.GlobmapError, match="no GlobMapLAIV3"):
        (tmp_path / "GlobMapLAIV3_2001.zip").write_bytes(b"PK")
        gm.globmap_lai(tmp_path)


def test_missing_sds_wrong_grid_coverage(tmp_path, raw):
    p = write_hdf(tmp_path / "GlobMapLAIV3.A2002001.Global.hdf", raw, sds="Lai_8km")
    with pytest.raises(gm.GlobmapError, match=r"A2002001.*no SDS 'LAI'"):
        gm.globmap_lai(p)
    p = write_hdf(tmp_path / "GlobMapLAIV3.A2002009.Global.hdf", raw[:1000, :2000])
    with pytest.raises(gm.GlobmapError, match=r"A2002009.*not the documented global grid"):
        gm.globmap_lai(p)
    p = write_tif(tmp_path / "GlobMapLAIV3.A2002017.Global.LAI.tif", raw[:200, :200])  # Arctic corner only
    with pytest.raises(gm.GlobmapError, match=r"A2002017.*does not contain"):
        gm.globmap_lai(p)
    p = write_tif(tmp_path / "GlobMapLAIV3.A2002041.Global.LAI.tif", (raw * 0.01 * 100).astype("float32"))
    with pytest.raises(gm.GlobmapError, match=r"A2002041.*reaches 449"):
        gm.globmap_lai(p)  # a float file holding raw counts: caught, not passed on as LAI 449
    p = write_tif(tmp_path / "GlobMapLAIV3.A2002025.Global.LAI.tif", raw, res=0.05)
    with pytest.raises(gm.GlobmapError, match=r"A2002025.*pixel size"):
        gm.globmap_lai(p)


@pytest.mark.parametrize("fmt", ["hdf", "tif"])
def test_truncated_or_corrupt_file(tmp_path, raw, fmt):
    name = f"GlobMapLAIV3.A2002033.Global{'.hdf' if fmt == 'hdf' else '.LAI.tif'}"
    p = write_hdf(tmp_path / name, raw) if fmt == "hdf" else write_tif(tmp_path / name, raw)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 3])
    with pytest.raises(gm.GlobmapError, match=r"A2002033.*(truncated|corrupt)"):
        gm.globmap_lai(p)
    p.write_bytes(b"\x00" * 4096)
    with pytest.raises(gm.GlobmapError, match=r"A2002033.*(truncated|corrupt)"):
        gm.globmap_lai(p)


def test_file_names_with_and_without_lai_before_the_extension(tmp_path, raw):
    """Both formats are read whether or not '.LAI' precedes the extension; other regions are refused."""
    names = ["GlobMapLAIV3.A2003001.Global.hdf", "GlobMapLAIV3.A2003009.Global.LAI.hdf",
             "GlobMapLAIV3.A2003017.Global.LAI.tif", "GlobMapLAIV3.A2003025.Global.tif"]
    listed = tmp_path / "listed"
    listed.mkdir()
    for name in names:
        (listed / name).write_bytes(b"")
    assert [p.name for p in gm.find_files(listed)] == names
    # read: the two names the other tests do not read (.Global.hdf, .Global.LAI.tif), one value apart
    r0, c0 = 600, 900
    write_hdf(tmp_path / names[1], raw)
    write_tif(tmp_path / names[3], raw[r0:r0 + 150, c0:c0 + 150] + 100, west=REF.west + c0 * REF.dx,
              north=REF.north - r0 * REF.dy)
    ds = gm.globmap_lai(tmp_path / names[1]).merge(gm.globmap_lai(tmp_path / names[3]))
    lai = ds["lai"].sel(time=["2003-01-09", "2003-01-25"]).values
    assert np.isfinite(lai).all()
    np.testing.assert_allclose(lai[1] - lai[0], 1.0, rtol=1e-5)
    # one date under two names is two files for one composite
    with pytest.raises(gm.GlobmapError, match="same composite"):
        gm.composites(["GlobMapLAIV3.A2005009.Global.hdf", "GlobMapLAIV3.A2005009.Global.LAI.hdf"])
    # a tile name is refused, also when found in a folder (never skipped silently)
    with pytest.raises(gm.GlobmapError, match="region 'h09v05'.*Fix: use the global files"):
        gm.parse_name("GlobMapLAIV3.A2001001.h09v05.hdf")
    (listed / "GlobMapLAIV3.A2003033.h09v05.LAI.hdf").write_bytes(b"")
    with pytest.raises(gm.GlobmapError, match="region 'h09v05'"):
        gm.find_files(listed)
