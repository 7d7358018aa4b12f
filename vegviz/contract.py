"""The model-ready Dataset: one layout that ingest writes, training reads and
dashboards show, and the one function that checks it.

Layout (see DESIGN.md): dims ``time`` (daily), ``lat``, ``lon`` (ascending, on the
NLDAS-2 1/8-degree lattice); CF attributes on every variable; dynamic variables are
(time, lat, lon), static ones (lat, lon). Provenance lives in ``attrs``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from . import grid as _grid


class ContractError(ValueError):
    """A Dataset does not follow the model-ready contract.

    The message names the variable, the problem and the fix.
    """


@dataclass(frozen=True)
class VarSpec:
    name: str
    role: str  # forcing | target | physics | static | diagnostic
    units: str
    long_name: str
    standard_name: str | None = None
    valid_range: tuple[float, float] | None = None
    aliases: tuple[str, ...] = ()  # unit spellings that mean the same thing
    conversions: dict = field(default_factory=dict)  # wrong unit -> how to fix

    @property
    def dims(self) -> tuple[str, ...]:
        return ("lat", "lon") if self.role == "static" else ("time", "lat", "lon")

    def attrs(self) -> dict:
        a = {"units": self.units, "long_name": self.long_name}
        if self.standard_name:
            a["standard_name"] = self.standard_name
        return a


VARIABLES: dict[str, VarSpec] = {
    v.name: v
    for v in [
        VarSpec(
            "precip", "forcing", "mm day-1", "daily precipitation", "lwe_precipitation_rate",
            (0.0, 1000.0), ("mm/day", "mm d-1", "mm day**-1", "kg m-2 day-1"),
            {"kg m-2 s-1": "multiply by 86400", "mm/h": "sum the hours of each day",
             "kg m-2": "an hourly amount: sum the 24 hours of each day", "m": "multiply by 1000 (daily total)"},
        ),
        VarSpec(
            "tair", "forcing", "degC", "daily mean near-surface air temperature", "air_temperature",
            (-70.0, 60.0), ("degrees_Celsius", "celsius", "°C", "C"),
            {"K": "subtract 273.15", "degK": "subtract 273.15", "kelvin": "subtract 273.15"},
        ),
        VarSpec(
            "tmin", "forcing", "degC", "daily minimum near-surface air temperature", "air_temperature",
            (-70.0, 60.0), ("degrees_Celsius", "celsius", "°C", "C"),
            {"K": "subtract 273.15", "degK": "subtract 273.15", "kelvin": "subtract 273.15"},
        ),
        VarSpec(
            "swdown", "forcing", "W m-2", "daily mean surface downwelling shortwave radiation",
            "surface_downwelling_shortwave_flux_in_air", (0.0, 600.0), ("W/m2", "W m**-2", "W/m^2"),
            {"MJ m-2 day-1": "multiply by 1e6/86400", "J m-2": "divide the daily sum by 86400"},
        ),
        VarSpec(
            "vpd", "forcing", "kPa", "daily mean vapour pressure deficit",
            "water_vapor_saturation_deficit_in_air", (0.0, 15.0), (),
            {"Pa": "divide by 1000", "hPa": "divide by 10"},
        ),
        VarSpec(
            "qair", "forcing", "kg kg-1", "daily mean near-surface specific humidity", "specific_humidity",
            (0.0, 0.05), ("kg/kg", "1"), {"g kg-1": "divide by 1000", "g/kg": "divide by 1000"},
        ),
        VarSpec(
            "lai", "target", "m2 m-2", "satellite leaf area index on composite dates (NaN elsewhere)",
            "leaf_area_index", (0.0, 10.0), ("m2/m2", "m^2/m^2", "1"),
        ),
        VarSpec(
            "lai_daily", "target", "m2 m-2", "satellite leaf area index interpolated to daily",
            "leaf_area_index", (0.0, 10.0), ("m2/m2", "m^2/m^2", "1"),
        ),
        VarSpec(
            "lai_true", "diagnostic", "m2 m-2", "noiseless true leaf area index (synthetic data only)",
            "leaf_area_index", (0.0, 10.0), ("m2/m2", "m^2/m^2", "1"),
        ),
        VarSpec(
            "lai_process", "physics", "m2 m-2", "process-based leaf area index (growing season index model)",
            "leaf_area_index", (0.0, 10.0), ("m2/m2", "m^2/m^2", "1"),
        ),
        VarSpec(
            "landcover", "static", "1", "dominant land cover class (IGBP, MODIS MCD12C1)",
            "area_type", (0, 16),
        ),
        VarSpec("elevation", "static", "m", "mean surface elevation", "surface_altitude", (-500.0, 9000.0)),
        VarSpec("mask", "static", "1", "cells that count in training and evaluation (1 = inside)", None, (0, 1)),
    ]
}

FORCINGS = ("precip", "tair", "tmin", "swdown", "vpd", "qair")
#: what every model-ready Dataset must hold (plus vpd and/or qair)
REQUIRED = ("precip", "tair", "tmin", "swdown", "lai", "landcover", "elevation", "mask")
#: what a climate scenario holds (vegviz.scenarios): the same layout without the observed lai, with
#: lai_process recomputed on the scenario forcing; validate(ds, require=SCENARIO_REQUIRED)
SCENARIO_REQUIRED = tuple(v for v in REQUIRED if v != "lai") + ("lai_process",)
PROVENANCE = ("source", "synthetic")

#: IGBP classes of MODIS MCD12C1 (Sulla-Menashe & Friedl 2018, MCD12 User Guide, Table 1)
IGBP_CLASSES = {
    0: "Water bodies",
    1: "Evergreen needleleaf forests",
    2: "Evergreen broadleaf forests",
    3: "Deciduous needleleaf forests",
    4: "Deciduous broadleaf forests",
    5: "Mixed forests",
    6: "Closed shrublands",
    7: "Open shrublands",
    8: "Woody savannas",
    9: "Savannas",
    10: "Grasslands",
    11: "Permanent wetlands",
    12: "Croplands",
    13: "Urban and built-up lands",
    14: "Cropland/natural vegetation mosaics",
    15: "Permanent snow and ice",
    16: "Barren",
}
#: IGBP class colours of every vegviz land-cover plot (after the usual MODIS land-cover legend)
IGBP_COLORS = {
    0: "#1c66b5", 1: "#05450a", 2: "#086a10", 3: "#54a708", 4: "#78d203", 5: "#009900", 6: "#c6b044",
    7: "#b08a2e", 8: "#6e7d14", 9: "#c99d3a", 10: "#8fa843", 11: "#27ff87", 12: "#c24f44", 13: "#a5a5a5",
    14: "#ff6d4c", 15: "#69fff8", 16: "#8a6f5a",
}


def cf_attrs(name: str) -> dict:
    """The CF attributes the contract gives variable ``name``."""
    return VARIABLES[name].attrs()


def _fail(var: str, problem: str, fix: str):
    raise ContractError(f"{var}: {problem}. Fix: {fix}")


def _check_coords(ds: xr.Dataset, grid: _grid.Grid | None) -> None:
    for c in ("lat", "lon"):
        if c not in ds.coords:
            alt = [n for n in ds.coords if n.lower() in {"latitude", "y", "lat_0", "longitude", "x", "lon_0"}]
            _fail(c, "coordinate is missing", f"rename the {c} coordinate to {c!r}"
                  + (f" (found {alt})" if alt else ""))
        v = ds[c].values
        if v.ndim != 1:
            _fail(c, f"coordinate must be 1-D, it has dims {ds[c].dims}", "use a regular lat/lon grid")
        if v.size > 1 and not np.all(np.diff(v) > 0):
            _fail(c, "coordinate is not strictly ascending", f"use ds.sortby({c!r})")
    if grid is not None:
        if not grid.matches(ds.lat, ds.lon):
            _fail(
                "lat/lon",
                f"coordinates are not the {grid.name} ({grid.nlat} x {grid.nlon}, lat {grid.lat[0]}..{grid.lat[-1]}, "
                f"lon {grid.lon[0]}..{grid.lon[-1]}); got {ds.sizes.get('lat')} x {ds.sizes.get('lon')}, "
                f"lat {float(ds.lat[0]):.4f}..{float(ds.lat[-1]):.4f}, lon {float(ds.lon[0]):.4f}..{float(ds.lon[-1]):.4f}",
                "regrid the data with vegviz.grid.regrid_mean / regrid_classes, or crop with ds.sel(lat=..., lon=...)",
            )
    else:
        try:
            _grid.nldas_window(ds.lat.values, ds.lon.values)
        except ValueError as e:
            _fail("lat/lon", str(e), "regrid onto the NLDAS-2 grid with vegviz.grid.regrid_mean")


def check_time(ds: xr.Dataset) -> pd.DatetimeIndex:
    """The time index, after checking it is a sorted, unique, gap-free daily datetime64 series."""
    if "time" not in ds.coords:
        _fail("time", "coordinate is missing", "add a daily datetime64 'time' coordinate")
    t = ds["time"].values
    if not np.issubdtype(t.dtype, np.datetime64):
        _fail("time", f"coordinate has dtype {t.dtype}, not datetime64",
              "decode times (xr.decode_cf) or convert with pd.to_datetime")
    if t.size == 0:
        _fail("time", "coordinate is empty", "select a period that holds data")
    idx = pd.DatetimeIndex(t)
    if idx.has_duplicates:
        dup = idx[idx.duplicated()][:3].strftime("%Y-%m-%d").tolist()
        _fail("time", f"has duplicated dates {dup}", "drop duplicates with ds.drop_duplicates('time')")
    if not idx.is_monotonic_increasing:
        _fail("time", "is not increasing", "use ds.sortby('time')")
    if (idx != idx.normalize()).any():
        _fail("time", "stamps are not at 00:00 (not daily values)",
              "aggregate sub-daily data to days, e.g. ds.resample(time='1D').mean(), and label days at midnight")
    if idx.size > 1:
        step = np.diff(idx.values).astype("timedelta64[D]").astype(int)
        if np.any(step != 1):
            k = int(np.argmax(step != 1))
            _fail("time", f"is not a gap-free daily series (step of {step[k]} days after "
                  f"{idx[k]:%Y-%m-%d})", "reindex to a daily range (ds.resample(time='1D').asfreq()) "
                  "so gaps become NaN, or aggregate sub-daily data to daily means")
    return idx


def _units_ok(spec: VarSpec, units: str | None) -> bool:
    return units is not None and (units == spec.units or units in spec.aliases)


def _check_variable(ds: xr.Dataset, name: str, mask: np.ndarray | None) -> None:
    spec = VARIABLES[name]
    da = ds[name]
    if set(da.dims) != set(spec.dims):
        _fail(name, f"has dims {da.dims}, expected {spec.dims}",
              f"rename or reduce the dimensions so it is {spec.dims}")
    if da.dims != spec.dims:
        _fail(name, f"has dims in order {da.dims}, expected {spec.dims}",
              f"use ds[{name!r}].transpose{spec.dims}")
    units = da.attrs.get("units")
    if not _units_ok(spec, units):
        how = spec.conversions.get(units)
        fix = (f"convert ({how}) and set attrs['units'] = {spec.units!r}" if how
               else f"convert to {spec.units} and set attrs['units'] = {spec.units!r}")
        _fail(name, f"has units {units!r}, expected {spec.units!r}", fix)
    for key in ("long_name",):
        if key not in da.attrs:
            _fail(name, f"has no CF attribute {key!r}",
                  f"set it, e.g. ds[{name!r}].attrs.update(vegviz.contract.cf_attrs({name!r}))")
    if name == "mask":
        values = np.asarray(da.values)
        vals = np.unique(values[np.isfinite(values)] if values.dtype.kind == "f" else values)
        if not np.isin(vals, [0, 1]).all():
            _fail(name, "must be 0/1 (or boolean)", "set mask = (cells inside the basin).astype('int8')")
        if not np.any(values == 1):
            _fail(name, "selects no cell", "set mask to 1 on the cells that count")
        return
    if name == "landcover" and not np.issubdtype(da.dtype, np.integer):
        _fail(name, f"has dtype {da.dtype}, expected integer IGBP codes 0-16",
              "store the majority class as integers, e.g. .astype('int16')")
    # Reductions stay lazy for dask-backed data and are computed together, chunk by chunk.
    stats = {"count": da.count(), "min": da.min(), "max": da.max()}
    if mask is not None and spec.role in ("forcing", "physics", "static"):
        stats["missing_inside"] = (da.isnull() & mask).sum()  # bool &: no float copy (where would make one)
    stats = dict(zip(stats, (float(v) for v in dask_compute(*stats.values()))))
    if stats["count"] == 0:
        _fail(name, "is all NaN", "check the source files and the period/region selection")
    if spec.valid_range is not None:
        lo, hi = spec.valid_range
        if stats["min"] < lo or stats["max"] > hi:
            _fail(name, f"has values {stats['min']:.4g}..{stats['max']:.4g} outside the plausible range "
                  f"{lo}..{hi} {spec.units}", "check units and fill values (mask fill values as NaN)")
    if stats.get("missing_inside", 0) > 0:
        _missing_chunks(ds, name, mask, int(stats["missing_inside"]))
        _fail(name, f"has {int(stats['missing_inside'])} missing (NaN) values inside the mask",
              "fill the gaps (e.g. interpolate in time) or set mask = 0 on those cells")


def _missing_chunks(ds: xr.Dataset, name: str, mask, count: int) -> None:
    """NaNs inside the mask of a Zarr-stored variable whose chunk files are missing: the store is incomplete
    (Zarr reads a missing chunk as NaN), not a data gap to fill; fail saying so."""
    from .stores import FIX, missing_chunk_files

    found = missing_chunk_files(ds[name], None if mask is None else mask.values,
                                source=ds[name].encoding.get("source") or ds.encoding.get("source"))
    if not found or not found[1]:
        return
    store, files = found
    shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
    _fail(name, f"{len(files)} chunk file{'s' if len(files) != 1 else ''} of the Zarr store {store} "
          f"{'are' if len(files) != 1 else 'is'} missing ({shown}), so {count} values inside the mask read as "
          "NaN: the store is incomplete (an interrupted copy or write)", FIX.replace("it", "the store", 1))


def check_variables(ds: xr.Dataset, names) -> xr.Dataset:
    """:func:`validate`'s checks of variables ``names`` of ``ds`` alone (dims, units, attributes,
    plausible range, NaN inside ``ds``'s mask); for data checked in parts, e.g. block by block of days."""
    mask = None
    if "mask" in ds:
        _check_variable(ds, "mask", None)
        mask = xr.DataArray(ds["mask"].values.astype(bool), dims=("lat", "lon"))
    for name in names:
        _check_variable(ds, name, mask)
    return ds


