"""Regions of a basin (a box, a polygon, an elevation band, a vegetation type) and the Time series tab's region
view: its mean series, its skill distribution and its download, on the shared tiny experiment."""
from __future__ import annotations


import holoviews as hv
import numpy as np
import panel as pn
import pytest
import xarray as xr

from vegviz.dashboards import TimeSeries
from vegviz.dashboards.timeseries import DRAW_HINT, DRAWN, ELEVATION
from vegviz.evaluation import describe_region, region_cells, restrict


@pytest.fixture(scope="module")
def runs_dir(tiny_experiment):
    return tiny_experiment.path.parent


@pytest.fixture(scope="module")
def obs(tiny_experiment):
    from vegviz.dashboards import sources

    return sources.observations_for(tiny_experiment.predictions).load()


def test_region_cells_combine_criteria_inside_the_basin(obs):
    inside = obs["mask"].values == 1
    lat, lon = obs["lat"].values, obs["lon"].values
    half = 0.0625
    box = (lon[10] - half / 2, lat[5] - half / 2, lon[30] + half / 2, lat[20] + half / 2)
    by_box = region_cells(obs, box=box)
    expected = np.zeros_like(inside)
    expected[5:21, 10:31] = True
    np.testing.assert_array_equal(by_box, expected & inside)
    # the same rectangle as a polygon, and a triangle that holds about half of it
    w, s, e, n = box
    np.testing.assert_array_equal(region_cells(obs, polygon=[(w, s), (e, s), (e, n), (w, n)]), by_box)
    tri = region_cells(obs, polygon=[(w, s), (e, s), (w, n)])
    assert (tri <= by_box).all() and 0.3 < tri.sum() / by_box.sum() < 0.7
    z = obs["elevation"].values
    band = region_cells(obs, elevation=(3000, 2500))  # either order
    np.testing.assert_array_equal(band, inside & (z >= 2500) & (z <= 3000))
    both = region_cells(obs, box=box, elevation=(2500, 3000), vegetation=7)
    np.testing.assert_array_equal(both, by_box & band & (obs["landcover"].values == 7))
    with pytest.raises(ValueError, match="three or more"):
        region_cells(obs, polygon=[(w, s), (e, n)])
    assert describe_region(box=(-110, 38, -108.5, 40)) == "box 110°W-108.5°W, 38°N-40°N"
    assert describe_region(elevation=(3000, 2500)) == "elevation 2500-3000 m"


def test_an_elevation_band_shows_its_mean_series_and_skill(runs_dir):
    t = TimeSeries()
    pn.panel(t).get_root()
    zmin, zmax = t.param.elevation.bounds
    assert zmin < t.elevation[0] < t.elevation[1] == zmax  # by default the highest quarter of the basin
    t.param.update(region=ELEVATION, elevation=(2000.0, 2600.0))
    obs, pred = t.observations, t.predictions
    sel = (obs["mask"] == 1) & (obs["elevation"] >= 2000) & (obs["elevation"] <= 2600)
    el = t.region_element()
    assert el.opts.get().kwargs["title"].startswith(f"elevation 2000-2600 m ({int(sel.sum())} cells): mean LAI")
    start, end = t.period_dates()
    mean = next(c for c in el.traverse(lambda x: x, [hv.Curve]) if c.label == "lstm").dimension_values("LAI")
    direct = pred["lstm"].sel(time=slice(start, end)).astype("float64").where(sel).mean(("lat", "lon")).values
    # the page averages n float32 LAI values (all positive): a summation in any order is off by at most n
    # unit roundoffs of float32 (naive summation's bound; pairwise or SIMD orders stay well inside it)
    n = int(sel.sum())
    np.testing.assert_allclose(mean, direct, rtol=(n + 1) * np.finfo(np.float32).eps / 2)
    # the skill distribution covers the band's scored cells only
    scores = t.region_scores()
    nse = scores["nse"].sel(model="lstm").values
    assert np.isfinite(nse).sum() <= int(sel.sum()) and not np.isfinite(nse[~sel.values]).any()
    dens = t.region_skill_element()
    assert "elevation 2000-2600 m" in dens.opts.get().kwargs["title"]
    assert {d.label.split(" (")[0] for d in dens} == set(t.models)
    # the band's predictions download holds the band's cells only
    b = {x.label: x for x in t.downloads()}["Region NetCDF"]
    data = b.callback().getvalue()
    assert b.filename == f"tiny_elevation-2000-2600-m_{t.period}.nc"
    path = runs_dir / "band.nc"
    path.write_bytes(data)
    with xr.open_dataset(path) as ds:
        finite = np.isfinite(ds["lstm"].isel(time=0).values)
        np.testing.assert_array_equal(finite, sel.values & np.isfinite(pred["lstm"].sel(time=ds.time[0]).values))
        assert ds.attrs["region"].startswith("elevation 2000-2600 m")
    path.unlink()


