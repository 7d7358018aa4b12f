"""Virtual basins of any domain: the gunnison basin, store names, catalog entries of user domains,
what of the climate follows the domain, out-of-core lai_process, realism diagnostics.

The gunnison data come from the shared ``gunnison_basin`` fixture (tests/conftest.py: the small
variant, 14 x 24 cells, 1998-2005, built once per session); the UCRB's from ``small_basin``.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import xarray as xr

from vegviz import domains
from vegviz.contract import validate
from vegviz.data.static import load_static, missing_sources
from vegviz.data.virtual import VARIANTS, VirtualBasin, chain, open_virtual_basin, static_fingerprint, store_name
from vegviz.data.virtual import weather as wx
from vegviz.data.virtual.diagnostics import realism
from vegviz.physics import TrailingMean, TrailingSum, add_lai_process, calibrate_lai_range, iter_lai_process
from vegviz.physics.running import trailing_mean, trailing_sum

needs_sources = pytest.mark.skipif(bool(missing_sources()), reason="static sources (MCD12C1, ETOPO5) not installed")


@pytest.fixture(scope="module")
def gunnison(gunnison_basin) -> xr.Dataset:
    if missing_sources():
        pytest.skip("static sources (MCD12C1, ETOPO5) not installed")
    return gunnison_basin[1]


# ----------------------------------------------------------------------------- a second domain

def test_gunnison_basin_builds_validates_and_names_its_domain(gunnison):
    dom = domains.get("gunnison")
    assert validate(gunnison, grid=dom.grid) is gunnison
    assert (gunnison.sizes["lat"], gunnison.sizes["lon"]) == dom.shape == (14, 24)
    a = gunnison.attrs
    assert a["synthetic"] == 1 and a["domain"] == "gunnison" and a["domain_title"] == dom.title
    assert a["title"].startswith(f"SYNTHETIC virtual {dom.title}") and "UCRB" not in a["title"]
    assert a["source"].startswith(f"vegviz virtual {dom.title} (synthetic)")
    assert a["calibration"].startswith("UCRB-CALIBRATED CLIMATE") and "monsoon" in a["calibration"]
    assert "lai_process" in gunnison and gunnison["lai_true"].data.chunksize == (365, 14, 24)
    np.testing.assert_array_equal(gunnison["mask"].values, gunnison["mask"].values.astype(bool))


def test_ucrb_keeps_its_labels(small_basin):
    a = small_basin.attrs
    assert a["domain"] == "ucrb" and a["title"].startswith("SYNTHETIC virtual Upper Colorado River Basin")
    assert a["calibration"].startswith("this domain is the one the climate was calibrated on")
    assert re.fullmatch(r"[0-9a-f]{10}", a["static_key"])


def test_lai_true_follows_the_domains_land_cover(gunnison):
    peak = gunnison["lai_true"].resample(time="YS").max().mean("time").values
    lc, mask = gunnison["landcover"].values, gunnison["mask"].values == 1
    by_class = {c: peak[mask & (lc == c)].mean() for c in (8, 9, 10) if (mask & (lc == c)).sum() >= 3}
    assert by_class[9] > by_class[10] and by_class.get(8, by_class[9]) > by_class[10]
    # The same weather on other land cover: everything grassland levels the differences out.
    static = chain.check_static(_static_of(gunnison))
    frac = static["landcover_fraction"] * 0
    grass = static.assign(landcover_fraction=frac.where(frac["lc_class"] != 10, 1.0),
                          landcover=static["landcover"] * 0 + 10)
    real = next(VirtualBasin(static, 42).years("2001-01-01", "2001-12-31", spinup_years=1))["lai_true"]
    flat = next(VirtualBasin(grass, 42).years("2001-01-01", "2001-12-31", spinup_years=1))["lai_true"]
    np.testing.assert_array_equal(real["time"], flat["time"])
    jul = {k: v.sel(time="2001-07-15").values for k, v in (("real", real), ("grass", flat))}
    savanna = mask & (lc == 9)
    assert jul["real"][savanna].mean() > jul["grass"][savanna].mean() + 0.1
    assert np.std(jul["grass"][mask]) < np.std(jul["real"][mask])


def _static_of(ds: xr.Dataset) -> xr.Dataset:
    from vegviz.data.static import static_for

    return static_for(ds.attrs["domain"])


# ----------------------------------------------------------------------------- store names

@needs_sources
def test_store_name_holds_domain_variant_seed_version_and_static_key():
    name = store_name("small", 42)
    assert re.fullmatch(rf"virtual_ucrb-small-seed42-v{chain.GENERATOR_VERSION}-[0-9a-f]{{10}}\.zarr", name)
    other = store_name("small", 42, "gunnison")
    assert other.startswith("virtual_gunnison-small-seed42-") and other.split("-")[-1] != name.split("-")[-1]
    static = load_static()
    assert store_name("small", 42, key=static_fingerprint(chain.check_static(static))) == name
    changed = static.assign(elevation=static["elevation"] + 1.0)  # e.g. a rebuilt DEM
    assert static_fingerprint(changed) != static_fingerprint(static)
    assert store_name("small", 42, key=static_fingerprint(changed)) != name


# ----------------------------------------------------------------------------- catalog entries

def test_builtin_domains_have_catalog_entries():
    from vegviz.catalog import metadata, model_ready, open_catalog

    ready = model_ready()
    cat = open_catalog()
    for name in domains.BUILTIN:
        assert {f"virtual_{name}", f"virtual_{name}_small"} <= set(ready)
        assert cat._entries[f"virtual_{name}"].describe()["args"].get("domain", "ucrb") == name
        small = metadata(cat[f"virtual_{name}_small"])
        assert small["periods"] == metadata(cat["virtual_ucrb_small"])["periods"]
        assert metadata(cat[f"virtual_{name}"])["periods"]["test"] == ["2009-01-01", "2016-12-31"]


@needs_sources
def test_user_domains_get_entries_without_editing_yaml(tmp_path, monkeypatch):
    from vegviz import catalog
    from vegviz.training import Config

    monkeypatch.setenv("VEGVIZ_DATA_DIR", str(tmp_path))
    monkeypatch.setitem(VARIANTS, "small", ("2001-06-01", "2001-07-31"))  # a quick build
    monkeypatch.setattr(chain, "SPINUP_YEARS", 0)
    assert "virtual_box_small" not in catalog.model_ready()
    domains.add(domains.from_bbox("box", -108.4, 38.0, -108.0, 38.3, title="A box in Colorado"))
    ready = catalog.model_ready()
    assert ready[:2] == ["virtual_ucrb", "virtual_ucrb_small"] and ready[-2:] == ["virtual_box", "virtual_box_small"]
    entry = catalog.open_catalog()._entries["virtual_box_small"].describe()
    assert entry["args"]["domain"] == "box" and "A box in Colorado" in entry["description"]
    assert Config.for_data("virtual_box_small").periods.test == ("2005-01-01", "2005-12-31")
    ds = catalog.open_data("virtual_box_small", seed=3)
    assert ds.attrs["domain"] == "box" and ds.attrs["seed"] == 3 and ds.attrs["title"].startswith(
        "SYNTHETIC virtual A box in Colorado")
    assert ds.sizes["time"] == 61 and (ds.sizes["lat"], ds.sizes["lon"]) == domains.get("box").shape
    assert (tmp_path / store_name("small", 3, "box")).exists()
    domains.remove("box")
    assert "virtual_box" not in catalog.open_catalog() and "virtual_box" not in catalog.model_ready()
    # A domain made on the fly (not registered) keeps its own name, though its window is registered no more.
    adhoc = open_virtual_basin("small", domain=domains.from_bbox("adhoc", -108.4, 38.0, -108.0, 38.3, title="Ad hoc"))
    assert (adhoc.attrs["domain"], adhoc.attrs["domain_title"]) == ("adhoc", "Ad hoc")


# ----------------------------------------------------------------------------- what follows the domain

def _synthetic_static(lat, lon, classes: dict, elevation=1000.0) -> xr.Dataset:
    """Static fields on an NLDAS-2 window with one land cover class (or a {class: share} mix) everywhere."""
    codes = np.arange(17)
    frac = np.zeros((17, lat.size, lon.size), np.float32)
    for c, share in classes.items():
        frac[c] = share
    z = np.broadcast_to(np.asarray(elevation, np.float32), (lat.size, lon.size)).copy()
    return xr.Dataset(
        {"landcover_fraction": (("lc_class", "lat", "lon"), frac),
         "landcover": (("lat", "lon"), np.full(z.shape, max(classes, key=classes.get), np.int16)),
         "elevation": (("lat", "lon"), z), "mask": (("lat", "lon"), np.ones(z.shape, np.int8))},
        coords={"lc_class": codes, "lat": lat, "lon": lon})


LAT = 33.0625 + 0.125 * np.arange(6)


def test_the_monsoon_stays_in_the_south_west():
    lon = np.array([-121.9375, -117.9375, -115.0625, -110.0625, -103.0625, -97.0625])
    gen = wx.WeatherGenerator(_synthetic_static(LAT, lon, {10: 1.0}), seed=1)
    strength = gen.monsoon_strength[0] / wx.MONSOON_AMP  # 33 N: full strength by latitude
    # California and the Great Plains get none, Arizona all, the edges fade over 2 degrees.
    np.testing.assert_allclose(strength, [0, 0, 1 - 1.0625 / 2, 1, 1 - 0.9375 / 2, 0], rtol=1e-6)


def test_forests_and_croplands_set_a_precipitation_floor_grasslands_do_not():
    lon = -90.0625 + 0.125 * np.arange(8)
    totals = {}
    for name, cover in (("forest", {4: 1.0}), ("cropland", {12: 1.0}), ("grassland", {10: 1.0})):
        gen = wx.WeatherGenerator(_synthetic_static(LAT, lon, cover, elevation=200.0), seed=1)
        totals[name] = float(np.mean(gen.annual_precip)), float(np.mean(gen.wet_day_frequency))
    # (the same seed and grid give the same random pattern, so the ratios are those of the laws)
    assert totals["forest"][0] > 3.5 * totals["grassland"][0] and totals["cropland"][0] > 1.8 * totals["grassland"][0]
    assert totals["forest"][1] > totals["cropland"][1] > totals["grassland"][1] > 0.12


def test_the_floor_never_binds_on_the_ucrb():
    """The UCRB's numbers are those the generator was calibrated with: its floor stays below the law's 210 mm."""
    gen = wx.WeatherGenerator(load_static(), seed=42)
    assert 0 < gen.precip_floor.max() < wx.P_BASE - 50
    np.testing.assert_array_equal(gen.wetness, gen.height)
    assert (gen.monsoon_strength == (wx.MONSOON_AMP * np.clip(
        (wx.MONSOON_LAT_ZERO - gen.lat) / (wx.MONSOON_LAT_ZERO - wx.MONSOON_LAT_FULL), 0, 1)).astype("float32")).all()


def test_lowlands_follow_the_sea_level_climate_not_the_plateaus_lapse_rate():
    lat = 39.0625 + 0.125 * np.arange(4)
    lon = -77.0625 + 0.125 * np.arange(4)
    sea, top = (float(wx.WeatherGenerator(_synthetic_static(lat, lon, {4: 1.0}, elevation=z), seed=1)
                      .temperature(2000).mean()) for z in (0.0, wx.Z_LOWLAND))
    assert 12.5 < sea < 15.5  # Washington DC: 14.5 degC (the plateau's lapse rate would give 21.5)
    law = wx.T_REF - wx.LAPSE_RATE * (wx.Z_LOWLAND - wx.Z_REF) + wx.T_LAT_GRADIENT * (lat.mean() - wx.LAT_REF)
    assert abs(top - law) < 1.5  # continuous with the UCRB's law at 1150 m (up to the year's weather)


def test_dewpoints_stay_below_the_warmest_sea(monkeypatch):
    """Humid nights stop at a 30 degC dewpoint, however hot the lowlands (here 6 K hotter than the law)."""
    monkeypatch.setattr(wx, "T_SEA_REF", wx.T_SEA_REF + 6.0)
    lat, lon = 25.0625 + 0.125 * np.arange(4), -110.0625 + 0.125 * np.arange(4)
    gen = wx.WeatherGenerator(_synthetic_static(lat, lon, {7: 1.0}, elevation=0.0), seed=1)
    w = gen.year(2001)
    e = w.qair * gen.pressure / (0.622 + 0.378 * w.qair)  # kPa, inverting q = 0.622 e / (p - 0.378 e)
    dewpoint = 237.3 * np.log(e / 0.6108) / (17.27 - np.log(e / 0.6108))  # FAO-56 eq. 11 inverted
    assert w.tmin.max() > wx.TD_MAX + 1 and dewpoint.max() < wx.TD_MAX + 0.01


def test_sea_cells_are_at_sea_level():
    lon = -124.9375 + 0.125 * np.arange(4)
    static = _synthetic_static(LAT, lon, {0: 1.0}, elevation=-3000.0)  # open ocean, ETOPO5 gives the sea floor
    checked = chain.check_static(static)
    assert (checked["elevation"] == 0).all() and "sea floor" in checked["elevation"].attrs["comment"]
    gen = wx.WeatherGenerator(static, seed=1)
    assert (gen.elevation == 0).all() and np.allclose(gen.pressure, 101.3, atol=0.01)
    dry_below_sea = _synthetic_static(LAT, lon, {16: 1.0}, elevation=-60.0)  # Death Valley keeps its depth
    assert (chain.check_static(dry_below_sea)["elevation"] == -60).all()
    coast = _synthetic_static(LAT, lon, {0: 0.3, 10: 0.7}, elevation=-800.0)  # land, and the sea floor beside it
    assert (chain.check_static(coast)["elevation"] == 0).all()


# ----------------------------------------------------------------------------- out-of-core lai_process

@pytest.mark.parametrize("nan_share", [0.0, 0.05])
def test_running_windows_fed_in_blocks_equal_the_whole_record(nan_share):
    rng = np.random.default_rng(0)
    x = rng.gamma(0.5, 4.0, (400, 3, 2)).astype(np.float32)
    x[rng.random(x.shape) < nan_share] = np.nan
    if nan_share:
        x[150:170, 0, 0] = np.nan  # a gap longer than a window
    for window in (1, 21, 90):
        whole_sum, whole_n = trailing_sum(x, window)
        whole_mean = trailing_mean(x, window)
        for cuts in ([7, 200], [50, 51, 52, 300], [89, 90, 91, 179], list(range(13, 400, 13))):
            ts, tm = TrailingSum(window), TrailingMean(window)
            sums, counts, means = [], [], []
            for a, b in zip([0, *cuts], [*cuts, 400]):
                s, n = ts.push(x[a:b])
                sums.append(s)
                counts.append(np.broadcast_to(n, s.shape))
                means.append(tm.push(x[a:b]))
            sums, counts, means = (np.concatenate(v) for v in (sums, counts, means))
            np.testing.assert_array_equal(sums, whole_sum)  # bit for bit: the same order of additions
            np.testing.assert_array_equal(counts, np.broadcast_to(whole_n, x.shape))
            np.testing.assert_array_equal(means, whole_mean)


def test_streamed_lai_process_equals_the_in_memory_one_on_the_ucrb(small_basin):
    """The store's lai_process (built out of core, one year at a time) is bit for bit the in-memory one."""
    names = ["precip", "tair", "tmin", "vpd", "lai", "landcover", "elevation", "mask"]
    ds = small_basin[names].load()
    period = slice(small_basin.attrs["lai_process_calibration"].split("..")[0],
                   small_basin.attrs["lai_process_calibration"].split("..")[1])
    expected = add_lai_process(ds, calibration=period)["lai_process"].values
    np.testing.assert_array_equal(small_basin["lai_process"].values, expected)
    # Tiny budgets: blocks of 40 days and the calibration's observations read by blocks of rows.
    lazy = small_basin[names]
    per_day = 4 * ds.sizes["lat"] * ds.sizes["lon"] * 5
    attrs, blocks = iter_lai_process(lazy, calibration=period, max_bytes=40 * per_day)
    out = np.full(expected.shape, -1.0, np.float32)
    starts = []
    for start, stop, values in blocks:
        out[start:stop] = values
        starts.append(start)
    assert len(starts) > 70 and attrs["calibration_period"] == small_basin["lai_process"].attrs["calibration_period"]
    np.testing.assert_array_equal(out, expected)
    bounds = calibrate_lai_range(lazy, period, max_bytes=3 * 4 * 100 * ds.sizes["lon"] * 4)
    reference = calibrate_lai_range(ds, period)
    for v in reference.data_vars:
        np.testing.assert_array_equal(bounds[v].values, reference[v].values)


