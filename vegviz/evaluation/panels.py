"""The study's four panels as HoloViews objects (bokeh), for notebooks, dashboards and the README.

(a) :func:`nse_map_and_density` - a skill map next to its probability density;
(b) :func:`nse_boxplots` - skill per dominant vegetation type and model;
(c) :func:`lai_map_comparison` - simulated vs satellite LAI on one composite date, and their difference;
(d) :func:`vegetation_timeseries` - models vs satellite LAI for one vegetation type
    (default open shrublands, as in the study); :func:`cell_timeseries` for one cell, and
    :func:`cell_forcing`, the forcing that drove it, to stack under it.

Maps are in longitude/latitude with the offline :func:`vegviz.basemap.basemap`
overlaid (``basemap=False`` leaves it out). Titles say "[synthetic]" when the data
are labelled synthetic.
"""
from __future__ import annotations

import zlib
from typing import Sequence

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401  (registers the bokeh options used below)
import numpy as np
import pandas as pd
import xarray as xr

from .. import bokeh_setup  # noqa: F401  (frame-sized plots: no W-1005 per session)
from ..basemap import degrees, map_axes
from ..contract import IGBP_CLASSES
from .periods import period_label
from .scoring import PROCESS, checked_models, is_synthetic
from .series import CELL_FORCINGS, SATELLITE, cell_series
from .skill import metric_label
from .summary import _landcover, _models, vegetation_groups

#: fixed colours, so a model looks the same in every panel (Dark2 palette)
MODEL_COLORS = {
    "convlstm": "#1b9e77",
    "convlstm_physics": "#d95f02",
    "lstm": "#7570b3",
    "process": "#666666",
    "climatology": "#e6ab02",
    "noise_ceiling": "#000000",
    "satellite": "#e7298a",
    "truth": "#a6761d",
}
_FALLBACK = ("#66a61e", "#1f78b4", "#b15928", "#6a3d9a", "#b2df8a", "#fb9a99")
#: per metric: (floor, upper end) of the drawn range, and the colour map. NSE and KGE run from
#: -inf to 1, so their range starts at the data's minimum (0 at most) but not below the floor:
#: one cell at NSE -50 would squash every other cell into a sliver. Cells below the floor are
#: counted in the legend (density) and the colour bar's title (map, where they get their own colour).
METRIC_STYLE = {"nse": ((-1.0, 1.0), "RdYlBu"), "kge": ((-1.0, 1.0), "RdYlBu"), "rmse": (None, "viridis")}
#: colour of map cells below the colour range: unlike any colour of RdYlBu, and unlike the grey of
#: unscored cells (Bokeh's NaN colour)
BELOW_COLOR = "#000000"
LAI_CMAP = "YlGn"
DIFF_CMAP = "BrBG"
OPEN_SHRUBLANDS = 7
#: legend of the time series: outside the plot area (inside, it hid the first season)
LEGEND_POSITION = "right"


def model_color(model: str, models: Sequence[str] = ()) -> str:
    if model in MODEL_COLORS:
        return MODEL_COLORS[model]
    """The colour of ``model``: fixed for the study's names, else by its place among ``models``."""
    others = [m for m in models if m not in MODEL_COLORS]
    # crc32, not hash(): str hashes change between Python sessions
    k = others.index(model) if model in others else zlib.crc32(model.encode())
    return _FALLBACK[k % len(_FALLBACK)]


def _tag(*objs) -> str:
    return " [synthetic]" if any(is_synthetic(o) for o in objs) else ""


def _period_title(period, name: str | None) -> str:
    """'test 2009-2016' in a title: the period's name (``name``, or the name of a named period) and years."""
    if name is None:
        name = period if isinstance(period, str) else ""
    return period_label(period, name, years=True)


