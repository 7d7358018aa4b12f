"""A readable text summary of a model-ready Dataset."""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..contract import IGBP_CLASSES, VARIABLES


def _degrees(value: float, positive: str, negative: str) -> str:
    """``-112.3125`` -> ``112.3125 W``: hemisphere letters, as on a map."""
    value = float(value)
    return f"{abs(value):.4f} {positive if value >= 0 else negative}"


def summarize(ds: xr.Dataset) -> str:
    """Period, grid, provenance, and per-variable basin statistics (inside the mask)."""
    synthetic = bool(int(ds.attrs.get("synthetic", 0)))
    lines = []
    title = ds.attrs.get("title", "model-ready dataset")
    lines.append(f"{title}{'  [SYNTHETIC]' if synthetic and 'SYNTHETIC' not in title else ''}")
    lines.append(f"source : {ds.attrs.get('source', '?')}")
    if "time" in ds.coords:
        t = pd.DatetimeIndex(ds.time.values)
        lines.append(f"period : {t[0]:%Y-%m-%d} .. {t[-1]:%Y-%m-%d} ({t.size} days)")
    lat, lon = ds.lat.values, ds.lon.values
    lines.append(
        f"grid   : {ds.sizes['lat']} lat x {ds.sizes['lon']} lon, cell centres "
        f"{_degrees(lat.min(), 'N', 'S')}..{_degrees(lat.max(), 'N', 'S')}, "
        f"{_degrees(lon.min(), 'E', 'W')}..{_degrees(lon.max(), 'E', 'W')}"
    )
    mask = ds["mask"].astype(bool) if "mask" in ds else xr.ones_like(ds.lat * ds.lon, dtype=bool)
    lines.append(f"mask   : {int(mask.sum())} of {mask.size} cells inside (the cells trained on and scored)")
    if "landcover" in ds:
        lc = ds["landcover"].where(mask)
        codes, counts = np.unique(lc.values[np.isfinite(lc.values)].astype(int), return_counts=True)
        order = np.argsort(-counts)
        parts = [f"{IGBP_CLASSES.get(int(codes[i]), codes[i])} {counts[i]}" for i in order[:6]]
        lines.append("cover  : " + ", ".join(parts))
    lines.append("variables (inside the mask):")
    stats = {}
    for name in VARIABLES:
        if name not in ds.data_vars or name in ("mask", "landcover"):
            continue
        da = ds[name].where(mask)
        stats[name] = (da.mean(), da.min(), da.max(), da.count())
    import dask

    computed = dask.compute(stats)[0]
    for name, (mean, vmin, vmax, count) in computed.items():
        units = ds[name].attrs.get("units", "")
        extra = ""
        if name == "lai" and "time" in ds.dims:
            n_dates = int(ds["lai"].notnull().any(("lat", "lon")).sum())
            extra = f", {n_dates} composite dates"
        lines.append(
            f"  {name:<12} {float(mean):9.3f} mean  [{float(vmin):8.3f} .. {float(vmax):8.3f}] {units}{extra}"
        )
    return "\n".join(lines)
