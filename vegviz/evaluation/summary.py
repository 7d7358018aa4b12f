"""Tables from per-cell scores: overall summaries, medians per vegetation type, a README table."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ..contract import IGBP_CLASSES
from .scoring import CLIMATOLOGY
from .skill import METRIC_ATTRS, METRICS

STATS = ("median", "mean", "p25", "p75")


def _check_scores(scores) -> None:
    if not isinstance(scores, xr.Dataset) or "model" not in scores.dims:
        raise TypeError("scores: expected the Dataset returned by vegviz.evaluation.score "
                        "(dims model, lat, lon)")


def _metrics(scores: xr.Dataset, metrics) -> list[str]:
    if metrics is None:
        found = [m for m in METRICS if m in scores]
        if not found:
            raise ValueError(f"scores hold none of the metrics {list(METRICS)}")
        return found
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    absent = [m for m in metrics if m not in scores]
    if absent:
        raise ValueError(f"metric(s) {absent} are not in the scores; they hold "
                         f"{[m for m in METRICS if m in scores]}. Fix: score(..., metrics=...) with them")
    return metrics


def _models(scores: xr.Dataset, models) -> list[str]:
    have = [str(m) for m in scores["model"].values]
    if models is None:
        return have
    models = [models] if isinstance(models, str) else list(models)
    absent = [m for m in models if m not in have]
    if absent:
        raise ValueError(f"model(s) {absent} are not in the scores; they hold {have}")
    return models


def _values(scores: xr.Dataset, metric: str, model: str) -> np.ndarray:
    v = np.asarray(scores[metric].sel(model=model).values, dtype=float).ravel()
    return v[np.isfinite(v)]


def _stats(v: np.ndarray) -> dict:
    if v.size == 0:
        return {"n_cells": 0, **{s: np.nan for s in STATS}}
    p25, med, p75 = np.percentile(v, [25, 50, 75])
    return {"n_cells": int(v.size), "median": med, "mean": float(v.mean()), "p25": p25, "p75": p75}


def summarize(scores: xr.Dataset, metrics: Sequence[str] | None = None,
              models: Sequence[str] | None = None) -> pd.DataFrame:
    """Median, mean, 25th/75th percentile and number of scored cells per model and metric.

    Rows are indexed by (model, metric) in the order of the scores; NaN cells
    (outside the mask, or not scorable) are left out.
    """
    _check_scores(scores)
    rows = {(m, k): _stats(_values(scores, k, m)) for m in _models(scores, models) for k in _metrics(scores, metrics)}
    df = pd.DataFrame.from_dict(rows, orient="index")[["n_cells", *STATS]]
    df.index = pd.MultiIndex.from_tuples(df.index, names=["model", "metric"])
    return df


def _landcover(landcover, scores: xr.Dataset) -> np.ndarray:
    if isinstance(landcover, xr.Dataset):
        if "landcover" not in landcover:
            raise ValueError("the Dataset passed as landcover has no 'landcover' variable. "
                             "Fix: pass observations['landcover'] or vegviz.data.static.load_static()")
        landcover = landcover["landcover"]
    if not isinstance(landcover, xr.DataArray):
        raise TypeError("landcover: expected a (lat, lon) DataArray of IGBP codes, e.g. observations['landcover']")
    for c in ("lat", "lon"):
        if landcover.sizes.get(c) != scores.sizes[c] or \
                not np.allclose(landcover[c].values, scores[c].values, atol=1e-6, rtol=0):
            raise ValueError(f"landcover and scores are on different grids ({c}). "
                             "Fix: pass the landcover of the observations that were scored")
    return np.asarray(landcover.transpose("lat", "lon").values)


def vegetation_groups(scores: xr.Dataset, landcover, *, metric: str = "nse", min_cells: int = 5,
                      exclude: Sequence[int] = (0,)) -> dict[int, np.ndarray]:
    """Boolean (lat, lon) selections per IGBP code with at least ``min_cells`` scored cells.

    A cell counts when any model has a finite ``metric`` there; ``exclude`` drops
    classes (default water). Ordered by IGBP code.
    """
    _check_scores(scores)
    lc = _landcover(landcover, scores)
    scored = np.isfinite(scores[metric].transpose("model", "lat", "lon").values).any(axis=0)
    groups = {}
    for code in np.unique(lc[scored]):
        code = int(code)
        sel = scored & (lc == code)
        if code not in exclude and sel.sum() >= min_cells:
            groups[code] = sel
    return groups


def by_vegetation(scores: xr.Dataset, landcover, metric: str = "nse", *, min_cells: int = 5,
                  stat: str = "median", models: Sequence[str] | None = None,
                  exclude: Sequence[int] = (0,)) -> pd.DataFrame:
    """``stat`` (median or mean) of ``metric`` per dominant IGBP vegetation type and model.

    Rows: vegetation types with at least ``min_cells`` scored cells (index: IGBP
    name; columns ``igbp`` code and ``n_cells``), then one column per model.
    ``landcover`` is a (lat, lon) DataArray of IGBP codes or a Dataset holding one.
    """
    if stat not in ("median", "mean"):
        raise ValueError(f"stat must be 'median' or 'mean', got {stat!r}")
    _metrics(scores, metric)
    groups = vegetation_groups(scores, landcover, metric=metric, min_cells=min_cells, exclude=exclude)
    models = _models(scores, models)
    field = scores[metric].transpose("model", "lat", "lon")
    rows = []
    for code, sel in groups.items():
        row = {"vegetation": IGBP_CLASSES.get(code, str(code)), "igbp": code, "n_cells": int(sel.sum())}
        for m in models:
            v = np.asarray(field.sel(model=m).values, dtype=float)[sel]
            v = v[np.isfinite(v)]
            row[m] = (np.median(v) if stat == "median" else v.mean()) if v.size else np.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=["vegetation", "igbp", "n_cells", *models]).set_index("vegetation")


#: the reference a model must beat (scoring.CLIMATOLOGY): the mean seasonal cycle of the training years
BASELINE = CLIMATOLOGY
#: the comparison table's column that flags a model whose median NSE is below :data:`BASELINE`'s
BELOW = f"below {BASELINE}"


def comparison_table(scores: xr.Dataset, landcover=None, *, metrics: Sequence[str] | None = None,
                     models: Sequence[str] | None = None, min_cells: int = 5) -> pd.DataFrame:
    """One row per model: scored cells, median NSE with its 25-75 % range, median KGE and RMSE.

    With the climatology among the references, a column ``below climatology`` flags each model
    whose median NSE is lower than the climatology's (True/False; empty for the references).

    With ``landcover``, one more column per vegetation type (at least
    ``min_cells`` cells) with the median NSE there. Format it for a README with
    :func:`markdown_table`.
    """
    _check_scores(scores)
    metrics = _metrics(scores, metrics)
    models = _models(scores, models)
    summary = summarize(scores, metrics, models)
    table = pd.DataFrame(index=pd.Index(models, name="model"))
    table["cells"] = [int(summary.loc[(m, metrics[0]), "n_cells"]) for m in models]
    for k in metrics:
        label = k.upper()
        units = scores[k].attrs.get("units", METRIC_ATTRS[k].get("units", ""))
        suffix = f" ({units})" if units and units != "1" else ""
        table[f"median {label}{suffix}"] = [summary.loc[(m, k), "median"] for m in models]
        if k == "nse":
            table["NSE p25"] = [summary.loc[(m, k), "p25"] for m in models]
            table["NSE p75"] = [summary.loc[(m, k), "p75"] for m in models]
    if landcover is not None and "nse" in scores:
        veg = by_vegetation(scores, landcover, "nse", min_cells=min_cells, models=models)
        for name, n_cells in veg["n_cells"].items():
            table[f"median NSE: {name} ({n_cells} cells)"] = veg.loc[name, models].to_numpy(dtype=float)
    if "model_kind" in scores.coords:
        kinds = dict(zip(scores["model"].values.tolist(), scores["model_kind"].values.tolist()))
        table.insert(0, "kind", [kinds[m] for m in models])
    if BASELINE in table.index and "median NSE" in table:
        base = table.loc[BASELINE, "median NSE"]
        is_model = table["kind"] != "reference" if "kind" in table else table.index != BASELINE
        # object column: True/False for the models, empty for the references (they are not judged)
        flag = [bool(v < base) if m and np.isfinite(v) and np.isfinite(base) else None
                for v, m in zip(table["median NSE"], is_model)]
        table.insert(table.columns.get_loc("cells") + 1, BELOW, pd.Series(flag, index=table.index, dtype=object))
    return table


def below_baseline(table: pd.DataFrame) -> list[str]:
    """The models of a :func:`comparison_table` whose median NSE is below the climatology's (none without one)."""
    if BELOW not in table:
        return []
    return [m for m, flag in table[BELOW].items() if flag is True]


