"""Opening and checking the data a run trains on."""
from __future__ import annotations

import xarray as xr

from ..catalog import open_data  # noqa: F401  (re-exported: vegviz.training.open_data)
from ..contract import validate
from .config import Config

__all__ = ["open_data", "prepare"]


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
