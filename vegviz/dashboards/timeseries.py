"""Time series: the models against satellite LAI for a vegetation type (the study's panel d) and for one cell.

    TimeSeries()                         # inline in a notebook
    TimeSeries(lat=39.06, lon=-108.56)   # a cell set programmatically

The vegetation view is the mean over the basin cells of the chosen dominant type with
a band between the 25th and 75th percentiles across cells
(:func:`vegviz.evaluation.panels.vegetation_timeseries`); the cell view is
:func:`~vegviz.evaluation.panels.cell_timeseries` for the cell clicked on the small
land-cover map (or set with ``lat``/``lon``), with the forcing that drove it under it on a
linked time axis (:func:`~vegviz.evaluation.panels.cell_forcing`). The region may also be an
elevation band, a Pfafstetter sub-basin, a shape drawn on the map or the area above the chosen cell.

Series are read from the result's series store (:mod:`vegviz.evaluation.series_store`, built
on first use when the experiment did not make it), so that any period of any cell or region
redraws in well under a second on the full 36-year basin.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future
from functools import partial

import holoviews as hv
import numpy as np
import panel as pn
import param
import xarray as xr

from ..basemap import map_axes
from ..contract import IGBP_CLASSES, IGBP_COLORS
from .base import (Hint, ResultViewer, basemap_overlay, dominant_vegetation, frame_or_last, series_store,
                   stacked_panes)

__all__ = ["TimeSeries"]

STUDY_VEGETATION = "Open shrublands"  # the study's panel (d)
VEGETATION, ELEVATION, PFAFSTETTER, DRAWN, SUBBASIN = ("vegetation type", "elevation band", "sub-basin",
                                                       "drawn on the map", "sub-basin above the cell")
#: what the region's plots follow
REGION_PARAMS = ("region", "vegetation", "elevation", "subbasin", "drawn", "outlet", "period")
DRAW_HINT = ("Draw a region on the land-cover map: a box with the box-select tool, or a polygon with the "
             "polygon tool (click its corners, double-click the last).")


class _Prefetch:
    """Work for a background thread that starts ``DELAY`` s after it was asked for, so that the switch
    asking for it draws first (two cores: it would slow that switch). Claimed before it started, it
    never runs and :meth:`result` is None (the caller computes); once started, :meth:`result` waits."""

    DELAY = 0.5

    def __init__(self, pool, work):
        self._lock, self._claimed, self._started = threading.Lock(), threading.Event(), False
        self.future = pool.submit(self._run, work) if pool is not None else None

    @classmethod
    def done(cls, value):
        job = cls(None, None)
        job.future = Future()
        job.future.set_result(value)
        job._started = True
        return job

    def _run(self, work):
        if self._claimed.wait(self.DELAY):
            return None
        with self._lock:
            if self._claimed.is_set():
                return None
            self._started = True
        return work()

    def claim(self) -> bool:
        """Stop it if it has not started (True); False when it runs or ran."""
        with self._lock:
            if self._started:
                return False
            self._claimed.set()
            return True

    def result(self):
        """Its value; None when it never ran (claimed now if not started) or failed."""
        if self.claim():
            return None
        try:
            return self.future.result()
        except Exception:  # e.g. a series not in the store: the caller computes it from the grid
            return None


class TimeSeries(ResultViewer):
    """Models vs satellite LAI: mean over one vegetation type's cells (panel d) and one clicked cell."""

    vegetation = param.Selector(default=None, objects=[], allow_None=True, check_on_set=False,
                                doc="dominant vegetation type (at least 5 basin cells)")
    period = param.Selector(default="test", objects=["test", "validation", "train"],
                            doc="the result's own period (from its config)")
    region = param.Selector(default=VEGETATION, objects=[VEGETATION, ELEVATION, PFAFSTETTER, DRAWN, SUBBASIN],
                            doc="the region whose mean series and skill are shown: the chosen vegetation type's cells, "
                                "an elevation band, one of the basin's nine Pfafstetter sub-basins, a box or polygon "
                                "drawn on the land-cover map, or the sub-basin that drains through the chosen cell "
                                "(D8 routing on the data's elevation)")
    subbasin = param.Selector(default=None, objects=[], allow_None=True, check_on_set=False,
                              doc="the Pfafstetter sub-basin (level 1): the four largest tributaries of the main stem "
                                  "(2, 4, 6, 8, from the outlet up) and the main stem's areas between them (1, 3, 5, "
                                  "7; 9 the headwaters)")
    outlet = param.Tuple(default=None, allow_None=True, length=2, precedence=-1,
                         doc="(lat, lon) of the sub-basin's outlet: the chosen cell while that region is shown")
    elevation = param.Range(default=(0.0, 5000.0), doc="the elevation band (m) of the region")
    drawn = param.Dict(default=None, allow_None=True, precedence=-1,
                       doc="the shape drawn on the map: {'box': (west, south, east, north)} or "
                           "{'polygon': [(lon, lat), ...]}")
    lat = param.Number(default=None, allow_None=True, doc="latitude of the cell shown (cell centre or inside it)")
    lon = param.Number(default=None, allow_None=True, doc="longitude of the cell shown")

    map_width = 260
    #: the cell's plots sit right of the map; with the legend outside them the row fits a 1280-pixel window
    cell_width = 590
    _CACHE_KEEP = 16

    def __init__(self, **params):
        self._veg_codes: dict[str, int] = {}
        self._unit_names: dict[str, int] = {}
        self._units = None
        self._elements: OrderedDict[tuple, object] = OrderedDict()
        self.tap_stream: hv.streams.Tap | None = None
        self.box_stream: hv.streams.BoundsXY | None = None
        self.poly_stream: hv.streams.PolyDraw | None = None
        self.picker_pane = pn.pane.HoloViews(None)
        self._cell_alert = pn.pane.Alert("", alert_type="warning", visible=False, sizing_mode="stretch_width")
        self._region_alert = pn.pane.Alert("", alert_type="warning", visible=False, sizing_mode="stretch_width")
        self._last_drawn: dict[tuple, object] = {}
        self._store = None
        self._stats: OrderedDict[tuple, object] = OrderedDict()  # region statistics (futures) per region and period
        self._prefetch = None
        super().__init__(**params)
        self.param.watch(self._on_outlet, ["lat", "lon", "region"])
        self._on_outlet()

    def _prepare(self):
        obs = self.observations
        self._veg_codes = dominant_vegetation(obs)
        if not self._veg_codes:
            raise ValueError("no vegetation type has 5 or more cells in the basin")
        self._lat, self._lon = obs["lat"].values, obs["lon"].values
        self._mask = np.asarray(obs["mask"].transpose("lat", "lon").values) == 1
        self._lc = np.asarray(obs["landcover"].transpose("lat", "lon").values)
        names = list(self._veg_codes)
        self.param.vegetation.objects = names
        veg = self.vegetation if self.vegetation in names else (
            STUDY_VEGETATION if STUDY_VEGETATION in names else self._largest_type())
        z = np.asarray(obs["elevation"].transpose("lat", "lon").values, dtype=float)[self._mask]
        zmin, zmax = float(np.floor(np.nanmin(z) / 100) * 100), float(np.ceil(np.nanmax(z) / 100) * 100)
        self.param.elevation.bounds = (zmin, zmax)
        lo, hi = self.elevation
        band = (max(lo, zmin), min(hi, zmax)) if lo < zmax and hi > zmin and (lo, hi) != (0.0, 5000.0) else \
            (float(np.round(np.nanpercentile(z, 75), -1)), zmax)  # default: the highest quarter of the basin
        from ..evaluation.regions import subbasin_names, subbasins

        units = subbasins(obs)
        self._units = units.values
        self._unit_names = {name: u for u, name in subbasin_names(units).items()}
        self.param.subbasin.objects = list(self._unit_names)
        largest = max(self._unit_names, key=lambda n: int((self._units == self._unit_names[n]).sum()), default=None)
        updates = {"vegetation": veg, "elevation": band, "drawn": None,
                   "subbasin": self.subbasin if self.subbasin in self._unit_names else largest}
        if not self._inside(self.lat, self.lon):
            updates["lat"], updates["lon"] = self._central_cell(self._veg_codes[veg])
        self.param.update(**updates)
        self._elements.clear()
        for job in self._stats.values():
            job.claim()
        self._stats.clear()
        self._store = series_store(self.predictions, self.observations)  # built once per result: seconds
        self.picker_pane.object = self.picker()

    def _largest_type(self) -> str:
        return max(self._veg_codes, key=lambda n: int((self._mask & (self._lc == self._veg_codes[n])).sum()))

    def _inside(self, lat, lon) -> bool:
        if lat is None or lon is None:
            return False
        half = 0.5 * (abs(self._lat[1] - self._lat[0]) if self._lat.size > 1 else 0.125)
        return bool(self._lat[0] - half <= lat <= self._lat[-1] + half
                    and self._lon[0] - half <= lon <= self._lon[-1] + half)

    def _central_cell(self, code: int) -> tuple[float, float]:
        """The cell of type ``code`` nearest to the centroid of that type's basin cells: a typical default."""
        ii, jj = np.nonzero(self._mask & (self._lc == code))
        k = int(np.argmin((ii - ii.mean()) ** 2 + (jj - jj.mean()) ** 2))
        return float(self._lat[ii[k]]), float(self._lon[jj[k]])

    # --------------------------------------------------------------- data
    def period_dates(self) -> tuple[str, str] | list[int]:
        if self.period not in self.periods:
            raise ValueError(f"the result has no {self.period!r} period; it has {sorted(self.periods)}")
        return self.periods[self.period]

    def _cached(self, key, build):
        key = (self.result, self.period, *key)
        if key in self._elements:
            self._elements.move_to_end(key)
            return self._elements[key]
        el = build()
        self._elements[key] = el
        while len(self._elements) > self._CACHE_KEEP:
            self._elements.popitem(last=False)
        return el

    def _vegetation_code(self) -> int:
        if self.vegetation not in self._veg_codes:
            raise ValueError(f"unknown vegetation type {self.vegetation!r}; choose one of {list(self._veg_codes)}")
        return self._veg_codes[self.vegetation]

    def vegetation_element(self):
        """Panel (d): the models and satellite LAI averaged over the chosen vegetation type's cells."""
        from ..evaluation.panels import vegetation_timeseries

        code = self._vegetation_code()
        return self._cached(("vegetation", code), lambda: vegetation_timeseries(
            self.predictions, self.observations, code, period=self.period_dates(), period_name=self.period,
            width=900, height=300, store=self._store))

    def region_cells(self) -> np.ndarray:
        """(lat, lon) selection of the chosen region's basin cells."""
        from ..evaluation.regions import region_cells

        if self.region == VEGETATION:
            return region_cells(self.observations, vegetation=self._vegetation_code())
        if self.region == ELEVATION:
            return region_cells(self.observations, elevation=self.elevation)
        if self.region == SUBBASIN:
            return self._subbasin()[0]
        if self.region == PFAFSTETTER:
            if self.subbasin not in self._unit_names:
                raise ValueError(f"unknown sub-basin {self.subbasin!r}; choose one of {list(self._unit_names)}")
            return self._mask & (self._units == self._unit_names[self.subbasin])
        if not self.drawn:
            raise ValueError(f"no region drawn yet. {DRAW_HINT}")
        return region_cells(self.observations, **self.drawn)

    def _subbasin(self) -> tuple[np.ndarray, tuple[float, float]]:
        """(basin cells draining through the outlet, the snapped outlet (lat, lon)), cached per outlet."""
        from ..data.basin import delineate

        if self.outlet is None:
            raise ValueError("no cell chosen. Fix: click a cell on the map: its sub-basin is the region")
        key = (self.result, *self.outlet)
        if getattr(self, "_subbasin_cache", (None,))[0] != key:
            ds = delineate(self.observations["elevation"].load(), outlet=tuple(self.outlet))
            cells = (ds["catchment"].transpose("lat", "lon").values == 1) & self._mask
            self._subbasin_cache = (key, (cells, (ds.attrs["outlet_lat"], ds.attrs["outlet_lon"])))
        return self._subbasin_cache[1]

    def _on_outlet(self, *_):
        if self.region == SUBBASIN and self.lat is not None and self.lon is not None:
            self.outlet = (float(self.lat), float(self.lon))

    def region_name(self) -> str:
        from ..basemap import degrees
        from ..evaluation.regions import describe_region

        if self.region == VEGETATION:
            return str(self.vegetation)
        if self.region == SUBBASIN:
            lat, lon = self._subbasin()[1]
            return f"sub-basin above {degrees(lat, 'lat')}, {degrees(lon, 'lon')}"
        if self.region == ELEVATION:
            return describe_region(elevation=self.elevation)
        if self.region == PFAFSTETTER:
            return f"sub-basin {self.subbasin}"
        return describe_region(**(self.drawn or {}))

    def _region_key(self) -> tuple:
        if self.region == VEGETATION:
            return ("vegetation", self.vegetation)
        if self.region == ELEVATION:
            return ("elevation", tuple(self.elevation))
        if self.region == SUBBASIN:
            return ("subbasin", self.outlet)
        if self.region == PFAFSTETTER:
            return ("pfafstetter", self.subbasin)
        return ("drawn", repr(self.drawn))

    def region_element(self):
        """The chosen region's mean series: panel (d) for a vegetation type, else the band or drawn region's."""
        from ..evaluation.panels import region_timeseries

        if self.region == VEGETATION:
            return self.vegetation_element()
        cells = self.region_cells()
        return self._cached(("region", *self._region_key()), lambda: region_timeseries(
            self.predictions, self.observations, cells, self.region_name(), period=self.period_dates(),
            period_name=self.period, width=900, height=300, statistics=self.region_statistics(cells)))

    def region_statistics(self, cells: np.ndarray) -> xr.Dataset:
        """The region's daily statistics over the period (:func:`vegviz.evaluation.regions.region_statistics`).

        With a series store, the region's other periods are then worked out in a background thread
        (reading Zarr only, never the HDF5 grid), so that switching the period redraws without reading;
        it starts once this switch has drawn, and a new region cancels what has not started."""
        from ..evaluation.regions import region_statistics

        def compute(name: str, grid: bool = True):
            return region_statistics(self.predictions, self.observations, cells, self.periods[name],
                                     store=self._store, grid=grid)

        region = (self.result, *self._region_key())
        for key, job in list(self._stats.items()):
            if key[:-1] != region and job.claim():
                del self._stats[key]
        job = self._stats.pop((*region, self.period), None)
        stats = job.result() if job is not None else None  # None: not started (then dropped) or failed
        if stats is None:
            stats = compute(self.period)
        self._stats[(*region, self.period)] = _Prefetch.done(stats)
        if self._store is not None:
            for name in self.param.period.objects:
                if (*region, name) not in self._stats and name in self.periods:
                    self._stats[(*region, name)] = _Prefetch(self._pool(), partial(compute, name, False))
        while len(self._stats) > self._CACHE_KEEP:
            self._stats.pop(next(iter(self._stats))).claim()
        return stats

    def _pool(self):
        if self._prefetch is None:
            from concurrent.futures import ThreadPoolExecutor

            self._prefetch = ThreadPoolExecutor(1, thread_name_prefix="vegviz-region-prefetch")
        return self._prefetch

    def region_scores(self):
        """Per-cell scores of the models and references over the period, inside the region only."""
        from ..evaluation.regions import restrict
        from .skill import cached_scores

        path = self._results.get(self.result, {}).get("path")
        scores = cached_scores(self.result, self.predictions, self.observations, self.period, self.period_dates(),
                               path, train_period=self.periods.get("train", "train"))
        return restrict(scores, self.region_cells())

    def region_skill_element(self):
        """The distribution of the region's per-cell NSE, one density per trained model."""
        from ..evaluation.panels import nse_density

        def build():
            el = nse_density(self.region_scores(), self.models, width=520)
            return el.opts(title=f"NSE over the cells of {self.region_name()}, {self.period}")

        return self._cached(("skill", *self._region_key()), build)

    def cell_element(self):
        """The models and satellite LAI at the chosen cell (``lat``, ``lon``)."""
        from ..evaluation.panels import cell_timeseries

        if self.lat is None or self.lon is None:
            raise ValueError("no cell chosen. Fix: click a cell on the map, or set lat and lon")
        return self._cached(("cell", round(self.lat, 6), round(self.lon, 6)), lambda: cell_timeseries(
            self.predictions, self.observations, self.lat, self.lon, period=self.period_dates(),
            period_name=self.period, width=self.cell_width, height=260, store=self._store))

    def forcing_element(self):
        """The forcing at the chosen cell (precipitation, temperature, VPD, radiation), one panel each."""
        from ..evaluation.panels import cell_forcing

        if self.lat is None or self.lon is None:
            raise ValueError("no cell chosen. Fix: click a cell on the map, or set lat and lon")
        return self._cached(("forcing", round(self.lat, 6), round(self.lon, 6)), lambda: cell_forcing(
            self.observations, self.lat, self.lon, period=self.period_dates(), width=self.cell_width,
            store=self._store))

    # --------------------------------------------------------------- the cell picker
    def _picker_frame(self, lat=None, lon=None, **_region):
        """The region's cells outlined (its name on hover), and a cross on the chosen cell.

        One NaN-separated line with a fixed label: a new label would make HoloViews build a new plot
        for it, and a Path of many rings costs it ~0.4 s to split, at every region change."""
        from ..basemap import mask_rings
        from .base import _joined, _lines

        try:
            sel = self.region_cells()
            name = self.region_name()
        except ValueError:  # nothing drawn yet
            sel, name = np.zeros_like(self._mask), "no region"
        rings = mask_rings(sel.astype("int8"), self._lat, self._lon)
        merged = _joined([{"lon": r[:, 0], "lat": r[:, 1]} for r in rings])
        outline = _lines([{**merged, "region": name}], "region", "region", color="red", line_width=2,
                         tools=["hover"])
        pts = [] if lat is None or lon is None else [(lon, lat)]
        cross = hv.Points(pts, kdims=["lon", "lat"]).opts(marker="x", size=14, color="black", line_width=3)
        return outline * cross

    def picker(self):
        """A small land-cover map; clicking a cell (``tap_stream``) chooses it."""
        codes = np.where(self._mask, self._lc, np.nan).astype(float)
        cmap = [IGBP_COLORS.get(k, "#ffffff") for k in range(17)]
        lc = hv.Image((self._lon, self._lat, codes), kdims=["lon", "lat"], vdims=["land cover"]).opts(
            cmap=cmap, clim=(-0.5, 16.5), color_levels=17, tools=["hover", "tap", "box_select"],
            frame_width=self.map_width, title="land cover: click a cell, draw a region", alpha=0.8,
            **map_axes(self._lat, value="land cover", names=IGBP_CLASSES))
        watched = [p for p in REGION_PARAMS if p != "period"] + ["lat", "lon"]
        dyn = hv.DynamicMap(self._picker_frame, streams=[hv.streams.Params(self, watched)])
        self.tap_stream = hv.streams.Tap(source=lc, x=None, y=None)
        self.tap_stream.add_subscriber(self._on_tap)
        self.box_stream = hv.streams.BoundsXY(source=lc, bounds=None)
        self.box_stream.add_subscriber(self._on_box)
        shape = hv.Polygons([], kdims=["lon", "lat"]).opts(fill_alpha=0.1, color="#1f78b4", line_width=2)
        self.poly_stream = hv.streams.PolyDraw(source=shape, num_objects=1, drag=False, show_vertices=True)
        self.poly_stream.add_subscriber(self._on_polygon)
        return lc * basemap_overlay(self.observations) * shape * dyn

    def _on_box(self, bounds=None, **_):
        if bounds is not None and self.ready and None not in bounds and bounds[0] != bounds[2]:
            self.param.update(drawn={"box": tuple(float(b) for b in bounds)}, region=DRAWN)

    def _on_polygon(self, data=None, **_):
        xs, ys = (data or {}).get("xs") or [], (data or {}).get("ys") or []
        if self.ready and xs and len(xs[-1]) >= 3:
            self.param.update(drawn={"polygon": [(float(x), float(y)) for x, y in zip(xs[-1], ys[-1])]},
                              region=DRAWN)

    def _on_tap(self, x=None, y=None, **_):
        if x is not None and y is not None and self.ready and self._inside(y, x):
            i, j = int(np.abs(self._lat - y).argmin()), int(np.abs(self._lon - x).argmin())
            self.param.update(lat=float(self._lat[i]), lon=float(self._lon[j]))

    # --------------------------------------------------------------- views
    def _safe(self, build, what: str):
        if not self.ready:
            return pn.pane.Markdown("")
        try:
            return build()
        except Exception as e:  # shown in the page; the rest stays usable
            return pn.pane.Alert(f"Could not draw {what}: {type(e).__name__}: {e}", alert_type="warning",
                                 sizing_mode="stretch_width")

    @param.depends("_loaded")
    def view_vegetation(self):
        """The region's mean series and its NSE density. Built once per result: a new region or period
        updates the drawn plots in place (DynamicMaps), as the cell's do."""
        def build():
            self._region_alert.visible = False
            self._last_drawn = {k: v for k, v in self._last_drawn.items() if k[0] == "cell"}
            stream = hv.streams.Params(self, list(REGION_PARAMS))
            series = hv.DynamicMap(partial(self._panel, ("region", 0), self._region_alert), streams=[stream])
            skill = hv.DynamicMap(partial(self._panel, ("region", 1), self._region_alert), streams=[stream])
            return pn.Column(self._region_alert, pn.pane.HoloViews(series), pn.pane.HoloViews(skill, linked_axes=False))

        return self._safe(build, "the region's series")

    @param.depends("_loaded")
    def view_cell(self):
        """The cell's LAI with its forcing under it, their time axes linked. Built once per result: a new
        cell or period updates the drawn plots in place (DynamicMaps), about four times faster than new ones."""
        def build():
            n = 1 + len(self.forcing_element())
            self._cell_alert.visible = False
            self._last_drawn = {k: v for k, v in self._last_drawn.items() if k[0] != "cell"}
            stream = hv.streams.Params(self, ["lat", "lon", "period"])
            maps = [hv.DynamicMap(partial(self._panel, ("cell", k), self._cell_alert), streams=[stream])
                    for k in range(n)]
            return pn.Column(self._cell_alert, stacked_panes(*maps))

        return self._safe(build, "the cell's series")

    def _element(self, key: tuple):
        """The element of a dynamic panel: ("region", 0) series, ("region", 1) skill, ("cell", k) the cell's
        stack (0: LAI, then the forcing)."""
        if key[0] == "cell":
            return [self.cell_element(), *self.forcing_element()][key[1]]
        if self.region == DRAWN and not self.drawn:
            raise Hint(DRAW_HINT)
        return self.region_element() if key[1] == 0 else self.region_skill_element()

    def _panel(self, key: tuple, alert: pn.pane.Alert, **_):
        """A dynamic panel's element; on an error (or while a region is still to be drawn) the last drawn
        one stays, under an alert that names the error (or says how to draw)."""
        what = "the region" if key[0] == "region" else "the cell's series"
        return frame_or_last(lambda: self._element(key), key, self._last_drawn, alert, what,
                             clears_alert=key[1] == 0)

    def cell_layout(self):
        """The chosen cell's LAI with its forcing under it (one layout: linked time axes)."""
        return (self.cell_element() + self.forcing_element()).cols(1)

    def cell_frame(self):
        """The chosen cell's series as a table (what :meth:`cell_layout` draws): one row per day."""
        from ..evaluation.series import cell_series, series_frame

        return series_frame(cell_series(self.predictions, self.observations, self.lat, self.lon,
                                        period=self.period_dates(), store=self._store))

    def downloads(self) -> list:
        """Buttons for the cell's series (CSV), the region's predictions (NetCDF) and the figures (PNG, SVG)."""
        from .exports import (cell_file_name, csv_file, download, figure_downloads, file_name, netcdf_file,
                              predictions_subset)

        def cell_name():
            return cell_file_name(self.result, self.lat, self.lon, self.period)

        def region_name():
            return file_name(self.result, self.region_name(), self.period)

        def subset():
            ds = predictions_subset(self.predictions, self.observations, self.models, self.period_dates(),
                                    cells=self.region_cells())
            ds.attrs["region"] = f"{self.region_name()}; {ds.attrs['region']}"
            return region_name() + ".nc", netcdf_file(ds)

        return [
            download("Cell CSV", lambda: (cell_name() + ".csv", csv_file(self.cell_frame()))),
            *figure_downloads("Cell", self.cell_layout, cell_name),
            download("Region NetCDF", subset),
            *figure_downloads("Region", self.region_element, region_name),
        ]

    def _content(self):
        from .exports import download_row

        return pn.Column(
            download_row(self.downloads()),
            pn.panel(self.view_vegetation, loading_indicator=True),
            pn.Row(self.picker_pane, pn.panel(self.view_cell, loading_indicator=True)),
            sizing_mode="stretch_width",
        )

    def _region_widgets(self) -> list:
        """The vegetation type, the elevation band and the sub-basin, each shown only while its region is chosen."""
        veg = pn.widgets.Select.from_param(self.param.vegetation, label="vegetation", width=200)
        band = pn.widgets.EditableRangeSlider.from_param(self.param.elevation, name="elevation band (m)", width=220,
                                                         step=50)
        unit = pn.widgets.Select.from_param(self.param.subbasin, label="sub-basin (Pfafstetter)", width=260)

        def show(*_):
            veg.visible, band.visible = self.region == VEGETATION, self.region == ELEVATION
            unit.visible = self.region == PFAFSTETTER

        show()
        self.param.watch(show, "region")
        return [veg, band, unit]

    def _controls(self):
        return [
            *super()._controls(),
            pn.widgets.Select.from_param(self.param.region, label="region", width=150),
            *self._region_widgets(),
            pn.widgets.RadioButtonGroup.from_param(self.param.period, label="period"),
        ]
