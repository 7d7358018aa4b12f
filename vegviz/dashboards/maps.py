"""Daily LAI maps: satellite, a model's simulation and their difference, with a date slider and a player.

    LaiMaps()                       # inline in a notebook
    LaiMaps().servable()            # in a served notebook or script

Moving the date must stay fast on the full 36-year basin (13149 days), so nothing is
rebuilt per date: the three maps are ``hv.DynamicMap``s fed by one stream, the data
of the current storage chunk (365 days) of each variable is held in memory so that a
date inside it is a numpy slice, and the basemap and land-cover outlines are built
once per grid (module-level caches). :meth:`LaiMaps.render_date` is the work of one
slider move, for benchmarks.

This module also holds :class:`ResultViewer`, the base of the result-browsing
dashboards (result choice, refresh, header, "no results yet" and error alerts).
"""
from __future__ import annotations

import datetime as dt
import threading
import weakref
from collections import OrderedDict

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the bokeh options used below)
import numpy as np
import pandas as pd
import panel as pn
import param
import xarray as xr

from ..contract import IGBP_CLASSES
from . import sources

__all__ = ["LaiMaps", "ResultViewer", "dominant_vegetation", "result_periods"]

LAI_CMAP = "YlGn"
DIFF_CMAP = "BrBG"
#: IGBP class colours for the land-cover overlay (after the usual MODIS land-cover legend)
IGBP_COLORS = {
    0: "#1c66b5", 1: "#05450a", 2: "#086a10", 3: "#54a708", 4: "#78d203", 5: "#009900", 6: "#c6b044",
    7: "#b08a2e", 8: "#6e7d14", 9: "#c99d3a", 10: "#8fa843", 11: "#27ff87", 12: "#c24f44", 13: "#a5a5a5",
    14: "#ff6d4c", 15: "#69fff8", 16: "#8a6f5a",
}
HOW_TO_MAKE_ONE = ("Make one with `vegviz experiment --data virtual_ucrb_small` in a terminal (a few minutes "
                   "on a laptop), or train one in the **Training** tab; then press **Refresh**.")


# ----------------------------------------------------------------------------- shared helpers

def result_periods(predictions: xr.Dataset) -> dict[str, tuple[str, str]]:
    """The train/validation/test periods the result was trained with, from its config.

    Experiments keep each member's config YAML in the variable attribute ``run_config``;
    single runs keep it in the global attribute ``config``. Without either (older files),
    the study's periods (:data:`vegviz.evaluation.PERIODS`).
    """
    from ..evaluation import PERIODS
    from ..training.config import Config

    texts = [predictions.attrs.get("config")]
    texts += [predictions[v].attrs.get("run_config") for v in sources.result_models(predictions)]
    for text in texts:
        if text and isinstance(text, str):
            p = Config.from_yaml(text if "\n" in text else text + "\n").periods
            return {k: tuple(str(x) for x in getattr(p, k)) for k in ("train", "validation", "test")}
    return {k: tuple(v) for k, v in PERIODS.items()}


def dominant_vegetation(observations: xr.Dataset, min_cells: int = 5) -> dict[str, int]:
    """IGBP name -> code of the vegetation types with at least ``min_cells`` mask cells (water left out)."""
    mask = np.asarray(observations["mask"].transpose("lat", "lon").values) == 1
    lc = np.asarray(observations["landcover"].transpose("lat", "lon").values)
    codes, counts = np.unique(lc[mask], return_counts=True)
    return {IGBP_CLASSES.get(int(c), str(c)): int(c) for c, n in zip(codes, counts) if n >= min_cells and c != 0}


def _data_key(observations: xr.Dataset) -> tuple:
    """What identifies a data set's grid and static fields, for the module-level caches."""
    a = observations.attrs
    return (str(a.get("title", "")), str(a.get("seed", "")), observations.sizes["lat"], observations.sizes["lon"],
            float(observations["lat"][0]), float(observations["lon"][0]), observations.sizes.get("time", 0))


_STATIC_CACHE: dict[tuple, object] = {}
_STATIC_LOCK = threading.Lock()


def _cached(kind: str, observations: xr.Dataset, build):
    """``build()`` once per (kind, data set) for the life of the process."""
    key = (kind, *_data_key(observations))
    with _STATIC_LOCK:
        if key not in _STATIC_CACHE:
            _STATIC_CACHE[key] = build()
        return _STATIC_CACHE[key]