def _map(da: xr.DataArray, *, title: str, cmap: str, clim, label: str, width: int, basemap: bool, **opts):
    da = da.transpose("lat", "lon")
    img = hv.Image(da.rename(label), kdims=["lon", "lat"], vdims=[label]).opts(
        cmap=cmap, clim=tuple(clim), colorbar=True, tools=["hover"], title=title, frame_width=width,
        **{**map_axes(da["lat"].values, value=label), **opts},
    )
    if not basemap:
        return img
    from ..basemap import basemap as _basemap

    return img * _basemap(da)  # the window of the mapped data (its domain's), never a default one


def _period_text(scores: xr.Dataset) -> str:
    a = scores.attrs
    if "period_years" in a:
        return _period_title([int(y) for y in np.atleast_1d(a["period_years"])], str(a.get("period", "")))
    if "period_start" in a:
        return _period_title((a["period_start"], a["period_end"]), str(a.get("period", "")))
    return ""


def _metric_clim(scores, metric, clim, models: Sequence[str] | None = None) -> tuple[float, float]:
    """``clim`` if given, else the drawn range of ``metric`` over the cells of ``models`` (default all).

    NSE/KGE: from min(0, the lowest value rounded down to 0.1), floored (see METRIC_STYLE), to 1.
    Others: 0 to the 98th percentile.
    """
    if clim is not None:
        return float(clim[0]), float(clim[1])
    da = scores[metric] if models is None else scores[metric].sel(model=list(models))
    return metric_range(da.values, metric)


def metric_range(values, metric: str) -> tuple[float, float]:
    """The drawn range of ``metric`` for these values (NaN ignored); see :func:`_metric_clim`."""
    default, _ = METRIC_STYLE.get(metric, (None, "viridis"))
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if default is not None:
        floor, hi = default
        lo = min(0.0, round(float(np.floor(v.min() * 10)) / 10, 1)) if v.size else 0.0
        return max(floor, lo), hi
    return (0.0, float(np.percentile(v, 98)) if v.size else 1.0)


def _outside_note(v: np.ndarray, lo: float, hi: float) -> str:
    """'(12 cells < -1 in black)'-style note on the cells outside a colour range; '' if none."""
    v = v[np.isfinite(v)]
    below, above = int((v < lo).sum()), int((v > hi).sum())

    def cells(n):
        return f"{n} cell{'s' if n != 1 else ''}"

    parts = ([f"{cells(below)} < {lo:.3g} in black"] if below else []) + (
        [f"{cells(above)} > {hi:.3g} in the top colour"] if above else [])
    return f" ({', '.join(parts)})" if parts else ""


def below_climatology(scores: xr.Dataset, model: str) -> bool:
    """Whether ``model``'s median NSE over the scored cells is below the climatology baseline's (as
    :func:`vegviz.evaluation.comparison_table` flags it); False for references and without a climatology."""
    from .summary import BASELINE

    names = scores["model"].values.tolist() if "model" in scores.dims else []
    if "nse" not in scores or BASELINE not in names or model == BASELINE or model not in names:
        return False
    if "model_kind" in scores.coords and dict(zip(names, scores["model_kind"].values.tolist())).get(model) != "model":
        return False
    m, b = (float(scores["nse"].sel(model=x).median()) for x in (model, BASELINE))
    return bool(np.isfinite(m) and np.isfinite(b) and m < b)


def _check_model(scores: xr.Dataset, model: str, metric: str) -> xr.DataArray:
    if metric not in scores:
        raise ValueError(f"scores have no {metric!r}. Fix: score(..., metrics=[{metric!r}, ...])")
    _models(scores, [model])
    return scores[metric].sel(model=model)


# ----------------------------------------------------------------------------- (a)

