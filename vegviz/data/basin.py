"""The basin mask: which cells of the study grid count.

Provisional: every cell whose majority class is not water. (To be replaced by a
delineation of the basin draining to Lees Ferry from the DEM.)
"""
from __future__ import annotations

import xarray as xr


def basin_mask(static: xr.Dataset) -> xr.DataArray:
    return (static["landcover"] != 0).astype("int8")