def basemap_overlay(observations: xr.Dataset):
    """State lines, lakes, state names and the basin outline for this grid (built once, then cached)."""
    def build():
        from .. import basemap, grid

        try:
            g = grid.nldas_window(observations["lat"].values, observations["lon"].values)
        except ValueError:
            g = grid.UCRB
        static = xr.Dataset({"mask": observations["mask"].load()})
        return basemap.basemap(g) * basemap.basin_outline(static)

    return _cached("basemap", observations, build)


def landcover_outlines(observations: xr.Dataset):
    """Outlines of each land-cover class inside the basin, coloured by class (built once, then cached)."""
    def build():
        from ..basemap import mask_rings

        lat, lon = observations["lat"].values, observations["lon"].values
        lc = np.asarray(observations["landcover"].transpose("lat", "lon").values)
        mask = np.asarray(observations["mask"].transpose("lat", "lon").values) == 1
        data = []
        for code in np.unique(lc[mask]):
            for ring in mask_rings(mask & (lc == code), lat, lon):
                data.append({"lon": ring[:, 0], "lat": ring[:, 1], "land cover": IGBP_CLASSES.get(int(code), str(code))})
        colors = {IGBP_CLASSES.get(k, str(k)): c for k, c in IGBP_COLORS.items()}
        return hv.Path(data, kdims=["lon", "lat"], vdims=["land cover"], label="Land cover").opts(
            color=hv.dim("land cover").categorize(colors, default="#000000"), line_width=1.5, tools=["hover"])

    return _cached("landcover", observations, build)


def composite_counts(observations: xr.Dataset) -> np.ndarray:
    """Per day, how many basin cells have a satellite LAI value (0: no composite that day); cached."""
    def build():
        inside = observations["mask"] == 1
        n = observations["lai"].notnull().where(inside, False).sum(("lat", "lon"))
        return np.asarray(n.values, dtype=int)

    return _cached("composites", observations, build)


def _round_up(x: float, step: float) -> float:
    return float(np.ceil(max(x, step) / step) * step) if np.isfinite(x) else step


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


def _as_date(value) -> dt.date:
    return pd.Timestamp(value).date()


# ----------------------------------------------------------------------------- the base component

