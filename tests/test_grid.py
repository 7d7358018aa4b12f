"""The study grid and exact area-weighted regridding onto it."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from vegviz import grid as g


def raster(values_or_fn, res, west=-113.0, east=-105.0, south=35.0, north=44.0, lon0=None):
    """A regular (lat, lon) raster of cell centres covering the UCRB window."""
    lat = np.arange(south + res / 2, north, res)
    lon = np.arange(west + res / 2, east, res)
    if callable(values_or_fn):
        data = values_or_fn(lat[:, None], lon[None, :]) * np.ones((lat.size, lon.size))
    else:
        data = np.full((lat.size, lon.size), float(values_or_fn))
    return xr.DataArray(data, dims=("lat", "lon"), coords={"lat": lat, "lon": lon}, name="x")


# ----------------------------------------------------------------- the grid itself

def test_ucrb_coordinates():
    assert g.UCRB.shape == (63, 54)
    assert g.UCRB.lat[0] == pytest.approx(35.6875) and g.UCRB.lat[-1] == pytest.approx(43.4375)
    assert g.UCRB.lon[0] == pytest.approx(-112.3125) and g.UCRB.lon[-1] == pytest.approx(-105.6875)
    assert np.all(np.diff(g.UCRB.lat) == 0.125) and np.all(np.diff(g.UCRB.lon) == 0.125)
    assert g.on_nldas_lattice(g.UCRB.lat) and g.on_nldas_lattice(g.UCRB.lon)
    assert not g.on_nldas_lattice(g.UCRB.lat + 0.05)
    assert g.UCRB.extent == pytest.approx((-112.375, -105.625, 35.625, 43.5))
    # The window is a piece of the NLDAS-2 grid.
    i = np.round((g.UCRB.lat - g.NLDAS.lat0) / 0.125).astype(int)
    j = np.round((g.UCRB.lon - g.NLDAS.lon0) / 0.125).astype(int)
    np.testing.assert_allclose(g.NLDAS.lat[i], g.UCRB.lat)
    np.testing.assert_allclose(g.NLDAS.lon[j], g.UCRB.lon)


def test_cell_area_sums_to_the_spherical_area_of_the_window():
    w, e, s, n = np.deg2rad(g.UCRB.extent)
    expected = g.EARTH_RADIUS_M**2 * (e - w) * (np.sin(n) - np.sin(s))
    area = g.UCRB.cell_area()
    assert area.dims == ("lat", "lon") and area.attrs["units"] == "m2"
    assert float(area.sum()) == pytest.approx(expected, rel=1e-12)
    assert float(area.sum()) / 1e6 == pytest.approx(506_300, rel=1e-3)  # km2
    assert area[0, 0] > area[-1, 0]  # cells shrink northwards


def test_nldas_window_and_index_of():
    sub = g.nldas_window(g.UCRB.lat[5:10], g.UCRB.lon[2:4])
    assert sub.shape == (5, 2) and sub.lat0 == g.UCRB.lat[5]
    with pytest.raises(ValueError, match="NLDAS-2 cell centres"):
        g.nldas_window(g.UCRB.lat + 0.01, g.UCRB.lon)
    with pytest.raises(ValueError, match="contiguous"):
        g.nldas_window(g.UCRB.lat[::2], g.UCRB.lon)
    assert g.UCRB.index_of(35.6875, -112.3125) == (0, 0)
    assert g.UCRB.index_of(43.49, -105.63) == (62, 53)
    with pytest.raises(ValueError, match="outside"):
        g.UCRB.index_of(40.76, -112.5)


# ----------------------------------------------------------------- regrid_mean

def test_regrid_mean_of_a_constant_is_the_constant():
    out = g.regrid_mean(raster(7.5, 0.05))
    assert out.dims == ("lat", "lon") and g.UCRB.matches(out["lat"], out["lon"])
    np.testing.assert_allclose(out.values, 7.5, rtol=1e-12)


def test_regrid_mean_of_a_field_linear_in_lon_gives_cell_centre_values():
    out = g.regrid_mean(raster(lambda la, lo: 3.0 * lo + 1.0, 1 / 40))
    expected = np.broadcast_to(3.0 * g.UCRB.lon + 1.0, g.UCRB.shape)
    np.testing.assert_allclose(out.values, expected, rtol=0, atol=1e-9)


def test_regrid_mean_weights_latitude_by_true_area():
    """A field linear in sin(lat) averages to its value at the cell's area midpoint."""
    out = g.regrid_mean(raster(lambda la, lo: np.sin(np.deg2rad(la)), 1 / 80))
    s, n = np.deg2rad(g.UCRB.lat_bounds).T
    # Area mean of sin(lat) over a band: int sin cos / int cos = (sin n + sin s) / 2.
    exact = (np.sin(n) + np.sin(s)) / 2
    np.testing.assert_allclose(out.values[:, 0], exact, rtol=0, atol=2e-6)
    plain = np.sin(np.deg2rad(g.UCRB.lat))
    assert not np.allclose(out.values[:, 0], plain, rtol=0, atol=1e-9)  # not a plain mean


