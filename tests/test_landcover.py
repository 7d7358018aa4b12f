"""MODIS land cover on the study grid: the real MCD12C1 2019 GeoTIFF, an HDF4 file in the
MCD12C1 layout (SDS ``Majority_Land_Cover_Type_1``, HDF-EOS2 ``StructMetadata.0`` of the
0.05 degree geographic grid, full 3600 x 7200 size) generated from it, and MCD12Q1
LC_Type1 codes (17 = water, 255 = unclassified) in a lat/lon GeoTIFF."""
from __future__ import annotations

import numpy as np
import pytest
import tifffile
import xarray as xr

from vegviz import grid as G
from vegviz.contract import IGBP_CLASSES
from vegviz.data import landcover as lc
from vegviz.data import samples
from vegviz.data.static import load_static

STRUCT = """GROUP=SwathStructure
END_GROUP=SwathStructure
GROUP=GridStructure
	GROUP=GRID_1
		GridName="MOD12C1"
		XDim=7200
		YDim=3600
		UpperLeftPointMtrs=(-180000000.000000,90000000.000000)
		LowerRightMtrs=(180000000.000000,-90000000.000000)
		Projection=GCTP_GEO
	END_GROUP=GRID_1
END_GROUP=GridStructure
END
"""


@pytest.fixture(scope="module")
def igbp_global():
    with tifffile.TiffFile(lc.mcd12c1_path()) as tif:
        return tif.pages[0].asarray()


@pytest.fixture(scope="module")
def real_on_grid():
    return lc.landcover_on_grid()  # the installed MCD12C1 2019 GeoTIFF


def write_mcd12c1_hdf(path, data, *, sds=lc.MCD12C1_SDS, struct=STRUCT):
    from pyhdf.SD import SD, SDC

    f = SD(str(path), SDC.WRITE | SDC.CREATE)
    if struct:
        f.attr("StructMetadata.0").set(SDC.CHAR8, struct)
    s = f.create(sds, SDC.UINT8, data.shape)
    s.setcompress(SDC.COMP_DEFLATE, value=1)
    s[:] = data
    s.setfillvalue(255)
    s.endaccess()
    f.end()
    return path


def write_latlon_tif(path, data, west, north, res, model=2):
    return samples.write_latlon_tif(path, data, west=west, north=north, res=res, nodata=255, model=model)


def test_real_mcd12c1_matches_committed_static_file(real_on_grid):
    static = load_static()
    np.testing.assert_array_equal(real_on_grid["landcover"].values, static["landcover"].values)
    np.testing.assert_allclose(real_on_grid["landcover_fraction"].values, static["landcover_fraction"].values,
                               atol=1e-6)
    assert real_on_grid["landcover"].dtype == np.int16
    assert real_on_grid.attrs["landcover_year"] == 2019
    assert set(np.unique(real_on_grid["landcover"].values)) <= set(IGBP_CLASSES)
    np.testing.assert_allclose(real_on_grid["landcover_fraction"].sum("lc_class").values, 1.0, atol=1e-5)


def test_windowed_read_equals_full_raster(igbp_global):
    win = lc.read_mcd12c1(grid=G.UCRB)
    assert win.shape[0] < 200 and win.shape[1] < 200
    r0 = int(round((90 - win.lat.values[0] - 0.025) / 0.05))
    c0 = int(round((win.lon.values[0] - 0.025 + 180) / 0.05))
    np.testing.assert_array_equal(win.values, igbp_global[r0:r0 + win.shape[0], c0:c0 + win.shape[1]])


def test_static_public_names_still_work():
    from vegviz.data import static

    assert static.read_mcd12c1 is lc.read_mcd12c1 and static.SourceMissing is lc.SourceMissing
    assert static.mcd12c1_path() == lc.mcd12c1_path()
    assert callable(static.regrid_landcover)


def test_hdf4_mcd12c1_layout_gives_the_same_grid(tmp_path, igbp_global, real_on_grid):
    p = write_mcd12c1_hdf(tmp_path / "MCD12C1.A2019001.006.2020220162300.hdf", igbp_global)
    ds = lc.landcover_on_grid(p)
    np.testing.assert_array_equal(ds["landcover"].values, real_on_grid["landcover"].values)
    assert ds.attrs["landcover_year"] == 2019