def nse_map(scores: xr.Dataset, model: str, *, metric: str = "nse", clim=None, cmap: str | None = None,
            basemap: bool = True, width: int = 420):
    """Map of one model's per-cell skill (default NSE).

    The colour range is ``clim``, else that of :func:`nse_density` for this model (NSE: from
    its lowest cell, 0 at most and -1 at least, to 1). Cells below the range are black;
    the colour bar's title says how many cells lie outside the range.
    """
    da = _check_model(scores, model, metric)
    lo, hi = _metric_clim(scores, metric, clim, [model])
    cmap = cmap or METRIC_STYLE.get(metric, (None, "viridis"))[1]
    med = float(da.median())
    below = ", below climatology" if below_climatology(scores, model) else ""
    title = f"{model}: {metric.upper()} {_period_text(scores)} (median {med:.3f}{below}){_tag(scores)}"
    note = _outside_note(np.asarray(da.values, dtype=float).ravel(), lo, hi)
    # without a colour of their own, cells below the range would look like cells at its lower end
    return _map(da, title=title, cmap=cmap, clim=(lo, hi), label=metric.upper(), width=width, basemap=basemap,
                clipping_colors={"min": BELOW_COLOR}, clabel=metric_label(metric) + note)


def nse_density(scores: xr.Dataset, models: Sequence[str] | None = None, *, metric: str = "nse",
                xlim=None, width: int = 360):
    """Probability density (Gaussian KDE) of the per-cell skill of each model, overlaid.

    The x axis is ``xlim``, else it follows the data: NSE and KGE from the lowest cell
    of ``models`` (rounded down to 0.1; 0 at most, but not below -1, as they go to -inf)
    to 1; RMSE from 0 to the 98th percentile. Cells below the axis are left out of the
    density; the legend says how many, and how many lie beyond its upper end.
    """
    models = _models(scores, models)
    for m in models:
        _check_model(scores, m, metric)
    lo, hi = _metric_clim(scores, metric, xlim, models)
    curves = []
    for m in models:
        v = np.asarray(scores[metric].sel(model=m).values, dtype=float).ravel()
        v = v[np.isfinite(v)]
        below, above = int((v < lo).sum()), int((v > hi).sum())
        # no '.' in a label: HoloViews splits option paths at dots (KeyError when Panel draws it)
        left = f"< {lo:g}" if float(lo).is_integer() else "left of the axis"
        label = m + (f" ({below} of {v.size} cells {left} not shown)" if below else "") + (
            f" ({above} of {v.size} cells right of the axis)" if above else "")
        x = hv.Dimension(metric.upper(), label=metric_label(metric))
        curves.append(hv.Distribution(v[v >= lo], kdims=[x], label=label).opts(
            color=model_color(m, models), fill_alpha=0.25, line_width=2))
    return hv.Overlay(curves).opts(
        # headroom above the curves for the legend, which would otherwise hide their peaks
        xlim=(lo, hi), padding=(0, (0, 0.6)), frame_width=width, legend_position="top_left", ylabel="density",
        title=f"{metric.upper()} density over cells{_tag(scores)}",
    )


def nse_map_and_density(scores: xr.Dataset, model: str, *, metric: str = "nse", clim=None,
                        basemap: bool = True, density_models: Sequence[str] | None = None):
    """Panel (a): the skill map of ``model`` next to the density of its values over cells.

    ``density_models`` overlays more models' densities (default: ``model`` only). The map's
    colours and the density's x axis share one range: ``clim``, else the data's (see
    :func:`nse_density`) over ``model`` and ``density_models``.
    """
    density_models = list(density_models or [model])
    _check_model(scores, model, metric)
    clim = _metric_clim(scores, metric, clim, [model, *(m for m in density_models if m != model)])
    left = nse_map(scores, model, metric=metric, clim=clim, basemap=basemap)
    right = nse_density(scores, density_models, metric=metric, xlim=clim)
    return (left + right).cols(2)


# ----------------------------------------------------------------------------- (b)

def _default_models(scores: xr.Dataset) -> list[str]:
    if "model_kind" in scores.coords:
        models = [str(m) for m, k in zip(scores["model"].values, scores["model_kind"].values) if k == "model"]
        if models:
            return models
    return [str(m) for m in scores["model"].values]