class ResultViewer(pn.viewable.Viewer):
    """Base of the dashboards that browse one result (a run or an experiment with predictions).

    Subclasses implement :meth:`_prepare` (called after a result is opened; may raise)
    and :meth:`_content` (the component's body once a result is loaded). Errors while
    opening or drawing are shown as an Alert and leave the component usable.
    """

    result = param.Selector(default=None, objects=[], allow_None=True, check_on_set=False,
                            doc="run or experiment to show (runs directory, experiments first)")
    _loaded = param.Integer(default=0, precedence=-1, doc="bumped whenever a result was (re)opened")

    def __init__(self, **params):
        self._results: dict[str, dict] = {}
        self.predictions: xr.Dataset | None = None
        self.observations: xr.Dataset | None = None
        self.models: list[str] = []
        self.periods: dict[str, tuple[str, str]] = {}
        self._error: str | None = None
        self._alert = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        super().__init__(**params)
        self._refresh_button = pn.widgets.Button(name="Refresh", button_type="default", width=90)
        self._refresh_button.on_click(lambda _e: self.refresh())
        self.param.watch(self._on_result, "result")
        self.refresh(reload=True)

    # --------------------------------------------------------------- results
    def refresh(self, reload: bool = False) -> list[str]:
        """Re-list the runs directory (e.g. after a training run finished); return the result names.

        The current result stays selected when it still exists; otherwise the first one
        (an experiment if any) is chosen.
        """
        try:
            results = sources.list_results()
        except Exception as e:  # a broken runs directory must not break the page
            results, self._error = {}, f"Could not list the results: {e}"
        self._results = results
        names = list(results)
        self.param.result.objects = names
        if self.result in names:
            if reload:
                self._open()
            else:
                self._loaded += 1  # the header lists the results, redraw it
        else:
            new = names[0] if names else None
            if new == self.result:  # None -> None: nothing to open, but the page must say so
                self._open()
            else:
                self.result = new
        return names

    def _on_result(self, _event=None):
        self._open()

    def _open(self):
        self._error = None
        self.predictions = self.observations = None
        self.models, self.periods = [], {}
        self._alert.visible = False
        if self.result is not None:
            try:
                pred = sources.open_result(self.result)
                obs = sources.observations_for(pred)
                models = sources.result_models(pred)
                if not models:
                    raise ValueError("the predictions hold no (time, lat, lon) model variable")
                self.predictions, self.observations, self.models = pred, obs, models
                self.periods = result_periods(pred)
                self._prepare()
            except Exception as e:
                self.predictions = self.observations = None
                self._error = (f"Could not open {self.result!r}: {type(e).__name__}: {e}. "
                               "Choose another result, or re-create this one and press Refresh.")
        self._loaded += 1

    def _prepare(self):
        """Subclass hook: set up parameters and caches for the newly opened result."""

    # --------------------------------------------------------------- shared views
    @property
    def ready(self) -> bool:
        """True when a result is open without error."""
        return self.predictions is not None and self._error is None

    @property
    def synthetic(self) -> bool:
        from ..evaluation.scoring import is_synthetic

        return self.observations is not None and is_synthetic(self.observations)

    def header_text(self) -> str:
        if not self._results:
            return "**No results yet.**"
        if not self.ready:
            return f"Result **{self.result}**"
        md = self._results.get(self.result, {})
        data = self.predictions.attrs.get("data", md.get("data", "?"))
        kind = "**synthetic** (virtual basin, not real observations)" if self.synthetic else "real observations"
        t = self.observations["time"].values
        span = f"{pd.Timestamp(t[0]):%Y-%m-%d}..{pd.Timestamp(t[-1]):%Y-%m-%d}"
        return (f"Data set **{data}** ({span}): {kind} · {md.get('kind', 'result')} **{self.result}**: "
                f"{', '.join(self.models)}")

    @param.depends("_loaded")
    def _header(self):
        return pn.pane.Markdown(self.header_text(), margin=(0, 10))

    def _empty_alert(self):
        from ..training import runs_root

        return pn.pane.Alert(
            f"### No trained results yet\nThere is no run or experiment with predictions in "
            f"`{runs_root()}`.\n\n{HOW_TO_MAKE_ONE}", alert_type="info", sizing_mode="stretch_width")

    def _show_error(self, message: str):
        self._alert.object = message
        self._alert.visible = True

    def _clear_error(self):
        self._alert.visible = False

    @param.depends("_loaded")
    def _body(self):
        if not self._results:
            return self._empty_alert()
        if self._error:
            return pn.pane.Alert(self._error, alert_type="danger", sizing_mode="stretch_width")
        if not self.ready:
            return pn.pane.Alert("Choose a result.", alert_type="info")
        try:
            return self._content()
        except Exception as e:
            return pn.pane.Alert(f"Could not draw {self.result!r}: {type(e).__name__}: {e}",
                                 alert_type="danger", sizing_mode="stretch_width")

    def _content(self):
        raise NotImplementedError

    def _controls(self) -> list:
        """Widgets shown above the body (subclasses extend)."""
        return [pn.widgets.Select.from_param(self.param.result, name="result", width=220)]

    def __panel__(self):
        if not hasattr(self, "_layout"):
            self._layout = pn.Column(
                pn.Row(*self._controls(), pn.Column(pn.Spacer(height=18), self._refresh_button)),
                self._header, self._alert, pn.panel(self._body, defer_load=False),
                sizing_mode="stretch_width",
            )
        return self._layout


# ----------------------------------------------------------------------------- LAI maps

