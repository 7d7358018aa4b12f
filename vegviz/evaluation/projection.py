"""Projection summaries (annual mean, peak, its timing, growing-season length) and known-truth projection skill.

A projection holds, per model, daily LAI on a scenario and on its baseline (the same days).
Its change ΔX = X(scenario) - X(baseline) is taken per model, so a model's bias cancels. The
seasonal quantities are computed per calendar year and cell, then averaged over the whole years
that every series has complete (no NaN day: a model's burn-in year is left out for all):

=================  ==============================================================================
quantity           per year and cell
=================  ==============================================================================
annual_mean        mean daily LAI (m2 m-2)
peak_lai           largest daily LAI (m2 m-2)
peak_doy           day of year of the largest LAI (first such day; no wrap-around: the basin's
                   vegetation peaks in summer)
season_length      days with LAI above min + 0.5 (max - min) of that year: the growing season as the
                   days above half the seasonal amplitude, the "seasonal amplitude" rule of TIMESAT
                   (Jönsson & Eklundh 2004, Computers & Geosciences 30:833-845) with fraction 0.5
=================  ==============================================================================

Known-truth skill (virtual basins only, where the true ΔLAI is known): each model's Δ map of a
quantity against the true Δ map, over the basin cells (and per vegetation type and aridity class):

* bias = mean_i (Δm_i - Δt_i)
* RMSE = sqrt(mean_i (Δm_i - Δt_i)^2)
* r: Pearson's correlation of Δm and Δt across cells (the spatial pattern of the change)
* sign agreement = share of cells with sign(Δm_i) = sign(Δt_i), among the cells whose true change
  is at least :data:`SIGN_THRESHOLD` in magnitude (smaller true changes have no meaningful sign)

Metrics are plain functions of two arrays (NaN pairs dropped), in the style of
:mod:`vegviz.evaluation.skill`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

__all__ = [
    "QUANTITIES", "SEASON_FRACTION", "SIGN_THRESHOLD", "SKILL_METRICS", "bias", "change_skill", "rmse",
    "season_summaries", "sign_agreement", "skill_markdown", "spatial_correlation", "yearly_summaries",
]

QUANTITIES = ("annual_mean", "peak_lai", "peak_doy", "season_length")
QUANTITY_ATTRS = {
    "annual_mean": {"units": "m2 m-2", "long_name": "annual mean LAI"},
    "peak_lai": {"units": "m2 m-2", "long_name": "peak LAI of the year"},
    "peak_doy": {"units": "day of year", "long_name": "day of year of the peak LAI"},
    "season_length": {"units": "days", "long_name": "growing-season length (days above half the seasonal amplitude)"},
}
#: share of the year's amplitude above the year's minimum that a growing-season day exceeds
SEASON_FRACTION = 0.5
#: m2 m-2: true changes smaller than this have no sign to agree with (the GLOBMAP-like composites'
#: precision is 0.01; in days and day of year the threshold of peak_doy/season_length is 1 day)
SIGN_THRESHOLD = 0.01
SIGN_THRESHOLDS = {"annual_mean": SIGN_THRESHOLD, "peak_lai": SIGN_THRESHOLD, "peak_doy": 1.0, "season_length": 1.0}
SKILL_METRICS = ("bias", "rmse", "r", "sign_agreement")


# --------------------------------------------------------------------------- metrics

def _pairs(sim, ref) -> tuple[np.ndarray, np.ndarray]:
    sim, ref = np.asarray(sim, dtype=float).ravel(), np.asarray(ref, dtype=float).ravel()
    if sim.shape != ref.shape:
        raise ValueError(f"sim and ref differ in size ({sim.size} vs {ref.size}). Fix: pass maps of the same cells")
    ok = np.isfinite(sim) & np.isfinite(ref)
    return sim[ok], ref[ok]


def bias(sim, ref) -> float:
    """mean(sim - ref) over the cells where both are finite; NaN when none is."""
    s, r = _pairs(sim, ref)
    return float(np.mean(s - r)) if s.size else np.nan


def rmse(sim, ref) -> float:
    """sqrt(mean((sim - ref)^2)) over the cells where both are finite."""
    s, r = _pairs(sim, ref)
    return float(np.sqrt(np.mean((s - r) ** 2))) if s.size else np.nan


def spatial_correlation(sim, ref) -> float:
    """Pearson's r of sim and ref across cells; NaN with fewer than 3 cells or a constant map."""
    s, r = _pairs(sim, ref)
    if s.size < 3 or np.std(s) == 0 or np.std(r) == 0:
        return np.nan
    return float(np.corrcoef(s, r)[0, 1])


