"""Opening and checking the data a run trains on."""
from __future__ import annotations

import os
from pathlib import Path

import xarray as xr

from ..contract import validate
from .config import Config

__all__ = ["open_data", "prepare"]


def open_data(source: str | os.PathLike, seed: int | None = None) -> xr.Dataset:
    """A data set by catalog entry name (``catalogs/vegviz.yaml``) or by Zarr/NetCDF path, lazily opened."""
    path = Path(source).expanduser()
    if path.exists():
        if path.is_dir():
            return xr.open_zarr(path)
        return xr.open_dataset(path, engine="netcdf4", chunks={})
    from ..catalog import open_catalog

    cat = open_catalog()
    name = str(source)
    if name not in cat:
        raise FileNotFoundError(f"data: {name!r} is neither an existing Zarr/NetCDF path nor an entry of the "
                                f"catalog; entries: {', '.join(cat)}. Fix: set config.data to one of them or "
                                "to a path")
    entry = cat[name]
    if seed is not None:
        try:
            entry = entry(seed=seed)
        except (TypeError, ValueError):  # an entry without a seed parameter
            pass
    return entry.to_dask()


def prepare(ds: xr.Dataset, config: Config, with_target: bool = True) -> xr.Dataset:
    """Validate ``ds`` against the contract and keep only what the run needs (still lazy).

    Any contiguous window of the NLDAS-2 lattice is accepted (``grid=None``), so a
    sub-region of the basin trains as well as the whole study grid. Without
    ``with_target`` (predictions, e.g. for a climate scenario) the target may be absent.
    """
    needed = [*config.channels, *([config.target] if with_target else []), "mask"]
    humidity = [v for v in ("vpd", "qair") if v in ds.data_vars and v not in needed]
    present = [v for v in needed if v in ds.data_vars]
    validate(ds[present + humidity[:1]] if len(present) == len(needed) else ds, grid=None, require=tuple(needed))
    statics = [v for v in config.statics if v in ds.data_vars and v not in needed]
    return ds[needed + statics]  # a missing static is reported by fit_normalization, naming the fix
