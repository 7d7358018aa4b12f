"""Score every model of a predictions Dataset against the observations, per grid cell."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from .baselines import climatology_baseline
from .periods import PERIODS, is_year_set, resolve_period, select_period
from .skill import METRICS, MIN_OBS, check_metrics
from .skill import metrics as _metrics

#: names of the reference pseudo-models that :func:`score` can add
PROCESS = "process"
NOISE_CEILING = "noise_ceiling"
CLIMATOLOGY = "climatology"
REFERENCES = (PROCESS, NOISE_CEILING, CLIMATOLOGY)


def model_variables(predictions: xr.Dataset) -> list[str]:
    """The variables of ``predictions`` that are model outputs: dims (time, lat, lon), except an ensemble's
    spread (attribute ``ensemble = "spread"``, see :mod:`vegviz.training.ensemble`)."""
    return [v for v, da in predictions.data_vars.items()
            if set(da.dims) == {"time", "lat", "lon"} and da.attrs.get("ensemble") != "spread"]


def checked_models(predictions: xr.Dataset, models=None) -> list[str]:
    """``models`` (default: every model of ``predictions``), each checked to be one of its
    :func:`model_variables`; a ValueError names the one that is not and what the predictions hold."""
    have = model_variables(predictions)
    models = have if models is None else list(models)
    for m in models:
        if m not in have:
            raise ValueError(f"model {m!r} is not in the predictions; they hold {have}")
    return models


def is_synthetic(ds) -> bool:
    """True when a Dataset is labelled synthetic (``attrs['synthetic']`` 1, '1' or True)."""
    value = getattr(ds, "attrs", {}).get("synthetic", 0)
    try:
        return bool(int(value))
    except (TypeError, ValueError):
        return str(value).strip().lower() in ("true", "yes")


def _check_inputs(predictions, observations):
    if not isinstance(observations, xr.Dataset):
        raise TypeError("observations: expected the model-ready xarray.Dataset. Fix: pass e.g. "
                        "vegviz.data.virtual.open_virtual_basin()")
    if not isinstance(predictions, xr.Dataset):
        raise TypeError("predictions: expected an xarray.Dataset with one (time, lat, lon) variable per model. "
                        "Fix: wrap a single DataArray with da.to_dataset(name='my_model')")
    missing = [v for v in ("lai", "mask") if v not in observations]
    if missing:
        raise ValueError(f"observations lack {missing}. Fix: pass the model-ready Dataset (vegviz.contract)")
    for c in ("lat", "lon"):
        if c not in predictions.coords:
            raise ValueError(f"predictions have no {c!r} coordinate. Fix: predict on the observations' grid")
        a, b = predictions[c].values, observations[c].values
        if a.shape != b.shape or not np.allclose(a, b, atol=1e-6, rtol=0):
            raise ValueError(f"predictions and observations are on different grids ({c}: {a.size} vs {b.size} "
                             "values, or different coordinates). Fix: predict on the observations' grid, or "
                             "regrid with vegviz.grid.regrid_mean")


def score(predictions: xr.Dataset, observations: xr.Dataset, period="test",
          metrics: Sequence[str] = METRICS, *, models: Sequence[str] | None = None,
          references: Sequence[str] = (PROCESS, NOISE_CEILING), train_period="train",
          min_obs: int = MIN_OBS, with_reason: bool = True, compute: bool = True) -> xr.Dataset:
    """Per-cell skill of each model over ``period``: a Dataset with dims (model, lat, lon).

    ``period`` is a name in :data:`PERIODS` or a (start, end) pair. Only mask cells
    and the observed (composite) dates of the period count; models and references
    are all scored on the dates the predictions share with the observations.
    ``models`` picks variables of ``predictions`` (default: every (time, lat, lon)
    variable). ``references`` adds pseudo-models when their data exist:
    ``"process"`` (the observations' ``lai_process``), ``"noise_ceiling"``
    (``lai_true`` against ``lai``; synthetic data only) and ``"climatology"`` (the
    seasonal cycle over ``train_period``, :func:`climatology_baseline`). The
    ``model_kind`` coordinate tells models from references.

    Returns one variable per metric, ``n_obs`` and (with ``with_reason``)
    ``<metric>_reason`` flags. With ``compute=False`` the result stays lazy for
    dask input; otherwise it is computed (it is small) and an error is raised when
    the period holds no observation inside the mask.
    """
    names = check_metrics(metrics)
    _check_inputs(predictions, observations)
    start, end = resolve_period(period)
    unknown = [r for r in references if r not in REFERENCES]
    if unknown:
        raise ValueError(f"unknown reference(s) {unknown}; choose from {list(REFERENCES)}")
    available = model_variables(predictions)
    if models is None:
        models = available
    else:
        models = [models] if isinstance(models, str) else list(models)
        absent = [m for m in models if m not in available]
        if absent:
            raise ValueError(f"models {absent} are not (time, lat, lon) variables of the predictions; "
                             f"they hold {available}")
    clash = [m for m in models if m in references]
    if clash:
        raise ValueError(f"prediction variable(s) {clash} clash with reference names. Fix: rename them, "
                         f"or leave them out of references=")

    obs = select_period(observations["lai"], period, "the observations")
    mask = observations["mask"]
    sims: dict[str, tuple[xr.DataArray, str]] = {}
    if models:
        pred = select_period(predictions[list(models)], period, "the predictions")
        common = np.intersect1d(pred["time"].values, obs["time"].values)
        if common.size == 0:
            raise ValueError("predictions and observations share no date in the period. Fix: predict over it")
        # every model and reference is scored on the same dates
        obs = obs.sel(time=common)
        pred = pred.sel(time=common)
        for m in models:
            sims[m] = (pred[m], "model")
    time = obs["time"]
    if PROCESS in references and "lai_process" in observations:
        sims[PROCESS] = (observations["lai_process"].sel(time=time), "reference")
    if CLIMATOLOGY in references:
        sims[CLIMATOLOGY] = (climatology_baseline(observations, train_period, time=time.values), "reference")
    if NOISE_CEILING in references and "lai_true" in observations:
        sims[NOISE_CEILING] = (observations["lai_true"].sel(time=time), "reference")
    if not sims:
        raise ValueError("nothing to score: predictions hold no (time, lat, lon) variable and no reference is "
                         "available. Fix: pass predictions with one variable per model")

    per_model = [_metrics(sim, obs, metrics=names, min_obs=min_obs, mask=mask, with_reason=with_reason)
                 for sim, _ in sims.values()]
    # a plain numpy string coordinate (pandas 3 would make it a StringDtype, which netCDF cannot store)
    model_dim = xr.DataArray(np.array(list(sims), dtype=str), dims="model", name="model")
    out = xr.concat(per_model, dim=model_dim, coords="minimal",
                    compat="override", join="override", combine_attrs="override")
    out = out.assign_coords(model_kind=("model", [k for _, k in sims.values()]))
    out["model"].attrs["long_name"] = "model or reference"
    out.attrs = {
        "title": "per-cell skill of LAI simulations against satellite composites",
        "period": period if isinstance(period, str) else "custom",
        "period_start": f"{start:%Y-%m-%d}",
        "period_end": f"{end:%Y-%m-%d}",
        # the dates actually scored (the period clipped to the data)
        "time_coverage_start": f"{pd.Timestamp(time.values[0]):%Y-%m-%d}",
        "time_coverage_end": f"{pd.Timestamp(time.values[-1]):%Y-%m-%d}",
        "min_obs": int(min_obs),
        "synthetic": int(is_synthetic(observations) or is_synthetic(predictions)),
        "observations_source": str(observations.attrs.get("source", "unknown")),
        "predictions_source": str(predictions.attrs.get("source", "unknown")),
    }
    if is_year_set(period):
        out.attrs["period_years"] = np.array(sorted(set(int(y) for y in period)), dtype="int32")
    if compute:
        out = out.compute()
        if int(out["n_obs"].where(mask == 1).max()) == 0:
            raise ValueError(f"no observation inside the mask in {period!r} ({start:%Y-%m-%d}..{end:%Y-%m-%d}): "
                             "the satellite composites are all NaN there. Fix: choose a period with composites")
    return out


__all__ = ["PERIODS", "score", "model_variables", "checked_models", "is_synthetic", "PROCESS", "NOISE_CEILING",
           "CLIMATOLOGY"]