def sign_agreement(sim, ref, threshold: float = SIGN_THRESHOLD) -> float:
    """Share of cells with ``sign(sim) = sign(ref)``, among those with ``|ref| >= threshold``; NaN if none."""
    s, r = _pairs(sim, ref)
    keep = np.abs(r) >= threshold
    return float(np.mean(np.sign(s[keep]) == np.sign(r[keep]))) if keep.any() else np.nan


def change_skill(sim, ref, threshold: float = SIGN_THRESHOLD) -> dict:
    """All four metrics of a simulated change map against the true one, with the number of cells."""
    s, _ = _pairs(sim, ref)
    return {"n_cells": int(s.size), "bias": bias(sim, ref), "rmse": rmse(sim, ref),
            "r": spatial_correlation(sim, ref), "sign_agreement": sign_agreement(sim, ref, threshold)}


# --------------------------------------------------------------------------- seasonal summaries

def _year_slices(time) -> list[tuple[int, slice]]:
    """(year, days) of each whole calendar year (365 or 366 days) in ``time``."""
    t = pd.DatetimeIndex(time)
    years = t.year.to_numpy()
    starts = np.flatnonzero(np.r_[True, years[1:] != years[:-1]])
    out = []
    for a, b in zip(starts, [*starts[1:], len(t)]):
        whole = b - a == (366 if t[a].is_leap_year else 365)
        if whole and t[a].day_of_year == 1 and (t[b - 1].month, t[b - 1].day) == (12, 31):
            out.append((int(years[a]), slice(a, b)))
    return out


def yearly_summaries(lai: xr.DataArray, fraction: float = SEASON_FRACTION) -> xr.Dataset:
    """:data:`QUANTITIES` per whole calendar year and cell: a Dataset with dims (year, lat, lon).

    A cell's year is NaN when any of its days is NaN (a model's burn-in, outside the mask).
    """
    if not isinstance(lai, xr.DataArray) or set(lai.dims) != {"time", "lat", "lon"}:
        raise TypeError("lai: expected a daily (time, lat, lon) DataArray")
    lai = lai.transpose("time", "lat", "lon")
    slices = _year_slices(lai["time"].values)
    if not slices:
        raise ValueError(f"lai covers no whole calendar year ({pd.Timestamp(lai['time'].values[0]):%Y-%m-%d}.."
                         f"{pd.Timestamp(lai['time'].values[-1]):%Y-%m-%d}). Fix: summarise at least one year "
                         "from 1 January to 31 December")
    values = np.asarray(lai.values, dtype=np.float32)
    doy0 = pd.DatetimeIndex(lai["time"].values).day_of_year.to_numpy()
    shape = (len(slices), *values.shape[1:])
    out = {q: np.full(shape, np.nan, np.float32) for q in QUANTITIES}
    for k, (_, days) in enumerate(slices):
        a = values[days]
        complete = np.isfinite(a).all(axis=0)
        filled = np.where(complete, a, 0.0)
        hi, lo = filled.max(axis=0), filled.min(axis=0)
        out["annual_mean"][k] = filled.mean(axis=0)
        out["peak_lai"][k] = hi
        out["peak_doy"][k] = doy0[days][filled.argmax(axis=0)]
        out["season_length"][k] = (filled > lo + fraction * (hi - lo)).sum(axis=0)
        for q in QUANTITIES:
            out[q][k][~complete] = np.nan
    coords = {"year": [y for y, _ in slices], "lat": lai["lat"], "lon": lai["lon"]}
    return xr.Dataset({q: (("year", "lat", "lon"), v, QUANTITY_ATTRS[q]) for q, v in out.items()}, coords=coords)