def nse_boxplots(scores: xr.Dataset, landcover, models: Sequence[str] | None = None, *,
                 metric: str = "nse", min_cells: int = 5, ylim=(-1.0, 1.0), width: int = 700):
    """Panel (b): boxplots of per-cell skill per dominant vegetation type (x) and model (colour).

    One box per (vegetation type, model); types need ``min_cells`` scored cells.
    ``models`` defaults to the trained models (not the references).
    """
    models = _models(scores, models) if models is not None else _default_models(scores)
    groups = vegetation_groups(scores, landcover, metric=metric, min_cells=min_cells)
    if not groups:
        if not np.isfinite(scores[metric].sel(model=list(models)).values).any():
            from .skill import MIN_OBS

            raise ValueError(f"no cell has a {metric.upper()} score in this period: a score needs at least "
                             f"{MIN_OBS} satellite composites per cell, and this period has fewer. Fix: choose a "
                             "longer period (e.g. prepare more months of data)")
        raise ValueError(f"no vegetation type has {min_cells} or more scored cells. Fix: lower min_cells")
    field = scores[metric].transpose("model", "lat", "lon")
    frames = []
    for code, sel in groups.items():
        name = f"{IGBP_CLASSES.get(code, str(code))} ({int(sel.sum())})"
        for m in models:
            v = np.asarray(field.sel(model=m).values, dtype=float)[sel]
            v = v[np.isfinite(v)]
            frames.append(pd.DataFrame({"vegetation": name, "model": m, metric.upper(): v}))
    df = pd.concat(frames, ignore_index=True)
    colors = {m: model_color(m, models) for m in models}
    values = df[metric.upper()].to_numpy()
    off = int((values < ylim[0]).sum()) + int((values > ylim[1]).sum()) if ylim is not None else 0
    # NSE has no lower bound: the axis stops at ylim, and the label says what it leaves out
    ylabel = metric_label(metric)
    if off:  # "NSE (12 cell values off the axis)", "RMSE (m2 m-2; 12 cell values off the axis)"
        ylabel = ylabel[:-1] + f"; {off} cell values off the axis)" if ylabel.endswith(")") else \
            ylabel + f" ({off} cell values off the axis)"
    return hv.BoxWhisker(df, kdims=["vegetation", "model"], vdims=[metric.upper()]).opts(
        box_fill_color=hv.dim("model").categorize(colors), ylim=ylim, frame_width=width, ylabel=ylabel,
        xrotation=30, tools=["hover"],
        title=f"{metric.upper()} per dominant vegetation type (cells) {_period_text(scores)}{_tag(scores)}",
    )


# ----------------------------------------------------------------------------- (c)

def _observed_dates(lai: xr.DataArray, mask: xr.DataArray) -> pd.DatetimeIndex:
    has = lai.where(mask == 1).notnull().any(("lat", "lon"))
    has = np.asarray(has.values)
    return pd.DatetimeIndex(lai["time"].values[has])


def nearest_composite_date(observations: xr.Dataset, date, window_days: int = 30) -> pd.Timestamp:
    """The satellite composite date nearest to ``date`` (searching ``window_days`` around it first)."""
    day = pd.Timestamp(date)
    lai, mask = observations["lai"], observations["mask"]
    near = lai.sel(time=slice(day - pd.Timedelta(days=window_days), day + pd.Timedelta(days=window_days)))
    dates = _observed_dates(near, mask)
    if dates.empty:
        dates = _observed_dates(lai, mask)
    if dates.empty:
        raise ValueError("the observations hold no satellite composite inside the mask")
    return dates[np.argmin(np.abs((dates - day).total_seconds()))]


def _round_up(x: float, step: float = 0.5) -> float:
    return float(np.ceil(max(x, step) / step) * step)


def _check_prediction(predictions: xr.Dataset, model: str) -> xr.DataArray:
    return predictions[checked_models(predictions, [model])[0]]