def test_hdf4_georef_comes_from_structmetadata(tmp_path, igbp_global):
    """A half-globe file (eastern hemisphere cut) placed by its own grid metadata."""
    west_half = igbp_global[:, :3600]
    struct = STRUCT.replace("XDim=7200", "XDim=3600").replace("180000000.000000,-90", "0.000000,-90")
    p = write_mcd12c1_hdf(tmp_path / "MCD12C1.A2019001.061.hdf", west_half, struct=struct)
    a = lc.read_mcd12c1(p, G.UCRB)
    b = lc.read_mcd12c1(grid=G.UCRB)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_allclose(a.lon.values, b.lon.values)


def test_mcd12q1_water_remapping():
    da = xr.DataArray(np.array([[17, 7, 255], [1, 16, 17]], np.uint8), dims=("lat", "lon"))
    out = lc.mcd12q1_to_igbp(da)
    np.testing.assert_array_equal(out.values, [[0, 7, 255], [1, 16, 0]])
    with pytest.raises(lc.RasterError, match=r"codes \[0, 20\].*LC_Type1"):
        lc.mcd12q1_to_igbp(xr.DataArray(np.array([0, 20, 5], np.uint8), dims="x"))


def test_mcd12q1_geotiff_on_grid_matches_mcd12c1(tmp_path, igbp_global, real_on_grid):
    """MCD12C1 codes rewritten as MCD12Q1 (water 0 -> 17): after remapping, the same map."""
    r0, c0 = 800, 1200  # a lat/lon subset around the basin: 50 N .. , -120 E ..
    sub = igbp_global[r0:r0 + 400, c0:c0 + 400].copy()
    q1 = np.where(sub == 0, 17, sub).astype(np.uint8)
    p = write_latlon_tif(tmp_path / "MCD12Q1.A2019001.LC_Type1.tif", q1, -180 + c0 * 0.05, 90 - r0 * 0.05, 0.05)
    ds = lc.landcover_on_grid(p, product="MCD12Q1")
    np.testing.assert_array_equal(ds["landcover"].values, real_on_grid["landcover"].values)
    assert "MCD12Q1" in ds.attrs["landcover_source"] and "MCD12Q1" in ds["landcover"].attrs["long_name"]
    assert (ds["landcover"].values == 0).any()  # the basin's reservoirs come back as water (0)


# ------------------------------------------------------------------------------ bad input

def test_bad_land_cover_input(tmp_path, igbp_global):
    p = write_mcd12c1_hdf(tmp_path / "MCD12C1.A2010001.006.hdf", igbp_global[:10, :10], sds="Land_Cover_Type_2")
    with pytest.raises(lc.RasterError, match=r"A2010001.*no SDS 'Majority_Land_Cover_Type_1'"):
        lc.read_mcd12c1(p)
    p = write_latlon_tif(tmp_path / "proj.tif", igbp_global[:50, :50], 0, 0, 500.0, model=1)
    with pytest.raises(lc.RasterError, match=r"proj.tif.*projected.*gdalwarp"):
        lc.read_landcover(p, "MCD12Q1")
    with pytest.raises(lc.RasterError, match="sinusoidal"):
        lc.read_landcover(tmp_path / "MCD12Q1.A2019001.h09v05.061.hdf", "MCD12Q1")
    p = write_latlon_tif(tmp_path / "europe.tif", igbp_global[600:900, 3600:4000], 0.0, 60.0, 0.05)
    with pytest.raises(lc.RasterError, match=r"europe.tif.*does not contain"):
        lc.landcover_on_grid(p)
    data = lc.mcd12c1_path().read_bytes()
    cut = tmp_path / "MCD12C1.A2019001.cut.tif"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(lc.RasterError, match=r"cut.tif.*truncated"):
        lc.read_mcd12c1(cut, G.UCRB)
    with pytest.raises(ValueError, match="unknown land cover product"):
        lc.read_landcover(None, "GLC2000")