def baseline_warning(table: pd.DataFrame) -> str:
    """One sentence naming the models below the climatology baseline; empty when there are none."""
    below = below_baseline(table)
    if not below:
        return ""
    base = table.loc[BASELINE, "median NSE"]
    each = ", ".join(f"{m} ({table.loc[m, 'median NSE']:.3f})" for m in below)
    return (f"Below the climatology baseline (median NSE {base:.3f}, the mean seasonal cycle of the training "
            f"years): {each}. Such a model adds no skill over the seasonal cycle.")


def _fmt(value, digits: int) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return "" if np.isnan(value) else f"{value:.{digits}f}"
    return str(value).replace("|", "\\|")


def markdown_table(df: pd.DataFrame, digits: int = 3, index: bool = True) -> str:
    """A GitHub-flavoured Markdown table of ``df`` (no dependency on ``tabulate``).

    Floats get ``digits`` decimals, NaN an empty cell; numeric columns are
    right-aligned.
    """
    frame = df.reset_index() if index else df
    header = [str(c) for c in frame.columns]
    body = [[_fmt(v, digits) for v in row] for row in frame.itertuples(index=False, name=None)]
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    widths = [max([len(h), 3] + [len(r[i]) for r in body]) for i, h in enumerate(header)]

    def line(cells):
        return "| " + " | ".join(c.rjust(w) if num else c.ljust(w)
                                 for c, w, num in zip(cells, widths, numeric)) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if num else ("-" * (w + 2))
                          for w, num in zip(widths, numeric)) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in body)])