def test_a_box_or_polygon_drawn_on_the_map_becomes_the_region(runs_dir):
    t = TimeSeries()
    pn.panel(t).get_root()
    t.region = DRAWN
    assert t._region_alert.visible and DRAW_HINT in t._region_alert.object  # says how to draw one
    lat, lon = t._lat, t._lon
    t.box_stream.event(bounds=(float(lon[10]), float(lat[5]), float(lon[30]), float(lat[20])))
    assert t.region == DRAWN and t.drawn == {"box": (float(lon[10]), float(lat[5]), float(lon[30]), float(lat[20]))}
    n_box = int(t.region_cells().sum())
    assert n_box > 20 and f"({n_box} cells): mean LAI" in t.region_element().opts.get().kwargs["title"]
    t.poly_stream.event(data={"xs": [[float(lon[10]), float(lon[30]), float(lon[10])]],
                              "ys": [[float(lat[5]), float(lat[5]), float(lat[20])]]})
    assert list(t.drawn) == ["polygon"] and 0 < t.region_cells().sum() < n_box
    assert t.region_name() == "drawn polygon (3 vertices)"
    # the picker outlines the region
    outline = t._picker_frame(lat=t.lat, lon=t.lon).get(0)
    assert set(outline.dimension_values("region")) == {"drawn polygon (3 vertices)"}  # its name on hover
    cells = t.region_cells()
    lon_c, lat_c = np.meshgrid(t._lon, t._lat)
    (x0, x1), (y0, y1) = outline.range("lon"), outline.range("lat")  # the outline runs along the cells' edges
    assert np.isclose(x0, lon_c[cells].min() - 0.0625) and np.isclose(x1, lon_c[cells].max() + 0.0625)
    assert np.isclose(y0, lat_c[cells].min() - 0.0625) and np.isclose(y1, lat_c[cells].max() + 0.0625)
    # a box outside the basin: the view says so, and the page stays usable
    t.box_stream.event(bounds=(-130.0, 10.0, -129.0, 11.0))
    assert t._region_alert.visible and "holds no basin cell" in t._region_alert.object
    scores = restrict(t.region_scores(), t.region_cells())
    assert not np.isfinite(scores["nse"].values).any()


def test_the_sub_basin_above_the_chosen_cell(runs_dir):
    from vegviz.data.basin import delineate
    from vegviz.dashboards.timeseries import SUBBASIN

    t = TimeSeries()
    pn.panel(t).get_root()
    gj = (39.0625, -108.5625)  # Grand Junction: the Colorado River below its Gunnison confluence
    t.param.update(region=SUBBASIN, lat=gj[0], lon=gj[1])
    assert t.outlet == gj
    ref = delineate(t.observations["elevation"].load(), outlet=gj)
    expected = (ref["catchment"].values == 1) & (t.observations["mask"].values == 1)
    np.testing.assert_array_equal(t.region_cells(), expected)
    n = int(expected.sum())
    assert 100 < n < int((t.observations["mask"].values == 1).sum())  # part of the basin, not all of it
    name = t.region_name()
    assert name.startswith("sub-basin above 39.") and "°W" in name
    assert t.region_element().opts.get().kwargs["title"].startswith(f"{name} ({n} cells): mean LAI")
    # a cell upstream drains a part of that sub-basin
    up = (float(t._lat[np.nonzero(expected)[0].max()]), float(t._lon[np.nonzero(expected)[1][
        np.nonzero(expected)[0].argmax()]]))
    t.param.update(lat=up[0], lon=up[1])
    assert t.outlet == up and (t.region_cells() <= expected).all() and t.region_cells().sum() < n
    # in another region mode a click leaves the outlet alone
    t.region = ELEVATION
    t.param.update(lat=gj[0], lon=gj[1])
    assert t.outlet == up


