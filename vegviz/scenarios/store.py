"""Building, storing and finding climate scenarios.

A scenario is a model-ready data set without ``lai`` (:data:`vegviz.contract.SCENARIO_REQUIRED`):
the grid, static fields and period of its baseline, the baseline's forcings changed by a
:class:`~vegviz.scenarios.DeltaChange` or a :class:`~vegviz.scenarios.GCMScenario`, and
``lai_process`` recomputed on the changed forcings with the lai range calibrated on the
baseline's observed lai over the baseline's own calibration period (its training years),
never re-fitted on the scenario. It lives in ``<data dir>/scenarios/NAME.zarr`` (Zarr v3,
one-year chunks like the virtual basin), written in a temporary folder, validated and renamed
into place, so a failed build leaves nothing.

``lai_process`` has running windows (21 and 90 days, :class:`vegviz.physics.GSIParameters`):
so that its first days see the scenario climate as the baseline's saw the baseline's, the
scenario forcing is also computed over the ``water_window + window - 1`` days before the
period (when the data have them) and lai_process is run from there; those days are not stored.
With a zero change lai_process is then the baseline's: bit for bit when the period starts at
the data's first day, to float32 rounding otherwise (the running sums start on another day).

Provenance (root attributes): ``scenario``, ``scenario_method`` ("delta" or "qdm"),
``scenario_change`` (in words), ``scenario_deltas`` (JSON) or ``gcm_hist``/``gcm_future`` with
their ``*_sha256``, ``baseline`` (catalog entry or absolute path), ``baseline_start``,
``baseline_end``, ``domain``, ``synthetic`` (the baseline's), ``lai_calibration``
(first/last day), ``source`` and ``history``.
"""
from __future__ import annotations

import json
import re
import shutil
import warnings
from datetime import datetime, timezone
from pathlib import Path

import dask.array as dsa
import numpy as np
import pandas as pd
import xarray as xr

from ..contract import FORCINGS, SCENARIO_REQUIRED, ContractError, check_variables, validate
from ..io import building_path, replace_directory
from ..paths import cache_dir
from .delta import ScenarioError

#: folder of the scenarios inside the data directory
SCENARIOS = "scenarios"
#: root attributes of the baseline that stay true of the scenario
KEPT_ATTRS = ("title", "domain", "domain_title", "synthetic", "grid", "Conventions", "static_key", "seed",
              "generator", "generator_version", "calibration")


def scenarios_dir(data_dir=None) -> Path:
    """``<data dir>/scenarios`` (data dir: ``data_dir``, else $VEGVIZ_DATA_DIR, else the user data directory)."""
    return cache_dir(data_dir) / SCENARIOS


def check_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name or ""):
        raise ScenarioError(f"scenario name {name!r}: use letters, digits, '_' and '-', starting with a letter "
                            "(e.g. warm2_dry10). Fix: pass another name")
    return name


def scenario_path(name: str, data_dir=None) -> Path:
    return scenarios_dir(data_dir) / f"{check_name(name)}.zarr"


def parse_period(period) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``"2009:2016"`` (whole years), ``"2009-04-01:2016-09-30"``, a period name or a (start, end) pair."""
    from ..evaluation.periods import resolve_period

    if isinstance(period, str) and ":" in period:
        a, _, b = period.partition(":")
        a, b = a.strip(), b.strip()
        a = f"{a}-01-01" if re.fullmatch(r"\d{4}", a) else a
        b = f"{b}-12-31" if re.fullmatch(r"\d{4}", b) else b
        period = (a, b)
    try:
        return resolve_period(period)
    except ValueError as e:
        raise ScenarioError(f"{e} (or 'YYYY:YYYY', e.g. 2009:2016)") from None


def _covered(base: xr.Dataset, t0, t1, data: str) -> tuple[int, int]:
    """Indices of t0 and t1 in the data's time; ScenarioError when the data lack part of the period."""
    idx = pd.DatetimeIndex(base["time"].values)
    if t0 < idx[0] or t1 > idx[-1]:
        y0 = idx[0].year + (idx[0] != pd.Timestamp(idx[0].year, 1, 1))
        y1 = idx[-1].year - (idx[-1] != pd.Timestamp(idx[-1].year, 12, 31))
        hint = f", e.g. --period {y0}:{y1}" if y0 <= y1 else ""
        raise ScenarioError(f"period {t0:%Y-%m-%d}..{t1:%Y-%m-%d} is not inside the data {data!r}, which cover "
                            f"{idx[0]:%Y-%m-%d}..{idx[-1]:%Y-%m-%d}. Fix: choose a period within those dates{hint}")
    return int(idx.get_loc(t0)), int(idx.get_loc(t1))


