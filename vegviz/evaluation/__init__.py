"""Evaluation: per-cell skill (NSE, KGE, RMSE), reference baselines, summaries and the study's panels.

    from vegviz import evaluation as ev
    scores = ev.score(predictions, observations, period="test")   # dims (model, lat, lon)
    ev.summarize(scores)                                          # median, mean, quartiles per model
    ev.by_vegetation(scores, observations["landcover"])           # median NSE per IGBP type
    ev.nse_map_and_density(scores, "convlstm")                    # panel (a), HoloViews

The panels import HoloViews on first use only, so metrics and tables stay light.
"""
from .aridity import aridity_class, aridity_index, by_aridity
from .baselines import climatology_baseline, noise_ceiling, noleap_dayofyear
from .periods import PERIODS, period_label, resolve_period, select_period
from .regions import describe_region, region_cells, region_mask, region_statistics, restrict, subbasin_names, subbasins
from .series import cell_series, series_frame
from .scoring import CLIMATOLOGY, NOISE_CEILING, PROCESS, REFERENCES, is_synthetic, model_variables, score
from .skill import METRICS, MIN_OBS, REASONS, explain, kge, metrics, nse, rmse
from .stability import fluctuation, stability_table
from .summary import (baseline_warning, below_baseline, by_vegetation, comparison_table, markdown_table, summarize,
                      unscored_cells, vegetation_groups)

_PANELS = (
    "cell_forcing", "cell_timeseries", "lai_map_comparison", "nearest_composite_date", "nse_boxplots", "nse_density",
    "nse_map", "nse_map_and_density", "region_timeseries", "vegetation_timeseries",
)


def __getattr__(name):
    if name in _PANELS:
        from . import panels

        return getattr(panels, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CLIMATOLOGY", "METRICS", "MIN_OBS", "NOISE_CEILING", "PERIODS", "PROCESS", "REASONS", "REFERENCES",
    "aridity_class", "aridity_index", "cell_series", "describe_region", "region_cells", "region_mask",
    "region_statistics", "restrict", "subbasin_names", "subbasins",
    "series_frame", "baseline_warning", "below_baseline", "by_aridity", "by_vegetation",
    "climatology_baseline", "comparison_table",
    "explain", "fluctuation", "is_synthetic", "kge", "stability_table",
    "markdown_table", "metrics", "model_variables", "noise_ceiling", "noleap_dayofyear", "nse",
    "period_label", "resolve_period", "rmse", "score", "select_period", "summarize", "unscored_cells",
    "vegetation_groups",
    *_PANELS,
]
