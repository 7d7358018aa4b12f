"""The "true" vegetation of a virtual basin: a small daily ecohydrological model.

Deliberately richer than the growing-season-index model of :mod:`vegviz.physics`, so
that a network has something to learn beyond it:

* a snowpack (rain/snow partition by air temperature, degree-day melt that rises with
  radiation), so the timing of snowmelt sets the spring water supply and the green-up;
* a root-zone water bucket with memory (infiltration of rain, melt and run-on up to an
  infiltration capacity, Priestley-Taylor evaporative demand scaled by soil water and
  leaf cover, drainage above field capacity), with irrigation on croplands;
* run-on, a horizontal process: water that does not infiltrate is routed to the
  steepest-descent (D8) neighbour on the real elevation and arrives there the next day,
  so valley cells get water from upslope that their own weather does not show;
* leaf area with logistic growth limited by temperature, light, daylength, snow cover
  and soil water, drought senescence and autumn (cold, short day) senescence, and an
  evergreen part that follows soil water slowly;
* a drought legacy: a vigour store drops after a growing season drier than the cell's
  usual, caps the following years' leaf area and recovers over several years;
* plant parameters per IGBP class, mixed by the MCD12C1 class fractions of each cell.

All rates and capacities are chosen plausible values unless a source is named.

On any domain the model runs on that domain's land cover (class fractions), elevation
(run-on routing, surface pressure) and latitude (daylength). The plant parameters are the
UCRB's: peak leaf areas of the semi-arid western US, so the humid East's forests (LAI 4-6
in MODIS) stay at the caps below; this is part of the ``calibration`` note (:data:`CALIBRATION`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from .noise import KM_PER_DEG
from .weather import YearWeather, daylength_hours, saturation_vapour_pressure, surface_elevation, surface_pressure


@dataclass(frozen=True)
class PlantType:
    """Parameters of one IGBP class (chosen plausible values, see PLANT_TYPES)."""

    lai_max: float  # m2 m-2, peak leaf area of a vigorous stand with ample water
    evergreen: float  # share of lai_max held through the year
    root_zone_mm: float  # plant-available water capacity of the root zone
    t_base: float  # degC, no leaf growth at or below
    t_opt: float  # degC, growth not limited by temperature at or above
    irrigated: float = 0.0  # share of the class area that is irrigated


# Peak LAI in the ranges that MODIS and GLOBMAP report for these biomes in the semi-arid
# western US (forests 2.5-4, woody savannas/pinyon-juniper 1.5-2.5, grasslands 0.5-1.5,
# sagebrush shrublands 0.3-0.8, barren < 0.2); they are caps, water keeps most cells below.
# Root-zone capacities of 50-250 mm, base temperatures of 0-6 degC: chosen plausible values.
PLANT_TYPES: dict[int, PlantType] = {
    0: PlantType(0.0, 0.0, 300.0, 5.0, 20.0),  # water bodies
    1: PlantType(3.6, 0.85, 250.0, 0.0, 14.0),  # evergreen needleleaf forests
    2: PlantType(4.5, 0.90, 250.0, 2.0, 18.0),  # evergreen broadleaf forests
    3: PlantType(3.0, 0.10, 250.0, 0.0, 14.0),  # deciduous needleleaf forests
    4: PlantType(3.8, 0.05, 250.0, 3.0, 17.0),  # deciduous broadleaf forests
    5: PlantType(3.6, 0.50, 250.0, 1.0, 16.0),  # mixed forests
    6: PlantType(1.6, 0.45, 160.0, 3.0, 18.0),  # closed shrublands
    7: PlantType(0.8, 0.40, 110.0, 4.0, 20.0),  # open shrublands (sagebrush, blackbrush)
    8: PlantType(2.6, 0.55, 220.0, 1.0, 16.0),  # woody savannas (pinyon-juniper, aspen-conifer)
    9: PlantType(2.1, 0.35, 190.0, 2.0, 17.0),  # savannas
    10: PlantType(1.4, 0.00, 140.0, 3.0, 17.0),  # grasslands
    11: PlantType(2.5, 0.05, 300.0, 3.0, 18.0),  # permanent wetlands
    12: PlantType(2.8, 0.00, 200.0, 6.0, 22.0, irrigated=0.8),  # croplands (irrigated hay, corn)
    13: PlantType(0.6, 0.20, 100.0, 4.0, 20.0, irrigated=0.3),  # urban (lawns, parks)
    14: PlantType(2.2, 0.10, 180.0, 5.0, 20.0, irrigated=0.4),  # cropland/natural mosaics
    15: PlantType(0.0, 0.00, 50.0, 5.0, 20.0),  # permanent snow and ice
    16: PlantType(0.12, 0.30, 50.0, 5.0, 20.0),  # barren
}

#: What of the vegetation follows the domain and what is the UCRB's (the ``calibration`` attribute).
CALIBRATION = (
    "Vegetation driven by the domain's real land cover (MODIS class fractions per cell), elevation (D8 run-on, "
    "surface pressure) and latitude (daylength); plant parameters (peak LAI caps, evergreen shares, root zones, "
    "temperature limits) chosen for the semi-arid western US and used unchanged (humid forests stay below their "
    "real LAI of 4-6); snow, soil water and drought-legacy rates are generic chosen values."
)

# --- snow ---------------------------------------------------------------------------------
# Snow share of precipitation falls linearly from 1 at -1 degC to 0 at +3 degC (chosen; the
# 50% rain-snow threshold of the dry interior West is near 1-2 degC, Jennings et al. 2018,
# Nat. Commun. 9:1148). Degree-day melt 2 mm K-1 day-1 rising by 4 with radiation: snow
# degree-day factors are ~2.5-6 mm K-1 day-1 (Hock 2003, J. Hydrol. 282:104-115).
SNOW_ALL_SNOW, SNOW_ALL_RAIN = -1.0, 3.0
DDF_BASE, DDF_RADIATION, DDF_RADIATION_REF = 2.0, 4.0, 400.0
SNOW_COVER_MM = 5.0  # SWE above which the ground counts as snow covered (no growth, no ET)

# --- soil water ---------------------------------------------------------------------------
INFILTRATION_MM = 30.0  # daily infiltration capacity: heavier input runs off (Hortonian)
ROUTED_SHARE = 0.6  # share of runoff reaching the downslope neighbour; the rest joins streams
WILTING, CRITICAL, FIELD_CAPACITY = 0.12, 0.6, 0.85  # shares of the root-zone capacity
DRAINAGE_RATE = 0.05  # day-1, of the water above field capacity
SOIL_EVAPORATION = 0.3  # share of demand met by bare soil when leaves are absent
K_EXTINCTION = 0.5  # Beer's law light extinction for ground cover 1 - exp(-k LAI)
IRRIGATION_TARGET, IRRIGATION_RATE, IRRIGATION_MONTHS = 0.7, 0.25, (4, 9)
# Priestley-Taylor (1972, Mon. Weather Rev. 100:81-92) demand with alpha = 1.26 and net
# radiation taken as half of incoming shortwave (chosen: bright, sparse surfaces with large
# longwave loss); slope of the vapour pressure curve FAO-56 eq. 13, psychrometric
# constant FAO-56 eq. 8, latent heat 2.45 MJ kg-1 (FAO-56 eq. 20).
PT_ALPHA, NET_RADIATION_SHARE, LATENT_HEAT = 1.26, 0.5, 2.45

# --- leaves -------------------------------------------------------------------------------
GROWTH_RATE = 0.12  # day-1, logistic growth under ideal conditions (green-up in ~4 weeks)
SEED_SHARE = 0.04  # leaf area from which growth starts, as a share of the cap
DAYLENGTH_MIN, DAYLENGTH_FULL = 10.0, 13.0  # h: growth ramps up between these
LIGHT_SCALE = 150.0  # W m-2: light factor 1 - exp(-swdown / 150)
HEAT_START, HEAT_SPAN = 33.0, 10.0  # degC of tmax: growth falls to 0 over 33..43 degC
DRY_SENESCENCE = 0.06  # day-1 at zero soil water, times (1 - fw)^2
# Autumn senescence after day 200, at up to 0.06 day-1 as nights fall below 5 degC (full at
# -3 degC) or days shorten below 13 h (full at 11 h).
AUTUMN_SENESCENCE, AUTUMN_DOY, COLD_TMIN, COLD_SPAN = 0.06, 200, 5.0, 8.0
AUTUMN_DAYLENGTH, AUTUMN_DAYLENGTH_SPAN = 13.0, 2.0
TURNOVER = 0.004  # day-1, background leaf turnover
EVERGREEN_RATE, EVERGREEN_DRY_SHARE = 1.0 / 60.0, 0.4  # relaxation; share kept when dry
GROWING_ENV = 0.3  # environment index above which a day counts in the growing season
# Drought legacy: vigour drops by 1.0 x the deficit of growing-season water availability
# below the cell's running normal (10-year memory), recovers 30% of its gap per year,
# never below 0.35 (chosen plausible values: multi-year legacies of drought on growth,
# e.g. Anderegg et al. 2015, Science 349:528-532).
LEGACY_LOSS, LEGACY_RECOVERY, LEGACY_FLOOR, NORMAL_MEMORY = 1.0, 0.3, 0.35, 0.1
# Open water dominates a mixed pixel's reflectance; retrievals see little leaf area there.
WATER_DIMMING = 2.0  # leaf area scaled by max(0, 1 - 2 x water share)


@dataclass(frozen=True)
class Landscape:
    """Per-cell parameters (flattened to n = nlat * nlon) and the D8 drainage network."""

    shape: tuple[int, int]
    lai_max: np.ndarray
    evergreen: np.ndarray
    root_zone: np.ndarray
    t_base: np.ndarray
    t_opt: np.ndarray
    irrigated: np.ndarray
    pressure: np.ndarray
    lat: np.ndarray  # (nlat,)
    donors: np.ndarray  # cells that drain to a neighbour
    receivers: np.ndarray  # ... and that neighbour

    @classmethod
    def from_static(cls, static: xr.Dataset) -> "Landscape":
        frac = static["landcover_fraction"]
        codes = frac["lc_class"].to_numpy()
        unknown = sorted(set(codes.tolist()) - set(PLANT_TYPES))
        if unknown:
            raise ValueError(f"landcover_fraction has classes {unknown} that are not IGBP codes 0-16. "
                             "Fix: use the static fields of vegviz.data.static.load_static()")
        f = np.nan_to_num(frac.to_numpy().astype(float)).reshape(len(codes), -1)
        f /= np.maximum(f.sum(axis=0), 1e-9)
        table = {k: np.array([getattr(PLANT_TYPES[c], k) for c in codes])[:, None]
                 for k in ("lai_max", "evergreen", "root_zone_mm", "t_base", "t_opt", "irrigated")}
        lai_area = f * table["lai_max"]  # where leaves are, phenology follows their class
        w_leaf = lai_area / np.maximum(lai_area.sum(axis=0), 1e-9)
        water = f[list(codes).index(0)] if 0 in codes else np.zeros(f.shape[1])
        lai_max = lai_area.sum(axis=0) * np.clip(1 - WATER_DIMMING * water, 0, 1)
        z = static["elevation"].to_numpy().astype(float)
        donors, receivers = d8_receivers(z, static["lat"].to_numpy(), static["lon"].to_numpy(),
                                         sinks=water.reshape(z.shape) >= 0.5)
        return cls(
            shape=z.shape,
            lai_max=lai_max,
            evergreen=(w_leaf * table["evergreen"]).sum(axis=0),
            root_zone=(f * table["root_zone_mm"]).sum(axis=0),
            t_base=(w_leaf * table["t_base"]).sum(axis=0),
            t_opt=(w_leaf * table["t_opt"]).sum(axis=0),
            irrigated=(f * table["irrigated"]).sum(axis=0),
            pressure=surface_pressure(surface_elevation(static)).reshape(-1),
            lat=static["lat"].to_numpy(),
            donors=donors,
            receivers=receivers,
        )

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]


def d8_receivers(z: np.ndarray, lat: np.ndarray, lon: np.ndarray, sinks: np.ndarray | None = None):
    """Steepest-descent (D8) neighbour of every cell on a lat/lon grid.

    Returns flat indices (donors, receivers): each donor drains to its receiver. Cells with
    no lower neighbour inside the grid (pits, outlets on the edge) and ``sinks`` (lakes)
    drain nowhere: their runoff leaves the domain.
    """
    nlat, nlon = z.shape
    dy = abs(lat[1] - lat[0]) * KM_PER_DEG
    dx = abs(lon[1] - lon[0]) * KM_PER_DEG * np.cos(np.deg2rad(lat))[:, None] * np.ones((1, nlon))
    pad = np.pad(z, 1, constant_values=np.inf)  # outside the grid is never downhill
    best = np.zeros(z.shape)
    target = np.full(z.shape, -1, dtype=np.int64)
    rows, cols = np.indices(z.shape)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di == dj == 0:
                continue
            nb = pad[1 + di:1 + di + nlat, 1 + dj:1 + dj + nlon]
            slope = (z - nb) / np.hypot(di * dy, dj * dx)
            better = slope > best
            best = np.where(better, slope, best)
            target = np.where(better, (rows + di) * nlon + (cols + dj), target)
    if sinks is not None:
        target[sinks] = -1
    donors = np.flatnonzero(target >= 0)
    return donors, target.reshape(-1)[donors]


@dataclass
class VegetationState:
    """Everything the model carries from one day (and year) to the next; flat (n,) arrays."""

    swe: np.ndarray
    soil: np.ndarray
    runon: np.ndarray
    lai_deciduous: np.ndarray
    lai_evergreen: np.ndarray
    vigour: np.ndarray
    normal_water: np.ndarray | None = None  # running normal of growing-season water availability

    @classmethod
    def initial(cls, land: Landscape) -> "VegetationState":
        n = land.size
        return cls(
            swe=np.zeros(n), soil=0.5 * land.root_zone, runon=np.zeros(n),
            lai_deciduous=np.zeros(n), lai_evergreen=land.lai_max * land.evergreen * EVERGREEN_DRY_SHARE,
            vigour=np.ones(n),
        )


@dataclass
class YearVegetation:
    lai: np.ndarray  # (day, lat, lon) float32, true leaf area index
    swe: np.ndarray  # (day, lat, lon) float32, snow water equivalent (mm)


def snowpack(swe0: np.ndarray, snowfall: np.ndarray, melt_potential: np.ndarray):
    """Daily snow water equivalent and melt (day, n) from the start value ``swe0`` (n,).

    The bucket swe_t = max(swe_{t-1} + snowfall_t - potential_t, 0) is Lindley's recursion,
    solved without a loop: with S_t the running sum of (snowfall - potential),
    swe_t = S_t - min(-swe0, min_{j<=t} S_j).
    """
    s = np.cumsum(snowfall - melt_potential, axis=0, dtype=np.float64)
    floor = np.minimum.accumulate(s, axis=0)
    np.minimum(floor, -swe0, out=floor)
    s -= floor
    np.maximum(s, 0.0, out=s)
    swe = s.astype(np.float32)
    melt = snowfall - np.diff(s, axis=0, prepend=swe0[None]).astype(np.float32)
    np.maximum(melt, 0.0, out=melt)
    return swe, melt


def _ramp(x: np.ndarray, at0, at1) -> np.ndarray:
    """0 at ``at0``, 1 at ``at1``, linear between (either order), float32."""
    out = ((x - at0) / (at1 - at0)).astype(np.float32, copy=False)
    return np.clip(out, 0.0, 1.0, out=out)


def _drivers(w: YearWeather, land: Landscape, swe0: np.ndarray) -> dict[str, np.ndarray]:
    """Daily forcing of the soil and leaf model that does not depend on its state, (day, n) float32."""
    ndays, n = len(w.time), land.size
    precip, t, tmin, tmax, sw = (getattr(w, k).reshape(ndays, n)
                                 for k in ("precip", "tair", "tmin", "tmax", "swdown"))
    snowfall = precip * _ramp(t, SNOW_ALL_RAIN, SNOW_ALL_SNOW)
    ddf = np.minimum(sw, DDF_RADIATION_REF) * np.float32(DDF_RADIATION / DDF_RADIATION_REF) + np.float32(DDF_BASE)
    swe, melt = snowpack(swe0, snowfall, ddf * np.maximum(t, 0))
    bare = swe < SNOW_COVER_MM  # snow cover stops growth and evapotranspiration
    es = saturation_vapour_pressure(t)
    slope = 4098 * es / (t + np.float32(237.3)) ** 2
    gamma = (0.665e-3 * land.pressure).astype(np.float32)
    pet = slope / (slope + gamma)
    pet *= sw
    pet *= np.float32(PT_ALPHA * NET_RADIATION_SHARE * 0.0864 / LATENT_HEAT)
    pet *= bare & (t > 0)  # frozen ground: no transpiration
    doy = w.doy
    daylen = np.repeat(daylength_hours(land.lat, doy).astype(np.float32), land.shape[1], axis=1)
    env = _ramp(t, land.t_base, np.maximum(land.t_opt, land.t_base + 1.0))
    env *= _ramp(tmax, HEAT_START + HEAT_SPAN, HEAT_START)
    env *= _ramp(daylen, DAYLENGTH_MIN, DAYLENGTH_FULL)
    env *= 1 - np.exp(sw * np.float32(-1.0 / LIGHT_SCALE))
    env *= bare
    # Autumn senescence: after midsummer, when nights get cold or days get short.
    loss = np.maximum(_ramp(tmin, COLD_TMIN, COLD_TMIN - COLD_SPAN),
                      _ramp(daylen, AUTUMN_DAYLENGTH, AUTUMN_DAYLENGTH - AUTUMN_DAYLENGTH_SPAN))
    loss *= np.float32(AUTUMN_SENESCENCE) * (doy > AUTUMN_DOY)[:, None]
    loss += np.float32(TURNOVER)
    months = w.time.month.to_numpy()
    return {
        "water_in": precip - snowfall + melt,
        "pet": pet,
        "env": env,
        "growing": env > GROWING_ENV,
        "loss": loss,
        "irrigating": (months >= IRRIGATION_MONTHS[0]) & (months <= IRRIGATION_MONTHS[1]),
        "swe": swe,
    }


def run_year(w: YearWeather, land: Landscape, state: VegetationState) -> YearVegetation:
    """Advance ``state`` through the year of weather ``w`` (in place) and return the daily truth.

    The loop over days holds only what state forces into it (soil water, run-on, leaves);
    each line is one vectorised operation over all cells, in place where possible.
    """
    drv = _drivers(w, land, state.swe)
    ndays, n = drv["pet"].shape
    wcap = land.root_zone
    w_wilt, w_fc = WILTING * wcap, FIELD_CAPACITY * wcap
    inv_range = 1.0 / ((CRITICAL - WILTING) * wcap)
    cap_dec = land.lai_max * (1 - land.evergreen) * state.vigour
    inv_cap = np.where(cap_dec > 0, 1.0 / np.maximum(cap_dec, 1e-9), 0.0)
    seed = SEED_SHARE * cap_dec
    cap_ev = land.lai_max * land.evergreen * state.vigour
    ev_dry, ev_wet = EVERGREEN_RATE * EVERGREEN_DRY_SHARE * cap_ev, EVERGREEN_RATE * (1 - EVERGREEN_DRY_SHARE) * cap_ev
    infiltration_cap = np.full(n, INFILTRATION_MM)
    irrigation_target, irrigation_rate = IRRIGATION_TARGET * wcap, IRRIGATION_RATE * land.irrigated
    irrigated = bool(np.any(land.irrigated > 0))
    donors, receivers = land.donors, land.receivers
    water_in, pet, env, loss = drv["water_in"], drv["pet"], GROWTH_RATE * drv["env"], drv["loss"]

    lai_out = np.empty((ndays, n), np.float32)
    soil, runon = state.soil, state.runon
    ld, le = state.lai_deciduous, state.lai_evergreen
    fw_sum = np.zeros(n)
    lai, fw, tmp, arriving, infil = (np.empty(n) for _ in range(5))
    for d in range(ndays):
        np.add(water_in[d], runon, out=arriving)
        if irrigated and drv["irrigating"][d]:
            arriving += irrigation_rate * np.maximum(irrigation_target - soil, 0)
        np.subtract(wcap, soil, out=infil)
        np.minimum(infil, infiltration_cap, out=infil)
        np.minimum(infil, arriving, out=infil)
        soil += infil
        arriving -= infil  # now the runoff
        if arriving.any():
            runon = ROUTED_SHARE * np.bincount(receivers, weights=arriving[donors], minlength=n)
        else:
            runon = np.zeros(n)
        # Water availability 0 at wilting point .. 1 at the critical point.
        np.subtract(soil, w_wilt, out=fw)
        fw *= inv_range
        np.clip(fw, 0.0, 1.0, out=fw)
        # Evapotranspiration: bare-soil share plus leaf cover 1 - exp(-k LAI).
        np.add(ld, le, out=lai)
        np.multiply(lai, -K_EXTINCTION, out=tmp)
        np.exp(tmp, out=tmp)
        tmp *= SOIL_EVAPORATION - 1.0
        tmp += 1.0
        tmp *= fw
        tmp *= pet[d]
        soil -= tmp
        # Drainage above field capacity.
        np.subtract(soil, w_fc, out=tmp)
        np.maximum(tmp, 0.0, out=tmp)
        tmp *= DRAINAGE_RATE
        soil -= tmp
        # Deciduous leaves: logistic growth minus drought and autumn losses.
        np.multiply(ld, inv_cap, out=tmp)
        np.subtract(1.0, tmp, out=tmp)
        np.maximum(tmp, 0.0, out=tmp)
        tmp *= env[d]
        tmp *= fw
        growth = tmp * (ld + seed)
        np.subtract(1.0, fw, out=tmp)
        tmp *= tmp
        tmp *= DRY_SENESCENCE
        tmp += loss[d]
        tmp *= ld
        ld += growth
        ld -= tmp
        # Evergreen leaves relax slowly to a soil-water-dependent share of their cap.
        np.multiply(ev_wet, fw, out=tmp)
        tmp += ev_dry
        tmp -= EVERGREEN_RATE * le
        le += tmp
        np.add(ld, le, out=lai_out[d])
        fw_sum += fw * drv["growing"][d]
    state.runon = runon
    state.swe = drv["swe"][-1].copy()
    growing_days = drv["growing"].sum(axis=0)
    _update_vigour(state, fw_sum / np.maximum(growing_days, 1))
    shape = (ndays, *land.shape)
    return YearVegetation(lai=lai_out.reshape(shape), swe=drv["swe"].reshape(shape))


def _update_vigour(state: VegetationState, season_water: np.ndarray) -> None:
    """Drought legacy: a growing season drier than the cell's normal lowers next year's cap."""
    if state.normal_water is None:
        state.normal_water = season_water.copy()
    deficit = np.maximum(state.normal_water - season_water, 0)
    state.vigour = np.clip(state.vigour + LEGACY_RECOVERY * (1 - state.vigour) - LEGACY_LOSS * deficit,
                           LEGACY_FLOOR, 1.0)
    state.normal_water += NORMAL_MEMORY * (season_water - state.normal_water)
