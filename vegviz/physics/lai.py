"""From the process index to leaf area: per-cell LAI range calibrated on the training period.

lai_process = lai_min + (lai_max - lai_min) * index, with lai_min and lai_max of each cell the
5th and 95th percentiles (by default; ``GSIParameters.lai_quantiles``) of the satellite ``lai``
observed in the calibration period. Percentiles rather than the extremes keep single noisy
composites from setting the range. Only the calibration period is read (default 1981-2001,
the training years of the reference study), so nothing from the validation or test years
reaches the physics input.

Cells with fewer than ``min_observations`` observations in the period (water, snow, cells
outside the satellite product) take, in this order: the median lai_min/lai_max of the
calibrated cells of the same ``landcover`` class; the median over all calibrated cells; the
percentiles of all observations pooled (when no cell has enough on its own). The variable
``lai_range_source`` of :func:`calibrate_lai_range` records which one each cell got.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd
import xarray as xr

from ..contract import cf_attrs
from . import inputs
from .gsi import GSI_NAMES, WATER_NAMES, _index, describe, new_state, process_index
from .params import DEFAULT, GSIParameters

CALIBRATION = slice("1981-01-01", "2001-12-31")

SOURCES = {
    0: "cell_percentiles",
    1: "landcover_class_median",
    2: "all_cells_median",
    3: "pooled_observations",
}


def _as_slice(calibration) -> slice:
    if isinstance(calibration, slice):
        return calibration
    if isinstance(calibration, (tuple, list)) and len(calibration) == 2:
        return slice(*calibration)
    raise TypeError(f"calibration must be a slice of dates, e.g. slice('1981-01-01', '2001-12-31'), "
                    f"or a (start, end) pair; got {calibration!r}")


def _label(period: slice) -> str:
    def fmt(x, default):
        return default if x is None else f"{pd.Timestamp(x):%Y-%m-%d}"

    return f"{fmt(period.start, 'start of data')}..{fmt(period.stop, 'end of data')}"


def _observed_span(lai: xr.DataArray) -> str:
    """First..last date with any lai observation (for error messages)."""
    seen = lai.notnull().any(dim=[d for d in lai.dims if d != "time"]).values
    if not seen.any():
        return "lai has no observations at all"
    t = pd.DatetimeIndex(lai["time"].values)[seen]
    return f"lai is observed {t[0]:%Y-%m-%d}..{t[-1]:%Y-%m-%d}"


def _quantiles(obs: np.ndarray, qs) -> tuple[np.ndarray, np.ndarray]:
    """Per-column quantiles ('linear', as numpy's default) ignoring NaN, and the counts.

    Sorting once and interpolating is much faster than np.nanquantile, which loops over columns.
    """
    srt = np.sort(obs, axis=0)  # NaN sorts last
    n = np.isfinite(obs).sum(axis=0)
    out = np.full((len(qs), obs.shape[1]), np.nan, dtype=np.float64)
    cols = np.flatnonzero(n)
    for i, q in enumerate(qs):
        h = (n[cols] - 1) * q
        lo = np.floor(h).astype(np.int64)
        hi = np.minimum(lo + 1, n[cols] - 1)
        a, b = srt[lo, cols], srt[hi, cols]
        out[i, cols] = a + (h - lo) * (b - a)
    return out, n


def _fill(values: np.ndarray, source: np.ndarray, need: np.ndarray, donors: np.ndarray,
          code: int, groups: np.ndarray | None = None) -> None:
    """Give cells ``need`` the median over ``donors`` (of their group), in place."""
    if groups is None:
        values[:, need] = np.median(values[:, donors], axis=1, keepdims=True)
        source[need] = code
        return
    for g in np.unique(groups[need]):
        d = donors & (groups == g)
        if d.any():
            sel = need & (groups == g)
            values[:, sel] = np.median(values[:, d], axis=1, keepdims=True)
            source[sel] = code


def _observed(cal: xr.DataArray, max_bytes: int | None) -> tuple[list | None, int]:
    """The days of ``cal`` (time, lat, lon) with any observation, read one block of days at a time.

    Returns ``(parts, days)``: ``parts`` are float32 (days, cells) arrays of those days, or
    None when together they would exceed ``max_bytes`` (then only ``days``, their number, is
    counted and the caller reads them again by blocks of cells).
    """
    ncell = cal.sizes["lat"] * cal.sizes["lon"]
    parts, days, kept = [], 0, 0
    for t0, t1 in inputs.time_blocks(cal, 4 * ncell, max_bytes or inputs.STREAM_BYTES):
        flat = np.asarray(cal.isel(time=slice(t0, t1)).values, dtype=np.float32).reshape(t1 - t0, ncell)
        rows = flat[np.isfinite(flat).any(axis=1)]  # composite dates only: a small array to sort
        days += rows.shape[0]
        if parts is not None:
            kept += rows.nbytes
            parts = parts + [rows] if max_bytes is None or kept <= max_bytes else None
    return parts, days


def _cell_quantiles(cal: xr.DataArray, qs, max_bytes: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-cell quantiles of the observations in ``cal`` and their counts, within a memory budget.

    The observations of all cells are sorted at once when they fit in a third of
    ``max_bytes`` (sorting copies them, the quantiles are float64); otherwise blocks of
    latitude rows are read in turn. Quantiles are per cell, so blocks give exactly the
    values of the whole. Returns ``(values (len(qs), cells), counts (cells,), days with an
    observation)``.
    """
    nlat, nlon = cal.sizes["lat"], cal.sizes["lon"]
    budget = max(1, max_bytes // 3)
    parts, days = _observed(cal, budget)
    if days == 0:
        return np.full((len(qs), nlat * nlon), np.nan), np.zeros(nlat * nlon, dtype=np.int64), 0
    if parts is not None:
        return (*_quantiles(np.concatenate(parts) if len(parts) > 1 else parts[0], qs), days)
    values, n = np.full((len(qs), nlat * nlon), np.nan), np.zeros(nlat * nlon, dtype=np.int64)
    rows = max(1, budget // (4 * days * nlon))
    for r0 in range(0, nlat, rows):
        part, _ = _observed(cal.isel(lat=slice(r0, r0 + rows)), None)
        cells = slice(r0 * nlon, min(r0 + rows, nlat) * nlon)
        values[:, cells], n[cells] = _quantiles(np.concatenate(part), qs)
    return values, n, days


def _pooled_quantiles(cal: xr.DataArray, qs, max_bytes: int) -> np.ndarray:
    """Quantiles of all observations of ``cal`` pooled (few: only used when no cell has enough)."""
    ncell = cal.sizes["lat"] * cal.sizes["lon"]
    finite = []
    for t0, t1 in inputs.time_blocks(cal, 4 * ncell, max_bytes):
        block = np.asarray(cal.isel(time=slice(t0, t1)).values, dtype=np.float32).reshape(-1)
        finite.append(block[np.isfinite(block)])
    return _quantiles(np.concatenate(finite).reshape(-1, 1), qs)[0]


def calibrate_lai_range(ds: xr.Dataset, calibration=CALIBRATION, *, params: GSIParameters | None = None,
                        max_bytes: int = inputs.STREAM_BYTES) -> xr.Dataset:
    """Per-cell ``lai_min`` and ``lai_max`` from the observed ``lai`` in ``calibration`` only.

    Returns a Dataset (lat, lon) with ``lai_min``, ``lai_max`` (float32, m2 m-2), ``n_obs``
    (observations per cell in the period) and ``lai_range_source`` (0 own percentiles,
    1 landcover-class median, 2 all-cells median, 3 pooled observations). Raises
    ContractError when the period holds no observation. ``lai`` is read one block of days
    at a time (dask-backed data stay out of core); the days with an observation are kept,
    by blocks of cells when they exceed ``max_bytes``.
    """
    p = params or DEFAULT
    period = _as_slice(calibration)
    inputs.check_time(ds)
    lai = inputs.checked(ds, "lai")
    cal = lai.sel(time=period)
    fix = ("pass calibration=slice(start, end) covering observed years (to add_lai_process or "
           "calibrate_lai_range), ending before your validation period starts")
    if cal.sizes["time"] == 0:
        t = pd.DatetimeIndex(ds["time"].values)
        inputs.fail("lai", f"the calibration period {_label(period)} holds no day of the data (time covers "
                    f"{t[0]:%Y-%m-%d}..{t[-1]:%Y-%m-%d})", fix)
    nlat, nlon = cal.sizes["lat"], cal.sizes["lon"]
    values, n, days = _cell_quantiles(cal, p.lai_quantiles, max_bytes)
    if days == 0:
        inputs.fail("lai", f"has no observations in the calibration period {_label(period)} "
                    f"({_observed_span(lai)})", fix)

    source = np.zeros(n.shape, dtype=np.int8)
    own = n >= p.min_observations
    need = ~own
    if need.any():
        if own.any():
            if "landcover" in ds.data_vars:
                groups = np.asarray(ds["landcover"].transpose("lat", "lon").values).reshape(-1)
                _fill(values, source, need, own, 1, groups)
                need = need & (source == 0)
            if need.any():
                _fill(values, source, need, own, 2)
        else:
            values[:, need] = _pooled_quantiles(cal, p.lai_quantiles, max_bytes)
            source[need] = 3

    t_cal = pd.DatetimeIndex(cal["time"].values)
    q0, q1 = (100 * q for q in p.lai_quantiles)
    attrs = {
        "calibration_period": f"{t_cal[0]:%Y-%m-%d}/{t_cal[-1]:%Y-%m-%d}",
        "lai_range_method": (
            f"per-cell {q0:g}th/{q1:g}th percentiles (linear interpolation) of the observed lai in the "
            f"calibration period; cells with fewer than {p.min_observations} observations take the median "
            "lai_min/lai_max of the calibrated cells of their landcover class, else of all calibrated cells, "
            "else the percentiles of all observations pooled"
        ),
    }
    coords = {"lat": ds["lat"], "lon": ds["lon"]}

    def grid(a, dtype):
        return (("lat", "lon"), a.reshape(nlat, nlon).astype(dtype))

    out = xr.Dataset(
        {
            "lai_min": grid(values[0], np.float32),
            "lai_max": grid(values[1], np.float32),
            "n_obs": grid(n, np.int32),
            "lai_range_source": grid(source, np.int8),
        },
        coords=coords,
        attrs=attrs,
    )
    out["lai_min"].attrs = {**cf_attrs("lai"), "long_name": f"lower LAI bound ({q0:g}th percentile)"}
    out["lai_max"].attrs = {**cf_attrs("lai"), "long_name": f"upper LAI bound ({q1:g}th percentile)"}
    out["n_obs"].attrs = {"units": "1", "long_name": "lai observations in the calibration period"}
    out["lai_range_source"].attrs = {
        "long_name": "where lai_min/lai_max come from",
        "flag_values": np.array(list(SOURCES), dtype=np.int8),
        "flag_meanings": " ".join(SOURCES.values()),
    }
    return out


def _attrs(p: GSIParameters, bounds: xr.Dataset) -> dict:
    return {
        **cf_attrs("lai_process"),
        "method": f"lai_min + (lai_max - lai_min) * index; index: {describe(p)}",
        "calibration_period": bounds.attrs["calibration_period"],
        "lai_range_method": bounds.attrs["lai_range_method"],
        "parameters": p.to_json(),
    }


def add_lai_process(ds: xr.Dataset, *, calibration=CALIBRATION, params: GSIParameters | None = None) -> xr.Dataset:
    """A copy of ``ds`` with ``lai_process``, the process-based daily LAI (float32, time x lat x lon).

    lai_process = lai_min + (lai_max - lai_min) * index, where the index is the trailing
    21-day mean of the growing season index of Jolly et al. (2005) times a water-limitation
    term (:func:`process_index`) and lai_min/lai_max come from :func:`calibrate_lai_range`
    on ``calibration`` only (default 1981-01-01..2001-12-31). Needs ``tmin``, ``tair``,
    ``precip``, ``vpd`` (or ``qair`` and ``elevation``), ``lai`` and the ``time``/``lat``
    coordinates; dask-backed inputs are loaded (for records larger than memory use
    :func:`iter_lai_process`). Missing inputs raise ContractError.
    """
    p = params or DEFAULT
    bounds = calibrate_lai_range(ds, calibration, params=p)  # fails fast on a bad period
    index = process_index(ds, params=p).values
    lo = bounds["lai_min"].values[None]
    index *= bounds["lai_max"].values[None] - lo
    index += lo
    out = ds.copy()
    out["lai_process"] = inputs.as_dataarray(ds, index, "lai_process", _attrs(p, bounds))
    return out


def iter_lai_process(ds: xr.Dataset, *, calibration=CALIBRATION, params: GSIParameters | None = None,
                     max_bytes: int = inputs.STREAM_BYTES, bounds: xr.Dataset | None = None,
                     ) -> tuple[dict, Iterator[tuple[int, int, np.ndarray]]]:
    """:func:`add_lai_process` out of core: ``(attrs, blocks)``, the blocks yielding ``(start, stop, values)``.

    ``values`` is ``lai_process`` for days ``start:stop`` of ``ds`` (float32, time x lat x lon),
    bit for bit what :func:`add_lai_process` gives; ``attrs`` are its attributes. The
    calibration reads ``lai`` once beforehand (:func:`calibrate_lai_range`); then the inputs
    are read one block of days at a time (aligned to the time chunks of dask-backed data,
    under ``max_bytes``), and the running windows carry over between blocks
    (:func:`vegviz.physics.inputs.stream_blockwise`). Peak memory is about ``max_bytes``
    plus the windows' last 90 days of float64 sums per cell, whatever the length of the record.

    ``bounds``, a :func:`calibrate_lai_range` result, is used instead of calibrating on ``ds``
    (``calibration`` is then ignored): a climate scenario, which has no ``lai``, takes the
    range calibrated on its baseline's observations, never one re-fitted to the scenario.
    """
    p = params or DEFAULT
    if bounds is None:
        bounds = calibrate_lai_range(ds, calibration, params=p, max_bytes=max_bytes)
    names = GSI_NAMES + inputs.humidity_names(ds) + WATER_NAMES
    lo = bounds["lai_min"].values[None]
    span = bounds["lai_max"].values[None] - lo

    def blocks():
        for t0, t1, index in inputs.stream_blockwise(ds, names, _index, p, new_state, max_bytes=max_bytes):
            index *= span
            index += lo
            yield t0, t1, index

    return _attrs(p, bounds), blocks()