def test_regrid_mean_from_a_coarser_source_takes_the_overlapping_values():
    src = raster(lambda la, lo: np.floor(lo) * 100 + np.floor(la), 1.0)
    out = g.regrid_mean(src)
    # The 1/8 cells inside one source degree take its value ...
    i, j = g.UCRB.index_of(40.3, -108.6)
    assert out.values[i, j] == pytest.approx(-109 * 100 + 40)
    np.testing.assert_allclose(out.values[i], np.floor(g.UCRB.lon) * 100 + 40)
    # Target cells straddling source edges mix in proportion to overlap: 0.3-degree
    # columns alternate 0, 1 from -113; the third target column (-112.125..-112.0)
    # overlaps 0.025 degrees of a 0-column and 0.1 of a 1-column.
    src = raster(lambda la, lo: np.floor((lo + 113.0) / 0.3) % 2, 0.3)
    out = g.regrid_mean(src)
    np.testing.assert_allclose(out.values[:, 2], 0.1 / 0.125, rtol=1e-9)
    np.testing.assert_allclose(out.values[:, 0], 0.0, atol=1e-12)


def test_regrid_mean_ignores_nan_source_cells():
    res = 1 / 16  # 2 x 2 source cells per target cell
    src = raster(1.0, res)
    i, j = g.UCRB.index_of(40.0, -108.0)
    lat_c, lon_c = g.UCRB.lat[i], g.UCRB.lon[j]
    la = src.indexes["lat"].get_indexer([lat_c - res / 2, lat_c + res / 2], method="nearest")
    lo = src.indexes["lon"].get_indexer([lon_c - res / 2, lon_c + res / 2], method="nearest")
    src[la[0], lo[0]] = np.nan
    src[la[0], lo[1]] = 3.0
    src[la[1], lo[0]] = 3.0
    src[la[1], lo[1]] = 3.0
    out = g.regrid_mean(src)
    assert out.values[i, j] == pytest.approx(3.0)  # the NaN quarter carries no weight
    src[la[0], lo[1]] = src[la[1], lo[0]] = src[la[1], lo[1]] = np.nan
    assert np.isnan(g.regrid_mean(src).values[i, j])  # no valid overlap at all
    assert np.isfinite(g.regrid_mean(src).values).sum() == g.UCRB.nlat * g.UCRB.nlon - 1