def test_pooled_fallback_is_the_same_by_blocks(small_basin):
    """When no cell has enough observations, the pooled percentiles do not depend on the blocks either."""
    ds = small_basin[["lai", "landcover"]].isel(lat=slice(0, 20)).sel(time=slice("1998", "2001")).load()
    sparse = ds.assign(lai=ds["lai"].where(ds["time"].dt.dayofyear < 10))  # <= 5 composites a cell
    a = calibrate_lai_range(sparse, slice("1998", "2001"))
    b = calibrate_lai_range(sparse, slice("1998", "2001"), max_bytes=30_000)  # by blocks of rows
    assert (a["lai_range_source"] == 3).all()
    for v in a.data_vars:
        np.testing.assert_array_equal(a[v].values, b[v].values)


# ----------------------------------------------------------------------------- realism

def test_realism_runs_on_gunnison(gunnison):
    table = realism(gunnison)
    values = table.set_index("quantity")["value"]
    filled = table[~table["target"].str.startswith("skipped")]
    assert np.isfinite(filled["value"]).all() and len(filled) >= 10
    valley = next(q for q in values.index if q.startswith("annual precipitation, valleys (lowest quarter"))
    mountain = next(q for q in values.index if q.startswith("annual precipitation, mountains (highest tenth"))
    assert values[mountain] > values[valley]
    assert 6 <= values["month of basin-mean peak LAI"] <= 8


def test_realism_says_why_a_flat_or_short_domain_skips_rows(gunnison):
    flat = gunnison.sel(time=slice("2001", "2002")).assign(elevation=gunnison["elevation"] * 0 + 1500.0)
    table = realism(flat).set_index("quantity")
    skipped = table[table["target"].str.startswith("skipped")]
    assert any("flat" in t for t in skipped["target"]) and any("whole year" in t for t in skipped["target"])
    assert skipped["value"].isna().all()
    with pytest.raises(ValueError, match="whole calendar year.*Fix"):
        realism(gunnison.sel(time=slice("2001-01-01", "2001-06-30")))
