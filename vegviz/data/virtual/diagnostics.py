"""Realism diagnostics of a (virtual or real) basin: the numbers the README quotes.

    vegviz info virtual_ucrb --realism
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ...contract import IGBP_CLASSES


def realism(ds: xr.Dataset) -> pd.DataFrame:
    """A table of climate and vegetation statistics inside the mask, with the target ranges.

    Uses whole calendar years only. Rows: quantity, value, target (free text).
    """
    years = ds.time.dt.year
    counts = years.groupby(years).count()
    full = counts.year.values[counts.values >= 365]
    ds = ds.sel(time=years.isin(full))
    static = ds[["mask", "elevation", "landcover"]].load()
    mask = static["mask"].astype(bool)
    z = static["elevation"]
    lat = ds["lat"] * xr.ones_like(z)
    valley, high = mask & (z < 1500), mask & (z > 3000)
    south, north = mask & (lat < 38.5), mask & (lat > 41.0)

    precip = ds["precip"]
    annual = precip.groupby("time.year").sum("time").mean("year").compute()
    wet = (precip > 0.1).mean("time").compute()  # wet day: >= 0.1 mm, the WMO convention
    by_month = precip.groupby("time.month").sum("time").compute()
    jas_share = by_month.sel(month=[7, 8, 9]).sum("month") / by_month.sum("month")
    tmonth = ds["tair"].groupby("time.month").mean("time").compute()
    frozen_months = (tmonth < 0).sum("month")
    basin_t = ds["tair"].where(mask).mean(("lat", "lon")).groupby("time.year").mean().compute()
    trend = np.polyfit(basin_t.year.values, basin_t.values, 1)[0] * 10
    annual_basin = precip.where(mask).mean(("lat", "lon")).groupby("time.year").sum().compute()
    dry = annual_basin < annual_basin.mean() - 0.5 * annual_basin.std()
    longest = run = 0
    for is_dry in dry.values:
        run = run + 1 if is_dry else 0
        longest = max(longest, run)

    rows = [
        ("annual precipitation, valleys < 1500 m (mm)", float(annual.where(valley).median()), "about 200-300"),
        ("annual precipitation, mountains > 3000 m (mm)", float(annual.where(high).median()), "about 800-1200"),
        ("wet-day frequency, mountains > 3000 m", float(wet.where(high).median()), "about 0.25-0.45"),
        ("wet-day frequency, valleys < 1500 m", float(wet.where(valley).median()), "lower than mountains"),
        ("Jul-Sep share of precipitation, south < 38.5 N", float(jas_share.where(south).median()),
         "larger than north (monsoon)"),
        ("Jul-Sep share of precipitation, north > 41 N", float(jas_share.where(north).median()), ""),
        ("months with mean tair < 0, north or > 3000 m", float(frozen_months.where(north | high).median()),
         "snow months"),
        ("months with mean tair < 0, southern valleys", float(frozen_months.where(south & valley).median()),
         "few or none"),
        ("basin warming trend (K per decade)", float(trend), "positive"),
        ("longest run of dry years (basin precip < mean - 0.5 sd)", float(longest), "multi-year droughts"),
    ]
    if "lai_true" in ds:
        lai = ds["lai_true"]
        monthly = lai.where(mask).mean(("lat", "lon")).groupby("time.month").mean().compute()
        rows.append(("month of basin-mean peak LAI", float(monthly.idxmax()), "summer (6-8)"))
        peak = lai.groupby("time.year").max("time").mean("year").compute()
        lc = static["landcover"]
        for code in (8, 9, 10, 7, 16):
            sel = mask & (lc == code)
            if int(sel.sum()) >= 5:
                rows.append((f"mean annual peak LAI, {IGBP_CLASSES[code]}", float(peak.where(sel).median()),
                             "forests/savannas > grasslands > shrublands > barren"))
        if "lai" in ds:
            from ...evaluation import noise_ceiling

            nc = noise_ceiling(ds, period=(str(full[-8]), str(full[-1])), with_reason=False)
            rows.append(("noise ceiling: median NSE(lai_true, lai), last 8 years", float(nc.compute().median()), "< 1"))
    return pd.DataFrame(rows, columns=["quantity", "value", "target"])
