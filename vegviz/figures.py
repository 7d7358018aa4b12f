"""Static (matplotlib) figures for reports and the README; interactive views live in dashboards."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .contract import IGBP_CLASSES, IGBP_COLORS


def _draw_states(ax, ds: xr.Dataset) -> None:
    import warnings

    from .basemap import state_lines

    with warnings.catch_warnings():  # outside the Colorado Plateau a figure has fewer state lines, no warning
        warnings.simplefilter("ignore", UserWarning)
        lines = state_lines(ds)
    for _, lons, lats in lines:
        ax.plot(lons, lats, color="0.2", lw=0.8)


def figure_title(ds: xr.Dataset) -> str:
    """The overview's title: the data's domain, and SYNTHETIC for a virtual basin."""
    from .domains import of_dataset

    title = of_dataset(ds).title
    if bool(int(ds.attrs.get("synthetic", 0))):
        return f"vegviz virtual basin: {title} - SYNTHETIC weather and LAI on real land cover and elevation"
    return f"{title} - {ds.attrs.get('title') or 'model-ready data'}"


def _summer_day(ds: xr.Dataset) -> pd.Timestamp:
    """The last observed mid-July composite date (or any date with observations)."""
    obs = ds["lai"].notnull().any(("lat", "lon")).compute()
    dates = pd.DatetimeIndex(ds.time.values[obs.values])
    july = dates[(dates.month == 7)]
    return (july if len(july) else dates)[-1]


def overview_figure(ds: xr.Dataset, path: str | Path, dpi: int = 110) -> Path:
    """Land cover, elevation, mean annual precipitation and satellite vs true LAI on a summer day."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    synthetic = bool(int(ds.attrs.get("synthetic", 0)))
    mask = ds["mask"].astype(bool)
    day = _summer_day(ds)
    years = ds.time.dt.year
    full_years = ds["precip"].groupby(years).sum("time").isel(year=slice(0, None))
    annual = full_years.mean("year").where(mask).compute()
    panels = [
        ("Dominant land cover (MODIS MCD12C1, IGBP)", ds["landcover"].where(mask), None),
        ("Elevation (m, ETOPO5)", ds["elevation"], "terrain"),
        (f"Mean annual precipitation (mm){' - synthetic' if synthetic else ''}", annual, "YlGnBu"),
        (f"Satellite LAI composite {day:%Y-%m-%d}{' - synthetic' if synthetic else ''}",
         ds["lai"].sel(time=day).where(mask).compute(), "YlGn"),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(18, 5.2), constrained_layout=True)
    codes = sorted(IGBP_CLASSES)
    lc_cmap = ListedColormap([IGBP_COLORS[c] for c in codes])  # the dashboards' colours
    lc_norm = BoundaryNorm(np.arange(-0.5, len(codes) + 0.5), lc_cmap.N)
    for ax, (title, da, cmap) in zip(axes, panels):
        if cmap is None:
            ax.pcolormesh(ds.lon, ds.lat, da, cmap=lc_cmap, norm=lc_norm, shading="nearest")
            # a legend of the classes present, largest first (a colour bar would list all 17)
            found, counts = np.unique(da.values[np.isfinite(da.values)].astype(int), return_counts=True)
            handles = [Patch(facecolor=IGBP_COLORS[int(c)], label=f"{IGBP_CLASSES[int(c)]} ({n})")
                       for c, n in sorted(zip(found, counts), key=lambda t: -t[1])]
            ax.legend(handles=handles, title="cells", fontsize=7, title_fontsize=7, frameon=False,
                      loc="center left", bbox_to_anchor=(1.01, 0.5))
        else:
            kw = {"vmin": 0, "vmax": 2.5} if "LAI" in title else {}
            m = ax.pcolormesh(ds.lon, ds.lat, da, cmap=cmap, shading="nearest", **kw)
            fig.colorbar(m, ax=ax, shrink=0.8)
        _draw_states(ax, ds)
        ax.contour(ds.lon, ds.lat, mask.astype(float), levels=[0.5], colors="k", linewidths=1.2)
        ax.set_title(title, fontsize=10)
        ax.set_aspect(1 / np.cos(np.deg2rad(float(ds.lat.mean()))))
        ax.set_xlim(float(ds.lon[0]) - 0.0625, float(ds.lon[-1]) + 0.0625)
        ax.set_ylim(float(ds.lat[0]) - 0.0625, float(ds.lat[-1]) + 0.0625)
    fig.suptitle(figure_title(ds), fontsize=12)
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
