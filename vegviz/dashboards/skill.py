"""Skill: per-cell NSE, KGE or RMSE of a result's models, as in the study's panels (a) and (b), and a table.

    Skill()                     # inline in a notebook
    Skill().servable()          # in a served notebook or script

(a) the map of one model's skill next to its density over cells; (b) boxplots per
dominant vegetation type for the trained models; the medians of
:func:`vegviz.evaluation.comparison_table` (models and references, the climatology
included) as two tables that fit the page: overall, and NSE per vegetation type. The period is the result's own
validation or test period (from its config). Scores are computed once per
(result, period) and cached for the process: scoring the full basin takes seconds, so an
experiment's saved ``scores_<period>.nc`` are read instead when current. (Not scored ahead in a
background thread: reading NetCDF there while the process writes another file crashed HDF5.)
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from functools import partial
from pathlib import Path

import holoviews as hv

import numpy as np
import pandas as pd
import panel as pn
import param
import xarray as xr
from bokeh.models.widgets.tables import NumberFormatter

from . import sources
from .base import ResultViewer, _round_up, dominant_vegetation, frame_or_last

__all__ = ["ALL_TYPES", "Skill", "cached_scores"]

ALL_TYPES = "all types"
#: the name of the notice over the map that names the models below the climatology baseline
BASELINE_ALERT = "below-climatology"
#: what the map and the density follow (the boxplots all but the model)
MAP_PARAMS = ("period", "metric", "model", "vegetation")
_SCORES: OrderedDict[tuple, xr.Dataset] = OrderedDict()
_SCORES_LOCK = threading.Lock()
_SCORES_KEEP = 8
_COMPUTING: dict[tuple, threading.Lock] = {}
#: the references scored next to the models (as in the experiment's comparison.md)
REFERENCES = ("process", "climatology", "noise_ceiling")
#: comparison_table's per-type columns start so; the Skill page shows them in a table of their own
_PER_TYPE = "median NSE: "
_REFERENCE_TEXT = {"process": "process = the process-based LAI model",
                   "climatology": "climatology = the mean seasonal cycle of the training years",
                   "noise_ceiling": "noise_ceiling = the noiseless synthetic truth"}


def cached_scores(result: str, predictions: xr.Dataset, observations: xr.Dataset, period_name: str,
                  period: tuple[str, str], path: str | None = None,
                  train_period: tuple[str, str] | str = "train") -> xr.Dataset:
    """:func:`vegviz.evaluation.score` of every model and the references over ``period``, cached.

    The references are those of the experiment's comparison table: the process model, the
    climatology of ``train_period`` (the result's own training years) and, on synthetic
    data, the noise ceiling. The cache key includes the predictions file's modification
    time, so a result that is re-trained under the same name is scored again.
    """
    from ..evaluation import score

    stamp = None
    if path:
        f = Path(path) / "predictions.nc"
        stamp = f.stat().st_mtime_ns if f.exists() else None
    train = train_period if isinstance(train_period, str) else tuple(train_period)
    key = (result, str(path), stamp, tuple(period), train)
    with _SCORES_LOCK:
        if key in _SCORES:
            _SCORES.move_to_end(key)
            return _SCORES[key]
        busy = _COMPUTING.setdefault(key, threading.Lock())
    with busy:  # one computation per key: two sessions (pool threads) asking at once share it
        with _SCORES_LOCK:
            if key in _SCORES:
                return _SCORES[key]
        scores = _saved_scores(path, period_name, period, predictions)
        if scores is None:
            scores = score(predictions, observations, period=tuple(period), references=REFERENCES,
                           train_period=train)
        scores.attrs["period"] = period_name  # score() calls a (start, end) pair "custom"
        with _SCORES_LOCK:
            _SCORES[key] = scores
            _COMPUTING.pop(key, None)
            while len(_SCORES) > _SCORES_KEEP:
                _SCORES.popitem(last=False)
    return scores


def _saved_scores(path, period_name: str, period, predictions: xr.Dataset) -> xr.Dataset | None:
    """The scores an experiment (or ``vegviz evaluate``) wrote for this period, when they are still current.

    ``<result>/scores_<period>.nc`` counts when it is newer than the predictions, covers the same
    dates and holds every model: reading it takes milliseconds, scoring the basin seconds.
    """
    if not path or not isinstance(period, (tuple, list)) or len(period) != 2 or not isinstance(period[0], str):
        return None
    f, pred = Path(path) / f"scores_{period_name}.nc", Path(path) / "predictions.nc"
    try:
        if not f.exists() or f.stat().st_mtime_ns < pred.stat().st_mtime_ns:
            return None
        with xr.open_dataset(f, engine="netcdf4") as ds:
            same = (str(ds.attrs.get("period_start")), str(ds.attrs.get("period_end"))) == tuple(period)
            models = set(ds["model"].values.tolist())
            if not same or not set(sources.result_models(predictions)) <= models:
                return None
            return ds.load()
    except (OSError, ValueError, KeyError):  # unreadable or of another layout: score again
        return None


def _alerts() -> tuple[pn.pane.Alert, pn.pane.Alert]:
    """The notice of models below the climatology baseline, and the alert of a plot that failed (both hidden)."""
    return (pn.pane.Alert("", alert_type="info", name=BASELINE_ALERT, visible=False, sizing_mode="stretch_width",
                          margin=(0, 10)),
            pn.pane.Alert("", alert_type="warning", visible=False, sizing_mode="stretch_width"))


def _colorbar_title(plot, element):
    """Bokeh hook: the colour bar's title follows the frame's ``clabel`` (an updated plot keeps its first)."""
    bar = plot.handles.get("colorbar")
    label = plot.lookup_options(element, "plot").options.get("clabel")
    if bar is not None and label:
        bar.title = label


class Skill(ResultViewer):
    """Per-cell skill of a result's models: map and density (a), boxplots per vegetation type (b), medians.

    ``vegetation`` restricts the map, the density and the boxplots to the cells of one
    dominant type (at least 5 basin cells); the table always covers every type.
    """

    metric = param.Selector(default="nse", objects=["nse", "kge", "rmse"], doc="skill metric")
    period = param.Selector(default="test", objects=["validation", "test"],
                            doc="the result's own validation or test period (from its config)")
    model = param.Selector(default=None, objects=[], allow_None=True, check_on_set=False,
                           doc="model (or reference) on the map")
    vegetation = param.Selector(default=ALL_TYPES, objects=[ALL_TYPES], check_on_set=False,
                                doc="dominant vegetation type shown in the map, density and boxplots")

    def __init__(self, **params):
        self._veg_codes: dict[str, int] = {}
        self._table: tuple[xr.Dataset, pd.DataFrame] | None = None
        self._parts: tuple[tuple, list] | None = None  # the map and the density of one state
        self._last_drawn: dict[str, object] = {}
        self._baseline, self._plot_alert = _alerts()
        super().__init__(**params)
        self.param.watch(self._update_baseline, "period")  # a new result: view_map builds its own

    def _prepare(self):
        obs = self.observations
        self._veg_codes = dominant_vegetation(obs)
        references = [r for r, var in (("process", "lai_process"), ("climatology", "lai"),
                                        ("noise_ceiling", "lai_true")) if var in obs]
        choices = [*self.models, *references]
        self.param.model.objects = choices
        self.param.vegetation.objects = [ALL_TYPES, *self._veg_codes]
        updates = {}
        if self.model not in choices:
            updates["model"] = choices[0]
        if self.vegetation not in self.param.vegetation.objects:
            updates["vegetation"] = ALL_TYPES
        self.param.update(**updates)

    # --------------------------------------------------------------- data
    def period_dates(self) -> tuple[str, str] | list[int]:
        """The chosen period in this result's config: (start, end), or its years (a differential split)."""
        if self.period not in self.periods:
            raise ValueError(f"the result has no {self.period!r} period; it has {sorted(self.periods)}")
        return self.periods[self.period]

    def scores(self) -> xr.Dataset:
        """Per-cell scores of every model and reference over the chosen period (cached)."""
        if not self.ready:
            raise ValueError(self.error or "no result is open. Fix: train one, then press Refresh")
        path = self._results.get(self.result, {}).get("path")
        return cached_scores(self.result, self.predictions, self.observations, self.period,
                             self.period_dates(), path, train_period=self.periods.get("train", "train"))

    def vegetation_mask(self) -> np.ndarray | None:
        """(lat, lon) selection of the chosen vegetation type's basin cells; None for all types."""
        if self.vegetation == ALL_TYPES or self.vegetation is None:
            return None
        if self.vegetation not in self._veg_codes:
            raise ValueError(f"unknown vegetation type {self.vegetation!r}; choose one of {list(self._veg_codes)}")
        from ..evaluation.regions import region_cells

        return region_cells(self.observations, vegetation=self._veg_codes[self.vegetation])

    def shown_scores(self) -> xr.Dataset:
        """The scores restricted to the chosen vegetation type (all cells for 'all types')."""
        from ..evaluation.regions import restrict

        scores = self.scores()
        sel = self.vegetation_mask()
        return scores if sel is None else restrict(scores, sel)

    def map_and_density(self):
        """Panel (a): the chosen model's skill map next to the density of the trained models (and it)."""
        from ..evaluation.panels import nse_map_and_density

        density = list(self.models) + ([self.model] if self.model not in self.models else [])
        plot = nse_map_and_density(self.shown_scores(), self.model, metric=self.metric, density_models=density)
        return plot

    def boxplots(self):
        """Panel (b): boxplots of the trained models' skill per dominant vegetation type."""
        from ..evaluation.panels import nse_boxplots

        scores = self.shown_scores()
        if self.metric == "rmse":
            v = np.asarray(scores["rmse"].sel(model=self.models).values, dtype=float)
            v = v[np.isfinite(v)]
            ylim = (0.0, round(_round_up(float(np.percentile(v, 98)), 0.1), 6) if v.size else 1.0)
        else:
            ylim = (-1.0, 1.0)
        return nse_boxplots(scores, self.observations["landcover"], self.models, metric=self.metric, ylim=ylim)

    def table(self) -> pd.DataFrame:
        """Medians per model (and per vegetation type): :func:`vegviz.evaluation.comparison_table`."""
        from ..evaluation import comparison_table

        scores = self.scores()  # cached per (result, period): so is its table, read by the map's notice and the tables
        if self._table is None or self._table[0] is not scores:
            self._table = (scores, comparison_table(scores, self.observations["landcover"]))
        return self._table[1].copy()

    def tables(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """:meth:`table` split in two narrower tables, models as rows in both: the overall medians,
        and the median NSE per dominant vegetation type (columns named 'type (cells)')."""
        df = self.table()
        per_type = [c for c in df.columns if c.startswith(_PER_TYPE)]
        overall = df.drop(columns=per_type)
        by_type = df[per_type].rename(columns=lambda c: c[len(_PER_TYPE):].replace(" cells)", ")"))
        return overall, by_type

    # --------------------------------------------------------------- views
    def _safe(self, build, what: str):
        if not self.ready:
            return pn.pane.Markdown("")
        try:
            return build()
        except Exception as e:  # shown in the page; the other views and controls stay usable
            return pn.pane.Alert(f"Could not draw {what}: {type(e).__name__}: {e}", alert_type="warning",
                                 sizing_mode="stretch_width")

    def below_climatology(self) -> list[str]:
        """The result's models whose median NSE over the chosen period is below the climatology's."""
        from ..evaluation import below_baseline

        return below_baseline(self.table())

    def _update_baseline(self, *_):
        """The notice naming the models below the climatology baseline over the chosen period (hidden when
        every model beats it). "info", not "warning": a finding about the models, not a failure of the page."""
        from ..evaluation import baseline_warning

        try:
            text = baseline_warning(self.table()) if self.ready else None
        except Exception:  # the plots' alert names the error
            text = None
        self._baseline.param.update(object=f"**{self.period.capitalize()} period.** {text}" if text else "",
                                    visible=bool(text))

    def _frame(self, which: str, **_):
        """One plot of the tab for the current controls: "map", "density" or "boxplots". On an error the
        last drawn one stays, under an alert naming the error."""
        def build():
            if which == "boxplots":
                return self.boxplots()
            key = (self.result, self.period, self.metric, self.model, self.vegetation)
            if self._parts is None or self._parts[0] != key:  # one computation for the map and the density
                self._parts = (key, list(self.map_and_density()))
            el = self._parts[1][0 if which == "map" else 1]
            el.traverse(lambda e: e.opts(hooks=[_colorbar_title]), [hv.Image])
            return el

        return frame_or_last(build, which, self._last_drawn, self._plot_alert, f"the skill {which}",
                             clears_alert=which == "map")

    @param.depends("_loaded")
    def view_map(self):
        """The skill map and the density, updated in place when a control changes (DynamicMaps: redrawing
        them anew cost most of a switch). One pane per plot, not the hv.Layout: Bokeh collapses a grid of
        figures that shares a nested page with other plots. Unlinked: Panel would tie the density's NSE
        axis to the boxplots' NSE axis."""
        def build():
            self._last_drawn, self._parts = {}, None
            self._baseline, self._plot_alert = _alerts()  # new panes for a new page part
            self._update_baseline()
            stream = hv.streams.Params(self, list(MAP_PARAMS))
            panes = [pn.pane.HoloViews(hv.DynamicMap(partial(self._frame, which), streams=[stream]),
                                       linked_axes=False) for which in ("map", "density")]
            return pn.Column(self._baseline, self._plot_alert, pn.Row(*panes))

        return self._safe(build, "the skill map")

    @param.depends("_loaded")
    def view_boxplots(self):
        def build():
            stream = hv.streams.Params(self, [p for p in MAP_PARAMS if p != "model"])
            return pn.pane.HoloViews(hv.DynamicMap(partial(self._frame, "boxplots"), streams=[stream]),
                                     linked_axes=False)

        return self._safe(build, "the boxplots")

    @param.depends("_loaded", "period")
    def view_table(self):
        def frame(df: pd.DataFrame):
            df = df.reset_index()
            floats = {c: NumberFormatter(format="0.000") for c in df.columns if pd.api.types.is_float_dtype(df[c])}
            # sized to its columns (not stretched): the page, not the table, scrolls
            return pn.widgets.Tabulator(df, disabled=True, show_index=False, formatters=floats,
                                        layout="fit_data_table", header_align="center")

        def build():
            overall, by_type = self.tables()
            start, end = self.period_dates()
            refs = [_REFERENCE_TEXT.get(m, m) for m, kind in zip(overall.index, overall.get("kind", [])) if
                    kind == "reference"]
            note = pn.pane.Markdown(f"**Medians over the basin cells**, {self.period} {start} to {end}"
                                    + (f"; references: {', '.join(refs)}" if refs else ""), margin=(0, 10))
            parts = [note, frame(overall)]
            if len(by_type.columns):
                title = pn.pane.Markdown("**Median NSE per dominant vegetation type** (cells)", margin=(10, 10, 0, 10))
                parts += [title, frame(by_type)]
            return pn.Column(*parts)

        return self._safe(build, "the table")

    def downloads(self) -> list:
        """Buttons for the skill table (CSV), the per-cell scores (NetCDF) and the two figures (PNG, SVG)."""
        from .exports import csv_file, download, figure_downloads, file_name, netcdf_file

        def stem(what):
            return file_name(self.result, what, self.period, self.metric,
                             None if self.vegetation == ALL_TYPES else self.vegetation)

        return [
            download("Table CSV", lambda: (file_name(self.result, "skill", self.period) + ".csv",
                                           csv_file(self.table()))),
            download("Scores NetCDF", lambda: (stem("scores") + ".nc", netcdf_file(self.shown_scores()))),
            *figure_downloads("Map", self.map_and_density, lambda: stem(f"map-{self.model}")),
            *figure_downloads("Boxplots", self.boxplots, lambda: stem("boxplots")),
        ]

    def _content(self):
        from .exports import download_row

        return pn.Column(
            download_row(self.downloads()),
            pn.panel(self.view_map, loading_indicator=True),
            pn.panel(self.view_boxplots, loading_indicator=True),
            pn.panel(self.view_table, loading_indicator=True),
            sizing_mode="stretch_width",
        )

    def _controls(self):
        return [
            *super()._controls(),
            pn.widgets.RadioButtonGroup.from_param(self.param.metric, label="metric"),
            pn.widgets.RadioButtonGroup.from_param(self.param.period, label="period"),
            pn.widgets.Select.from_param(self.param.model, label="model (map)", width=180),
            pn.widgets.Select.from_param(self.param.vegetation, label="vegetation", width=240),
        ]
