"""Building blocks for looking at a model-ready Dataset: daily maps and means by vegetation type.

These are what the tour notebook and the dashboards display; they take Datasets and
return Datasets or HoloViews objects, so they work inline in Jupyter and on a server.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from . import bokeh_setup  # noqa: F401  (frame-sized plots: no W-1005 per served session)
from .contract import IGBP_CLASSES

#: display defaults per variable: (colormap, colour limits or None for automatic)
STYLE = {
    "precip": ("Blues", (0, 20)),
    "tair": ("RdBu_r", (-25, 30)),
    "tmin": ("RdBu_r", (-30, 25)),
    "swdown": ("inferno", (0, 380)),
    "vpd": ("YlOrBr", (0, 4)),
    "qair": ("GnBu", (0, 0.012)),
    "lai": ("YlGn", (0, 2.5)),
    "lai_true": ("YlGn", (0, 2.5)),
    "lai_process": ("YlGn", (0, 2.5)),
    "lai_daily": ("YlGn", (0, 2.5)),
    "elevation": ("terrain", None),
}


def landcover_weights(ds: xr.Dataset, min_cells: int = 5) -> xr.DataArray:
    """One-hot (landcover, lat, lon) weights of the mask cells of each dominant class.

    Classes with fewer than ``min_cells`` cells in the mask are left out; the
    ``landcover`` coordinate carries codes and ``landcover_name`` the IGBP names.
    """
    mask = ds["mask"].astype(bool).values
    lc = ds["landcover"].values
    codes, counts = np.unique(lc[mask], return_counts=True)
    keep = [int(c) for c, n in zip(codes, counts) if n >= min_cells]
    if not keep:
        raise ValueError(f"no land cover class has {min_cells} or more cells inside the mask; lower min_cells")
    w = np.stack([(lc == c) & mask for c in keep]).astype("float32")
    return xr.DataArray(
        w,
        dims=("landcover", "lat", "lon"),
        coords={
            "landcover": keep,
            "landcover_name": ("landcover", [IGBP_CLASSES.get(c, str(c)) for c in keep]),
            "lat": ds.lat,
            "lon": ds.lon,
        },
        name="weight",
    )


def landcover_means(ds: xr.Dataset, variables=("lai", "lai_true"), min_cells: int = 5) -> xr.Dataset:
    """Daily mean of each variable over the mask cells of each dominant land cover class.

    NaN-aware: on a composite date the mean of ``lai`` is over the cells observed
    that day; a (time, class) with no observed cell is NaN. Dims: (time, landcover).
    """
    variables = [v for v in variables if v in ds]
    w = landcover_weights(ds, min_cells)
    out = {}
    for v in variables:
        da = ds[v]
        valid = da.notnull()
        num = xr.dot(da.fillna(0), w, dim=("lat", "lon"))
        den = xr.dot(valid.astype("float32"), w, dim=("lat", "lon"))
        out[v] = (num / den.where(den > 0)).assign_attrs(da.attrs)
    res = xr.Dataset(out)
    res = res.assign_coords(n_cells=("landcover", w.sum(("lat", "lon")).values.astype(int)))
    return res


def daily_map(ds: xr.Dataset, variable: str, date, *, basemap: bool = True, width: int = 380):
    """A quadmesh of one variable on one day (masked), with state lines and lakes of the data's window."""
    import hvplot.xarray  # noqa: F401

    if variable not in ds:
        raise KeyError(f"{variable!r} is not in the dataset; choose one of {sorted(ds.data_vars)}")
    day = pd.Timestamp(date)
    da = ds[variable].sel(time=day, method="nearest")
    da = da.where(ds["mask"] == 1)
    cmap, clim = STYLE.get(variable, ("viridis", None))
    units = ds[variable].attrs.get("units", "")
    title = f"{variable} ({units}) {pd.Timestamp(da.time.values):%Y-%m-%d}"
    if variable == "lai" and not bool(da.notnull().any()):
        title += " - no composite"
    plot = da.hvplot.quadmesh(
        x="lon", y="lat", cmap=cmap, clim=clim, title=title, frame_width=width, data_aspect=1.0,
        xlabel="lon", ylabel="lat",
    )
    if basemap:
        from .basemap import basemap as _basemap

        plot = plot * _basemap(ds)
    return plot


def composite_dates(ds: xr.Dataset) -> pd.DatetimeIndex:
    """The dates on which the satellite ``lai`` has any observation."""
    has = ds["lai"].notnull().any(("lat", "lon")).compute()
    return pd.DatetimeIndex(ds.time.values[has.values])
