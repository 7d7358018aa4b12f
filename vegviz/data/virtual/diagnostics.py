"""Realism diagnostics of a (virtual or real) basin of any domain: the numbers the README quotes.

    vegviz info virtual_ucrb --realism
    vegviz info virtual_gunnison_small --realism

On the UCRB the regions are the study's (valleys below 1500 m, mountains above 3000 m,
south of 38.5 N, north of 41 N) and the targets are the ranges the weather generator was
calibrated to (PRISM normals, station records). On any other domain the regions are
relative to the basin (its lowest quarter and highest tenth of elevation, its southern
and northern thirds), the targets say what should hold between them, and a comparison that
the domain cannot make (a flat basin has no mountains, a narrow one no north and south,
a short record no trend) is kept as a row with value NaN and the reason in ``target``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from ...contract import IGBP_CLASSES

#: Least elevation difference (m) between a basin's lowest quarter and its highest tenth for
#: valley/mountain contrasts to mean something (the orographic law works on ~2200 m).
MIN_RELIEF_M = 300.0
#: Least latitude span (degrees) of a basin's cells for north/south contrasts.
MIN_LAT_SPAN = 1.0
#: Fewest whole years for a trend or a run of dry years.
MIN_YEARS_TREND = 3
#: Years of the noise ceiling (the last ones).
NOISE_CEILING_YEARS = 8


@dataclass
class Regions:
    """Cells of the comparisons (boolean (lat, lon) DataArrays), their labels and targets."""

    valley: xr.DataArray
    high: xr.DataArray
    south: xr.DataArray
    north: xr.DataArray
    labels: dict
    targets: dict
    no_relief: str = ""  # why valley/mountain rows are skipped ("" when they are not)
    no_span: str = ""  # why south/north rows are skipped


def _is_ucrb(ds: xr.Dataset) -> bool:
    from ... import grid as _grid

    name = ds.attrs.get("domain")
    return name == "ucrb" or (name is None and _grid.UCRB.matches(ds["lat"], ds["lon"]))


def regions(ds: xr.Dataset, mask: xr.DataArray, z: xr.DataArray) -> Regions:
    """The study's absolute regions on the UCRB, regions relative to the basin elsewhere."""
    lat = ds["lat"] * xr.ones_like(z)
    if _is_ucrb(ds):
        return Regions(
            valley=mask & (z < 1500), high=mask & (z > 3000), south=mask & (lat < 38.5), north=mask & (lat > 41.0),
            labels={"valley": "valleys < 1500 m", "high": "mountains > 3000 m", "south": "south < 38.5 N",
                    "north": "north > 41 N", "high_or_north": "north or > 3000 m", "south_valley": "southern valleys"},
            targets={"p_valley": "about 200-300", "p_high": "about 800-1200", "wet_high": "about 0.25-0.45",
                     "wet_valley": "lower than mountains", "jas_south": "larger than north (monsoon)"},
        )
    zin, latin = z.values[mask.values], lat.values[mask.values]
    z25, z90 = np.percentile(zin, [25, 90])
    l33, l67 = np.percentile(latin, [100 / 3, 200 / 3])
    span = float(latin.max() - latin.min())
    return Regions(
        valley=mask & (z <= z25), high=mask & (z >= z90), south=mask & (lat <= l33), north=mask & (lat >= l67),
        labels={"valley": f"valleys (lowest quarter, <= {z25:.0f} m)",
                "high": f"mountains (highest tenth, >= {z90:.0f} m)",
                "south": f"south (southern third, <= {l33:.2f} N)", "north": f"north (northern third, >= {l67:.2f} N)",
                "high_or_north": "northern third or highest tenth", "south_valley": "southern third's valleys"},
        targets={"p_valley": "less than mountains (UCRB: about 200-300)",
                 "p_high": "more than valleys (UCRB: about 800-1200)",
                 "wet_high": "more than valleys (UCRB: about 0.25-0.45)", "wet_valley": "lower than mountains",
                 "jas_south": "larger than north where the monsoon reaches (114-104 W, south of 42.5 N)"},
        no_relief="" if z90 - z25 >= MIN_RELIEF_M else
        f"skipped: the basin is flat ({z25:.0f} m at its lowest quarter, {z90:.0f} m at its highest tenth; "
        f"valley/mountain contrasts need {MIN_RELIEF_M:.0f} m)",
        no_span="" if span >= MIN_LAT_SPAN else
        f"skipped: the basin spans {span:.2f} degrees of latitude (north/south contrasts need {MIN_LAT_SPAN:g})",
    )


def _median(da: xr.DataArray, where: xr.DataArray, reason: str = "") -> tuple[float, str]:
    """Median of ``da`` over the cells ``where``, or NaN and why not."""
    if reason:
        return np.nan, reason
    if not bool(where.any()):
        return np.nan, "skipped: no basin cell in this region"
    return float(da.where(where).median()), ""