def dask_compute(*objs):
    import dask

    return dask.compute(*objs)


def validate(
    ds: xr.Dataset,
    *,
    grid=None,
    require: tuple[str, ...] = REQUIRED,
) -> xr.Dataset:
    """Check that ``ds`` is a model-ready Dataset; return it unchanged or raise ContractError.

    ``grid`` is the window the data must be on: a :class:`vegviz.grid.Grid`, or a
    :class:`vegviz.domains.Domain` or its name (``"ucrb"``, ``"gunnison"``, a user domain) for
    that domain's window. The default, None, accepts any contiguous window of the NLDAS-2
    lattice: the data's own domain, whichever it is. ``require`` lists the variables that
    must be present (besides one of ``vpd``/``qair``); every contract variable that is
    present is checked. A climate scenario is checked with ``require=SCENARIO_REQUIRED``.
    """
    if not isinstance(ds, xr.Dataset):
        raise ContractError(f"dataset: expected an xarray.Dataset, got {type(ds).__name__}. "
                            "Fix: open the data with xarray.open_dataset / open_zarr")
    if grid is not None and not isinstance(grid, _grid.Grid):
        from . import domains

        grid = domains.get(grid).grid
    _check_coords(ds, grid)
    missing = [v for v in require if v not in ds.data_vars]
    if missing:
        v = missing[0]
        _fail(v, f"variable is missing (the contract requires {', '.join(missing)})",
              f"add {v!r} with units {VARIABLES[v].units!r}" +
              (" (vegviz.physics.add_lai_process adds it)" if v == "lai_process" else ""))
    if any(VARIABLES[v].role in ("forcing", "target", "physics", "diagnostic") for v in require) or any(
        v in ds for v in FORCINGS
    ):
        check_time(ds)
        if "vpd" not in ds and "qair" not in ds:
            _fail("vpd/qair", "the contract needs a humidity forcing and neither is present",
                  "add vpd (kPa) or qair (kg kg-1)")
    mask = None
    if "mask" in ds:
        _check_variable(ds, "mask", None)
        mask = xr.DataArray(ds["mask"].values.astype(bool), dims=("lat", "lon"))
    for name in VARIABLES:
        if name in ds.data_vars and name != "mask":
            _check_variable(ds, name, mask)
    for key in PROVENANCE:
        if key not in ds.attrs:
            _fail("attrs", f"provenance attribute {key!r} is missing",
                  f"set ds.attrs[{key!r}] (source: where the data come from; synthetic: 1 or 0)")
    return ds
