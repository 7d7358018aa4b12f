"""Aridity of each cell: the UNEP aridity index P / PET and its classes.

The aridity index is the ratio of long-term precipitation to potential evapotranspiration
(Middleton & Thomas 1992/1997, World Atlas of Desertification, UNEP). PET is the Hargreaves &
Samani (1985) reference evapotranspiration that :mod:`vegviz.physics` uses (FAO-56 eq. 52),
so the classes agree with the water term of ``lai_process``. The class limits are UNEP's:

=================  ===============
class              P / PET
=================  ===============
hyper-arid         < 0.05
arid               0.05 - 0.20
semi-arid          0.20 - 0.50
dry sub-humid      0.50 - 0.65
humid              >= 0.65
=================  ===============

Summaries "by aridity class" (projection skill, stability) group cells with
:func:`aridity_class`; the index is computed over the training period, the climate the
models learned.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from .periods import select_period

#: upper limits of the UNEP classes (the last class is open-ended)
LIMITS = (0.05, 0.20, 0.50, 0.65)
CLASSES = ("hyper-arid", "arid", "semi-arid", "dry sub-humid", "humid")


def aridity_index(ds: xr.Dataset, period="train") -> xr.DataArray:
    """P / PET (1) per cell over ``period`` (a name in :data:`vegviz.evaluation.PERIODS` or dates).

    Needs ``precip``, ``tair`` and ``tmin``; cells outside ``mask`` (when present) are NaN.
    """
    from ..physics import potential_evapotranspiration

    missing = [v for v in ("precip", "tair", "tmin") if v not in ds]
    if missing:
        raise ValueError(f"the aridity index needs {missing}. Fix: pass a model-ready Dataset with the forcings")
    sub = select_period(ds[["precip", "tair", "tmin"]], period, "the data for the aridity index")
    pet = potential_evapotranspiration(sub).sum("time")
    precip = sub["precip"].sum("time")
    with np.errstate(invalid="ignore", divide="ignore"):
        ai = (precip / pet.where(pet > 0)).astype(np.float32)
    if "mask" in ds:
        ai = ai.where(ds["mask"].fillna(0) > 0)
    ai.name = "aridity_index"
    ai.attrs = {"units": "1", "long_name": "aridity index P / PET (UNEP; PET of Hargreaves & Samani 1985)"}
    return ai.compute()


def aridity_class(index: xr.DataArray) -> xr.DataArray:
    """The UNEP class name of each cell (object array; '' where the index is NaN)."""
    values = np.asarray(index.values, dtype=float)
    codes = np.digitize(np.nan_to_num(values, nan=-1.0), LIMITS)
    names = np.asarray(CLASSES, dtype=object)[codes]
    names[~np.isfinite(values)] = ""
    return xr.DataArray(names, dims=index.dims, coords=index.coords, name="aridity_class",
                        attrs={"long_name": "UNEP aridity class", "limits": str(dict(zip(CLASSES, LIMITS)))})


def by_aridity(scores: xr.Dataset, index: xr.DataArray, metric: str = "nse", *, stat: str = "median",
               models=None, min_cells: int = 5) -> "pd.DataFrame":
    """``stat`` (median or mean) of ``metric`` per UNEP aridity class and model.

    ``scores``: any Dataset with dims (model, lat, lon) holding ``metric`` (the output of
    :func:`vegviz.evaluation.score`, of :func:`vegviz.evaluation.stability`, ...);
    ``index``: :func:`aridity_index` on the same grid. Rows: the classes, driest first, with
    at least ``min_cells`` cells where ``metric`` is finite for some model (index: class
    name; column ``n_cells``), then one column per model.
    """
    import pandas as pd

    if stat not in ("median", "mean"):
        raise ValueError(f"stat must be 'median' or 'mean', got {stat!r}")
    if metric not in scores or "model" not in scores[metric].dims:
        raise ValueError(f"{metric!r} is not a (model, lat, lon) variable of the scores; they hold "
                         f"{list(scores.data_vars)}")
    field = scores[metric].transpose("model", "lat", "lon")
    classes = aridity_class(index.transpose("lat", "lon")).values
    values = np.asarray(field.values, dtype=float)
    scored = np.isfinite(values).any(axis=0)
    models = [str(m) for m in field["model"].values] if models is None else list(models)
    rows = []
    for name in CLASSES:
        sel = scored & (classes == name)
        if sel.sum() < min_cells:
            continue
        row = {"aridity": name, "n_cells": int(sel.sum())}
        for m in models:
            v = np.asarray(field.sel(model=m).values, dtype=float)[sel]
            v = v[np.isfinite(v)]
            row[m] = (np.median(v) if stat == "median" else v.mean()) if v.size else np.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=["aridity", "n_cells", *models]).set_index("aridity")
