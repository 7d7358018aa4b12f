"""The Scenarios dashboard: define a climate scenario, project trained models on it, see how LAI changes.

    ScenariosDashboard()                          # inline in a notebook; .servable() under panel serve
    dash = ScenariosDashboard(source="tiny", dt=2, precip=0.9, period="2004:2005")
    dash.start(); dash.wait()                     # the same from code (``wait`` drains the job's messages)

Left, the scenario: a trained experiment or run (``source``), an existing scenario or a new delta
change (``dt`` K added to the temperatures, precipitation times ``precip``, over ``period`` of the
source's data). **Run** builds the scenario (:func:`vegviz.scenarios.build_scenario`) and projects
the source on it (:func:`vegviz.scenarios.projection.project`) in the background, with progress
and **Cancel** (:class:`~vegviz.dashboards.jobs.BackgroundJob`); the finished projection is shown.

Right, a projection (``projection``, any under ``<runs dir>/projections``): for the chosen seasonal
``quantity`` (:data:`vegviz.evaluation.projection.QUANTITIES`) the map of its change per model
(scenario minus baseline of the same model, so a model's bias cancels), the process model and,
on a virtual basin, the **truth** (the true vegetation re-run on both forcings); the ensemble
spread where a model has members (else "single member"); the change per vegetation type; the
known-truth skill table; and a clicked cell's daily LAI on the baseline and on the scenario.

Everything is computed by the library; this module only asks for it and draws it.
"""
from __future__ import annotations

import logging
import re
import secrets
from pathlib import Path

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the bokeh options used below)
import numpy as np
import pandas as pd
import panel as pn
import param
import xarray as xr

from .. import bokeh_setup  # noqa: F401  (frame-sized plots: no W-1005 per session)
from ..basemap import map_axes
from ..evaluation.panels import DIFF_CMAP, model_color
from ..evaluation.projection import QUANTITIES, QUANTITY_ATTRS
from . import sources
from .base import _round_up, basemap_overlay
from .jobs import BackgroundJob, JobCancelled

log = logging.getLogger(__name__)

__all__ = ["ScenariosDashboard", "scenario_name"]

#: the ``scenario`` choice that defines a new delta-change scenario from the form
NEW = "new delta change"
#: statuses of :attr:`ScenariosDashboard.status`
STATUSES = ("idle", "building", "projecting", "finished", "cancelled", "failed")
#: the kinds of a projection's ``model`` coordinate drawn as maps (members only feed the spread)
SHOWN_KINDS = ("model", "ensemble mean", "process", "truth")
FORM_WIDTH = 280


def _number(x: float) -> str:
    """2 -> '2', -1.5 -> 'm1p5': a number inside a scenario name (letters, digits, '_' and '-' only)."""
    return f"{x:g}".replace("-", "m").replace(".", "p")


