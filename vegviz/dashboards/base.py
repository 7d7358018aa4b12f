"""The base of the result-browsing dashboards, and the helpers they share.

:class:`ResultViewer` picks a run or experiment (through :mod:`vegviz.dashboards.sources`),
re-lists results on :meth:`~ResultViewer.refresh`, says which data set is shown and
whether it is synthetic, and shows "no results yet" and error alerts instead of failing.
The module-level caches (basemap, land-cover outlines, composite counts) are built once
per grid and shared by every session.
"""
from __future__ import annotations

import datetime as dt
import threading

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the bokeh options used below)
import numpy as np
import pandas as pd
import panel as pn
import param
import xarray as xr

from .. import bokeh_setup  # noqa: F401  (frame-sized plots: no W-1005 per session)
from ..contract import IGBP_CLASSES, IGBP_COLORS
from ..figure_files import bokeh_options
from . import sources

__all__ = ["ResultViewer", "basemap_overlay", "composite_counts", "dominant_vegetation", "in_server",
           "landcover_outlines", "result_periods", "stacked_panes"]

#: the result selector's width: its labels name the result, its model(s), data set and date (sources.result_label)
RESULT_WIDTH = 330
HOW_TO_MAKE_ONE = ("Make one with `vegviz experiment --data virtual_ucrb_small --epochs 5` in a terminal (any "
                   "model-ready data set works, e.g. `virtual_<domain>_small` for another domain; the README's Quick "
                   "start has smaller settings that train all three models in under two minutes), or train one in "
                   "the **Training** tab; then press **Refresh**.")


# ----------------------------------------------------------------------------- shared helpers

def result_periods(predictions: xr.Dataset) -> dict[str, tuple[str, str] | list[int]]:
    """The train/validation/test periods the result was trained with, from its config.

    Each is a (start, end) pair of ISO dates, or a list of calendar years for a result trained
    with a differential split (``--split warm`` etc., :mod:`vegviz.training.split`).

    Experiments keep each member's config YAML in the variable attribute ``run_config``;
    single runs keep it in the global attribute ``config``. Without either (older files),
    the study's periods (:data:`vegviz.evaluation.PERIODS`).
    """
    from ..evaluation import PERIODS

    texts = [predictions.attrs.get("config")]
    texts += [predictions[v].attrs.get("run_config") for v in sources.result_models(predictions)]
    for text in texts:
        if text and isinstance(text, str):
            return _config_periods(text)
    return {k: tuple(v) for k, v in PERIODS.items()}


def _period(value) -> tuple[str, str] | list[int]:
    from ..evaluation.periods import is_year_set

    return [int(y) for y in value] if is_year_set(value) else tuple(str(x) for x in value)


def _config_periods(text: str) -> dict[str, tuple[str, str] | list[int]]:
    """The ``periods`` of a run's config YAML.

    Read straight from the YAML when it holds all three periods (as every saved config does):
    a full :class:`~vegviz.training.Config` validates the model name, which imports torch, a
    second or two of the first page for three dates. Anything else goes through Config, which
    fills defaults and names what is wrong.
    """
    import yaml

    names = ("train", "validation", "test")
    try:
        p = (yaml.safe_load(text) or {}).get("periods")
    except (yaml.YAMLError, AttributeError):
        p = None
    if isinstance(p, dict) and all(isinstance(p.get(k), (list, tuple)) and p[k] for k in names):
        return {k: _period(p[k]) for k in names}
    from ..training.config import Config

    periods = Config.from_yaml(text if "\n" in text else text + "\n").periods
    return {k: _period(getattr(periods, k)) for k in names}


def dominant_vegetation(observations: xr.Dataset, min_cells: int = 5) -> dict[str, int]:
    """IGBP name -> code of the vegetation types with at least ``min_cells`` mask cells (water left out)."""
    mask = np.asarray(observations["mask"].transpose("lat", "lon").values) == 1
    lc = np.asarray(observations["landcover"].transpose("lat", "lon").values)
    codes, counts = np.unique(lc[mask], return_counts=True)
    return {IGBP_CLASSES.get(int(c), str(c)): int(c) for c, n in zip(codes, counts) if n >= min_cells and c != 0}


