"""One cell's daily series, as a Dataset: the models' LAI, the references, the satellite composites and the forcing.

    s = cell_series(predictions, observations, lat=39.06, lon=-108.56, period="test")
    s.to_dataframe()            # one row per day; what the dashboards draw and export as CSV

The dashboards draw a clicked cell's LAI (:func:`vegviz.evaluation.panels.cell_timeseries`)
with the forcing that drove it under it (:func:`~vegviz.evaluation.panels.cell_forcing`);
both read this Dataset, so the exported CSV holds what the page shows.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import xarray as xr

from ..contract import IGBP_CLASSES, VARIABLES
from .periods import select_period
from .scoring import PROCESS, model_variables

__all__ = ["CELL_FORCINGS", "cell_at", "cell_series", "series_frame"]

#: the forcing shown under a cell's LAI: water, warmth (with the night's minimum), dryness of the air, light.
#: A data set without vpd shows its specific humidity (qair) instead.
CELL_FORCINGS = ("precip", "tair", "tmin", "vpd", "swdown")
SATELLITE = "satellite"
TRUTH = "truth"
#: the references drawn beside the models, by label: the process model and the noiseless synthetic truth
REFERENCE_VARIABLES = {PROCESS: "lai_process", TRUTH: "lai_true"}


def cell_at(observations: xr.Dataset, lat: float, lon: float) -> dict[str, float]:
    """The grid cell holding (lat, lon) as {"lat": centre, "lon": centre}; a ValueError off the grid."""
    res_lat = float(np.diff(observations["lat"].values[:2])[0]) if observations.sizes["lat"] > 1 else 0.125
    res_lon = float(np.diff(observations["lon"].values[:2])[0]) if observations.sizes["lon"] > 1 else 0.125
    clat = float(observations["lat"].sel(lat=lat, method="nearest"))
    clon = float(observations["lon"].sel(lon=lon, method="nearest"))
    if abs(clat - lat) > abs(res_lat) / 2 + 1e-9 or abs(clon - lon) > abs(res_lon) / 2 + 1e-9:
        raise ValueError(f"point ({lat}, {lon}) lies outside the grid (lat {float(observations.lat[0])}.."
                         f"{float(observations.lat[-1])}, lon {float(observations.lon[0])}.."
                         f"{float(observations.lon[-1])})")
    return {"lat": clat, "lon": clon}


def _forcings(observations: xr.Dataset, forcings: Sequence[str]) -> list[str]:
    names = [f for f in forcings if f in observations]
    if "vpd" in forcings and "vpd" not in observations and "qair" in observations:
        names.insert(min(len(names), list(forcings).index("vpd")), "qair")
    return names


def cell_series(predictions: xr.Dataset, observations: xr.Dataset, lat: float, lon: float, period="test", *,
                models: Sequence[str] | None = None, references: Sequence[str] = (PROCESS, TRUTH),
                forcings: Sequence[str] = CELL_FORCINGS, store=None) -> xr.Dataset:
    """Daily series at the cell holding (lat, lon) over ``period``: one variable per model, per reference
    (the process model ``"process"``, the noiseless ``"truth"`` where the data have one), the satellite
    composites (``"satellite"``, NaN between composites) and each forcing of ``forcings`` present.

    Variables carry ``units``, ``long_name`` and ``kind`` ("model", "reference", "observed", "forcing");
    the Dataset's attrs name the cell (``lat``, ``lon``, ``landcover``, ``inside_mask``).
    ``store``: a :class:`~vegviz.evaluation.series_store.SeriesStore` of these data; a basin cell's
    series are read from it (one chunk per variable) instead of the map-major grid.
    """
    at = cell_at(observations, lat, lon)
    models = model_variables(predictions) if models is None else list(models)
    missing = [m for m in models if m not in predictions]
    if missing:
        raise ValueError(f"the predictions have no {missing}; they have {model_variables(predictions)}")
    k = store.cell(observations, at) if store is not None else None

    def read(source: xr.Dataset, var: str, what: str) -> xr.DataArray:
        da = select_period(source[var], period, what)
        days = store.days(da["time"].values) if k is not None and var in store else None
        if days is None:
            return da.sel(at)
        return xr.DataArray(store.read(var, k, days), dims="time", coords={"time": da["time"]}, attrs=da.attrs)

    lai = {"units": VARIABLES["lai"].units}
    out = {}
    for m in models:
        out[m] = read(predictions, m, "the predictions").assign_attrs(lai, long_name=f"LAI simulated by {m}",
                                                                      kind="model")
    for name, var in REFERENCE_VARIABLES.items():
        if name in references and var in observations:
            out[name] = read(observations, var, "the observations").assign_attrs(
                lai, long_name=VARIABLES[var].long_name, kind="reference")
    out[SATELLITE] = read(observations, "lai", "the observations").assign_attrs(
        lai, long_name=VARIABLES["lai"].long_name, kind="observed")
    for f in _forcings(observations, forcings):
        out[f] = read(observations, f, "the observations").assign_attrs(
            units=VARIABLES[f].units, long_name=VARIABLES[f].long_name, kind="forcing")
    ds = xr.Dataset({k: v.drop_vars(["lat", "lon"], errors="ignore") for k, v in out.items()}).compute()
    lc = int(observations["landcover"].sel(at)) if "landcover" in observations else None
    ds.attrs.update(lat=at["lat"], lon=at["lon"], inside_mask=int(int(observations["mask"].sel(at)) == 1))
    if lc is not None:
        ds.attrs["landcover"] = IGBP_CLASSES.get(lc, str(lc))
    return ds


def series_frame(series: xr.Dataset):
    """A series Dataset as a table for a CSV file: a ``date`` column, then one column per variable
    named with its units ("convlstm (m2 m-2)", "precip (mm day-1)")."""
    df = series.to_dataframe()
    df.columns = [f"{c} ({series[c].attrs['units']})" if series[c].attrs.get("units") else c for c in df.columns]
    df.index.name = "date"
    return df