def test_regrid_mean_accepts_0_360_longitudes_and_descending_latitudes():
    fn = lambda la, lo: np.cos(np.deg2rad(3 * la)) + 0.01 * lo  # noqa: E731
    ref = g.regrid_mean(raster(fn, 0.1))
    east = raster(fn, 0.1)
    east = east.assign_coords(lon=east["lon"] + 360.0)  # 247..255 E
    np.testing.assert_allclose(g.regrid_mean(east).values, ref.values, rtol=0, atol=1e-12)
    desc = raster(fn, 0.1).isel(lat=slice(None, None, -1))
    np.testing.assert_allclose(g.regrid_mean(desc).values, ref.values, rtol=0, atol=1e-12)
    # A global 0..360 raster (as ETOPO5 is) works too.
    lon = np.arange(0, 360, 0.5) + 0.25
    lat = np.arange(-90, 90, 0.5) + 0.25
    glob = xr.DataArray(np.ones((lat.size, lon.size)), dims=("lat", "lon"), coords={"lat": lat, "lon": lon})
    np.testing.assert_allclose(g.regrid_mean(glob).values, 1.0)


def test_regrid_mean_keeps_leading_dims_and_other_names():
    src = raster(2.0, 0.25).rename(lat="y", lon="x").expand_dims(time=3).copy()
    src[1] = 5.0
    out = g.regrid_mean(src, lat="y", lon="x")
    assert out.dims == ("time", "lat", "lon") and out.sizes["time"] == 3
    np.testing.assert_allclose(out.isel(time=1).values, 5.0)
    np.testing.assert_allclose(out.isel(time=0).values, 2.0)


def test_regrid_mean_clear_errors():
    with pytest.raises(ValueError, match="does not overlap"):
        g.regrid_mean(raster(1.0, 0.25, west=0, east=10, south=0, north=10))
    with pytest.raises(ValueError, match="does not cover"):
        g.regrid_mean(raster(1.0, 0.25, west=-110, east=-100))
    src = raster(1.0, 0.25)
    irregular = src.assign_coords(lon=src["lon"].values + np.r_[0, 0.01 * np.arange(1, src.sizes["lon"])] ** 2)
    with pytest.raises(ValueError, match="regularly spaced"):
        g.regrid_mean(irregular)
    with pytest.raises(ValueError, match="needs dimensions"):
        g.regrid_mean(src.rename(lat="latitude"))


# ----------------------------------------------------------------- regrid_classes

def test_regrid_classes_fractions_and_majority_on_a_hand_made_raster():
    res = 1 / 16  # 2 x 2 source cells per target cell
    src = raster(0.0, res).astype(int)
    src[:] = 7
    i, j = g.UCRB.index_of(39.0, -109.0)
    r0 = int(np.argmin(np.abs(src["lat"].values - (g.UCRB.lat[i] - res / 2))))
    c0 = int(np.argmin(np.abs(src["lon"].values - (g.UCRB.lon[j] - res / 2))))
    src[r0, c0] = 10
    src[r0, c0 + 1] = 10
    src[r0 + 1, c0] = 255  # no data
    # The next cell east: a tie between 7 and 12 (two quarters each).
    src[r0, c0 + 2] = 12
    src[r0 + 1, c0 + 2] = 12
    out = g.regrid_classes(src, [7, 10, 12], nodata=255)
    frac = out["fraction"]
    assert frac.dims == ("lc_class", "lat", "lon")
    np.testing.assert_allclose(frac.sum("lc_class").values, 1.0, rtol=1e-12)
    # Three valid quarters of nearly equal area: two of 10, one of 7.
    assert float(frac.sel(lc_class=10)[i, j]) == pytest.approx(2 / 3, rel=1e-3)
    assert float(frac.sel(lc_class=7)[i, j]) == pytest.approx(1 / 3, rel=1e-3)
    assert int(out["majority"][i, j]) == 10
    # Two equal halves (the western column of the cell is 12) ...
    assert float(frac.sel(lc_class=12)[i, j + 1]) == pytest.approx(0.5, rel=1e-12)
    assert int(out["majority"][i, j + 1]) == 7  # ... a tie goes to the lower code
    assert int(out["majority"][0, 0]) == 7


def test_regrid_classes_rejects_3d_input():
    src = raster(1.0, 0.25).astype(int).expand_dims(time=2)
    with pytest.raises(ValueError, match="2D"):
        g.regrid_classes(src, [1])