def baseline_calibration(base: xr.Dataset):
    """``(calibration slice, GSIParameters)`` of the baseline's lai_process.

    Read from its ``lai_process`` attributes (the period and parameters it was calibrated
    with), so that a zero change gives the baseline's lai_process; data without them get the
    virtual basin's rule (the overlap with 1981-2001, the study's training years).
    """
    from ..data.virtual.store import calibration_period
    from ..physics import DEFAULT, GSIParameters

    attrs = base["lai_process"].attrs if "lai_process" in base else {}
    params = DEFAULT
    if attrs.get("parameters"):
        p = json.loads(attrs["parameters"])
        params = GSIParameters(**{**p, "lai_quantiles": tuple(p["lai_quantiles"])})
    if attrs.get("calibration_period"):
        a, _, b = str(attrs["calibration_period"]).partition("/")
        return slice(a, b), params
    idx = pd.DatetimeIndex(base["time"].values)
    return calibration_period(idx[0], idx[-1]), params


def _baseline_name(data) -> str:
    path = Path(data).expanduser()
    return str(path.resolve()) if path.exists() else str(data)


def build_scenario(name: str, data, period, change, *, data_dir=None, overwrite: bool = False) -> Path:
    """Build scenario ``name`` from the baseline ``data`` over ``period`` with ``change``; return its store.

    ``data``: a catalog entry or a Zarr/NetCDF path of a model-ready data set (with ``lai``,
    to calibrate lai_process); ``period``: ``"2009:2016"``, a (start, end) pair or a period
    name, inside the data (None: the whole record); ``change``: a :class:`DeltaChange` or :class:`GCMScenario`. Every
    check (name, period, change, GCM files) runs before anything is written; an existing
    scenario is replaced only with ``overwrite=True``.
    """
    from ..catalog import open_data

    path = scenario_path(name, data_dir)
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise ScenarioError(f"scenario {name!r} exists ({path}). Fix: pass overwrite=True (--overwrite) to "
                            "replace it, or choose another name")
    if not hasattr(change, "apply") or not hasattr(change, "attrs"):
        raise ScenarioError(f"change {change!r} is not a scenario change. Fix: pass a vegviz.scenarios.DeltaChange "
                            "or GCMScenario")
    t0, t1 = parse_period(period) if period is not None else (None, None)
    base = open_data(data)
    if t0 is None:  # the whole record
        t0, t1 = (pd.Timestamp(base["time"].values[i]) for i in (0, -1))
    if "lai" not in base:
        raise ScenarioError(f"the data {data!r} have no lai, so lai_process cannot be calibrated on the "
                            "baseline's observations. Fix: build the scenario from a model-ready data set "
                            "(a catalog entry such as virtual_ucrb, or a store made by vegviz prepare)")
    i0, i1 = _covered(base, t0, t1, str(data))
    cal, params = baseline_calibration(base)
    spin = min(i0, params.water_window + params.window - 1)
    dynamic = [v for v in FORCINGS if v in base]
    static = [v for v in base.data_vars if base[v].dims == ("lat", "lon")]
    window = base[dynamic + static].isel(time=slice(i0 - spin, i1 + 1))
    scen = change.apply(window)  # GCM files are read, regridded and checked here: before any write
    from ..physics import calibrate_lai_range

    bounds = calibrate_lai_range(base, cal, params=params)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = building_path(path)
    try:
        attrs = _attrs(name, base, data, t0, t1, change, bounds, spin)
        spinup = _write_forcing(tmp, scen, spin, dynamic, base[static].load(), attrs)
        _write_lai_process(tmp, spinup, dynamic, params, bounds)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
            import zarr

            zarr.consolidate_metadata(str(tmp))
        with xr.open_zarr(tmp, consolidated=True) as ds:  # every block was checked; here the store's layout
            validate(ds.isel(time=slice(0, min(ds.sizes["time"], 2))), require=SCENARIO_REQUIRED)
        if path.exists() and not overwrite:  # made meanwhile by someone else
            raise ScenarioError(f"scenario {name!r} appeared at {path} during the build. Fix: pass overwrite=True "
                                "or choose another name")
        replace_directory(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _attrs(name, base, data, t0, t1, change, bounds, spin) -> dict:
    kept = {k: base.attrs[k] for k in KEPT_ATTRS if k in base.attrs}
    synthetic = int(base.attrs.get("synthetic", 0))
    label = "SYNTHETIC " if synthetic else ""
    return {
        **kept,
        "title": f"{label}climate scenario {name!r} of {base.attrs.get('title', data)}",
        "source": f"vegviz scenario {name} ({change.method}): {change.attrs()['scenario_change']}; baseline: "
                  f"{base.attrs.get('source', data)}",
        "synthetic": synthetic,
        "domain": base.attrs.get("domain", "unknown"),
        "scenario": name,
        **change.attrs(),
        "baseline": _baseline_name(data),
        "baseline_start": f"{t0:%Y-%m-%d}",
        "baseline_end": f"{t1:%Y-%m-%d}",
        "lai_calibration": bounds.attrs["calibration_period"],
        "lai_process_spinup_days": int(spin),
        "history": f"{datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%SZ} built by vegviz.scenarios.build_scenario",
    }


def _chunks(ds: xr.Dataset) -> tuple[int, int, int]:
    from ..data.virtual.store import chunk_shape

    return chunk_shape(ds.sizes["lat"], ds.sizes["lon"])


def _layout(tmp: Path, like: xr.Dataset, names, static: xr.Dataset, attrs: dict) -> dict:
    """Create the store with its coordinates, static fields and metadata; return the zarr arrays of ``names``."""
    import zarr

    from ..data.virtual.store import _encoding

    chunks = _chunks(like)
    out = static.assign_coords(time=like["time"])
    out.attrs = attrs
    for v in names:
        out[v] = (("time", "lat", "lon"), dsa.zeros(tuple(like.sizes[d] for d in ("time", "lat", "lon")),
                                                   chunks=chunks, dtype=np.float32), like[v].attrs)
    encoding = {v: _encoding(chunks) for v in names}
    encoding["time"] = {"units": "days since 1970-01-01", "calendar": "proleptic_gregorian", "dtype": "int32"}
    for v in static.data_vars:
        out[v].encoding = {}
    # compute=False writes coordinates, static fields and metadata, no dynamic data (filled block by block)
    out.to_zarr(tmp, mode="w-", compute=False, consolidated=False, zarr_format=3, encoding=encoding)
    group = zarr.open_group(str(tmp), mode="r+")
    return {v: group[v] for v in names}


def _validated(block: xr.Dataset, require) -> dict[str, np.ndarray]:
    """The block's float32 arrays, after the contract's checks (all per value: the blocks together check the whole)."""
    validate(block, require=require)
    return {v: np.asarray(block[v].transpose("time", "lat", "lon").values, dtype=np.float32)
            for v in block.data_vars if block[v].dims != ("lat", "lon")}


def _write_forcing(tmp: Path, scen: xr.Dataset, spin: int, dynamic, static: xr.Dataset, attrs: dict) -> xr.Dataset:
    """Write the changed forcings block by block of days; return the spin-up days' forcing (in memory).

    Blocks follow the baseline's time chunks (each is read and decompressed once; one dask
    computation per block shares the reads between variables, e.g. tair for tair and vpd),
    are checked against the contract in memory and written in whole chunks by a background
    thread while the next block is computed.
    """
    from ..data.virtual.store import CHUNK_DAYS, _ChunkWriter
    from ..physics.inputs import time_blocks

    body = scen.isel(time=slice(spin, None))
    arrays = _layout(tmp, body, dynamic, static, attrs)
    require = tuple(v for v in SCENARIO_REQUIRED if v != "lai_process")
    spinup = []
    with _ChunkWriter(arrays, CHUNK_DAYS) as writer:
        for t0, t1 in time_blocks(scen[dynamic], 4 * len(dynamic) * scen.sizes["lat"] * scen.sizes["lon"]):
            block = scen[dynamic].isel(time=slice(t0, t1)).compute()
            if t0 < spin:
                spinup.append(block.isel(time=slice(0, spin - t0)))
                block = block.isel(time=slice(spin - t0, None))
            if block.sizes["time"]:
                writer.add(_validated(block.assign(static.data_vars).assign_attrs(attrs), require))
    return xr.concat(spinup, dim="time") if spinup else None


def _write_lai_process(tmp: Path, spinup: xr.Dataset | None, dynamic, params, bounds) -> None:
    """lai_process on the stored scenario forcing (after the spin-up days), one time chunk at a time."""
    import zarr

    from ..data.virtual.store import CHUNK_DAYS, _ChunkWriter, _encoding
    from ..physics import iter_lai_process

    spin = 0 if spinup is None else spinup.sizes["time"]
    with xr.open_zarr(tmp, consolidated=False) as stored:
        src = stored[dynamic] if spinup is None else xr.concat([spinup[dynamic], stored[dynamic]], dim="time")
        src = src.assign({v: stored[v] for v in ("elevation",) if v in stored})
        attrs, blocks = iter_lai_process(src, params=params, bounds=bounds)
        attrs = {**attrs, "comment": "process-based LAI on the scenario forcing; lai_min/lai_max calibrated on the "
                                     f"baseline's observed lai ({bounds.attrs['calibration_period']}), not re-fitted"}
        chunks = _chunks(stored)
        shape = (stored.sizes["time"], stored.sizes["lat"], stored.sizes["lon"])
        new = xr.Dataset({"lai_process": (("time", "lat", "lon"), dsa.zeros(shape, chunks=chunks, dtype=np.float32),
                                          attrs)}, attrs=stored.attrs)
        new.to_zarr(tmp, mode="a", compute=False, consolidated=False, encoding={"lai_process": _encoding(chunks)})
        array = zarr.open_group(str(tmp), mode="r+")["lai_process"]
        times, mask = stored["time"], stored["mask"].load() if "mask" in stored else None
        with _ChunkWriter({"lai_process": array}, CHUNK_DAYS) as writer:
            for start, stop, values in blocks:
                if stop <= spin:
                    continue
                k = max(0, spin - start)
                a, b = start + k - spin, stop - spin
                block = xr.Dataset({"lai_process": (("time", "lat", "lon"), values[k:], attrs)},
                                   coords={"time": times[a:b], "lat": stored["lat"], "lon": stored["lon"]},
                                   attrs=stored.attrs)
                if mask is not None:
                    block["mask"] = mask
                check_variables(block, ["lai_process"])
                writer.add({"lai_process": values[k:]})
        if writer.position != shape[0]:  # pragma: no cover - a bug, not a user error
            raise RuntimeError(f"wrote {writer.position} days of lai_process, expected {shape[0]}")


# ----------------------------------------------------------------------------- finding

def list_scenarios(data_dir=None) -> list[str]:
    """Names of the scenarios in ``<data dir>/scenarios`` (complete stores only), sorted."""
    root = scenarios_dir(data_dir)
    if not root.is_dir():
        return []
    return sorted(p.name[:-5] for p in root.glob("*.zarr") if not p.name.startswith(".")
                  and (p / "zarr.json").exists())


def open_scenario(name_or_path, data_dir=None) -> xr.Dataset:
    """A scenario by name (in ``<data dir>/scenarios``) or by the path of its store, lazily opened."""
    path = Path(name_or_path).expanduser()
    if not (path / "zarr.json").exists():
        names = list_scenarios(data_dir)
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", str(name_or_path)) or str(name_or_path) not in names:
            known = ", ".join(names) if names else "none yet"
            raise FileNotFoundError(f"scenario {str(name_or_path)!r} not found in {scenarios_dir(data_dir)} (scenarios: "
                                    f"{known}). Fix: build it with `vegviz scenario NAME --data D ...` "
                                    "(vegviz.scenarios.build_scenario) or pass the path of a scenario store")
        path = scenario_path(str(name_or_path), data_dir)
    ds = xr.open_zarr(path)
    if "scenario" not in ds.attrs:
        ds.close()
        raise ContractError(f"{path}: not a vegviz scenario (no 'scenario' attribute). Fix: pass a store written "
                            "by vegviz.scenarios.build_scenario")
    return ds


def open_baseline(scenario_ds: xr.Dataset) -> xr.Dataset:
    """The baseline data of a scenario over the scenario's period (lazily, via :func:`vegviz.catalog.open_data`)."""
    from ..catalog import open_data

    try:
        name, a, b = (scenario_ds.attrs[k] for k in ("baseline", "baseline_start", "baseline_end"))
    except KeyError as e:
        raise ContractError(f"attrs: the scenario has no {e.args[0]!r} attribute. Fix: rebuild it with "
                            "vegviz.scenarios.build_scenario") from None
    return open_data(name).sel(time=slice(a, b))