def test_pfafstetter_sub_basins_follow_the_rivers(obs):
    """Level-1 Pfafstetter units on the data's own elevation (real ETOPO5 under the virtual basin): checked
    against where well-known towns drain."""
    from vegviz.evaluation import subbasin_names, subbasins

    units = subbasins(obs)
    u, mask = units.values, obs["mask"].values == 1
    assert not (u[~mask] > 0).any() and set(np.unique(u)) <= set(range(10))
    assert (u > 0).sum() > 0.95 * mask.sum()  # nearly every basin cell drains to the gauge on the 1/8 degree grid
    assert abs(units.attrs["outlet_lat"] - 36.865) < 0.3 and abs(units.attrs["outlet_lon"] + 111.588) < 0.3

    def unit(lat, lon):
        return int(units.sel(lat=lat, lon=lon, method="nearest"))

    # the main stem follows the larger branch: the Green above its Colorado confluence, so
    assert unit(42.87, -109.86) == 9  # Pinedale, WY, upper Green: the headwaters of the main stem
    assert unit(36.73, -108.21) == unit(37.27, -107.88) == 2  # Farmington, Durango: the San Juan, joining lowest
    assert unit(39.06, -108.56) == unit(38.54, -106.93) == 4  # Grand Junction, Gunnison: the Colorado
    assert unit(40.04, -107.91) in (6, 8)  # Meeker: the White, joining the Green higher up
    names = subbasin_names(units)
    assert names[9] == "9: headwaters of the main stem" and names[4].startswith("4: tributary joining at ")
    np.testing.assert_array_equal(region_cells(obs, subbasin=4), u == 4)
    with pytest.raises(ValueError, match="1-9"):
        region_cells(obs, subbasin=12)
    from vegviz.data.basin import pfafstetter_units

    with pytest.raises(ValueError, match="needs an outlet"):
        pfafstetter_units(obs["elevation"])


def test_a_pfafstetter_sub_basin_is_a_region_of_the_time_series_tab(runs_dir):
    from vegviz.dashboards.timeseries import PFAFSTETTER

    t = TimeSeries()
    pn.panel(t).get_root()
    four = next(n for n in t.param.subbasin.objects if n.startswith("4:"))
    t.param.update(region=PFAFSTETTER, subbasin=four)
    cells = t.region_cells()
    assert cells.sum() > 100 and not t._region_alert.visible
    assert t.region_element().opts.get().kwargs["title"].startswith(f"sub-basin {four} ({int(cells.sum())} cells)")
    scores = t.region_scores()
    assert not np.isfinite(scores["nse"].values[:, ~cells]).any()
    b = {x.label: x for x in t.downloads()}["Region NetCDF"]
    b.callback()
    assert b.filename.startswith("tiny_sub-basin-4-tributary-joining-at-") and b.filename.endswith(f"_{t.period}.nc")


def test_the_redrawn_plots_take_the_new_datas_axis_ranges(runs_dir):
    """The region's and the cell's plots are updated in place: their axes must follow each new frame."""
    from bokeh.document import Document
    from bokeh.models import Plot

    t = TimeSeries()
    root = pn.panel(t).get_root(Document())

    def plot(prefix):
        return next(p for p in root.select({"type": Plot}) if p.title and p.title.text.startswith(prefix))

    def top(el):
        return max(float(np.nanmax(c.dimension_values(d))) for c in el.traverse(lambda x: x, [hv.Curve, hv.Area])
                   for d in c.vdims)

    types = t.param.vegetation.objects
    peaks = {}
    for veg in types:  # the type whose series peaks highest, drawn after the first one
        t.vegetation = veg
        peaks[veg] = top(t.region_element())
    high = max(peaks, key=peaks.get)
    t.vegetation = min(peaks, key=peaks.get)
    t.vegetation = high
    y = plot(high).y_range
    assert y.end >= peaks[high] > y.start  # the highest band and curve are inside the drawn range
    ii, jj = np.nonzero(t._mask)
    for k in (len(ii) // 5, len(ii) // 2):  # two cells; the second one's range, not the first's
        t.param.update(lat=float(t._lat[ii[k]]), lon=float(t._lon[jj[k]]))
    cell = t.cell_element()
    lai = [c for c in cell.traverse(lambda x: x, [hv.Curve])]
    lo = min(float(np.nanmin(c.dimension_values("LAI"))) for c in lai)
    hi = max(float(np.nanmax(c.dimension_values("LAI"))) for c in lai)
    y = plot("cell ").y_range
    assert y.start <= lo and y.end >= hi and (y.end - y.start) < 2 * (hi - lo) + 0.5
    t.period = "validation"  # the time axis follows the period
    start = np.datetime64(t.period_dates()[0], "D")
    assert abs(np.datetime64(plot("cell ").x_range.start, "D") - start) < np.timedelta64(40, "D")