class LaiMaps(ResultViewer):
    """Daily maps of satellite LAI, a model's simulated LAI and their difference (model - satellite).

    Pan and zoom are linked across the three maps; state lines, lakes and the basin
    outline are drawn offline; ``show_landcover`` outlines the land-cover classes.
    Clicking a cell (the ``tap_streams``) shows its time series for the year of ``date``
    (or the whole data period with ``series_span='all'``).
    """

    model = param.Selector(default=None, objects=[], allow_None=True, check_on_set=False,
                           doc="model whose simulation is mapped")
    date = param.CalendarDate(default=None, allow_None=True, doc="day shown")
    composites_only = param.Boolean(default=False, doc="step the player and slider through composite dates only")
    show_landcover = param.Boolean(default=False, doc="outline the land-cover classes on the maps")
    cell = param.Tuple(default=None, allow_None=True, length=2, doc="(lat, lon) of the clicked cell")
    series_span = param.Selector(default="year", objects=["year", "all"],
                                 doc="the clicked cell's series: the year of the date, or the whole period")
    _year = param.Integer(default=0, precedence=-1)

    map_width = 300

    def __init__(self, **params):
        self._plots: dict[str, weakref.WeakSet] = {}
        self._arrays: dict[str, np.ndarray] = {}
        self._titles: dict[str, str] = {}
        self._sat = self._sim = None
        self._days = np.array([], dtype="datetime64[D]")
        self._counts = np.array([], dtype=int)
        self._composites = np.array([], dtype="datetime64[D]")
        self._clim = (0.0, 2.5)
        self._dlim = (-1.0, 1.0)
        self._busy = self._preparing = False
        self.tap_streams: list[hv.streams.Tap] = []
        self.indicator = pn.pane.Markdown("", margin=(0, 10))
        self._slider = pn.widgets.DateSlider(name="date", start=dt.date(2000, 1, 1), end=dt.date(2000, 1, 2),
                                             value=dt.date(2000, 1, 1), width=420)
        self._player = pn.widgets.Player(name="player", start=0, end=1, value=0, interval=300, loop_policy="once",
                                         show_loop_controls=False, width=330)
        self._jump = pn.widgets.Button(name="Nearest composite", width=140)
        super().__init__(**params)
        self._slider.param.watch(self._from_slider, "value_throttled")
        self._player.param.watch(self._from_player, "value")
        self._jump.on_click(lambda _e: self.jump_to_composite())
        self.param.watch(self._on_date, "date")
        self.param.watch(self._on_model, "model")
        self.param.watch(self._on_composites_only, "composites_only")
        self.param.watch(self._on_overlays, ["show_landcover", "cell"])

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
        self._preparing = True  # the watchers below wait until the result is set up
        try:
            self.param.model.objects = list(self.models)
            if self.model not in self.models:
                self.model = self.models[0]
        finally:
            self._preparing = False
        self._sim = self._sims[self.model]
        first, last = self._days[0].astype(object), self._days[-1].astype(object)
        self.param.date.bounds = (first, last)
        self._slider.param.update(start=first, end=last)
        self._update_player()
        day = self.date if self.date is not None and first <= self.date <= last else self._default_date()
        self._set_limits(day)
        self._preparing = True
        try:
            self.param.update(date=day, cell=None)
        finally:
            self._preparing = False
        self._render(day)

    def _default_date(self) -> dt.date:
        """The first composite date of the test period (the study's panel c is a test day), else the first one."""
        start = np.datetime64(self.periods.get("test", (str(self._days[0]),))[0], "D")
        later = self._composites[self._composites >= start]
        pick = later[0] if later.size else (self._composites[0] if self._composites.size else self._days[0])
        return pick.astype(object)

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
            k = int(np.searchsorted(days, d))
            sim = self._sim.get(d)
            if sim is not None:
                diffs.append(np.abs(sim - sat[k])[np.isfinite(sat[k])])
        d = np.concatenate(diffs) if diffs else np.array([])
        d = d[np.isfinite(d)]
        lim = _round_up(float(np.percentile(d, 98)), 0.25) if d.size else 1.0
        self._dlim = (-lim, lim)

    def _steps(self) -> np.ndarray:
        return self._composites if self.composites_only and self._composites.size else self._days

    def _update_player(self):
        steps = self._steps()
        with param.parameterized.discard_events(self._player):
            self._player.param.update(start=0, end=max(int(steps.size) - 1, 1))

    # --------------------------------------------------------------- date handling
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
        self.date = self.nearest_composite(day) if self.composites_only else day

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
        if not self._preparing and self.ready and self.model in getattr(self, "_sims", {}):
            self._sim = self._sims[self.model]
            self._render(self.date)

    def _on_date(self, event):
        if not self._preparing:
            self._render(event.new)

    def render_date(self, date) -> dict[str, np.ndarray]:
        """Show ``date``: the server-side work of one slider move. Returns the three maps' arrays.

        Setting ``date`` does the same; this returns what was drawn, for tests and benchmarks.
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
                raise ValueError(f"{day} is outside the data period "
                                 f"{self._days[0]}..{self._days[-1]}")
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
            self._push("satellite", "model", "difference")
            self.indicator.object = self._indicator_text(day, n)
            self._sync_widgets(day)
            if day.year != self._year:
                self._year = day.year
            self._clear_error()
        except Exception as e:  # e.g. a damaged chunk: say so, keep the page usable
            self._show_error(f"Could not show {day}: {type(e).__name__}: {e}")

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
            if self._slider.value != day:
                self._slider.value = day
            steps = self._steps()
            d = np.datetime64(day, "D")
            k = int(min(np.searchsorted(steps, d), steps.size - 1)) if steps.size else 0
            if self._player.value != k:
                self._player.value = k
        finally:
            self._busy = False

    # --------------------------------------------------------------- elements
    # The maps are drawn once per result with HoloViews; a date (or model) change then
    # writes the new arrays and titles straight into the drawn Bokeh data sources of
    # every open view (registered by the hooks below). Re-rendering HoloViews overlays
    # per date costs 0.3-2 s with the basemap layers, far over the 150 ms budget.
    def _hook(self, kind: str):
        def hook(plot, _element):
            self._plots.setdefault(kind, weakref.WeakSet()).add(plot)
            self._apply(kind, plot)

        return hook

    def _apply(self, kind: str, plot):
        """Bring one drawn plot up to date (called per date and when a plot is first drawn)."""
        if kind in self._arrays:
            source = plot.handles["source"]
            if "image" in source.data:
                source.data.update(image=[self._arrays[kind]])
            plot.handles["plot"].title.text = self._titles.get(kind, "")
        elif kind == "landcover":
            plot.handles["glyph_renderer"].visible = bool(self.show_landcover)
        elif kind == "marker":
            lat, lon = self.cell if self.cell is not None else ([], [])
            lat, lon = np.atleast_1d(lat).astype(float), np.atleast_1d(lon).astype(float)
            plot.handles["source"].data = {"lon": lon, "lat": lat}

    def _push(self, *kinds):
        for kind in kinds:
            for plot in list(self._plots.get(kind, ())):
                try:
                    self._apply(kind, plot)
                    if plot.comm is not None:  # a notebook view: send the change now
                        plot.push()
                except (KeyError, AttributeError):  # a view that was closed meanwhile
                    self._plots[kind].discard(plot)

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

    def maps(self):
        """The three linked maps as one HoloViews layout (drawn per result, updated in place per date)."""
        aspect = 1.0 / np.cos(np.deg2rad(float(self._lat.mean())))
        base = basemap_overlay(self.observations)
        lc = landcover_outlines(self.observations).opts(hooks=[self._hook("landcover")],
                                                         visible=self.show_landcover, clone=True)
        marker = hv.Points([], kdims=["lon", "lat"]).opts(
            marker="x", size=14, color="red", line_width=3, hooks=[self._hook("marker")])
        style = dict(colorbar=True, tools=["hover", "tap"], frame_width=self.map_width, data_aspect=aspect,
                     xlabel="longitude", ylabel="latitude")
        panels, self.tap_streams = [], []
        for which, label, cmap, clim in (("satellite", "LAI (m2 m-2)", LAI_CMAP, self._clim),
                                         ("model", "LAI (m2 m-2)", LAI_CMAP, self._clim),
                                         ("difference", "difference (m2 m-2)", DIFF_CMAP, self._dlim)):
            arr = self._arrays.get(which, np.full((self._lat.size, self._lon.size), np.nan, "float32"))
            img = hv.Image((self._lon, self._lat, arr), kdims=["lon", "lat"], vdims=[label]).opts(
                cmap=cmap, clim=tuple(clim), hooks=[self._hook(which)], **style)
            tap = hv.streams.Tap(source=img, x=None, y=None)
            tap.add_subscriber(self._on_tap)
            self.tap_streams.append(tap)
            panels.append((img * lc * marker * base).opts(title=self._titles.get(which, which)))
        return hv.Layout(panels).cols(3).opts(shared_axes=True)

    @param.depends("cell", "_year", "series_span", "_loaded")
    def cell_series(self):
        """The clicked cell's series: every model, the process model and the satellite composites."""
        if not self.ready:
            return pn.pane.Markdown("")
        if self.cell is None:
            return pn.pane.Markdown("*Click a cell on a map to see its time series.*")
        from ..evaluation.panels import cell_timeseries

        lat, lon = self.cell
        if self.series_span == "all":
            t = self._days
            period = (str(t[0]), str(t[-1]))
        else:
            period = (f"{self._year}-01-01", f"{self._year}-12-31")
        try:
            return pn.pane.HoloViews(cell_timeseries(self.predictions, self.observations, lat, lon, period=period,
                                                     width=900, height=260), sizing_mode="fixed")
        except Exception as e:
            return pn.pane.Alert(f"Could not draw the cell's series: {e}", alert_type="warning")

    def _content(self):
        widgets = pn.Row(
            self._slider, self._player,
            pn.Column(pn.widgets.Checkbox.from_param(self.param.composites_only, name="composite dates only"),
                      pn.widgets.Checkbox.from_param(self.param.show_landcover, name="land-cover outlines")),
            self._jump,
        )
        return pn.Column(
            widgets, self.indicator,
            pn.pane.HoloViews(self.maps(), linked_axes=True),
            pn.Row(pn.widgets.RadioButtonGroup.from_param(self.param.series_span, name="series"), margin=(0, 10)),
            self.cell_series,
        )

    def _controls(self):
        return [*super()._controls(), pn.widgets.Select.from_param(self.param.model, name="model", width=180)]