def realism(ds: xr.Dataset) -> pd.DataFrame:
    """A table of climate and vegetation statistics inside the mask, with the target ranges.

    Uses whole calendar years only. Rows: quantity, value, target (free text; for a row the
    domain cannot fill, value is NaN and target says why). Raises ValueError when the data
    hold no whole calendar year.
    """
    years = ds.time.dt.year
    counts = years.groupby(years).count()
    full = counts.year.values[counts.values >= 365]
    if full.size == 0:
        t = pd.DatetimeIndex(ds["time"].values)
        raise ValueError(f"realism needs at least one whole calendar year; the data cover {t[0]:%Y-%m-%d}.."
                         f"{t[-1]:%Y-%m-%d}. Fix: use a longer period (e.g. a *_small catalog entry)")
    ds = ds.sel(time=years.isin(full))
    static = ds[["mask", "elevation", "landcover"]].load()
    mask = static["mask"].astype(bool)
    z = static["elevation"]
    r = regions(ds, mask, z)
    lab, tgt = r.labels, r.targets

    precip = ds["precip"]
    annual = precip.groupby("time.year").sum("time").mean("year").compute()
    wet = (precip > 0.1).mean("time").compute()  # wet day: >= 0.1 mm, the WMO convention
    by_month = precip.groupby("time.month").sum("time").compute()
    jas_share = by_month.sel(month=[7, 8, 9]).sum("month") / by_month.sum("month")
    tmonth = ds["tair"].groupby("time.month").mean("time").compute()
    frozen_months = (tmonth < 0).sum("month")
    short = (f"skipped: {full.size} whole year(s); a trend or a run of dry years needs {MIN_YEARS_TREND}"
             if full.size < MIN_YEARS_TREND else "")
    trend = longest = np.nan
    if not short:
        basin_t = ds["tair"].where(mask).mean(("lat", "lon")).groupby("time.year").mean().compute()
        trend = np.polyfit(basin_t.year.values, basin_t.values, 1)[0] * 10
        annual_basin = precip.where(mask).mean(("lat", "lon")).groupby("time.year").sum().compute()
        dry = annual_basin < annual_basin.mean() - 0.5 * annual_basin.std()
        longest = run = 0
        for is_dry in dry.values:
            run = run + 1 if is_dry else 0
            longest = max(longest, run)

    def row(quantity, da, where, target, reason=""):
        value, why = _median(da, where, reason)
        return (quantity, value, why or target)

    rows = [
        row(f"annual precipitation, {lab['valley']} (mm)", annual, r.valley, tgt["p_valley"], r.no_relief),
        row(f"annual precipitation, {lab['high']} (mm)", annual, r.high, tgt["p_high"], r.no_relief),
        row(f"wet-day frequency, {lab['high']}", wet, r.high, tgt["wet_high"], r.no_relief),
        row(f"wet-day frequency, {lab['valley']}", wet, r.valley, tgt["wet_valley"], r.no_relief),
        row(f"Jul-Sep share of precipitation, {lab['south']}", jas_share, r.south, tgt["jas_south"], r.no_span),
        row(f"Jul-Sep share of precipitation, {lab['north']}", jas_share, r.north, "", r.no_span),
        row(f"months with mean tair < 0, {lab['high_or_north']}", frozen_months,
            (r.north if not r.no_span else False) | (r.high if not r.no_relief else False), "snow months",
            "skipped: neither north and south nor valleys and mountains here" if r.no_span and r.no_relief else ""),
        row(f"months with mean tair < 0, {lab['south_valley']}", frozen_months, r.south & r.valley, "few or none",
            r.no_span or r.no_relief),
        ("basin warming trend (K per decade)", float(trend), short or "positive"),
        ("longest run of dry years (basin precip < mean - 0.5 sd)", float(longest), short or "multi-year droughts"),
    ]
    if "lai_true" in ds:
        lai = ds["lai_true"]
        monthly = lai.where(mask).mean(("lat", "lon")).groupby("time.month").mean().compute()
        rows.append(("month of basin-mean peak LAI", float(monthly.idxmax()), "summer (6-8)"))
        peak = lai.groupby("time.year").max("time").mean("year").compute()
        lc = static["landcover"]
        for code in (1, 2, 4, 5, 8, 9, 10, 7, 16):
            sel = mask & (lc == code)
            if int(sel.sum()) >= 5:
                rows.append((f"mean annual peak LAI, {IGBP_CLASSES[code]}", float(peak.where(sel).median()),
                             "forests/savannas > grasslands > shrublands > barren"))
        if "lai" in ds:
            from ...evaluation import noise_ceiling

            last = full[-min(NOISE_CEILING_YEARS, full.size):]
            nc = noise_ceiling(ds, period=(str(last[0]), str(last[-1])), with_reason=False)
            rows.append((f"noise ceiling: median NSE(lai_true, lai), last {last.size} years",
                         float(nc.compute().median()), "< 1"))
    return pd.DataFrame(rows, columns=["quantity", "value", "target"])
