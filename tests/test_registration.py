"""Static fields registered with the forcing: checked against real NLDAS-2 surface pressure.

The real NLDAS-2 hour in ``shared/data/nldas`` gives ``-ln(PSurf)``, which by the hypsometric
equation falls almost linearly with the terrain height the forcing was made on. ETOPO5 as
shipped sits 7.5' east / 2.5' south of its axes (r = 0.905 on the UCRB window); the corrected
DEM must reach r >= 0.99 on the UCRB window and on the whole NLDAS-2 land domain.
"""
import numpy as np
import pytest

from nldas_fixtures import REAL_GRIB
from vegviz import grid as G
from vegviz.data import registration as reg
from vegviz.data.static import ETOPO5_SHIFT_DEG, load_static, missing_sources

pytest.importorskip("pygrib")
pytestmark = pytest.mark.skipif(not REAL_GRIB.exists(), reason=f"real NLDAS-2 hour not at {REAL_GRIB}")
needs_etopo5 = pytest.mark.skipif(
    any("ETOPO5" in m for m in missing_sources()), reason="ETOPO5 not installed (apt-get install ferret-datasets)")


@pytest.fixture(scope="module")
def pressure():
    return reg.read_nldas_pressure(REAL_GRIB)  # PSurf (Pa), Tair (K) on the whole NLDAS-2 grid


def test_hypsometric_thickness_matches_the_standard_atmosphere():
    # ICAO standard atmosphere: p/p0 = (1 - L z / T0)^(g / (R L)) with T0 at sea level.
    for z in (0.0, 1500.0, 3000.0, 4300.0):
        t_surface = 288.15 - reg.LAPSE * z
        exact = -(reg.G0 / (reg.R_DRY * reg.LAPSE)) * np.log(1 - reg.LAPSE * z / 288.15)
        # The mean-temperature form differs from the exact power law at second order in
        # x = L z / T0: the series differ by at most x^2 / 12 = 7.8e-4 at 4300 m (x = 0.097); 4.1e-4 measured.
        assert reg.hypsometric_thickness(z, t_surface) == pytest.approx(exact, rel=1e-3, abs=1e-12)


def test_committed_elevation_agrees_with_real_pressure_on_the_ucrb(pressure):
    psurf, tair = pressure
    static = load_static()
    assert G.UCRB.matches(static.lat, static.lon)
    sl = G.UCRB.slices_in(G.NLDAS)
    assert G.NLDAS.lat[sl[0]][0] == G.UCRB.lat0 and G.NLDAS.lon[sl[1]][-1] == G.UCRB.lon[-1]
    r = reg.pressure_agreement(static["elevation"].values, psurf[sl], tair[sl])
    assert r["cells"] == G.UCRB.nlat * G.UCRB.nlon
    assert r["elevation"] >= reg.MIN_CORRELATION, r  # 0.905 before the registration fix
    assert r["hypsometric"] >= reg.MIN_CORRELATION, r


@needs_etopo5
def test_registered_etopo5_agrees_with_pressure_over_the_nldas_land_domain(pressure):
    from vegviz.data.static import read_etopo5

    psurf, tair = pressure
    land = np.isfinite(psurf)
    raw = np.where(land, G.regrid_mean(read_etopo5(registered=False), G.NLDAS).values, np.nan)
    fixed = np.where(land, G.regrid_mean(read_etopo5(), G.NLDAS).values, np.nan)
    before, after = reg.pressure_agreement(raw, psurf, tair), reg.pressure_agreement(fixed, psurf, tair)
    assert after["cells"] > 75_000  # NLDAS-2 land cells
    assert after["hypsometric"] >= reg.MIN_CORRELATION, after
    assert before["hypsometric"] < 0.98, before  # the offset is real, not noise


@needs_etopo5
def test_the_documented_offset_is_the_best_one_nearby(pressure):
    from vegviz.data.static import read_etopo5

    psurf, tair = pressure
    raw = read_etopo5(registered=False)
    dy, dx = ETOPO5_SHIFT_DEG["lat"] * 60, ETOPO5_SHIFT_DEG["lon"] * 60
    best = reg.pressure_offset_search(raw, psurf, tair, lat_shifts_min=dy + np.array([-2.5, 0, 2.5]),
                                      lon_shifts_min=dx + np.array([-2.5, 0, 2.5]))
    assert best[0][:2] == (dy, dx), best[:3]
