"""Scenarios from climate-model output: quantile delta mapping (QDM) of a GCM's change onto the baseline.

Quantile delta mapping (Cannon, Sobie & Murdock 2015, J. Climate 28:6938-6959,
doi:10.1175/JCLI-D-14-00754.1) carries the model-projected change of every quantile, not only
of the mean. Here it is applied to the baseline, month by month and cell by cell: a baseline
value x at non-exceedance probability tau (within its month of the baseline period) becomes

    x' = x + [F_fut^-1(tau) - F_hist^-1(tau)]   (additive: tair, tmin)
    x' = x * [F_fut^-1(tau) / F_hist^-1(tau)]   (multiplicative: precip, swdown)

with F_hist, F_fut the GCM's historical and future distributions of that month on the
baseline grid. That is Cannon et al.'s eq. 4-6 with the roles chosen so that the scenario
keeps the baseline's days, sequence and period (as delta change does, so ΔLAI compares the
same days) and takes its quantile changes from the GCM. The work is done by the maintained
xsdba library (``QuantileDeltaMapping`` trained with ref = future, hist = historical, and
adjusting the baseline), not by hand. Multiplicative changes where the historical quantile is
0 (dry days) are avoided as Cannon et al. (2015) do, by jittering the GCM's values under a
trace (:data:`TRACE`) with uniform noise; baseline dry days stay dry (0 times any factor).
Humidity follows the new temperatures at constant relative humidity (:mod:`.humidity`).

GCM files are NetCDF on any regular lat/lon grid covering the domain; they are regridded
with vegviz's area-weighted :func:`vegviz.grid.regrid_mean` and converted to the contract's
units (:data:`UNITS`); a missing variable, a grid that misses the domain or unknown units
is a :class:`ScenarioError` raised before anything is written.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import xarray as xr

from ..contract import VARIABLES
from .delta import ScenarioError
from .humidity import constant_rh

#: the GCM (CMIP) names looked for, by contract variable
GCM_NAMES = {"precip": ("pr", "prAdjust", "precip"), "tair": ("tas", "tasAdjust", "tair"),
             "tmin": ("tasmin", "tasminAdjust", "tmin"), "swdown": ("rsds", "rsdsAdjust", "swdown")}
#: trace amounts (contract units) under which multiplicative variables count as zero (Cannon et al. 2015, sect. 2c
#: jitter the values under a trace with uniform noise, so dry days do not give undefined or huge quantile ratios)
TRACE = {"precip": 0.05, "swdown": 0.05}
#: additive (+) or multiplicative (*) change, by contract variable
KIND = {"precip": "*", "tair": "+", "tmin": "+", "swdown": "*"}
_KELVIN = {u: (1.0, -273.15) for u in ("K", "degK", "kelvin", "Kelvin")}
_PER_SECOND = {u: (86400.0, 0.0) for u in ("kg m-2 s-1", "kg/m2/s", "kg m**-2 s**-1", "kg m^-2 s^-1", "mm s-1",
                                            "mm/s")}
#: accepted GCM units by contract variable -> (scale, offset) into the contract's units (x * scale + offset)
UNITS = {v: {**{u: (1.0, 0.0) for u in (VARIABLES[v].units, *VARIABLES[v].aliases)},
             **{"precip": _PER_SECOND, "tair": _KELVIN, "tmin": _KELVIN}.get(v, {})} for v in KIND}


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _coord(ds: xr.Dataset, names, path, what) -> str:
    for n in names:
        if n in ds.coords or n in ds.dims:
            return n
    raise ScenarioError(f"{path}: no {what} coordinate (looked for {', '.join(names)}; has {', '.join(map(str, ds.coords))}). "
                        "Fix: give a NetCDF file on a regular lat/lon grid with 'lat'/'lon' coordinates")


def read_gcm(path, grid, variables: dict | None = None) -> xr.Dataset:
    """The GCM file ``path`` on ``grid`` (a :class:`vegviz.grid.Grid`): contract names and units, daily.

    ``variables`` maps contract names to the file's names where they differ from :data:`GCM_NAMES`.
    """
    from ..grid import regrid_mean

    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"GCM file {path} not found. Fix: pass the path of a NetCDF file")
    try:
        ds = xr.open_dataset(path, engine="netcdf4", use_cftime=None)
    except (OSError, ValueError) as e:
        raise ScenarioError(f"{path}: not a readable NetCDF file ({e}). Fix: pass a NetCDF GCM file") from None
    lat = _coord(ds, ("lat", "latitude", "y"), path, "latitude")
    lon = _coord(ds, ("lon", "longitude", "x"), path, "longitude")
    out = {}
    for v in KIND:
        names = ((variables or {}).get(v),) if (variables or {}).get(v) else GCM_NAMES[v]
        name = next((n for n in names if n in ds.data_vars), None)
        if name is None:
            raise ScenarioError(f"{path}: no {v} variable (looked for {', '.join(names)}; the file has "
                                f"{', '.join(map(str, ds.data_vars)) or 'none'}). Fix: add it to the file, or name the "
                                f"file's variable with --gcm-var {v}=NAME (GCMScenario(variables={{{v!r}: NAME}}))")
        da = ds[name]
        units = da.attrs.get("units")
        if units not in UNITS[v]:
            raise ScenarioError(f"{path}: {name} ({v}) has units {units!r}; vegviz converts "
                                f"{', '.join(repr(u) for u in UNITS[v])} to {VARIABLES[v].units!r}. Fix: convert the "
                                "variable to one of them and set its units attribute")
        try:
            da = regrid_mean(da, grid, lat=lat, lon=lon)
        except ValueError as e:
            w, e_, s, n = grid.extent
            raise ScenarioError(f"{path}: {name} cannot be regridded to the domain ({e}). Fix: give GCM files "
                                f"whose grid covers the whole domain, lon {w:g}..{e_:g}, lat {s:g}..{n:g}, "
                                "with a margin of one GCM cell") from None
        scale, offset = UNITS[v][units]
        out[v] = (da * scale + offset).astype(np.float32).assign_attrs(units=VARIABLES[v].units)
    ds.close()
    return xr.Dataset(out)


def quantile_delta_mapping(hist: xr.Dataset, future: xr.Dataset, baseline: xr.Dataset, *,
                           nquantiles: int = 50) -> xr.Dataset:
    """``baseline`` with the GCM's change from ``hist`` to ``future`` applied to every quantile (QDM).

    All three on the baseline's grid with contract names and units (:func:`read_gcm` gives
    that). Per month and cell, xsdba's QuantileDeltaMapping (``nquantiles`` quantiles) trained
    with ref = ``future``, hist = ``hist`` adjusts the baseline (module docstring); variables
    of :data:`KIND` only, humidity at constant relative humidity, everything else untouched.
    """
    import xsdba

    out = baseline.copy()
    for v, kind in KIND.items():
        if v not in baseline:
            continue
        ref, hst = (d[v].chunk({"time": -1}) for d in (future, hist))
        sim = baseline[v].chunk({"time": -1})
        units = VARIABLES[v].units
        ref, hst, sim = (x.assign_attrs(units=units) for x in (ref, hst, sim))
        if kind == "*":  # dry days: equal noise below a trace on both sides, so their quantile ratio is ~1
            ref, hst = (xsdba.processing.jitter_under_thresh(x, thresh=f"{TRACE[v]} {units}") for x in (ref, hst))
        qdm = xsdba.QuantileDeltaMapping.train(ref, hst, nquantiles=nquantiles, kind=kind, group="time.month")
        with xr.set_options(keep_attrs=True):
            adj = qdm.adjust(sim).transpose(*baseline[v].dims)
        if kind == "*":  # undefined ratios (a historical quantile of 0): the baseline value stays
            adj = xr.where(np.isfinite(adj) & (baseline[v] > 0), adj, baseline[v])
        out[v] = adj.astype(baseline[v].dtype).assign_attrs(baseline[v].attrs)
    out.update(constant_rh(baseline, out["tair"], out["tmin"]))
    return out


@dataclass(frozen=True)
class GCMScenario:
    """A scenario from a GCM's historical and future runs (NetCDF paths) by quantile delta mapping.

    ``variables`` maps contract names to the files' names where they are not the CMIP ones
    (:data:`GCM_NAMES`). ``apply(ds)`` reads and regrids both files onto ``ds``'s grid (every
    check runs there) and returns :func:`quantile_delta_mapping` of ``ds``.
    """

    hist: str
    future: str
    variables: dict = field(default_factory=dict)
    nquantiles: int = 50
    method: ClassVar[str] = "qdm"

    def __post_init__(self):
        object.__setattr__(self, "hist", str(Path(self.hist).expanduser().resolve()))
        object.__setattr__(self, "future", str(Path(self.future).expanduser().resolve()))
        bad = sorted(set(self.variables) - set(KIND))
        if bad:
            raise ScenarioError(f"GCM variables {bad}: vegviz maps only {', '.join(KIND)}. Fix: name one of those")

    def apply(self, ds: xr.Dataset) -> xr.Dataset:
        from ..grid import nldas_window

        grid = nldas_window(ds["lat"].values, ds["lon"].values)
        hist = read_gcm(self.hist, grid, self.variables)
        future = read_gcm(self.future, grid, self.variables)
        return quantile_delta_mapping(hist, future, ds, nquantiles=self.nquantiles)

    def describe(self) -> str:
        return (f"quantile delta mapping (Cannon et al. 2015; xsdba, {self.nquantiles} quantiles, by month) of "
                f"{Path(self.hist).name} -> {Path(self.future).name}; vpd/qair at constant relative humidity")

    def attrs(self) -> dict:
        return {"scenario_method": self.method, "scenario_change": self.describe(),
                "gcm_hist": self.hist, "gcm_hist_sha256": sha256(self.hist),
                "gcm_future": self.future, "gcm_future_sha256": sha256(self.future),
                "gcm_variables": json.dumps(self.variables), "qdm_nquantiles": self.nquantiles}