def lai_map_comparison(predictions: xr.Dataset, observations: xr.Dataset, date, model: str, *,
                       basemap: bool = True, width: int = 320):
    """Panel (c): ``model``'s LAI, the satellite composite and their difference on one day.

    The day is the composite date nearest to ``date``; the difference
    (model - satellite) is shown on observed cells only.
    """
    sim_all = _check_prediction(predictions, model)
    day = nearest_composite_date(observations, date)
    mask = observations["mask"] == 1
    sat = observations["lai"].sel(time=day).where(mask).load()
    sim = sim_all.sel(time=day, method="nearest").where(mask).load()
    diff = (sim - sat.values).where(sat.notnull())
    both = np.concatenate([np.ravel(sat.values), np.ravel(sim.values)])
    both = both[np.isfinite(both)]
    clim = (0.0, _round_up(float(np.percentile(both, 98))) if both.size else 1.0)
    d = np.abs(np.ravel(diff.values))
    d = d[np.isfinite(d)]
    dmax = _round_up(float(np.percentile(d, 98)), 0.25) if d.size else 1.0
    tag, units = _tag(observations, predictions), "m2 m-2"
    when = f"{day:%Y-%m-%d}"
    return (
        _map(sim, title=f"{model} LAI {when}{tag}", cmap=LAI_CMAP, clim=clim, label=f"LAI ({units})",
             width=width, basemap=basemap)
        + _map(sat, title=f"satellite LAI composite {when}{tag}", cmap=LAI_CMAP, clim=clim,
               label=f"LAI ({units})", width=width, basemap=basemap)
        + _map(diff, title=f"{model} - satellite {when}", cmap=DIFF_CMAP, clim=(-dmax, dmax),
               label=f"difference ({units})", width=width, basemap=basemap)
    ).cols(3)


# ----------------------------------------------------------------------------- (d)

def vegetation_code(vegetation_type) -> int:
    """An IGBP code from a code or a class name (case-insensitive), e.g. 'open shrublands' -> 7."""
    if isinstance(vegetation_type, str):
        by_name = {v.lower(): k for k, v in IGBP_CLASSES.items()}
        code = by_name.get(vegetation_type.strip().lower())
        if code is None:
            raise ValueError(f"unknown vegetation type {vegetation_type!r}; use an IGBP code or one of "
                             f"{list(IGBP_CLASSES.values())}")
        return code
    code = int(vegetation_type)
    if code not in IGBP_CLASSES:
        raise ValueError(f"unknown IGBP code {code}; use 0-16 (vegviz.contract.IGBP_CLASSES)")
    return code


def vegetation_timeseries(predictions: xr.Dataset, observations: xr.Dataset,
                          vegetation_type=OPEN_SHRUBLANDS, period="test", *,
                          models: Sequence[str] | None = None, spread=(25, 75),
                          references: Sequence[str] = (PROCESS,), period_name: str | None = None,
                          width: int = 820, height: int = 320, store=None):
    """Panel (d): mean LAI over the mask cells of one vegetation type, models vs satellite.

    :func:`region_timeseries` over the type's cells (see there).
    """
    code = vegetation_code(vegetation_type)
    lc = _landcover(observations["landcover"], observations)
    mask = np.asarray(observations["mask"].transpose("lat", "lon").values) == 1
    sel = mask & (lc == code)
    if not sel.any():
        present = sorted({IGBP_CLASSES.get(int(c), str(c)) for c in np.unique(lc[mask])})
        raise ValueError(f"no mask cell is {IGBP_CLASSES[code]!r}; the mask holds {present}")
    return region_timeseries(predictions, observations, sel, IGBP_CLASSES[code], period, models=models,
                             spread=spread, references=references, period_name=period_name, width=width,
                             height=height, store=store)


