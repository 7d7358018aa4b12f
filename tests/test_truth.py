"""The virtual basin's true vegetation re-run on any forcing (vegviz.data.virtual.truth)."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from vegviz.data.virtual import truth
from vegviz.data.virtual.chain import FORCINGS, MANTISSA_BITS, SPINUP_YEARS, VirtualBasin, round_mantissa
from vegviz.data.virtual.vegetation import GROWTH_RATE, PLANT_TYPES
from vegviz.evaluation import aridity_class, aridity_index


@pytest.fixture(scope="module")
def four_years(small_basin):
    """1998-2001 of the small basin (in memory) and the truth re-run on it with the default spin-up."""
    sub = small_basin.sel(time=slice("1998", "2001")).load()
    return sub, truth.true_lai(sub)


def test_reproduces_the_stored_truth_given_the_generators_spinup_weather(small_basin):
    """With the generator's own spin-up weather (the 3 years before the period) in front of the stored
    forcing, the re-run differs from the stored lai_true only through the stored forcing's rounding.

    Tolerance: the forcing keeps 12 mantissa bits (relative error <= 2^-13 = 1.2e-4). Where the model
    is continuous that moves LAI by about as much (99th percentile below 1e-3 m2 m-2, ten times the
    relative error on the largest LAI of ~4). The model also has switches (snow cover at SWE 5 mm, the
    growing-season flag, day 200 for autumn): a rounding that flips one on one day adds or removes at
    most one day of logistic growth, r cap / 4 (the logistic's largest daily increment), with
    r = GROWTH_RATE and cap the largest peak LAI of any class; later days do not amplify it (the
    logistic pulls both series to the same cap).
    """
    sub = small_basin.sel(time=slice("1998", "1998")).load()
    basin = VirtualBasin(truth.static_of(sub), int(sub.attrs["seed"]))
    years = []
    for year in range(1998 - SPINUP_YEARS, 1998):
        w = basin.weather.year(year)
        years.append(xr.Dataset({k: (("time", "lat", "lon"), round_mantissa(getattr(w, k))) for k in FORCINGS},
                                coords={"time": w.time, "lat": sub["lat"], "lon": sub["lon"]}))
    forcing = xr.concat([*years, sub[list(FORCINGS)]], dim="time")
    forcing.attrs = dict(sub.attrs)
    rerun = truth.true_lai(forcing, spinup_years=0).sel(time="1998").values
    stored = sub["lai_true"].values
    diff = np.abs(rerun - stored)
    assert MANTISSA_BITS == 12  # the tolerance below is derived for it
    assert np.percentile(diff, 99) <= 1e-3
    assert diff.max() <= GROWTH_RATE * max(p.lai_max for p in PLANT_TYPES.values()) / 4


def test_default_spinup_agrees_with_the_stored_truth(four_years):
    """The default spin-up (the forcing's own first 3 years) starts from other states than the stored
    truth (spun up on 1995-1997): snow and soil water forget within a year, but the drought legacy's
    running normal keeps 90 % of itself each year, so cells keep differing in vigour for years. The
    annual-mean maps of the 4th year must still be the same pattern (r >= 0.95 over the basin) and
    differ by at most 15 % of the basin mean (measured ~8 %, mostly in drought-legacy cells).
    """
    sub, rerun = four_years
    mask = sub["mask"].values.astype(bool)
    a = rerun.sel(time="2001").mean("time").values[mask]
    b = sub["lai_true"].sel(time="2001").mean("time").values[mask]
    assert np.corrcoef(a, b)[0, 1] >= 0.95
    assert np.abs(a - b).mean() <= 0.15 * b.mean()
    assert rerun.dims == ("time", "lat", "lon") and rerun.dtype == np.float32
    assert rerun.attrs["units"] == "m2 m-2" and rerun.attrs["spinup_years"] == SPINUP_YEARS
    assert (rerun["time"].values == sub["time"].values).all()


def test_warmer_and_drier_lowers_lai_where_water_limits_it(four_years):
    """+4 K and -20 % precipitation: less leaf area in arid and semi-arid cells (UNEP classes of the
    period), where water limits growth; energy-limited (humid, mountain) cells lose less or gain."""
    sub, base = four_years
    warm = truth.true_lai(sub.assign(tair=sub["tair"] + 4, tmin=sub["tmin"] + 4, precip=sub["precip"] * 0.8))
    delta = (warm - base).mean("time").values
    mask = sub["mask"].values.astype(bool)
    classes = aridity_class(aridity_index(sub, period=("1998-01-01", "2001-12-31"))).values
    dry = mask & np.isin(classes, ["arid", "semi-arid"])
    humid = mask & (classes == "humid")
    assert dry.sum() > 100 and humid.sum() > 100
    assert (delta[dry] < 0).mean() >= 0.9
    assert delta[dry].mean() < 0
    assert delta[humid].mean() > delta[dry].mean()


def test_bad_input_names_problem_and_fix(small_basin):
    sub = small_basin.sel(time=slice("1998-01-01", "1998-01-10"))
    with pytest.raises(ValueError, match="lacks \\['swdown'\\].*Fix"):
        truth.true_lai(sub.drop_vars("swdown"))
    with pytest.raises(ValueError, match="spinup_years.*Fix"):
        truth.true_lai(sub, spinup_years=-1)
    gappy = sub.load().copy()
    gappy["tair"][3, 0, 0] = np.nan
    with pytest.raises(ValueError, match="tair has NaN on 1998-01-04.*Fix"):
        truth.true_lai(gappy)
    with pytest.raises(ValueError, match="domain 'nowhere' is not registered.*Fix"):
        truth.true_lai(sub.assign_attrs(domain="nowhere"))
