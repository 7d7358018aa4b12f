"""What a scientist takes away from a dashboard: tables as CSV, a view's predictions as NetCDF, figures as PNG/SVG.

Each dashboard puts :func:`download` buttons (Panel ``FileDownload``) under its views; a
button makes its file when pressed, from what the view shows at that moment (the chosen
period, metric, cell, region and models), never from a stale copy.

    predictions_subset(pred, obs, ["convlstm"], ("2005-01-01", "2005-12-31"), lon=(-109, -107))
"""
from __future__ import annotations

import io
import re
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import panel as pn
import xarray as xr

__all__ = ["cell_file_name", "csv_file", "download", "download_row", "figure_downloads", "file_name", "netcdf_file",
           "predictions_subset"]


def file_name(*parts) -> str:
    """Parts joined by underscores, each reduced to letters, digits, '-' and '.' (a safe file name)."""
    words = [re.sub(r"[^A-Za-z0-9.-]+", "-", str(p)).strip("-") for p in parts if p not in (None, "")]
    return "_".join(w for w in words if w)


def cell_file_name(result: str, lat: float, lon: float, period: str) -> str:
    """A clicked cell's file name: "tiny_cell_39.0625-N_108.5625-W_test"."""
    from ..basemap import degrees

    return file_name(result, "cell", degrees(lat, "lat"), degrees(lon, "lon"), period)


def download_row(buttons: list, *more) -> pn.Row:
    """A tab's row of download buttons (and ``more`` widgets after them)."""
    return pn.Row(pn.pane.Markdown("Download:", margin=(8, 5, 0, 10)), *buttons, *more)


def csv_file(df: pd.DataFrame, *, index: bool = True) -> io.BytesIO:
    """``df`` as a CSV file in memory (UTF-8, ISO dates)."""
    return io.BytesIO(df.to_csv(index=index, date_format="%Y-%m-%d").encode())


def netcdf_file(ds: xr.Dataset) -> io.BytesIO:
    """``ds`` as a compressed NetCDF-4 file in memory (written through a temporary file: netCDF4 writes to paths
    only; :func:`vegviz.io.write_netcdf_atomic`, so text attributes and variables are written safely)."""
    from ..io import write_netcdf_atomic

    with tempfile.TemporaryDirectory(prefix="vegviz-export-") as tmp:
        path = Path(tmp) / "export.nc"
        write_netcdf_atomic(ds, path, encoding={v: {"zlib": True, "complevel": 4} for v in ds.data_vars
                                                if ds[v].dtype.kind == "f"})
        return io.BytesIO(path.read_bytes())


def predictions_subset(predictions: xr.Dataset, observations: xr.Dataset, models: Sequence[str], period, *,
                       lat: tuple[float, float] | None = None, lon: tuple[float, float] | None = None,
                       cells: xr.DataArray | np.ndarray | None = None) -> xr.Dataset:
    """The predictions of ``models`` over ``period`` inside a region, with the satellite LAI and the static
    fields to compare them on: a Dataset ready for :func:`netcdf_file`.

    ``lat``/``lon``: (low, high) bounds of the region (a map's visible range); ``cells``: a
    (lat, lon) boolean selection (an elevation band, a vegetation type); cells outside it are
    NaN. The attrs record what was chosen (``period``, ``region``, ``models``) and the result's provenance.
    """
    from ..evaluation.periods import select_period

    models = list(models)
    if not models:
        raise ValueError("no model chosen. Fix: choose at least one model to export")
    missing = [m for m in models if m not in predictions]
    if missing:
        raise ValueError(f"the predictions have no {missing}; they have {list(predictions.data_vars)}")
    ds = xr.Dataset({m: select_period(predictions[m], period, "the predictions") for m in models})
    ds["lai"] = select_period(observations["lai"], period, "the observations")
    for v in ("lai_process", "lai_true"):
        if v in observations:
            ds[v] = select_period(observations[v], period, "the observations")
    for v in ("mask", "landcover", "elevation"):
        if v in observations:
            ds[v] = observations[v]
    box = {}
    if lat is not None:
        box["lat"] = slice(*sorted(lat)) if ds["lat"][0] < ds["lat"][-1] else slice(*sorted(lat, reverse=True))
    if lon is not None:
        box["lon"] = slice(*sorted(lon))
    ds = ds.sel(box)
    if cells is not None:
        from ..evaluation.regions import region_mask, restrict

        keep = cells if isinstance(cells, xr.DataArray) else region_mask(observations, cells)
        ds = restrict(ds, keep.sel(lat=ds["lat"], lon=ds["lon"]))
    if ds.sizes["lat"] == 0 or ds.sizes["lon"] == 0 or ds.sizes.get("time", 0) == 0:
        raise ValueError(f"the chosen region and period hold no data (lat {lat}, lon {lon}, period {period}). "
                         "Fix: zoom out, or choose another period")
    for v in ds.data_vars:
        src = predictions[v] if v in predictions else observations[v]
        ds[v].attrs = dict(src.attrs)
    start, end = (str(pd.Timestamp(t).date()) for t in ds["time"].values[[0, -1]])
    ds.attrs = {k: v for k, v in predictions.attrs.items() if isinstance(v, (str, int, float))}
    ds.attrs.update(period=f"{start} to {end}", models=",".join(models),
                    region=(f"lat {float(ds.lat.min()):.4f}..{float(ds.lat.max()):.4f}, "
                            f"lon {float(ds.lon.min()):.4f}..{float(ds.lon.max()):.4f}"
                            + (", selected cells only" if cells is not None else "")),
                    history=f"exported by vegviz from {predictions.attrs.get('data', 'a result')}")
    return ds


def download(label: str, make: Callable[[], tuple[str, io.BytesIO]], *, width: int = 130) -> pn.widgets.FileDownload:
    """A button that makes its file when pressed: ``make()`` returns (file name, contents).

    A failure (no cell chosen, an empty region) names itself on the button instead of breaking the page.
    """
    button = pn.widgets.FileDownload(label=label, color="light", embed=False, auto=True, width=width,
                                     filename="vegviz-export", margin=(2, 5))

    def callback():
        try:
            name, data = make()
        except Exception as e:  # said on the button; the page stays usable
            button.label = f"{label}: failed"
            button.description = f"{type(e).__name__}: {e}"
            return io.BytesIO(f"{type(e).__name__}: {e}\n".encode())
        button.param.update(filename=name, label=label, description=None)
        return data

    button.callback = callback
    return button


def figure_downloads(what: str, element: Callable[[], object], name: Callable[[], str]) -> list:
    """PNG and SVG buttons for a view's figure: ``element()`` the HoloViews object, ``name()`` the file stem."""
    from ..figure_files import FORMATS, figure_bytes

    return [download(f"{what} {fmt.upper()}", lambda fmt=fmt: (f"{name()}.{fmt}",
                                                                io.BytesIO(figure_bytes(element(), fmt))))
            for fmt in FORMATS]