def scenario_name(data: str, period: str, dt: float, precip: float) -> str:
    """The default name of a delta-change scenario: data, period and change, e.g.
    ``virtual_ucrb_small_2004-2005_dT2_P90`` (+2 K, 90 % precipitation)."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(str(data)).name.removesuffix(".zarr").removesuffix(".nc")) or "data"
    span = re.sub(r"[^0-9-]+", "-", str(period).replace(":", "-")).strip("-") or "all"
    name = f"{stem}_{span}_dT{_number(dt)}_P{_number(round(precip * 100, 1))}"
    return name if name[0].isalpha() else f"s{name}"


class ScenariosDashboard(pn.viewable.Viewer):
    """Climate scenarios and projections: define and run one in the background, browse its ΔLAI maps.

    Read-only outputs: ``status``, ``running``, ``job`` (the last :class:`BackgroundJob`).
    """

    # ------------------------------------------------------------------ the scenario to run
    source = param.Selector(default=None, objects=[], allow_None=True, check_on_set=False,
                            doc="trained experiment or run to project (runs directory)")
    scenario = param.Selector(default=NEW, objects=[NEW], check_on_set=False,
                              doc="an existing scenario, or a new delta change defined below")
    dt = param.Number(default=2.0, bounds=(-10.0, 10.0), step=0.5, label="ΔT (K)",
                      doc="added to tair and tmin (humidity follows at constant relative humidity)")
    precip = param.Number(default=1.0, bounds=(0.1, 3.0), step=0.05, label="Precipitation factor",
                          doc="daily precipitation multiplied by it (0.9: 10 % less)")
    period = param.String(default="", label="Period (YYYY:YYYY)",
                          doc="baseline years of the source's data; default: its test period, two years at least")
    new_name = param.String(default="", label="Scenario name",
                            doc="name of the new scenario; default: from the data, period and change")

    # ------------------------------------------------------------------ the projection shown
    projection = param.Selector(default=None, objects=[], allow_None=True, check_on_set=False,
                                doc="projection shown (<source>--<scenario>)")
    quantity = param.Selector(default="annual_mean", objects=list(QUANTITIES),
                              doc="seasonal summary whose change is mapped")
    cell = param.Tuple(default=None, allow_None=True, length=2, doc="(lat, lon) of the clicked cell")

    # ------------------------------------------------------------------ outputs
    status = param.Selector(default="idle", objects=list(STATUSES), precedence=-1)
    running = param.Boolean(default=False, precedence=-1)
    poll_period = param.Integer(default=300, bounds=(50, 5000), precedence=-1)
    _loaded = param.Integer(default=0, precedence=-1, doc="bumped whenever a projection was (re)opened")

    map_width = 260

    def __init__(self, **params):
        self.proj: xr.Dataset | None = None
        self.error: str | None = None
        self.job: BackgroundJob | None = None
        self._results: dict[str, dict] = {}
        self._auto_name = self._auto_period = ""
        self.tap_streams: list[hv.streams.Tap] = []
        super().__init__(**params)
        self.alert = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width")
        self._status_text = pn.pane.Markdown("Choose a source and a scenario, then press **Run**.",
                                             sizing_mode="stretch_width")
        self._progress = pn.indicators.Progress(value=0, max=100, width=FORM_WIDTH - 20, bar_color="success")
        self._run_button = pn.widgets.Button(label="Run", color="primary")
        self._cancel_button = pn.widgets.Button(label="Cancel", color="warning", disabled=True)
        self._refresh_button = pn.widgets.Button(label="Refresh", width=90)
        self._run_button.on_click(lambda _e: self.start())
        self._cancel_button.on_click(lambda _e: self.cancel())
        self._refresh_button.on_click(lambda _e: self.refresh())
        self.param.watch(self._on_source, "source")
        self.param.watch(self._on_form, ["dt", "precip", "period", "scenario"])
        self.param.watch(self._open, "projection")
        self.refresh()
        if self.proj is None and self.projection is not None:
            self._open()

    # ------------------------------------------------------------------ listing
    def refresh(self, select: str | None = None) -> list[str]:
        """Re-list the results, scenarios and projections (then show projection ``select``); return the projections."""
        try:
            self._results = sources.list_results()
            scenarios = sources.list_scenarios()
            projections = sources.list_projections()
        except Exception as e:  # a broken folder must not break the page
            self._show_error(f"Could not list the results and projections: {type(e).__name__}: {e}")
            self._results, scenarios, projections = {}, [], []
        self.param.source.objects = list(self._results)
        self.param.scenario.objects = [NEW, *scenarios]
        self.param.projection.objects = projections
        if self.source not in self._results:
            self.source = next(iter(self._results), None)
        else:
            self._on_source()
        if self.scenario not in self.param.scenario.objects:
            self.scenario = NEW
        if select in projections:
            self.projection = select
        elif self.projection not in projections:
            self.projection = projections[-1] if projections else None
        return projections

    def _on_source(self, *_):
        """The period follows the source (its test period) until the user types one of their own."""
        if self.source is None or (self.period and self.period != self._auto_period):
            self._update_name()
            return
        try:  # the source's test period, at least two whole years (a projection skips the burn-in days)
            from ..evaluation.periods import resolve_period
            from .base import result_periods

            start, end = resolve_period(result_periods(sources.open_result(self.source))["test"])
            y0, y1 = start.year, end.year
            self.period = self._auto_period = f"{min(y0, y1 - 1)}:{y1}"
        except Exception as e:
            log.warning("no default period for %s: %s", self.source, e)
        self._update_name()

    def _on_form(self, *_):
        self._update_name()

    def _update_name(self):
        """The scenario name follows the form until the user types one of their own."""
        md = self._results.get(self.source or "", {})
        auto = scenario_name(md.get("data", "data"), self.period, self.dt, self.precip)
        if not self.new_name or self.new_name == self._auto_name:
            self.new_name = auto
        self._auto_name = auto

    # ------------------------------------------------------------------ the background job
    def start(self) -> bool:
        """Build the scenario (unless an existing one is chosen) and project the source on it, in the background.

        Returns False, with the reason shown, when the settings are invalid or a job runs; nothing is written then.
        """
        if self.running:
            self._show_error("A scenario is already running. Fix: cancel it, or wait until it ends.")
            return False
        self._hide_error()
        try:
            work, what = self._work()
        except Exception as e:  # checked before anything is written
            self._show_error(f"{e}", title="Cannot start")
            return False
        self.job = BackgroundJob(work, on_progress=self._on_progress, on_done=self._on_done,
                                 name=f"vegviz-scenario-{secrets.token_hex(3)}", period=self.poll_period)
        self.running, self.status = True, "building" if self.scenario == NEW else "projecting"
        self._progress.value = 0
        self._message(what)
        self._sync_buttons()
        self.job.start()
        return True

    def cancel(self) -> None:
        """Stop the job at its next step (the scenario being built is finished; no projection is written)."""
        if self.job is not None and self.running:
            self.job.cancel()
            self._message("Cancelling after the current step ...")

    def wait(self, timeout: float | None = None) -> str:
        """Drain the job's messages until it ended; returns the final status."""
        if self.job is not None:
            self.job.wait(timeout)
        return self.status

    def poll(self) -> int:
        return self.job.poll() if self.job is not None else 0

    def _work(self):
        """(work(job), message): the checks of the settings now, the build and projection in the job."""
        from ..scenarios import DeltaChange, ScenarioError, scenario_path
        from ..scenarios.projection import projection_name

        if self.source is None or self.source not in self._results:
            raise ValueError("no trained experiment or run chosen. Fix: train one (Training tab, `vegviz "
                             "experiment`), press Refresh and choose it")
        md = self._results[self.source]
        folder = sources.safe_path(Path(md["path"]))
        new = self.scenario == NEW
        if new:
            change = DeltaChange(dt=float(self.dt), precip=float(self.precip))
            name = str(self.new_name or "").strip()
            path = scenario_path(name)  # ScenarioError naming the allowed characters
            if path.exists():
                raise ScenarioError(f"scenario {name!r} exists. Fix: choose it in the scenario list, or type "
                                    "another name")
            data, period = md.get("data"), str(self.period).strip() or None
            if not data:
                raise ValueError(f"{self.source} does not say which data it was trained on. Fix: re-train it")
        else:
            name = self.scenario
        projected = projection_name(folder.name, name)
        if projected in sources.list_projections():
            raise FileExistsError(f"projection {projected!r} exists already. Fix: choose it in the projection "
                                  "list, or define another scenario")
        runs = 1 if (folder / "config.yaml").exists() else max(1, len(md.get("models") or []))
        steps = int(new) + runs + 2  # build, one prediction per run, the truth (virtual basins), the write
        done = [0]

        def work(job):
            if new:
                job.report(0.0, f"Building scenario `{name}` ({change.describe()}) over {period} of {data} ...")
                from ..scenarios import build_scenario

                build_scenario(name, data, period, change)
                done[0] += 1
                job.report(done[0] / steps, f"Scenario `{name}` built; projecting `{self.source}` on it ...")
            from ..scenarios.projection import project

            def progress(text):
                done[0] += 1
                # the last message says the projection is written: too late to cancel
                job.report(min(done[0] / steps, 0.99), str(text), check=not str(text).startswith("wrote "))

            proj = project(folder, name, log=progress)
            return proj.attrs.get("projection", projected)

        what = (f"Building scenario `{name}` and projecting `{self.source}` on it ..." if new
                else f"Projecting `{self.source}` on scenario `{name}` ...")
        return work, what

    def _on_progress(self, fraction, text):
        if fraction is not None:
            self._progress.value = int(round(100 * fraction))
        if self.status == "building" and "built" in text:
            self.status = "projecting"
        self._message(text)

    def _on_done(self, result, error):
        self.running = False
        self._sync_buttons()
        if isinstance(error, JobCancelled):
            self.status = "cancelled"
            self._message("Cancelled: no projection was written (a scenario finished before the cancel is kept "
                          "and listed).")
            self.refresh()
            return
        if error is not None:
            self.status = "failed"
            self._show_error(f"{type(error).__name__}: {error}", title="The scenario failed")
            self._message("Failed; change the settings and press Run again.")
            self.refresh()
            return
        self.status = "finished"
        self._progress.value = 100
        self._message(f"Projection `{result}` written; shown on the right.")
        self.refresh(select=result)

    # ------------------------------------------------------------------ the projection shown
    def _open(self, *_):
        self.proj, self.error, self.cell = None, None, None
        if self.projection is not None:
            try:
                self.proj = sources.open_projection(self.projection)
                if not self.shown_models:
                    raise ValueError("it holds no model's change maps")
            except Exception as e:
                self.proj = None
                self.error = (f"Could not open projection {self.projection!r}: {type(e).__name__}: {e}. Choose "
                              "another one, or run the scenario again.")
        self._loaded += 1

    @property
    def ready(self) -> bool:
        return self.proj is not None and self.error is None

    @property
    def synthetic(self) -> bool:
        return self.ready and bool(int(self.proj.attrs.get("synthetic", 0)))

    @property
    def shown_models(self) -> list[str]:
        """The projection's models drawn as maps: trained models (ensemble means), process, truth."""
        if self.proj is None:
            return []
        kinds = self.proj["kind"].values if "kind" in self.proj.coords else ["model"] * self.proj.sizes["model"]
        return [str(m) for m, k in zip(self.proj["model"].values, kinds) if str(k) in SHOWN_KINDS]

    def members(self, model: str) -> int:
        """How many members a model's change averages (1: a single run)."""
        spread = self.proj.get(f"delta_{self.quantity}_spread")
        if spread is None or model not in self.proj["model"].values:
            return 1
        if not np.isfinite(np.asarray(spread.sel(model=model).values, dtype=float)).any():
            return 1
        kinds = self.proj["kind"].values
        names = [str(m) for m, k in zip(self.proj["model"].values, kinds) if k == "member"]
        return max(2, sum(n.startswith(f"{model}-m") for n in names))

    def delta(self, model: str) -> xr.DataArray:
        """The change map of ``quantity`` for ``model`` (lat, lon), basin cells only."""
        da = self.proj[f"delta_{self.quantity}"].sel(model=model)
        return da.where(self.proj["mask"].fillna(0) > 0).load()

    def _units(self) -> str:
        return QUANTITY_ATTRS[self.quantity]["units"]

    def _label(self) -> str:
        what = QUANTITY_ATTRS[self.quantity]["long_name"].split(" (")[0]
        return f"Δ {what} ({self._units()})"

    def _clim(self, arrays) -> tuple[float, float]:
        """Symmetric about 0, the 98th percentile of |Δ| over every map: maps comparable, 0 white."""
        v = np.abs(np.concatenate([np.ravel(a) for a in arrays])) if arrays else np.array([])
        v = v[np.isfinite(v)]
        step = 0.05 if self._units() == "m2 m-2" else 1.0
        lim = _round_up(float(np.percentile(v, 98)), step) if v.size else step
        return -lim, lim

    def _map(self, da: xr.DataArray, title: str, clim, cmap: str = DIFF_CMAP, label: str | None = None):
        from .maps import map_size

        lat, lon = da["lat"].values, da["lon"].values
        width, height = map_size(lat, lon, self.map_width)
        label = label or self._label()
        img = hv.Image((lon, lat, np.asarray(da.transpose("lat", "lon").values, dtype=np.float32)),
                       kdims=["lon", "lat"], vdims=[label]).opts(
            cmap=cmap, clim=tuple(clim), colorbar=True, clabel=label, tools=["hover", "tap"], width=width,
            height=height, title=title, **map_axes(lat, aspect=False, value=label))
        tap = hv.streams.Tap(source=img, x=None, y=None)
        tap.add_subscriber(self._on_tap)
        self.tap_streams.append(tap)
        return img * basemap_overlay(self.proj)

    def _title(self, model: str) -> str:
        if model == "truth":
            return "truth (virtual basin, SYNTHETIC)"
        n = self.members(model)
        return f"{model} (mean of {n} members)" if n > 1 else model

    def maps(self) -> list:
        """One change map per shown model (HoloViews), sharing a colour range centred at 0."""
        models = self.shown_models
        deltas = {m: self.delta(m) for m in models}
        clim = self._clim([d.values for d in deltas.values()])
        self.tap_streams = []
        return [self._map(d, self._title(m), clim) for m, d in deltas.items()]

    def spread_maps(self) -> list:
        """The ensemble spread map of each model with members (std across members)."""
        out = []
        for m in self.shown_models:
            if self.members(m) > 1:
                da = self.proj[f"delta_{self.quantity}_spread"].sel(model=m).where(self.proj["mask"].fillna(0) > 0)
                v = np.asarray(da.values, dtype=float)
                hi = _round_up(float(np.nanpercentile(v, 98)), 0.01) if np.isfinite(v).any() else 1.0
                out.append(self._map(da.load(), f"{m}: spread of {self.members(m)} members", (0, hi), "viridis",
                                     f"std of Δ ({self._units()})"))
        return out

    def vegetation_element(self):
        """The per-cell change of every shown model per dominant vegetation type (box plots)."""
        from ..evaluation.panels import nse_boxplots

        models = self.shown_models
        delta = self.proj[f"delta_{self.quantity}"].sel(model=models).where(self.proj["mask"].fillna(0) > 0)
        label = self._label()
        v = np.abs(np.asarray(delta.values, dtype=float))
        lim = self._clim([v])[1] * 1.5
        box = nse_boxplots(xr.Dataset({"delta": delta.load()}), self.proj["landcover"], models, metric="delta",
                           ylim=(-lim, lim), width=620)
        return box.opts(ylabel=label, title=f"{label} per dominant vegetation type (cells)")

    def source_warning(self) -> str:
        """A warning naming the projection's models that scored below the climatology baseline on their own
        test period (the comparison.csv of the source experiment, or of the experiment a source run belongs
        to); empty when none did or there is no such table."""
        from ..evaluation import baseline_warning

        if not self.proj.attrs.get("source_path"):  # a projection made before vegviz recorded its source's folder
            return ""
        folder = Path(self.proj.attrs["source_path"])
        path = next((f for f in (folder / "comparison.csv", folder.parent / "comparison.csv") if f.exists()), None)
        if path is None:
            return ""
        try:
            table = pd.read_csv(path, index_col=0)
        except (OSError, ValueError):
            return ""
        models = [m.strip() for m in str(self.proj.attrs.get("models", "")).split(",") if m.strip()]
        kinds = table["kind"] if "kind" in table else pd.Series("model", index=table.index)
        table = table[[m in models or kinds.get(m) == "reference" for m in table.index]]
        text = baseline_warning(table)
        return (f"**Warning.** In the test period of experiment {path.parent.name}: {text} A projected change "
                "from such a model rests on a model without skill over the seasonal cycle.") if text else ""

    def skill_text(self) -> str:
        """The known-truth skill of every model's change (virtual basins), as Markdown, after a warning about
        models below the climatology baseline in their own test period."""
        warning = self.source_warning()
        warning = warning + "\n\n" if warning else ""
        if not self.synthetic:
            return warning + ("*Known-truth skill needs the true change, which only a virtual basin has: this "
                              "projection is on real data.*")
        path = Path(self.proj.attrs.get("path", "")) / "skill.csv"
        if not path.exists():
            return warning + f"*No skill table next to this projection ({path}).*"
        from ..evaluation.projection import skill_markdown

        table = pd.read_csv(path)
        return (warning + f"**Known-truth skill of Δ {self.quantity}** (model vs truth over the basin cells):\n\n"
                + skill_markdown(table, self.quantity))

    def _on_tap(self, x=None, y=None, **_):
        if x is None or y is None or not self.ready:
            return
        lat, lon = self.proj["lat"].values, self.proj["lon"].values
        i, j = int(np.abs(lat - y).argmin()), int(np.abs(lon - x).argmin())
        res = abs(lat[1] - lat[0]) if lat.size > 1 else 0.125
        if abs(lat[i] - y) <= res / 2 + 1e-9 and abs(lon[j] - x) <= res / 2 + 1e-9:
            self.cell = (float(lat[i]), float(lon[j]))

    def series_element(self):
        """The clicked cell's daily LAI of every shown model: baseline dashed, scenario solid."""
        if self.cell is None:
            raise ValueError("no cell chosen. Fix: click a cell on a map")
        from ..contract import IGBP_CLASSES

        lat, lon = self.cell
        at = self.proj[[v for m in self.shown_models for v in (m, f"{m}_baseline") if v in self.proj]].sel(
            lat=lat, lon=lon, method="nearest").load()
        curves = []
        for m in self.shown_models:
            color = model_color(m, self.shown_models)
            for suffix, dash, what in (("_baseline", "dashed", "baseline"), ("", "solid", "scenario")):
                if m + suffix in at:
                    s = at[m + suffix].to_dataframe(name="LAI").reset_index()[["time", "LAI"]]
                    curves.append(hv.Curve(s, "time", "LAI", label=f"{m} {what}").opts(
                        color=color, line_dash=dash, line_width=1.5 if dash == "dashed" else 2))
        lc = int(self.proj["landcover"].sel(lat=lat, lon=lon, method="nearest"))
        tag = " [synthetic]" if self.synthetic else ""
        return hv.Overlay(curves).opts(
            title=f"cell {float(at['lat']):.4f} N, {float(at['lon']):.4f} E, {IGBP_CLASSES.get(lc, lc)}: "
                  f"baseline (dashed) vs scenario {self.proj.attrs.get('scenario', '')}{tag}",
            frame_width=760, frame_height=240, ylabel="LAI (m2 m-2)", xlabel="date", legend_position="right")

    # ------------------------------------------------------------------ views
    def _safe(self, build, what: str):
        try:
            return build()
        except Exception as e:  # shown in the page; the rest stays usable
            log.warning("could not draw %s", what, exc_info=True)
            return pn.pane.Alert(f"Could not draw {what}: {type(e).__name__}: {e}", alert_type="warning",
                                 sizing_mode="stretch_width")

    def header_text(self) -> str:
        if not self.param.projection.objects:
            return ("**No projections yet.** Choose a trained experiment and a scenario on the left and press "
                    "**Run**.")
        if not self.ready:
            return f"Projection **{self.projection}**"
        a = self.proj.attrs
        kind = "**SYNTHETIC** (virtual basin)" if self.synthetic else "real data"
        return (f"**{a.get('domain_title') or a.get('scenario_domain_title') or a.get('domain', '')}** · scenario "
                f"**{a.get('scenario')}**: {a.get('scenario_change', '')} · baseline {a.get('baseline', '?')} "
                f"{a.get('baseline_start', '')}..{a.get('baseline_end', '')} · {kind} · models: "
                f"{', '.join(self.shown_models)}")

    @param.depends("_loaded")
    def view_header(self):
        return pn.pane.Markdown(self.header_text(), sizing_mode="stretch_width")

    @param.depends("_loaded", "quantity")
    def view_maps(self):
        if not self.ready:
            return pn.pane.Alert(self.error, alert_type="danger") if self.error else pn.pane.Markdown("")
        return self._safe(lambda: pn.FlexBox(*[pn.pane.HoloViews(m) for m in self.maps()]), "the change maps")

    @param.depends("_loaded", "quantity")
    def view_spread(self):
        if not self.ready:
            return pn.pane.Markdown("")

        def build():
            maps = self.spread_maps()
            if maps:
                return pn.FlexBox(*[pn.pane.HoloViews(m) for m in maps])
            return pn.pane.Markdown("**Ensemble spread:** single member (no model of this projection has "
                                    "ensemble members; train some with `vegviz experiment --members N`).")

        return self._safe(build, "the ensemble spread")

    @param.depends("_loaded", "quantity")
    def view_vegetation(self):
        if not self.ready:
            return pn.pane.Markdown("")
        return self._safe(lambda: pn.Row(pn.pane.HoloViews(self.vegetation_element()),
                                         pn.pane.Markdown(self.skill_text(), width=520)), "the vegetation types")

    @param.depends("_loaded", "cell")
    def view_series(self):
        if not self.ready:
            return pn.pane.Markdown("")
        if self.cell is None:
            return pn.pane.Markdown("*Click a cell on a map to see its daily LAI on the baseline and the scenario.*")
        return self._safe(lambda: pn.pane.HoloViews(self.series_element()), "the cell's series")

    # ------------------------------------------------------------------ page
    def _message(self, text: str) -> None:
        self._status_text.object = text

    def _show_error(self, text: str, title: str = "Error") -> None:
        self.alert.param.update(object=f"**{title}:** {text}", visible=True)

    def _hide_error(self) -> None:
        self.alert.param.update(object="", visible=False)

    def _sync_buttons(self) -> None:
        self._run_button.disabled = self.running
        self._cancel_button.disabled = not self.running

    def __panel__(self):
        if not hasattr(self, "_layout"):
            w = FORM_WIDTH - 20
            form = pn.Column(
                "### Scenario",
                pn.widgets.Select.from_param(self.param.source, label="Trained experiment or run", width=w),
                pn.widgets.Select.from_param(self.param.scenario, label="Scenario", width=w),
                pn.widgets.FloatInput.from_param(self.param.dt, width=w),
                pn.widgets.FloatInput.from_param(self.param.precip, width=w),
                pn.widgets.TextInput.from_param(self.param.period, width=w),
                pn.widgets.TextInput.from_param(self.param.new_name, width=w),
                pn.Row(self._run_button, self._cancel_button), self._progress, self._status_text,
                width=FORM_WIDTH)
            top = pn.Row(pn.widgets.Select.from_param(self.param.projection, label="projection", width=360),
                         pn.widgets.RadioButtonGroup.from_param(self.param.quantity, label="quantity"),
                         pn.Column(pn.Spacer(height=18), self._refresh_button))
            body = pn.Column(top, self.alert, self.view_header, self.view_maps, self.view_spread,
                             self.view_vegetation, self.view_series, sizing_mode="stretch_width")
            self._layout = pn.Row(form, body, sizing_mode="stretch_width")
        return self._layout
