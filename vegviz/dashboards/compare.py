"""Compare: two results' skill side by side with their difference map, and the training curves of many runs.

    Compare()                                   # inline in a notebook
    Compare(a="tiny", model_a="lstm", b="tiny", model_b="convlstm")

Skill: any two results (runs or experiments, any of their models) are scored over the same
dates (result A's validation or test period, from its config) with the metric chosen; the
page shows both maps on one colour range, the map of B - A (green where B
is better: a higher NSE or KGE, a smaller RMSE), and the medians with the share of cells
where B is better. Results on different grids are shown side by side without a difference.

Training curves: a run list like TensorBoard's (runs with a ``history.csv``, finished or
not, past runs included), the quantity per epoch, exponential smoothing and a log scale.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import panel as pn
import param
import xarray as xr

from . import sources
from .base import RESULT_WIDTH, basemap_overlay, stacked_panes

__all__ = ["CURVES", "Compare", "smooth"]

#: the per-epoch quantities of a run's history.csv the curves can show, and their axis labels
CURVES = {"train_loss": "training loss (normalised LAI)", "val_loss": "validation loss (normalised LAI)",
          "val_nse_median": "validation NSE (median over cells)", "lr": "learning rate"}
_BETTER_LOW = {"rmse"}


def smooth(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's smoothing: an exponential moving average with ``weight`` in [0, 1), debiased at the start.

    NaN values are skipped (the average carries over them and they stay NaN).
    """
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing must be in [0, 1), got {weight}")
    v = np.asarray(values, dtype=float)
    out = np.full_like(v, np.nan)
    acc, n = 0.0, 0
    for i, x in enumerate(v):
        if not np.isfinite(x):
            continue
        acc = weight * acc + (1 - weight) * x
        n += 1
        out[i] = acc / (1 - weight ** n) if weight > 0 else acc
    return out