def _data_key(observations: xr.Dataset) -> tuple:
    """What identifies a data set's grid and static fields, for the module-level caches."""
    a = observations.attrs
    return (str(a.get("title", "")), str(a.get("domain", "")), str(a.get("seed", "")), observations.sizes["lat"], observations.sizes["lon"],
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


def _joined(paths: list[dict], kdims=("lon", "lat")) -> dict:
    """Many paths as one, separated by NaN rows (Bokeh leaves a gap at each NaN)."""
    parts = []
    for p in paths:
        xy = np.column_stack([np.asarray(p[kdims[0]], float), np.asarray(p[kdims[1]], float)])
        parts += [xy, np.full((1, 2), np.nan)]
    xy = np.concatenate(parts[:-1]) if parts else np.empty((0, 2))
    return {kdims[0]: xy[:, 0], kdims[1]: xy[:, 1]}


# Why Contours, not Path: with hover or a colour mapping, HoloViews' PathPlot cuts every
# path into two-point segments, one Bokeh row (and two websocket buffers) each: ~15,500
# buffers for the three LAI maps, and the browser needed ~10 s to become ready. ContourPlot
# sends each geometry as one row with its NaN gaps kept (one multi_line entry per layer or
# per land-cover class), and its hover shows that row's value dimension.

def _lines(rows: list[dict], vdim: str, label: str, **opts) -> hv.Contours:
    """NaN-separated line geometries, one Bokeh row each, with the given bokeh options."""
    el = hv.Contours(rows, kdims=["lon", "lat"], vdims=[vdim], label=label)
    # no legend entry, as for the Path it replaces (Contours would add one, covering the map's corner)
    return el.opts(backend="bokeh", **{"show_legend": False, **opts})


def _join_layer(el):
    """A Path layer (many geometries) as one NaN-separated row named after the layer, same options."""
    if not isinstance(el, hv.Path) or isinstance(el, hv.Contours) or not len(el.data):
        return el
    kd = [d.name for d in el.kdims]
    merged = _joined([{k: sub.dimension_values(k) for k in kd} for sub in el.split()], tuple(kd))
    vdim = el.vdims[0].name if el.vdims else "name"
    # hover shows the geometries' common name (the basin outline: its domain's title), else the layer's
    names = set(el.dimension_values(vdim)) if el.vdims else set()
    value = str(names.pop()) if len(names) == 1 else (el.label or vdim)
    return _lines([{**merged, vdim: value}], vdim, el.label, **bokeh_options(el))


def basemap_overlay(observations: xr.Dataset):
    """State lines, lakes, borders, state names and the basin outline for the data's window (built once, then cached).

    The window and the basin's name are the data's domain's (:func:`vegviz.basemap.window`).
    Each line layer is ONE row of the drawn Bokeh source (its geometries joined by NaN gaps).
    """
    def build():
        from .. import basemap

        static = xr.Dataset({"mask": observations["mask"].load()}, attrs=observations.attrs)
        layers = [*basemap.basemap(observations), basemap.basin_outline(static)]
        return hv.Overlay([_join_layer(el) for el in layers])

    return _cached("basemap", observations, build)


def landcover_outlines(observations: xr.Dataset):
    """Outlines of each land-cover class inside the basin, coloured by class (built once, then cached).

    One row per class in the drawn Bokeh source (its rings joined by NaN gaps); hover names the class.
    """
    def build():
        from ..basemap import mask_rings

        lat, lon = observations["lat"].values, observations["lon"].values
        lc = np.asarray(observations["landcover"].transpose("lat", "lon").values)
        mask = np.asarray(observations["mask"].transpose("lat", "lon").values) == 1
        rows = []
        for code in np.unique(lc[mask]):
            rings = [{"lon": r[:, 0], "lat": r[:, 1]} for r in mask_rings(mask & (lc == code), lat, lon)]
            if rings:
                rows.append({**_joined(rings), "land cover": IGBP_CLASSES.get(int(code), str(code))})
        colors = {IGBP_CLASSES.get(k, str(k)): c for k, c in IGBP_COLORS.items()}
        return _lines(rows, "land cover", "Land cover", line_width=1.5, tools=["hover"],
                      color=hv.dim("land cover").categorize(colors, default="#000000"))

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


def _as_date(value) -> dt.date:
    return pd.Timestamp(value).date()


def series_store(predictions: xr.Dataset, observations: xr.Dataset, *, build: bool = True):
    """The result's :mod:`series store <vegviz.evaluation.series_store>` (built first if ``build``: seconds,
    once per result), or None when there is none or it cannot be made (the grid is read instead: slower,
    not broken)."""
    from ..evaluation.series_store import open_series_store

    try:
        return open_series_store(predictions, observations, build=build)
    except Exception as e:  # e.g. a read-only folder and cache
        import logging

        logging.getLogger(__name__).warning("no series store (%s: %s); the series are read from the grid",
                                            type(e).__name__, e)
        return None


class Hint(ValueError):
    """Not an error: what to do before a view can be drawn (shown as an info alert, not a warning)."""


def frame_or_last(build, key, drawn: dict, alert: pn.pane.Alert, what: str, *, clears_alert: bool = True):
    """One frame of a plot that is updated in place (a DynamicMap's callback): ``build()``'s element, with
    its own axis and colour ranges; on an error the last one drawn under ``key`` in ``drawn`` stays, under
    ``alert`` naming the error (or, for a :class:`Hint`, saying what to do). ``clears_alert``: a frame
    drawn without error hides the alert (the first plot of those sharing it)."""
    try:
        el = build()
    except Exception as e:
        hint = isinstance(e, Hint)
        alert.param.update(object=str(e) if hint else f"Could not draw {what}: {type(e).__name__}: {e}",
                           alert_type="info" if hint else "warning", visible=True)
        return drawn.get(key, hv.Overlay([hv.Curve([])]))
    if clears_alert:
        alert.visible = False
    # on the elements: an overlay's or a DynamicMap's framewise does not reach them, and a new cell,
    # region, period or metric kept the first frame's ranges
    el.traverse(lambda e: e.opts(framewise=True), [hv.Element])
    drawn[key] = el
    return el


def stacked_panes(*elements) -> pn.Column:
    """HoloViews elements (or layouts, flattened) as a column of panes, one per plot, their time axes linked.

    Not one hv.Layout: Bokeh collapses a grid of figures that shares a nested page with other
    plots. Panel links the panes' axes of the same dimension instead (zoom one, all follow).
    """
    panes = []
    for el in elements:
        for item in (el if isinstance(el, hv.Layout) else [el]):
            panes.append(pn.pane.HoloViews(item, linked_axes=True, margin=(0, 5)))
    return pn.Column(*panes)


# ----------------------------------------------------------------------------- the base component

def in_server() -> bool:
    """True inside a Bokeh/Panel server session (not a notebook, not a bare ``get_root``)."""
    doc = pn.state.curdoc
    return doc is not None and doc.session_context is not None


class ResultViewer(pn.viewable.Viewer):
    """Base of the dashboards that browse one result (a run or an experiment with predictions).

    Subclasses implement :meth:`_prepare` (called after a result is opened; may raise)
    and :meth:`_content` (the component's body once a result is loaded). Errors while
    opening or drawing are shown as an Alert and leave the component usable.
    """

    result = param.Selector(default=None, objects=[], allow_None=True, check_on_set=False,
                            doc="run or experiment to show (runs directory, experiments first)")
    _loaded = param.Integer(default=0, precedence=-1, doc="bumped whenever a result was (re)opened")
    _listed = param.Integer(default=0, precedence=-1, doc="bumped whenever the results were re-listed")

    def __init__(self, **params):
        self._results: dict[str, dict] = {}
        self._list_error: str | None = None
        self.predictions: xr.Dataset | None = None
        self.observations: xr.Dataset | None = None
        self.models: list[str] = []
        self.periods: dict[str, tuple[str, str]] = {}
        self.domain = None  # the shown data's vegviz.domains.Domain: titles, extents and basemap follow it
        self.error: str | None = None
        self._content_obj = None
        self._alert = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        super().__init__(**params)
        self._refresh_button = pn.widgets.Button(label="Refresh", width=90)
        self._refresh_button.on_click(lambda _e: self.refresh())
        self.param.watch(self._on_result, "result")
        self.refresh(reload=True)

    # --------------------------------------------------------------- results
    def refresh(self, reload: bool = False) -> list[str]:
        """Re-list the runs directory (e.g. after a training run finished); return the result names.

        The current result stays selected (and drawn as it is, unless ``reload``) when it
        still exists; otherwise the first one (an experiment if any) is chosen.
        """
        try:
            results, self._list_error = sources.list_results(), None
        except Exception as e:  # a broken runs directory must not break the page
            results, self._list_error = {}, f"Could not list the results: {type(e).__name__}: {e}"
        self._results = results
        names = list(results)
        self.param.result.objects = sources.result_options(results)  # the selector shows readable labels
        if self.result in names or (self.result is None and not names):
            if reload:
                self._open()
        else:
            self.result = names[0] if names else None  # the watcher opens it
        self._listed += 1
        return names

    def _on_result(self, _event=None):
        self._open()

    def _open(self):
        # batched: views that depend on several parameters set here redraw once, at the end
        with param.parameterized.batch_call_watchers(self):
            self.error = None
            self.predictions = self.observations = self.domain = None
            self.models, self.periods = [], {}
            self._clear_error()
            if self.result is not None:
                try:
                    pred = sources.open_result(self.result)
                    obs = sources.observations_for(pred)
                    models = sources.result_models(pred)
                    if not models:
                        raise ValueError("the predictions hold no (time, lat, lon) model variable")
                    self.predictions, self.observations, self.models = pred, obs, models
                    self.domain = sources.domain_of(obs)
                    self.periods = result_periods(pred)
                    self._prepare()
                except Exception as e:
                    self.predictions = self.observations = self.domain = None
                    self.error = (f"Could not open {self.result!r}: {type(e).__name__}: {e}. "
                                  "Choose another result, or re-create this one and press Refresh.")
            self._loaded += 1

    def _prepare(self):
        """Subclass hook: set up parameters and caches for the newly opened result."""

    # --------------------------------------------------------------- shared views
    @property
    def ready(self) -> bool:
        """True when a result is open without error."""
        return self.predictions is not None and self.error is None

    @property
    def synthetic(self) -> bool:
        """Whether the shown observations are labelled synthetic (``attrs['synthetic']``)."""
        from ..evaluation.scoring import is_synthetic

        return self.observations is not None and is_synthetic(self.observations)

    @property
    def title(self) -> str:
        """The shown data's domain title (e.g. "Upper Colorado River Basin"); "" when nothing is open."""
        return self.domain.title if self.domain is not None else ""

    @property
    def extent(self) -> tuple[float, float, float, float] | None:
        """(west, east, south, north) of the shown data's window, degrees; None when nothing is open."""
        from ..basemap import window

        return window(self.observations).extent if self.observations is not None else None

    def header_text(self) -> str:
        """One line: the domain, which data set is shown, whether it is synthetic, which result."""
        if not self._results:
            return "**No results yet.**"
        if not self.ready:
            return f"Result **{self.result}**"
        md = self._results.get(self.result, {})
        data = self.predictions.attrs.get("data", md.get("data", "?"))
        kind = "**synthetic** (virtual basin, not real observations)" if self.synthetic else "real observations"
        t = self.observations["time"].values
        span = f"{pd.Timestamp(t[0]):%Y-%m-%d}..{pd.Timestamp(t[-1]):%Y-%m-%d}"
        return (f"**{self.title}** · Data set **{data}** ({span}): {kind} · {md.get('kind', 'result')} "
                f"**{self.result}**: {', '.join(self.models)}")

    @param.depends("_loaded", "_listed")
    def _header(self):
        return pn.pane.Markdown(self.header_text(), margin=(0, 10))

    def _empty_alert(self):
        from ..paths import runs_root

        text = (f"### No trained results yet\nThere is no run or experiment with predictions in "
                f"`{runs_root()}`.\n\n{HOW_TO_MAKE_ONE}")
        if self._list_error:
            text += f"\n\n{self._list_error}"
        return pn.pane.Alert(text, alert_type="info", sizing_mode="stretch_width")

    def _show_error(self, message: str):
        self._alert.param.update(object=message, visible=True)

    def _clear_error(self):
        if self._alert.visible:
            self._alert.visible = False

    @param.depends("_loaded")
    def _body(self):
        if not self._results:
            return self._empty_alert()
        if self.error:
            return pn.pane.Alert(self.error, alert_type="danger", sizing_mode="stretch_width")
        if not self.ready:
            return pn.pane.Alert("Choose a result.", alert_type="info")
        try:
            if self._content_obj is None:  # built once; its views follow the parameters
                self._content_obj = self._content()
            return self._content_obj
        except Exception as e:
            return pn.pane.Alert(f"Could not draw {self.result!r}: {type(e).__name__}: {e}",
                                 alert_type="danger", sizing_mode="stretch_width")

    def _content(self):
        """The body shown while a result is open (built once per component)."""
        raise NotImplementedError

    def _controls(self) -> list:
        """Widgets shown above the body (subclasses extend)."""
        return [pn.widgets.Select.from_param(self.param.result, label="result", width=RESULT_WIDTH)]

    def __panel__(self):
        if not hasattr(self, "_layout"):
            self._layout = pn.Column(
                pn.Row(*self._controls(), pn.Column(pn.Spacer(height=18), self._refresh_button)),
                self._header, self._alert, pn.panel(self._body, defer_load=False),
            )
        return self._layout


# ----------------------------------------------------------------------------- LAI maps