def region_timeseries(predictions: xr.Dataset, observations: xr.Dataset, cells, name: str, period="test", *,
                      models: Sequence[str] | None = None, spread=(25, 75),
                      references: Sequence[str] = (PROCESS,), period_name: str | None = None,
                      width: int = 820, height: int = 320, store=None, statistics: xr.Dataset | None = None):
    """Mean LAI over a region's cells (a (lat, lon) selection, :mod:`vegviz.evaluation.regions`), models
    vs satellite.

    Each model (and, from ``references``, the process model ``"process"`` and the
    noiseless ``"truth"`` where present) is a daily curve of the mean over the
    cells, with a band between the ``spread`` percentiles across cells. The
    satellite composites are points: the mean over the cells observed that day.
    The numbers are :func:`~vegviz.evaluation.regions.region_statistics`' (``store``: its series store;
    ``statistics``: those numbers, already computed for these arguments).
    ``period_name`` names a (start, end) ``period`` in the title (e.g. "test 2009-2016").
    The legend sits right of the plot, so no season hides behind it.
    """
    from .regions import region_statistics

    if not np.asarray(cells, bool).any():
        raise ValueError(f"the region {name!r} holds no basin cell. Fix: choose a larger region")
    stats = statistics if statistics is not None else region_statistics(
        predictions, observations, cells, period, models=models, references=references, spread=spread, store=store)
    drawn = [v for v in stats.data_vars if stats[v].attrs["kind"] != "observed"]
    elements = []
    for label in drawn:
        kind = stats[label].attrs["kind"]
        frame = stats[label].to_pandas().T.reset_index()
        color = model_color(label, drawn)
        dash = "solid" if kind == "model" else "dashed"
        band = [hv.Dimension("lo", label=f"LAI p{spread[0]}"), hv.Dimension("hi", label=f"LAI p{spread[1]}")]
        elements.append(hv.Area(frame, "time", band, label=f"{label} {spread[0]}-{spread[1]}%").opts(
            color=color, alpha=0.15, line_alpha=0))
        elements.append(hv.Curve(frame.rename(columns={"mean": "LAI"}), "time", "LAI", label=label).opts(
            color=color, line_width=2 if kind == "model" else 1.5, line_dash=dash))
    sat_mean = stats[SATELLITE].sel(statistic="mean").dropna("time").to_dataframe(name="LAI").reset_index()
    elements.append(hv.Scatter(sat_mean[["time", "LAI"]], "time", "LAI", label="satellite composites").opts(
        color=MODEL_COLORS["satellite"], size=5))
    title = (f"{name} ({stats.attrs['n_cells']} cells): mean LAI, "
             f"{_period_title(period, period_name)}{_tag(observations, predictions)}")
    return hv.Overlay(elements).opts(
        title=title, frame_width=width, frame_height=height, ylabel="LAI (m2 m-2)", xlabel="date",
        legend_position=LEGEND_POSITION, show_legend=True,
    )


def cell_timeseries(predictions: xr.Dataset, observations: xr.Dataset, lat: float, lon: float,
                    period="test", *, models: Sequence[str] | None = None,
                    references: Sequence[str] = (PROCESS, "truth"), period_name: str | None = None,
                    width: int = 820, height: int = 300, store=None):
    """Daily LAI of the models at the cell containing (lat, lon), with the satellite composites.

    ``period_name`` names a (start, end) ``period`` in the title; the legend sits right of the plot.
    The data are :func:`vegviz.evaluation.series.cell_series`'s (``store``: its series store).
    """
    s = cell_series(predictions, observations, lat, lon, period, models=models, references=references, forcings=(),
                    store=store)
    names = [v for v in s.data_vars if s[v].attrs["kind"] in ("model", "reference")]
    elements = []
    for name in names:
        kind = s[name].attrs["kind"]
        frame = s[name].to_dataframe(name="LAI").reset_index()[["time", "LAI"]]
        elements.append(hv.Curve(frame, "time", "LAI", label=name).opts(
            color=model_color(name, names), line_width=2 if kind == "model" else 1.5,
            line_dash="solid" if kind == "model" else "dashed"))
    sat = s[SATELLITE].dropna("time").to_dataframe(name="LAI").reset_index()[["time", "LAI"]]
    elements.append(hv.Scatter(sat, "time", "LAI", label="satellite composites").opts(
        color=MODEL_COLORS["satellite"], size=5))
    where = f"cell {degrees(s.attrs['lat'], 'lat')}, {degrees(s.attrs['lon'], 'lon')}"
    if "landcover" in s.attrs:
        where += f", {s.attrs['landcover']}"
    if not s.attrs["inside_mask"]:
        where += ", outside the mask"
    return hv.Overlay(elements).opts(
        title=f"{where}: LAI, {_period_title(period, period_name)}{_tag(observations, predictions)}",
        frame_width=width, frame_height=height, ylabel="LAI (m2 m-2)", xlabel="date",
        legend_position=LEGEND_POSITION,
    )