class Compare(pn.viewable.Viewer):
    """Two results' skill side by side and their difference; several runs' training curves overlaid."""

    a = param.Selector(default=None, objects=[], allow_None=True, check_on_set=False, doc="result A")
    model_a = param.Selector(default=None, objects=[], allow_None=True, check_on_set=False, doc="model of A")
    b = param.Selector(default=None, objects=[], allow_None=True, check_on_set=False, doc="result B")
    model_b = param.Selector(default=None, objects=[], allow_None=True, check_on_set=False, doc="model of B")
    metric = param.Selector(default="nse", objects=["nse", "kge", "rmse"], doc="skill metric")
    period = param.Selector(default="test", objects=["validation", "test"],
                            doc="result A's validation or test period (its config); B is scored on the same dates")
    runs = param.ListSelector(default=[], objects=[], doc="runs whose training curves are overlaid")
    quantity = param.Selector(default="val_loss", objects=list(CURVES), doc="the per-epoch quantity drawn")
    smoothing = param.Number(default=0.0, bounds=(0.0, 0.95), step=0.05,
                             doc="exponential smoothing of the curves (0: none; TensorBoard's weight)")
    log_scale = param.Boolean(default=False, doc="a logarithmic y axis")

    map_width = 240  # three maps with colour bars in a 1280-pixel window (as the LAI maps)

    def __init__(self, **params):
        self._results: dict[str, dict] = {}
        self._histories: dict = {}
        super().__init__(**params)
        self._refresh_button = pn.widgets.Button(label="Refresh", width=90)
        self._refresh_button.on_click(lambda _e: self.refresh())
        self.param.watch(self._on_choice, ["a", "b"])
        self.refresh()

    # --------------------------------------------------------------- listing
    def refresh(self) -> None:
        """Re-list the results and the runs with a history (a run finished in another tab shows up)."""
        try:
            self._results = sources.list_results()
        except Exception:  # a broken runs directory must not break the page
            self._results = {}
        options = sources.result_options(self._results)
        names = list(self._results)
        self.param.a.objects = options
        self.param.b.objects = options
        self._histories = histories = sources.list_histories()
        self.param.runs.objects = {self._run_label(n): n for n in histories}
        updates = {}
        if self.a not in names:
            updates["a"] = names[0] if names else None
        if self.b not in names:  # by default two models of one result (an experiment has three)
            a = updates.get("a", self.a)
            updates["b"] = a if len((self._results.get(a) or {}).get("models") or []) > 1 else \
                next((n for n in names if n != a), a)
        runs = [r for r in self.runs if r in histories]
        if not runs:  # the members of the first experiment, else the newest runs
            first = next((n for n, md in self._results.items() if md.get("kind") == "experiment"), None)
            runs = [n for n in histories if first and n.startswith(first + "/")] or list(histories)[-3:]
        updates["runs"] = runs
        self.param.update(**updates)
        self._on_choice()

    def _run_label(self, name: str) -> str:
        md = self._results.get(name)
        if md is None:  # not finished (no predictions yet): its name and what its config says
            import yaml

            try:
                cfg = yaml.safe_load((self._histories[name] / "config.yaml").read_text()) or {}
            except (OSError, yaml.YAMLError):
                cfg = {}
            md = {"models": [cfg.get("model")] if cfg.get("model") else [], "data": cfg.get("data")}
        return sources.result_label(name, md)

    def _on_choice(self, *_):
        for side in ("a", "b"):
            models = (self._results.get(getattr(self, side)) or {}).get("models") or []
            self.param[f"model_{side}"].objects = list(models)
            if getattr(self, f"model_{side}") not in models:
                # B defaults to another model than A's when both are one result
                other = [m for m in models if side == "b" and self.b == self.a and m != self.model_a]
                setattr(self, f"model_{side}", (other or models or [None])[0])

    # --------------------------------------------------------------- skill
    def _scores(self, side: str, dates) -> tuple[xr.Dataset, xr.Dataset]:
        from .base import result_periods
        from .skill import cached_scores

        name = getattr(self, side)
        if name is None:
            raise ValueError(f"no result {side.upper()} chosen. Fix: train one, then press Refresh")
        pred = sources.open_result(name)
        obs = sources.observations_for(pred)
        train = result_periods(pred).get("train", "train")
        path = self._results.get(name, {}).get("path")
        return cached_scores(name, pred, obs, self.period, dates, path, train_period=train), obs

    def period_dates(self):
        """Result A's chosen period (both results are scored over it)."""
        from .base import result_periods

        if self.a is None:
            raise ValueError("no result A chosen. Fix: train one, then press Refresh")
        periods = result_periods(sources.open_result(self.a))
        if self.period not in periods:
            raise ValueError(f"result A has no {self.period!r} period; it has {sorted(periods)}")
        return periods[self.period]

    def skill_fields(self) -> dict:
        """The two maps of the chosen metric, their difference (None on different grids) and the medians."""
        key = (self.a, self.b, self.model_a, self.model_b, self.metric, self.period)
        cached = getattr(self, "_fields", None)
        if cached is not None and cached[0] == key:  # the maps and the table of one choice share them
            return cached[1]
        fields = self._skill_fields()
        self._fields = (key, fields)
        return fields

    def _skill_fields(self) -> dict:
        dates = self.period_dates()
        sa, obs_a = self._scores("a", dates)
        sb, obs_b = self._scores("b", dates)
        for side, s, m in (("A", sa, self.model_a), ("B", sb, self.model_b)):
            if m not in s["model"].values:
                raise ValueError(f"result {side} has no model {m!r}; it has {s['model'].values.tolist()}")
        fa = sa[self.metric].sel(model=self.model_a).drop_vars("model")
        fb = sb[self.metric].sel(model=self.model_b).drop_vars("model")
        same_grid = fa.shape == fb.shape and np.allclose(fa.lat, fb.lat) and np.allclose(fa.lon, fb.lon)
        diff = (fb.values - fa.values) if same_grid else None
        better = None
        if diff is not None:
            ok = np.isfinite(diff)
            gain = -diff if self.metric in _BETTER_LOW else diff
            better = float((gain[ok] > 0).mean()) if ok.any() else np.nan
        return {"a": fa, "b": fb, "diff": None if diff is None else fa.copy(data=diff), "better": better,
                "obs": obs_a, "dates": dates}

    def _label(self, side: str) -> str:
        return f"{getattr(self, side)}: {getattr(self, f'model_{side}')}"

    def table(self) -> pd.DataFrame:
        """Medians of the metric for A and B over their basin cells, and the share of cells where B is better."""
        f = self.skill_fields()
        rows = {"A " + self._label("a"): float(f["a"].median()), "B " + self._label("b"): float(f["b"].median())}
        df = pd.DataFrame({f"median {self.metric.upper()}": rows})
        if f["diff"] is not None:
            df.loc["B - A", f"median {self.metric.upper()}"] = float(f["diff"].median())
            df["cells where B is better"] = [np.nan, np.nan, f["better"]]
        return df

    def maps(self) -> list:
        """The maps of A and B on one colour range, and of B - A (when both are on one grid)."""
        import holoviews as hv

        from ..basemap import map_axes
        from ..evaluation.panels import BELOW_COLOR, DIFF_CMAP, METRIC_STYLE, metric_range
        from ..evaluation.skill import metric_label
        from .maps import TOOLBAR_HEIGHT, map_size

        f = self.skill_fields()
        clim = metric_range(np.concatenate([np.ravel(f["a"].values), np.ravel(f["b"].values)]), self.metric)
        cmap = METRIC_STYLE.get(self.metric, (None, "viridis"))[1]
        label = metric_label(self.metric)
        out = []
        for key, title in (("a", "A " + self._label("a")), ("b", "B " + self._label("b")), ("diff", "B - A")):
            da = f[key]
            if da is None:
                continue
            lat, lon = da["lat"].values, da["lon"].values
            width, height = map_size(lat, lon, self.map_width)
            if key == "diff":
                v = np.abs(da.values[np.isfinite(da.values)])
                # a few cells with NSE far below 0 would wash the map out: at most the maps' own span
                r = min(float(np.percentile(v, 95)), clim[1] - clim[0]) if v.size else 1.0
                r = r if r > 0 else 1.0
                lim, cm, vlabel = (-r, r), (DIFF_CMAP if self.metric not in _BETTER_LOW else DIFF_CMAP + "_r"), \
                    f"difference of {label}"
                better = f" ({f['better']:.0%} of cells better in B)" if np.isfinite(f["better"]) else ""
                title = f"B - A{better}"
            else:
                lim, cm, vlabel = clim, cmap, label
                title = f"{title} ({float(da.median()):.3f})"
            img = hv.Image((lon, lat, np.asarray(da.transpose("lat", "lon").values, dtype=float)), kdims=["lon", "lat"],
                           vdims=[vlabel]).opts(cmap=cm, clim=lim, colorbar=True, tools=["hover"], width=width,
                                                height=height + TOOLBAR_HEIGHT, toolbar="above", title=title,
                                                clipping_colors={"min": BELOW_COLOR},
                                                **map_axes(lat, aspect=False, value=vlabel))
            out.append(img * basemap_overlay(f["obs"]))  # built once per data set, one row per layer
        return out

    # --------------------------------------------------------------- curves
    def history(self, name: str) -> pd.DataFrame:
        """A run's per-epoch history (``history.csv``)."""
        folder = self._histories.get(name)
        if folder is None:
            raise ValueError(f"no run named {name!r} with a history. Existing: {', '.join(self._histories) or 'none'}")
        return pd.read_csv(folder / "history.csv")

    def curves(self):
        """The chosen runs' ``quantity`` per epoch, smoothed, overlaid (a log y axis on request)."""
        import holoviews as hv

        from ..evaluation.panels import model_color

        if not self.runs:
            raise ValueError("no run chosen. Fix: pick runs in the run list")
        elements = []
        for k, name in enumerate(self.runs):
            h = self.history(name)
            if self.quantity not in h or h.empty:
                continue
            y = smooth(h[self.quantity].to_numpy(dtype=float), self.smoothing)
            if self.log_scale:
                y = np.where(y > 0, y, np.nan)  # a log axis has no room for zero or negative values
            frame = pd.DataFrame({"epoch": h["epoch"].to_numpy(), self.quantity: y})
            color = model_color(f"run {k}", [f"run {j}" for j in range(len(self.runs))])
            elements.append(hv.Curve(frame, "epoch", hv.Dimension(self.quantity, label=CURVES[self.quantity]),
                                     label=name).opts(color=color, line_width=2, tools=["hover"]))
            elements.append(hv.Scatter(frame, "epoch", self.quantity, label=name).opts(color=color, size=5))
        if not elements:
            raise ValueError(f"none of the chosen runs has a {self.quantity!r} history yet")
        smoothing = f", smoothed ({self.smoothing:g})" if self.smoothing else ""
        return hv.Overlay(elements).opts(
            title=f"{CURVES[self.quantity]} per epoch{smoothing}", logy=self.log_scale, frame_width=540,
            frame_height=300, legend_position="right", xlabel="epoch", ylabel=CURVES[self.quantity])

    # --------------------------------------------------------------- views
    @staticmethod
    def _safe(build, what: str):
        try:
            return build()
        except Exception as e:  # shown in the page; the other views and controls stay usable
            return pn.pane.Alert(f"Could not draw {what}: {type(e).__name__}: {e}", alert_type="warning",
                                 sizing_mode="stretch_width")

    @param.depends("a", "b", "model_a", "model_b", "metric", "period")
    def view_skill(self):
        if not self._results:
            from .base import HOW_TO_MAKE_ONE

            return pn.pane.Alert(f"### No trained results yet\n{HOW_TO_MAKE_ONE}", alert_type="info")

        def build():
            panes = [pn.pane.HoloViews(m, linked_axes=True) for m in self.maps()]
            df = self.table().reset_index(names="result")
            note = "" if len(panes) == 3 else ("*A and B lie on different grids: no difference map.*")
            return pn.Column(pn.Row(*panes), pn.pane.Markdown(note) if note else None,
                             pn.widgets.Tabulator(df, disabled=True, show_index=False, layout="fit_data_table"))

        return self._safe(build, "the skill comparison")

    @param.depends("runs", "quantity", "smoothing", "log_scale")
    def view_curves(self):
        return self._safe(lambda: stacked_panes(self.curves()), "the training curves")

    def __panel__(self):
        if not hasattr(self, "_layout"):
            skill_controls = pn.Row(
                pn.widgets.Select.from_param(self.param.a, name="result A", width=RESULT_WIDTH),
                pn.widgets.Select.from_param(self.param.model_a, name="model A", width=150),
                pn.widgets.Select.from_param(self.param.b, name="result B", width=RESULT_WIDTH),
                pn.widgets.Select.from_param(self.param.model_b, name="model B", width=150),
                pn.Column(pn.Spacer(height=18), self._refresh_button))
            choice = pn.Row(pn.widgets.RadioButtonGroup.from_param(self.param.metric),
                            pn.widgets.RadioButtonGroup.from_param(self.param.period))
            curve_controls = pn.Column(
                pn.widgets.MultiSelect.from_param(self.param.runs, name="runs", size=8, width=RESULT_WIDTH),
                pn.widgets.Select.from_param(self.param.quantity, name="quantity", width=RESULT_WIDTH,
                                             options={v: k for k, v in CURVES.items()}),
                pn.widgets.FloatSlider.from_param(self.param.smoothing, name="smoothing", width=RESULT_WIDTH),
                pn.widgets.Checkbox.from_param(self.param.log_scale, name="log scale"))
            self._layout = pn.Column(
                pn.pane.Markdown("### Skill of two results", margin=(0, 10)), skill_controls, choice,
                pn.panel(self.view_skill, loading_indicator=True),
                pn.pane.Markdown("### Training curves", margin=(10, 10, 0, 10)),
                pn.Row(curve_controls, pn.panel(self.view_curves, loading_indicator=True)),
                sizing_mode="stretch_width")
        return self._layout