def season_summaries(series: dict[str, xr.DataArray], fraction: float = SEASON_FRACTION) -> xr.Dataset:
    """:data:`QUANTITIES` averaged over the whole years that every series has complete, per cell.

    ``series`` maps names to daily LAI on the same days; returns dims (series, lat, lon)
    with the number of years used (``years``).
    """
    yearly = {name: yearly_summaries(da, fraction) for name, da in series.items()}
    stacked = xr.concat(list(yearly.values()), dim=pd.Index(list(yearly), name="series"))
    common = np.isfinite(stacked["annual_mean"]).all("series")  # (year, lat, lon): complete for all
    means = stacked.where(common).mean("year")
    means["years"] = common.sum("year").astype(np.int16)
    means["years"].attrs = {"units": "1", "long_name": "whole calendar years every series has complete"}
    for q in QUANTITIES:
        means[q].attrs = QUANTITY_ATTRS[q]
    return means


# --------------------------------------------------------------------------- skill tables

def skill_table(delta: xr.Dataset, groups: dict[str, dict[str, np.ndarray]] | None = None, *,
                truth: str = "truth", quantities=QUANTITIES) -> pd.DataFrame:
    """Tidy known-truth skill: one row per (quantity, grouping, group, model).

    ``delta`` holds one (model, lat, lon) Δ map per quantity (named after it); ``truth`` is the
    model whose Δ is the truth (it is left out of the rows). ``groups`` maps a grouping name
    (e.g. "vegetation", "aridity") to {group name: boolean (lat, lon) cells}; "all" (every cell
    where the true Δ is finite) is always included first.
    """
    if truth not in delta["model"].values:
        raise ValueError(f"the projection has no {truth!r} series: known-truth skill needs the true change, which "
                         "only a virtual basin has. Fix: project a scenario built from a virtual basin")
    models = [str(m) for m in delta["model"].values if str(m) != truth]
    rows = []
    for q in quantities:
        field = delta[q].transpose("model", "lat", "lon")
        ref = np.asarray(field.sel(model=truth).values, dtype=float)
        sets = {"all": {"all cells": np.isfinite(ref)}, **(groups or {})}
        for grouping, members in sets.items():
            for group, cells in members.items():
                for m in models:
                    sim = np.asarray(field.sel(model=m).values, dtype=float)
                    rows.append({"quantity": q, "grouping": grouping, "group": group, "model": m,
                                 **change_skill(sim[cells], ref[cells], SIGN_THRESHOLDS.get(q, SIGN_THRESHOLD))})
    return pd.DataFrame(rows, columns=["quantity", "grouping", "group", "model", "n_cells", *SKILL_METRICS])


def skill_markdown(table: pd.DataFrame, quantity: str = "annual_mean", grouping: str = "all",
                   digits: int = 3) -> str:
    """One quantity and grouping of :func:`skill_table` as a Markdown table (models x metrics, per group)."""
    from .summary import markdown_table

    sub = table[(table["quantity"] == quantity) & (table["grouping"] == grouping)]
    if sub.empty:
        raise ValueError(f"the table has no rows for quantity {quantity!r} and grouping {grouping!r}. Fix: choose "
                         f"from {sorted(set(table['quantity']))} and {sorted(set(table['grouping']))}")
    cols = ["model", "n_cells", *SKILL_METRICS]
    if grouping != "all":
        cols.insert(0, "group")
    return markdown_table(sub[cols].set_index(cols[0]), digits=digits)