#: how each forcing is drawn under a cell's LAI: (panel, axis name, legend label, colour). tmin shares the
#: temperature panel. Short axis names: a 100-pixel panel has room for about 14 characters
# (a legend label equal to the panel name breaks HoloViews' matplotlib step curves)
_FORCING_STYLE = {"precip": ("precipitation", "P", "daily total", "#1f78b4"),
                  "tair": ("temperature", "T", "mean", "#e31a1c"),
                  "tmin": ("temperature", "T", "minimum", "#fb9a99"),
                  "vpd": ("dryness", "VPD", "vapour pressure deficit", "#b15928"),
                  "qair": ("dryness", "q", "specific humidity", "#b15928"),
                  "swdown": ("radiation", "SWdown", "shortwave radiation", "#ff7f00")}


def cell_forcing(observations: xr.Dataset, lat: float, lon: float, period="test", *,
                 forcings: Sequence[str] = CELL_FORCINGS, width: int = 820, height: int = 100, store=None):
    """The forcing at the cell containing (lat, lon), one small panel each, to stack under its LAI.

    Precipitation (P) as daily steps; mean and minimum air temperature (T) together; vapour
    pressure deficit (VPD; specific humidity q where the data have no vpd); shortwave radiation
    (SWdown). Each axis names the variable and its units (:data:`vegviz.contract.VARIABLES`);
    hovering shows the day's value. A Layout with
    one column whose time axis is ``time``, like :func:`cell_timeseries`': HoloViews links
    their x ranges, so zooming one zooms them all.
    """
    s = cell_series(xr.Dataset(), observations, lat, lon, period, models=[], references=(), forcings=forcings,
                    store=store)
    panels: dict[str, list] = {}
    units: dict[str, str] = {}
    for f in (v for v in s.data_vars if s[v].attrs["kind"] == "forcing"):
        panel, axis, label, color = _FORCING_STYLE.get(f, (f, f, f, "#333333"))
        units.setdefault(panel, f"{axis} ({s[f].attrs['units']})")
        y = hv.Dimension(panel, label=units[panel])
        frame = s[f].to_dataframe(name=panel).reset_index()[["time", panel]]
        if f == "precip":
            # daily totals as steps (a Curve, not Spikes: it keeps the dates in every backend)
            el = hv.Curve(frame, "time", y, label=label).opts(color=color, line_width=1, tools=["hover"],
                                                             interpolation="steps-mid")
        else:
            el = hv.Curve(frame, "time", y, label=label).opts(color=color, line_width=1.2, tools=["hover"],
                                                             line_dash="dashed" if f == "tmin" else "solid")
        panels.setdefault(panel, []).append(el)
    if not panels:
        raise ValueError(f"the observations hold none of the forcings {list(forcings)}")
    out = []
    for k, (panel, els) in enumerate(panels.items()):
        last = k == len(panels) - 1
        overlay = hv.Overlay(els).opts(frame_width=width, frame_height=height, ylabel=units[panel],
                                       xlabel="date" if last else "", xaxis="bottom" if last else None,
                                       show_legend=len(els) > 1, legend_position=LEGEND_POSITION, title="")
        out.append(overlay)
    return hv.Layout(out).cols(1)


__all__ = [
    "MODEL_COLORS", "below_climatology", "cell_forcing", "cell_timeseries", "lai_map_comparison",
    "nearest_composite_date", "nse_boxplots", "nse_density", "nse_map", "nse_map_and_density", "region_timeseries",
    "vegetation_code", "vegetation_timeseries",
]
