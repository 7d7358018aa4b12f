"""The UCRB mask: flow routing on hand-made DEMs, and the committed mask against USGS."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from vegviz import grid as g
from vegviz.data import basin as b
from vegviz.data.static import load_static, missing_sources

MISSING = missing_sources()
needs_sources = pytest.mark.skipif(bool(MISSING), reason="; ".join(MISSING) or "sources installed")


# ----------------------------------------------------------------- hand-made DEMs

def v_valley(nr=8, nc=7, drop=10.0, wall=5.0):
    """A valley along the middle column, falling towards row 0."""
    rows, cols = np.indices((nr, nc))
    return 100.0 + drop * rows + wall * np.abs(cols - nc // 2)


def route(z, breach=False):
    z = b.breach_depressions(z) if breach else z
    filled = b.fill_depressions(z)
    return filled, b.d8_receivers(filled, dy=1.0, dx=1.0)


def test_fill_raises_a_pit_to_its_spill_level_and_leaves_the_rest():
    z = np.full((5, 5), 10.0)
    z[2, 2] = 1.0  # pit
    z[0, 2] = 9.0  # lowest point of the rim: the spill
    plain = b.fill_depressions(z, epsilon=False)
    assert plain[2, 2] == 10.0  # raised to the lowest ring around it (all 10 m)
    np.testing.assert_array_equal(np.delete(plain.ravel(), 12), np.delete(z.ravel(), 12))
    eps = b.fill_depressions(z)
    assert 10.0 < eps[2, 2] < 10.0 + 1e-9
    assert z[2, 2] == 1.0  # input untouched


def test_epsilon_fill_gives_every_interior_cell_a_lower_neighbour():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 5, (15, 12)).cumsum(0)  # rough terrain full of pits and flats
    z[4:8, 3:9] = z.min() - 1  # a flat-bottomed pit
    filled = b.fill_depressions(z)
    recv = b.d8_receivers(filled, dy=1.0, dx=1.0)
    assert np.all(filled >= z)
    assert np.all(recv[1:-1, 1:-1] >= 0)
    outlets = recv == -1
    assert b.flow_accumulation(recv)[outlets].sum() == z.size  # every cell reaches an edge


def test_v_valley_drains_to_its_outlet():
    z = v_valley()
    filled, recv = route(z)
    np.testing.assert_array_equal(filled, z)  # nothing to fill
    outlet = (0, z.shape[1] // 2)
    assert recv[outlet] == -1
    assert b.catchment(recv, outlet).all()
    acc = b.flow_accumulation(recv)
    assert acc[outlet] == z.size
    assert np.all(np.diff(acc[:, 3]) < 0)  # the thalweg gathers more downstream
    # Steepest descent over true distances: from (4, 0) the diagonal to (3, 1) drops
    # 15 m over sqrt(2) (10.6 per unit), more than 10 m straight down-valley.
    assert recv[4, 0] == 3 * z.shape[1] + 1


def test_two_basin_dem_splits_at_the_divide():
    left, right = v_valley(nc=5), v_valley(nc=5)
    z = np.hstack([left, right])  # divide: the shared high wall between columns 4 and 5
    _, recv = route(z)
    a = b.catchment(recv, (0, 2))
    c = b.catchment(recv, (0, 7))
    assert not (a & c).any()
    assert (a | c).all()
    assert a[:, :5].all() and c[:, 5:].all()


def test_d8_ties_go_to_the_earlier_neighbour_and_flats_have_none():
    z = np.array([[0.0, 5.0, 0.0], [5.0, 5.0, 5.0], [5.0, 5.0, 5.0]])
    recv = b.d8_receivers(z, dy=1.0, dx=1.0)
    assert recv[1, 1] == 0  # NW and NE equally steep: NW comes first
    assert recv[2, 1] == -1  # flat, no lower neighbour


def test_breaching_cuts_a_thin_dam_instead_of_flooding_the_valley():
    z = v_valley(nr=12, nc=9, wall=40.0)
    z[-1, :] = 1000.0  # the valley head is closed ...
    z[6, :] = 400.0  # ... and a one-cell dam crosses the valley: a depression behind it
    outlet = (0, 4)
    _, recv_fill = route(z)
    _, recv_breach = route(z, breach=True)
    # Filling floods the valley behind the dam to the side walls' edge cells ...
    assert not b.catchment(recv_fill, outlet)[7:11, 4].any()
    # ... breaching cuts one dam cell next to the thalweg instead.
    assert b.catchment(recv_breach, outlet)[7:11].all()
    cut = z - b.breach_depressions(z)
    assert np.count_nonzero(cut) == 1
    assert cut[6, 3:6].max() >= 400.0 - 170.0  # at least down to the pit behind it


def test_breaching_leaves_a_shallow_pit_to_be_filled():
    z = np.full((7, 7), 50.0)
    z[3, 3] = 49.0  # 1 m deep: filling costs 1, any breach through the 50 m ring costs more
    z[0, :] = 10.0
    np.testing.assert_array_equal(b.breach_depressions(z), z)


def test_flow_accumulation_rejects_a_cycle():
    recv = np.array([[1, 0]])
    with pytest.raises(ValueError, match="cycle"):
        b.flow_accumulation(recv)


def test_clear_errors():
    with pytest.raises(ValueError, match="2D"):
        b.fill_depressions(np.zeros(5))
    with pytest.raises(ValueError, match="one value per row"):
        b.d8_receivers(np.zeros((3, 3)), dy=1.0, dx=np.ones(4))
    with pytest.raises(ValueError, match="landcover"):
        b.basin_mask(load_static().drop_vars("landcover"))


def test_snap_outlet_picks_the_nearest_main_stem_cell():
    acc = np.ones((7, 7))
    acc[:, 5] = np.arange(100, 107)  # main stem, growing downstream (down the rows)
    acc[3, 2] = 40  # a tributary: less than half the main stem
    lat = np.arange(7.0)
    lon = np.arange(7.0)
    assert b.snap_outlet(acc, lat, lon, (3.0, 3.0), radius=3) == (3, 5)


# ----------------------------------------------------------------- the committed mask

STATIC = load_static()

INSIDE = {  # (lat, lon) of places on UCRB rivers
    "Green River, WY (Green)": (41.53, -109.47),
    "Pinedale, WY (upper Green)": (42.87, -109.86),
    "Kremmling, CO (Colorado headwaters)": (40.06, -106.39),
    "Steamboat Springs, CO (Yampa)": (40.48, -106.83),
    "Gunnison, CO (Gunnison)": (38.55, -106.93),
    "Grand Junction, CO (Colorado)": (39.06, -108.55),
    "Vernal, UT (Green)": (40.45, -109.53),
    "Moab, UT (Colorado)": (38.57, -109.55),
    "Durango, CO (Animas)": (37.27, -107.88),
    "Farmington, NM (San Juan)": (36.73, -108.20),
    "Page, AZ (Lake Powell)": (36.91, -111.46),
}
OUTSIDE = {
    "Salt Lake City, UT (Great Basin)": (40.76, -111.89),
    "Provo, UT (Great Basin)": (40.23, -111.66),
    "Richfield, UT (Sevier, Great Basin)": (38.77, -112.08),
    "Afton, WY (Salt River, Snake)": (42.72, -110.93),
    "Walden, CO (North Platte)": (40.73, -106.28),
    "Fairplay, CO (South Platte)": (39.22, -106.00),
    "Leadville, CO (Arkansas)": (39.25, -106.29),
    "South Fork, CO (Rio Grande)": (37.67, -106.64),
    "Alamosa, CO (Rio Grande)": (37.47, -105.87),
    "Tuba City, AZ (Little Colorado, Lower Basin)": (36.13, -111.24),
}


def test_mask_is_int8_zero_one_on_the_grid():
    m = STATIC["mask"]
    assert m.dtype == np.int8
    assert m.dims == ("lat", "lon")
    assert set(np.unique(m.values)) == {0, 1}
    assert g.UCRB.matches(m["lat"], m["lon"])
    assert not (m.values.astype(bool) & (STATIC["landcover"].values == 0)).any()  # no water cells


def test_mask_area_matches_usgs_drainage_area():
    area_km2 = float((STATIC["cell_area"] * STATIC["mask"]).sum()) / 1e6
    assert b.USGS_AREA_KM2 == pytest.approx(289_560, abs=1)
    assert area_km2 == pytest.approx(b.USGS_AREA_KM2, rel=0.15)


def test_mask_is_one_connected_region():
    _, n = ndimage.label(STATIC["mask"].values, structure=np.ones((3, 3)))
    assert n == 1


@pytest.mark.parametrize("name", INSIDE)
def test_upper_basin_rivers_are_inside(name):
    assert STATIC["mask"].values[g.UCRB.index_of(*INSIDE[name])] == 1


@pytest.mark.parametrize("name", OUTSIDE)
def test_neighbouring_basins_are_outside(name):
    assert STATIC["mask"].values[g.UCRB.index_of(*OUTSIDE[name])] == 0


# ----------------------------------------------------------------- from the ETOPO5 source

@pytest.fixture(scope="module")
def etopo5_window():
    from vegviz.data.static import read_etopo5

    return b.dem_window(read_etopo5())


@needs_sources
def test_delineation_reproduces_the_committed_mask(etopo5_window):
    frac = b.basin_fraction(dem=etopo5_window)
    assert float(frac.min()) >= 0 and float(frac.max()) <= 1
    assert frac.attrs["catchment_area_km2"] == pytest.approx(b.USGS_AREA_KM2, rel=0.05)
    mask = b.basin_mask(STATIC[["landcover"]].assign(basin_fraction=frac))
    np.testing.assert_array_equal(mask.values, STATIC["mask"].values)


@needs_sources
def test_outlet_snaps_next_to_lees_ferry(etopo5_window):
    ds = b.delineate(etopo5_window)
    assert abs(ds.attrs["outlet_lat"] - b.LEES_FERRY[0]) < 0.15
    assert abs(ds.attrs["outlet_lon"] - b.LEES_FERRY[1]) < 0.15
    acc = ds["upstream_area"].sel(lat=ds.attrs["outlet_lat"], lon=ds.attrs["outlet_lon"])
    assert float(acc) == pytest.approx(ds.attrs["catchment_area_km2"])


@needs_sources
def test_fill_only_loses_the_wyoming_green_river(etopo5_window):
    """Why breaching is needed: fill alone spills the Green above the Uintas eastwards."""
    ds = b.delineate(etopo5_window, breach=False)
    assert ds.attrs["catchment_area_km2"] < 0.9 * b.USGS_AREA_KM2
    assert ds["catchment"].sel(lat=41.53, lon=-109.47, method="nearest") == 0


def test_outlet_cell_is_at_lees_ferry():
    # The basin's outlet is the mask cell with the largest upstream basin share next to the gauge;
    # at 1/8 degree Lees Ferry (36.865 N) lies 1 km south of a cell edge, so the outlet cell is
    # the one containing the gauge or its neighbour, within 2 km of the gauge.
    lat, lon = b.LEES_FERRY
    mask = STATIC["mask"].values.astype(bool)
    la, lo = np.meshgrid(STATIC.lat.values, STATIC.lon.values, indexing="ij")
    # distance from the gauge to each masked cell's nearest point, km
    dy = np.maximum(np.abs(la - lat) - 0.0625, 0) * 111.2
    dx = np.maximum(np.abs(lo - lon) - 0.0625, 0) * 111.2 * np.cos(np.deg2rad(lat))
    dist = np.where(mask, np.hypot(dy, dx), np.inf)
    assert dist.min() < 2.0
    # and no masked cell lies downstream (south-west) of the gauge by more than a cell
    far = mask & (la < lat - 0.125) & (np.abs(lo - lon) < 0.25)
    assert not far.any()
