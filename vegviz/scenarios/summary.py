"""How a scenario differs from its baseline: mean change of every forcing and of lai_process inside the mask."""
from __future__ import annotations

import dask
import pandas as pd
import xarray as xr

from ..contract import FORCINGS

#: variables whose change is a ratio (scenario mean / baseline mean); the others a difference
RATIO = ("precip", "swdown", "qair", "vpd")


def change_summary(scenario: xr.Dataset, baseline: xr.Dataset) -> pd.DataFrame:
    """One row per variable: baseline and scenario means over the mask's cells and days, and the change.

    ``change`` is scenario - baseline for temperatures and lai_process, scenario / baseline
    for precip, swdown, qair and vpd (``kind`` says which). Lazy inputs are reduced in one pass.
    """
    mask = scenario["mask"].astype(bool) if "mask" in scenario else True
    names = [v for v in (*FORCINGS, "lai_process") if v in scenario and v in baseline]
    means = {}
    for v in names:
        means[v] = (baseline[v].where(mask).mean(dtype="float64"), scenario[v].where(mask).mean(dtype="float64"))
    values = dask.compute(means)[0]
    rows = []
    for v in names:
        b, s = (float(x) for x in values[v])
        ratio = v in RATIO
        rows.append({"variable": v, "units": scenario[v].attrs.get("units", ""), "baseline": b, "scenario": s,
                     "change": s / b if ratio else s - b, "kind": "ratio" if ratio else "difference"})
    return pd.DataFrame(rows).set_index("variable")
