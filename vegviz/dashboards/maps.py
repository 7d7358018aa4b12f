"""Daily LAI maps: satellite, a model's simulation and their difference, with a date slider and a player.

    LaiMaps()                       # inline in a notebook
    LaiMaps().servable()            # in a served notebook or script

Moving the date must stay fast on the full 36-year basin (13149 days). So nothing is
re-rendered per date: the three maps are drawn once per result with HoloViews, and a
date move writes the new arrays and titles straight into the drawn Bokeh data sources
(registered through HoloViews plot hooks). The storage chunk (365 days) around the
date is held in memory per variable, so a date inside it is a numpy slice; the
basemap and land-cover outlines are built once per grid (module-level caches).
:meth:`LaiMaps.render_date` is the server-side work of one slider move, for benchmarks.

The shared base, :class:`~vegviz.dashboards.base.ResultViewer`, lives in :mod:`vegviz.dashboards.base`.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import weakref
from collections import OrderedDict
from functools import partial

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the bokeh options used below)
import numpy as np
import pandas as pd
import panel as pn
import param
import xarray as xr

from ..basemap import map_axes
from .base import (ResultViewer, _as_date, _round_up, basemap_overlay, composite_counts, dominant_vegetation,
                   in_server, landcover_outlines, result_periods, series_store, stacked_panes)

__all__ = ["LaiMaps", "ResultViewer", "basemap_overlay", "composite_counts", "dominant_vegetation",
           "landcover_outlines", "result_periods"]

LAI_CMAP = "YlGn"
DIFF_CMAP = "BrBG"
#: the height a toolbar above a plot takes
TOOLBAR_HEIGHT = 30


def map_size(lat, lon, frame_width: int, *, colorbar: bool = True) -> tuple[int, int]:
    """(width, height) in pixels of a lon/lat map whose frame is ``frame_width`` wide, cells shown
    at their true shape (a degree of longitude is cos(latitude) of a degree of latitude)."""
    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    span_lat = lat.max() - lat.min() + (abs(lat[1] - lat[0]) if lat.size > 1 else 0.125)
    span_lon = lon.max() - lon.min() + (abs(lon[1] - lon[0]) if lon.size > 1 else 0.125)
    frame_height = frame_width * span_lat / (span_lon * np.cos(np.deg2rad(lat.mean())))
    return int(frame_width + 70 + (95 if colorbar else 0)), int(round(frame_height)) + 75


class _Blocks:
    """One (time, lat, lon) variable read a storage chunk at a time and kept in memory.

    A date inside a loaded chunk (a year for the vegviz stores) is then a numpy slice;
    the last ``keep`` chunks stay loaded, so stepping back over a year boundary is free.
    """

    def __init__(self, da: xr.DataArray, keep: int = 3):
        self.da = da.transpose("time", "lat", "lon")
        self.days = da["time"].values.astype("datetime64[D]")
        chunks = self.da.chunks[0] if self.da.chunks else None
        n = self.days.size
        self.starts = np.cumsum((0, *chunks)) if chunks else np.append(np.arange(0, n, 365), n)
        self.keep = keep
        self._blocks: OrderedDict[int, np.ndarray] = OrderedDict()

    def index(self, day) -> int | None:
        d = np.datetime64(pd.Timestamp(day).date(), "D")
        i = int(np.searchsorted(self.days, d))
        return i if i < self.days.size and self.days[i] == d else None

    def block(self, i: int) -> tuple[int, np.ndarray]:
        """(first index, data) of the chunk holding day index ``i``."""
        b = int(np.searchsorted(self.starts, i, side="right") - 1)
        start = int(self.starts[b])
        if b in self._blocks:
            self._blocks.move_to_end(b)
        else:
            stop = int(self.starts[b + 1])
            self._blocks[b] = np.asarray(self.da.isel(time=slice(start, stop)).values, dtype="float32")
            while len(self._blocks) > self.keep:
                self._blocks.popitem(last=False)
        return start, self._blocks[b]

    def get(self, day) -> np.ndarray | None:
        i = self.index(day)
        if i is None:
            return None
        start, data = self.block(i)
        return data[i - start]


class LaiMaps(ResultViewer):
    """Daily maps of satellite LAI, a model's simulated LAI and their difference (model - satellite).

    Pan and zoom are linked across the three maps; state lines, lakes and the basin
    outline are drawn offline; ``show_landcover`` outlines the land-cover classes.
    Clicking a cell (the ``tap_streams``; or setting ``cell``) shows its series: every
    model, the process model and the satellite composites over the year of ``date``
    (followed as the date moves) or the whole data period (``series_span='all'``).
    """

    model = param.Selector(default=None, objects=[], allow_None=True, check_on_set=False,
                           doc="model whose simulation is mapped")
    date = param.CalendarDate(default=None, allow_None=True, doc="day shown")
    composites_only = param.Boolean(default=False, doc="step the player and slider through composite dates only")
    show_landcover = param.Boolean(default=False, doc="outline the land-cover classes on the maps")
    cell = param.Tuple(default=None, allow_None=True, length=2, doc="(lat, lon) of the clicked cell")
    series_span = param.Selector(default="year", objects=["year", "all"],
                                 doc="the clicked cell's series: the year of the date, or the whole period")
    export_models = param.ListSelector(default=[], objects=[],
                                       doc="models in the view's NetCDF download (none chosen: the mapped model)")

    #: three maps, each with its colour bar, side by side in a 1280-pixel window (toolbars above them)
    map_width = 240

    def __init__(self, **params):
        self._plots: dict[str, weakref.WeakSet] = {}
        self._arrays: dict[str, np.ndarray] = {}
        self._titles: dict[str, str] = {}
        self._sat = self._sim = None
        self._sims: dict[str, _Blocks] = {}
        self._store = None
        self._days = np.array([], dtype="datetime64[D]")
        self._counts = np.array([], dtype=int)
        self._composites = np.array([], dtype="datetime64[D]")
        self._clim, self._dlim = (0.0, 2.5), (-1.0, 1.0)
        self._busy = self._preparing = False
        self._series_year = None
        self.tap_streams: list[hv.streams.Tap] = []
        self.range_stream: hv.streams.RangeXY | None = None  # the maps' visible window (linked: one is enough)
        self.indicator = pn.pane.Markdown("", margin=(0, 10))
        self.series = pn.Column()
        # three panes, not one hv.Layout: Bokeh collapses a grid of figures that shares a
        # nested page with other plots; Panel links the panes' lon/lat axes instead
        self.maps_row = pn.Row()
        self.date_slider = pn.widgets.DateSlider(label="date", start=dt.date(2000, 1, 1), end=dt.date(2000, 1, 2),
                                             value=dt.date(2000, 1, 1), width=420)
        self.player = pn.widgets.Player(label="player", start=0, end=1, value=0, interval=300, loop_policy="once",
                                         show_loop_controls=False, width=330)
        self.jump_button = pn.widgets.Button(label="Nearest composite", width=140)
        super().__init__(**params)
        self.date_slider.param.watch(self._from_slider, "value")  # fast enough to follow a drag
        self.player.param.watch(self._from_player, "value")
        self.jump_button.on_click(lambda _e: self.jump_to_composite())
        self.param.watch(self._on_date, "date")
        self.param.watch(self._on_model, "model")
        self.param.watch(self._on_composites_only, "composites_only")
        self.param.watch(self._on_overlays, ["show_landcover", "cell"])
        self.param.watch(self._on_series_choice, ["cell", "series_span"])

    # --------------------------------------------------------------- set-up per result
    def _prepare(self):
        obs, pred = self.observations, self.predictions
        self._mask = np.asarray(obs["mask"].transpose("lat", "lon").values) == 1
        self._lat, self._lon = obs["lat"].values, obs["lon"].values
        self._days = obs["time"].values.astype("datetime64[D]")
        self._counts = composite_counts(obs)
        self._composites = self._days[self._counts > 0]
        self._sat = _Blocks(obs["lai"])
        self._sims = {m: _Blocks(pred[m]) for m in self.models}
        self._plots = {}  # the old result's views are replaced
        self._store = series_store(pred, obs, build=False)  # the Time series tab builds it; used here if made
        first, last = self._days[0].astype(object), self._days[-1].astype(object)
        day = self.date if self.date is not None and first <= self.date <= last else self._default_date()
        self._preparing = True  # the watchers wait until the result is set up
        try:
            self.param.model.objects = list(self.models)
            self.param.export_models.objects = list(self.models)
            self.param.date.bounds = (first, last)
            self.param.update(model=self.model if self.model in self.models else self.models[0],
                              date=day, cell=None, export_models=[m for m in self.export_models if m in self.models])
        finally:
            self._preparing = False
        self._sim = self._sims[self.model]
        self.date_slider.param.update(start=first, end=last)
        self._update_player()
        self._set_limits(day)
        self._render(day)
        self.maps_row.objects = [pn.pane.HoloViews(el, linked_axes=True) for el in self.maps()]
        self._series_year = None
        self._draw_series()

    def _default_date(self) -> dt.date:
        """The best-observed composite date of the test period's first year (panel c shows a test day)."""
        from ..evaluation.periods import resolve_period

        test = self.periods.get("test")
        start = np.datetime64(resolve_period(test)[0] if test else self._days[0], "D")
        first_year = (self._days >= start) & (self._days < start + np.timedelta64(366, "D")) & (self._counts > 0)
        if not first_year.any():
            first_year = self._counts > 0
        if not first_year.any():
            return self._days[0].astype(object)
        return self._days[np.flatnonzero(first_year)[np.argmax(self._counts[first_year])]].astype(object)

    def _set_limits(self, day):
        """Colour limits for the whole result from the year around ``day``: maps stay comparable across dates."""
        start, sat = self._sat.block(self._sat.index(day))
        sat = np.where(self._mask, sat, np.nan)
        hi = np.nanpercentile(sat, 99) if np.isfinite(sat).any() else 2.5
        self._clim = (0.0, _round_up(float(hi), 0.5))
        # differences on (up to 24) composite days of that year
        days = self._sat.days[start:start + sat.shape[0]]
        observed = days[self._counts[start:start + sat.shape[0]] > 0]
        diffs = []
        for d in observed[:: max(1, observed.size // 24)]:
            sim = self._sim.get(d)
            if sim is not None:
                k = int(np.searchsorted(days, d))
                diffs.append(np.abs(sim - sat[k])[np.isfinite(sat[k])])
        d = np.concatenate(diffs) if diffs else np.array([])
        d = d[np.isfinite(d)]
        lim = _round_up(float(np.percentile(d, 98)), 0.25) if d.size else 1.0
        self._dlim = (-lim, lim)

    def _steps(self) -> np.ndarray:
        return self._composites if self.composites_only and self._composites.size else self._days

    def _update_player(self):
        self._busy = True
        try:
            self.player.param.update(start=0, end=max(int(self._steps().size) - 1, 1))
        finally:
            self._busy = False

    # --------------------------------------------------------------- dates
    def nearest_composite(self, day) -> dt.date | None:
        """The composite date nearest to ``day`` (None when the data hold none)."""
        if not self._composites.size:
            return None
        d = np.datetime64(_as_date(day), "D")
        k = int(np.argmin(np.abs((self._composites - d).astype(int))))
        return self._composites[k].astype(object)

    def jump_to_composite(self):
        """Move to the composite date nearest to the current date."""
        near = self.nearest_composite(self.date) if self.date is not None else None
        if near is not None:
            self.date = near

    def _from_slider(self, event):
        if self._busy or event.new is None:
            return
        day = _as_date(event.new)
        self.date = (self.nearest_composite(day) or day) if self.composites_only else day

    def _from_player(self, event):
        if self._busy:
            return
        steps = self._steps()
        if steps.size:
            self.date = steps[min(int(event.new), steps.size - 1)].astype(object)

    def _on_composites_only(self, _event):
        self._update_player()
        if self.composites_only:
            self.jump_to_composite()
        self._sync_widgets(self.date)

    def _on_model(self, _event):
        if not self._preparing and self.ready and self.model in self._sims:
            self._sim = self._sims[self.model]
            self._render(self.date)

    def _on_date(self, event):
        if not self._preparing:
            self._render(event.new)

    def render_date(self, date) -> dict[str, np.ndarray]:
        """Show ``date``: the server-side work of one slider move. Returns the three maps' arrays.

        Setting ``date`` does the same; this also checks the date and returns what was drawn.
        """
        day = _as_date(date)
        lo, hi = self.param.date.bounds or (None, None)
        if lo is not None and not lo <= day <= hi:
            raise ValueError(f"{day} is outside the data period {lo}..{hi}. Fix: choose a date inside it")
        if day != self.date:
            self.date = day  # the watcher renders
        else:
            self._render(day)
        return dict(self._arrays)

    def _render(self, day):
        if not self.ready or day is None or self._sat is None:
            return
        try:
            sat = self._sat.get(day)
            if sat is None:
                raise ValueError(f"{day} is outside the data period {self._days[0]}..{self._days[-1]}")
            sat = np.where(self._mask, sat, np.nan)
            sim = self._sim.get(day)
            sim = np.full_like(sat, np.nan) if sim is None else np.where(self._mask, sim, np.nan)
            self._arrays = {"satellite": sat, "model": sim, "difference": sim - sat}
            n = int(self._counts[self._sat.index(day)])
            self._titles = {
                "satellite": f"satellite LAI {day:%Y-%m-%d}" + ("" if n else " (no composite)"),
                "model": f"{self.model} LAI {day:%Y-%m-%d}",
                "difference": f"{self.model} - satellite {day:%Y-%m-%d}",
            }
            self._push("satellite", "model", "difference", "dateline")
            self.indicator.object = self._indicator_text(day, n)
            self._sync_widgets(day)
            self._clear_error()
        except Exception as e:  # e.g. a damaged chunk: say so, keep the page usable
            self._show_error(f"Could not show {day}: {type(e).__name__}: {e}")
            return
        if self.cell is not None and self.series_span == "year" and day.year != self._series_year:
            self._later(self._draw_series)

    def _indicator_text(self, day, n: int) -> str:
        cells = int(self._mask.sum())
        if n:
            return f"**{day:%Y-%m-%d}** · satellite composite on this day: **yes** ({n} of {cells} basin cells)"
        near = self.nearest_composite(day)
        where = ""
        if near is not None:
            delta = (near - day).days
            where = f"; nearest {near:%Y-%m-%d} ({abs(delta)} days {'later' if delta > 0 else 'earlier'})"
        return f"**{day:%Y-%m-%d}** · satellite composite on this day: **no**{where}"

    def _sync_widgets(self, day):
        if day is None:
            return
        self._busy = True
        try:
            if self.date_slider.value != day:
                self.date_slider.value = day
            steps = self._steps()
            d = np.datetime64(day, "D")
            k = int(min(np.searchsorted(steps, d), steps.size - 1)) if steps.size else 0
            if self.player.value != k:
                self.player.value = k
        finally:
            self._busy = False

    @staticmethod
    def _later(fn):
        """Run ``fn`` after this event in a server (the maps' update goes out first); now elsewhere."""
        if in_server():
            pn.state.curdoc.add_next_tick_callback(fn)
        else:
            fn()

    # --------------------------------------------------------------- drawing
    # The maps are drawn once per result with HoloViews; a date (or model) change then
    # writes the new arrays and titles straight into the drawn Bokeh data sources of
    # every open view (registered by the hooks below). Re-rendering HoloViews overlays
    # per date costs 0.3-2 s with the basemap layers, far over the 150 ms budget.
    def _hook(self, kind: str):
        # a weak reference: HoloViews' Store keeps every element's options (these hooks) in a
        # module-level tree until the element is collected, so a hook holding ``self`` kept each
        # session's LaiMaps, its elements (and so their options) and its whole page alive for good
        ref = weakref.ref(self)

        def hook(plot, _element):
            viewer = ref()
            if viewer is not None:
                viewer._plots.setdefault(kind, weakref.WeakSet()).add(plot)
                viewer._apply(kind, plot)

        return hook

    def _apply(self, kind: str, plot):
        """Bring one drawn plot up to date (per date, and when a plot is first drawn)."""
        if kind in self._arrays:
            plot.handles["source"].data.update(image=[self._arrays[kind]])
            plot.handles["plot"].title.text = self._titles.get(kind, "")
        elif kind == "landcover":
            plot.handles["glyph_renderer"].visible = bool(self.show_landcover)
        elif kind == "marker":
            lat, lon = self.cell if self.cell is not None else ([], [])
            plot.handles["source"].data = {"lon": np.atleast_1d(lon).astype(float),
                                           "lat": np.atleast_1d(lat).astype(float)}
        elif kind == "dateline" and self.date is not None:
            plot.handles["glyph"].location = pd.Timestamp(self.date).value / 1e6  # ms since 1970, as Bokeh wants

    def _push(self, *kinds):
        views = [(kind, plot) for kind in kinds for plot in list(self._plots.get(kind, ()))]
        if not views:
            return
        here = pn.state.curdoc
        # in a thread of the server's pool (the server's threads) this document's models may not be
        # changed either: add_next_tick_callback, Bokeh's one thread-safe Document method, hands the
        # change to the event loop
        threaded = here is not None and here.session_context is not None and pn.state.loaded and \
            not pn.state._unblocked(here)
        # unlocked(): Bokeh models may only change under the document lock, which e.g. a
        # tap callback does not hold; this collects the changes and sends them at the end
        with (contextlib.nullcontext() if threaded else pn.io.unlocked()):
            for kind, plot in views:
                doc = plot.document
                if doc is not None and (doc is not here or threaded) and doc.session_context is not None:
                    doc.add_next_tick_callback(partial(self._push_one, kind, plot))  # another session's view
                else:
                    self._push_one(kind, plot)

    def _push_one(self, kind: str, plot):
        try:
            self._apply(kind, plot)
            if plot.comm is not None:  # a notebook view: send the change now
                plot.push()
        except (KeyError, AttributeError):  # a view that was closed meanwhile
            self._plots.get(kind, set()).discard(plot)

    def _on_tap(self, x=None, y=None, **_):
        if x is None or y is None or not self.ready:
            return
        lat, lon = self._lat, self._lon
        i, j = int(np.abs(lat - y).argmin()), int(np.abs(lon - x).argmin())
        res = (abs(lat[1] - lat[0]) if lat.size > 1 else 0.125, abs(lon[1] - lon[0]) if lon.size > 1 else 0.125)
        if abs(lat[i] - y) <= res[0] / 2 + 1e-9 and abs(lon[j] - x) <= res[1] / 2 + 1e-9:
            self.cell = (float(lat[i]), float(lon[j]))

    def _on_overlays(self, event):
        self._push("landcover" if event.name == "show_landcover" else "marker")

    def _on_series_choice(self, _event):
        if not self._preparing:
            self._draw_series()

    def maps(self):
        """The three maps (satellite, model, difference) as a HoloViews layout, drawn per result and
        updated in place per date. The page shows them as three panes with linked axes."""
        # explicit sizes with cells at their true shape (frame_width + data_aspect figures
        # misbehave in nested Panel layouts)
        width, height = map_size(self._lat, self._lon, self.map_width)
        base = basemap_overlay(self.observations)
        lc = landcover_outlines(self.observations).opts(hooks=[self._hook("landcover")],
                                                         visible=self.show_landcover, clone=True)
        marker = hv.Points([], kdims=["lon", "lat"]).opts(
            marker="x", size=14, color="red", line_width=3, hooks=[self._hook("marker")])
        style = dict(colorbar=True, tools=["hover", "tap"], width=width, height=height + TOOLBAR_HEIGHT,
                     toolbar="above")
        panels, self.tap_streams = [], []
        for which, label, cmap, clim in (("satellite", "LAI (m2 m-2)", LAI_CMAP, self._clim),
                                         ("model", "LAI (m2 m-2)", LAI_CMAP, self._clim),
                                         ("difference", "difference (m2 m-2)", DIFF_CMAP, self._dlim)):
            arr = self._arrays.get(which, np.full((self._lat.size, self._lon.size), np.nan, "float32"))
            img = hv.Image((self._lon, self._lat, arr), kdims=["lon", "lat"], vdims=[label]).opts(
                cmap=cmap, clim=tuple(clim), hooks=[self._hook(which)], **style,
                **map_axes(self._lat, aspect=False, value=label))
            tap = hv.streams.Tap(source=img, x=None, y=None)
            tap.add_subscriber(self._on_tap)
            self.tap_streams.append(tap)
            if which == "satellite":
                self.range_stream = hv.streams.RangeXY(source=img)
            panels.append((img * lc * marker * base).opts(title=self._titles.get(which, which)))
        return hv.Layout(panels).cols(3).opts(shared_axes=True)

    def series_period(self) -> tuple[str, str]:
        """The period of the clicked cell's series: the year of ``date``, or all the data."""
        if self.series_span == "all" or self.date is None:
            return str(self._days[0]), str(self._days[-1])
        return f"{self.date.year}-01-01", f"{self.date.year}-12-31"

    def series_element(self):
        """The clicked cell's series (HoloViews) with a line at ``date``; None without a cell."""
        if not self.ready or self.cell is None:
            return None
        from ..evaluation.panels import cell_timeseries

        lat, lon = self.cell
        curves = cell_timeseries(self.predictions, self.observations, lat, lon, period=self.series_period(),
                                 width=900, height=260, store=self._store)
        line = hv.VLine(pd.Timestamp(self.date)).opts(color="black", line_dash="dotted", line_width=1,
                                                      hooks=[self._hook("dateline")])
        return (curves * line).opts(**curves.opts.get().kwargs)  # keep the panel's size, title and legend

    def forcing_element(self):
        """The forcing at the clicked cell over the series' period (None without a cell)."""
        if not self.ready or self.cell is None:
            return None
        from ..evaluation.panels import cell_forcing

        return cell_forcing(self.observations, *self.cell, period=self.series_period(), width=900,
                            store=self._store)

    def _draw_series(self):
        if not self.ready:
            self.series.objects = []
            return
        if self.cell is None:
            self.series.objects = [pn.pane.Markdown("*Click a cell on a map to see its time series.*")]
            return
        self._series_year = self.date.year if self.date is not None else None
        self._plots.pop("dateline", None)
        try:
            # the forcing under the LAI, their time axes linked
            self.series.objects = [stacked_panes(self.series_element(), self.forcing_element())]
        except Exception as e:
            self.series.objects = [pn.pane.Alert(f"Could not draw the cell's series: {type(e).__name__}: {e}",
                                                 alert_type="warning")]

    def visible_window(self) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
        """(lat range, lon range) the maps show now; None for an axis not zoomed or panned."""
        s = self.range_stream
        if s is None:
            return None, None
        return (tuple(s.y_range) if s.y_range else None), (tuple(s.x_range) if s.x_range else None)

    def view_subset(self):
        """The predictions of the view: the models to export, the series' period, the maps' visible window."""
        from .exports import predictions_subset

        lat, lon = self.visible_window()
        return predictions_subset(self.predictions, self.observations, self.export_models or [self.model],
                                  self.series_period(), lat=lat, lon=lon)

    def cell_frame(self):
        """The clicked cell's series as a table (what the series panels draw)."""
        from ..evaluation.series import cell_series, series_frame

        if self.cell is None:
            raise ValueError("no cell chosen. Fix: click a cell on a map")
        return series_frame(cell_series(self.predictions, self.observations, *self.cell, period=self.series_period(),
                                        store=self._store))

    def date_figure(self):
        """The study's panel (c) for the shown date and model: simulated and satellite LAI and their difference."""
        from ..evaluation.panels import lai_map_comparison

        return lai_map_comparison(self.predictions, self.observations, self.date, self.model)

    def downloads(self) -> list:
        """Buttons for the view's predictions (NetCDF), the clicked cell's series (CSV) and the maps (PNG, SVG)."""
        from .exports import cell_file_name, csv_file, download, figure_downloads, file_name, netcdf_file

        def span():
            start, end = self.series_period()
            return f"{start}..{end}"

        def cell_name():
            if self.cell is None:
                raise ValueError("no cell chosen. Fix: click a cell on a map")
            return cell_file_name(self.result, *self.cell, span())

        return [
            download("View NetCDF", lambda: (file_name(self.result, "predictions", span()) + ".nc",
                                             netcdf_file(self.view_subset()))),
            download("Cell CSV", lambda: (cell_name() + ".csv", csv_file(self.cell_frame()))),
            *figure_downloads("Maps", self.date_figure, lambda: file_name(self.result, self.model, self.date)),
        ]

    def _content(self):
        from .exports import download_row

        exports = download_row(self.downloads(), pn.widgets.MultiChoice.from_param(
            self.param.export_models, name="", width=260, placeholder="models in the NetCDF (default: the shown)"))
        widgets = pn.Row(
            self.date_slider, self.player,
            pn.Column(pn.widgets.Checkbox.from_param(self.param.composites_only, label="composite dates only"),
                      pn.widgets.Checkbox.from_param(self.param.show_landcover, label="land-cover outlines")),
            self.jump_button,
        )
        return pn.Column(
            widgets, self.indicator,
            self.maps_row,
            pn.Row(pn.pane.Markdown("Clicked cell's series:"),
                   pn.widgets.RadioButtonGroup.from_param(self.param.series_span, label="series")),
            self.series,
            exports,
        )

    def _controls(self):
        return [*super()._controls(), pn.widgets.Select.from_param(self.param.model, label="model", width=180)]