__all__ = ["BASELINE", "BELOW", "baseline_warning", "below_baseline", "by_vegetation", "comparison_table",
           "markdown_table", "summarize", "vegetation_groups"]


def unscored_cells(scores: xr.Dataset, metric: str = "nse") -> str | None:
    """Why basin cells have no ``metric``, as one line per model; None when every cell was scored.

    e.g. ``"lstm: NSE missing in 1897 of 1897 basin cells (fewer than 10 observations: 1897)"``:
    the median of a table is then NaN for a reason the user can act on (a longer period).
    """
    from .skill import MIN_OBS, OUTSIDE_MASK, REASONS, SCORED

    _check_scores(scores)
    flag = f"{metric}_reason"
    if flag not in scores:
        return None
    reason = scores[flag]
    min_obs = reason.attrs.get("min_obs", MIN_OBS)
    lines = []
    for model in _models(scores, None):
        codes = np.asarray(reason.sel(model=model).values).astype(int).ravel()
        inside = codes[codes != OUTSIDE_MASK]
        missing = inside[inside != SCORED]
        if missing.size == 0:
            continue
        found, counts = np.unique(missing, return_counts=True)
        why = ", ".join(f"{REASONS[c][1].format(min_obs=min_obs)}: {n}" for c, n in zip(found, counts))
        lines.append(f"{model}: {metric.upper()} missing in {missing.size} of {inside.size} basin cells ({why})")
    return "\n".join(lines) or None
