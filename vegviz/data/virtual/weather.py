"""Stochastic daily weather of a virtual basin, driven by the domain's real elevation, latitude and land cover.

One year at a time, vectorised over (day, lat, lon). The climate is built from a few
deterministic fields of elevation, latitude, land cover and season, plus random parts:

* temperature: lapse rate, latitude gradient and seasonal cycle, plus spatially
  correlated AR(1) daily anomalies (correlation length 300 km), a yearly anomaly
  that is warmer in dry years, and a warming trend;
* precipitation: a latent Gaussian field (a synoptic part, 250 km, dominant in winter,
  and a convective part, 70 km, dominant in summer) decides where it rains (above a
  threshold set by the local wet-day probability) and how much (the excess is mapped to
  exponential amounts), so storms have spatial extent and heavier cores; orographic
  totals, winter storms in the north and at altitude, a Jul-Sep monsoon that is strong
  in the south; a persistent yearly multiplier makes multi-year droughts;
* cloudiness from the same latent field: it lowers shortwave radiation and the diurnal
  temperature range and moistens the air;
* humidity from a dewpoint below tmin (further below on dry days, in dry places and
  before the monsoon), giving vapour pressure deficit and specific humidity.

Calibration, honestly: the numbers were fitted to the Upper Colorado River Basin (UCRB,
35.7-43.4 N, 1200-3650 m). On any other domain the same laws run on that domain's fields:
the lapse rate, the radiation geometry, surface pressure and the orographic law follow its
real elevation and latitude; a precipitation floor follows its land cover (forests and
rain-fed croplands do not grow on the 210 mm that the UCRB's valleys get, see
:data:`HUMID_CLASS_PRECIP`); the monsoon is confined to the North American monsoon region;
below the UCRB's lowest valleys (1150 m) the annual mean temperature blends to a sea-level
law of the Atlantic and Gulf coasts instead of extrapolating the plateau's lapse rate; sea cells
are at sea level; dewpoints stop at 30 degC. None of these changes a number on the UCRB.
What stays the UCRB's (:data:`CALIBRATION`, in every virtual Dataset's ``calibration``
attribute): the precipitation-elevation law and wet-day frequencies of the basin's valleys
and mountains, storm sizes and persistence, the winter storm track's share by latitude and
the monsoon's share by latitude, one domain-wide yearly precipitation and temperature index
with a north-south dipole about 40 N, the temperature's latitude gradient and seasonal range
(no maritime climates), the cloud, radiation and humidity relations. On large domains the
random fields use one flat projection at the domain's mean latitude, so east-west lengths
are off by the cosine ratio (about +-20% at the edges of CONUS).

Numbers are either from the sources cited next to them or chosen plausible values,
and say which. FAO-56 is Allen, Pereira, Raes & Smith (1998), "Crop evapotranspiration",
FAO Irrigation and Drainage Paper 56. PRISM normals (PRISM Climate Group, Oregon State
University, 1981-2010 normals) set the precipitation and temperature targets.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import xarray as xr
from scipy.ndimage import gaussian_filter
from scipy.special import ndtr, ndtri

from .noise import SpectralField, annual_index, ar1_year_field, stream

DAYS_PER_YEAR = 365.25
F32 = np.float32

# --- temperature ------------------------------------------------------------------------
LAPSE_RATE = 6.5e-3  # K m-1, the standard-atmosphere lapse rate (as in FAO-56 eq. 7)
# Annual mean 11.9 degC at 1480 m, 39.1 N (Grand Junction, CO) and -0.5 K per degree north;
# seasonal half-range (July minus January mean, halved) 12.5 K at 37 N, +0.7 K per degree north,
# -1.5 K per km of elevation. Chosen to roughly match 1981-2010 station normals (NOAA NCEI):
# Grand Junction ~12 degC and ~14 K, Page AZ (1300 m, 36.9 N) ~15 degC and ~13 K, Rock Springs
# WY (2060 m, 41.6 N) ~6-7 degC, Leadville CO (3100 m) ~1-2 degC and ~11.5 K.
T_REF, Z_REF, LAT_REF = 11.9, 1480.0, 39.1
T_LAT_GRADIENT = -0.5  # K per degree north
# Below the UCRB's lowest cell (1182 m) the law above is not extrapolated: the plateau's surface is
# warmer than free air at its height, so 6.5 K/km down to the sea would give 21.5 degC at 39 N. The
# lowlands instead blend linearly (in elevation, from 1150 m down to 0 m) to a sea-level annual mean
# of 14 degC at 39.1 N falling 0.85 K per degree north, chosen from 1991-2020 NOAA normals of
# Atlantic and Gulf coast stations (Miami 25.5, New Orleans 20.7, Norfolk 15.6, Washington 14.5,
# New York 12.9, Boston 10.9 degC; within about 1.5 K of each). Pacific coasts are milder in the
# north (no maritime climates here). Between 0 and 1150 m the annual mean changes little at 39 N
# and rises with height in the north, as across the Great Plains. Not used on the UCRB.
Z_LOWLAND, T_SEA_REF, T_SEA_LAT_GRADIENT = 1150.0, 14.0, -0.85
T_AMP_37N, T_AMP_PER_LAT, T_AMP_PER_M = 12.5, 0.7, -1.5e-3
T_WARMEST_DOY = 201  # about 20 July
# Daily anomalies: standard deviation 4 K in winter, 2 K in summer, lag-1 correlation 0.75,
# correlation length 300 km (synoptic scale). Chosen plausible values.
T_ANOM_SD_MEAN, T_ANOM_SD_SEASONAL, T_ANOM_PHI, T_ANOM_LENGTH_KM = 3.0, 1.0, 0.75, 300.0
# Yearly mean anomaly: sd 0.5 K, correlated -0.45 with the precipitation index (droughts are
# hot). Chosen plausible values.
T_YEAR_SD, T_YEAR_PRECIP_CORR, T_YEAR_PHI = 0.5, -0.45, 0.3
# Warming trend: chosen value of +0.3 K per decade, of the order of the recent warming of the
# Colorado River basin (Udall & Overpeck 2017, Water Resour. Res. 53:2404-2418), centred on
# 1998.5 so the 1981-2016 mean climate matches the normals above.
WARMING_K_PER_YEAR, TREND_CENTRE_YEAR = 0.03, 1998.5
CLOUD_TEMPERATURE_EFFECT = 1.5  # K: overcast days cooler in summer, milder in winter (chosen)

# --- precipitation ----------------------------------------------------------------------
# Orographic totals, chosen to follow the PRISM 1981-2010 normals of the basin: ~200-250 mm
# in the valleys of the Colorado Plateau and the Wyoming Basin (Green River UT, Grand
# Junction, Moab: roughly 170-240 mm), 500-600 mm at 2500 m, 800-1200 mm on the high peaks
# of the Colorado Rockies. Modelled as
# P = 210 + 830 h^1.4 with h the height above 1300 m of a partly smoothed elevation (the
# broad mountain mass lifts air, not just the local cell) scaled by 2200 m.
P_BASE, P_MOUNTAIN, P_EXPONENT = 210.0, 830.0, 1.4
Z_LOW, Z_SPAN = 1300.0, 2200.0
OROGRAPHIC_SMOOTHING_CELLS, OROGRAPHIC_SMOOTHED_WEIGHT = 2.0, 0.4
# A static precipitation pattern not explained by elevation (rain shadows, moisture paths):
# log-normal, sd 0.12, correlation length 120 km. Chosen plausible values.
P_PATTERN_SD, P_PATTERN_LENGTH_KM = 0.12, 120.0
# Domains beyond the UCRB: annual precipitation is at least what the land cover needs. Natural
# vegetation records its climate (Koppen drew his climate limits along vegetation zones), and
# the law above, fitted where every lowland is a dry valley, would put the forests of the humid
# East or the Pacific Northwest on 210 mm. Annual precipitation near the dry edge of each class
# (mm; chosen from the biome climates of Whittaker 1975, Communities and Ecosystems, 2nd ed.,
# fig. 4.10): forests 500-1200, rain-fed croplands 450 (irrigated ones say nothing, but the share
# of a cell's land counts, and the West's irrigated valleys are small), cropland/natural mosaics
# 700. The other classes (shrublands, savannas, grasslands, barren: the UCRB's) ask for nothing.
# The floor is regional (Gaussian smoothing over ~50 km, 4 cells): the mean need of the region's
# forests and croplands, in full where they cover two thirds of its land or more, in proportion
# where less. Where it exceeds the elevation law it sets the "wetness" that sets both totals and
# wet-day frequency (the height at which the law gives the floor). On the UCRB it stays below the
# law everywhere (its largest value, 133 mm, is below the law's 210 mm minimum): numbers unchanged.
HUMID_CLASS_PRECIP = {1: 600.0, 2: 1200.0, 3: 500.0, 4: 900.0, 5: 900.0, 12: 450.0, 14: 700.0}
FLOOR_SMOOTHING_CELLS, HUMID_FULL_SHARE = 4.0, 2.0 / 3.0
# Wet-day frequency (days with precipitation): chosen 0.13 in the driest valleys (~50 days a
# year) to 0.38 on the highest mountains (~140 days), inside the basin's range of about
# 0.25-0.45 at high elevation and lower in the valleys.
P_WET_LOW, P_WET_SPAN = 0.13, 0.25
P_WET_MAX = 0.9
# Seasonality: winter storm track (amplitude 0.1 in the south to 0.4 in the north, +0.15
# at altitude) and a monsoon bump centred on 3 August (sd 28 days, i.e. mostly Jul-Sep)
# with amplitude 1.6 at 36 N fading to 0 at 42.5 N. With these the Jul-Sep share of the
# annual total is ~35-40% in the south and ~17% in the north: chosen to mimic the North
# American monsoon, which brings a large share of the annual total to Arizona and New Mexico
# and fades northwards (Adams & Comrie 1997, Bull. Am. Meteorol. Soc. 78:2197-2213).
P_WINTER_AMP_SOUTH, P_WINTER_AMP_NORTH, P_WINTER_AMP_ALTITUDE = 0.1, 0.4, 0.15
MONSOON_PEAK_DOY, MONSOON_SD_DAYS, MONSOON_AMP, MONSOON_LAT_FULL, MONSOON_LAT_ZERO = 215, 28.0, 1.6, 36.0, 42.5
# The monsoon is a regional circulation, not a latitude: full strength between 114 and 104 W
# (Arizona, New Mexico, the southern Colorado Plateau and Rockies; Adams & Comrie 1997, fig. 1),
# fading to nothing 2 degrees beyond, so California and the Great Plains get no monsoon share.
# The UCRB (112.3-105.7 W) lies inside the full band: its numbers are unchanged.
MONSOON_LON_FULL, MONSOON_LON_FADE = (-114.0, -104.0), 2.0
# Winter storm track: its amplitude grows from the south to the north of the UCRB (36..43 N),
# constant beyond (UCRB-calibrated).
STORM_TRACK_LAT_SOUTH, STORM_TRACK_LAT_NORTH = 36.0, 43.0
WET_DAY_SHARE = 0.5  # share of the seasonal cycle carried by frequency (rest by intensity)
# Latent occurrence field: synoptic (250 km, lag-1 0.55) and convective (70 km, lag-1 0.25)
# parts, mixed by angle 0.3 rad in winter to 1.2 rad in late July. Chosen plausible values.
SYNOPTIC_LENGTH_KM, SYNOPTIC_PHI = 250.0, 0.55
CONVECTIVE_LENGTH_KM, CONVECTIVE_PHI = 70.0, 0.25
MIX_WINTER, MIX_SUMMER_EXTRA, MIX_PEAK_DOY, MIX_SD_DAYS = 0.3, 0.9, 210, 40.0
# Interannual: a yearly log-multiplier with sd 0.22 (annual precipitation in the UCRB varies
# by ~20-25% from year to year) and lag-1 correlation 0.6 (multi-year droughts such as
# 2000-2004), plus a north-south dipole (sd 0.12, lag-1 0.3) like the ENSO response of
# the south-western US. Chosen plausible values.
P_YEAR_SD, P_YEAR_PHI, P_DIPOLE_SD, P_DIPOLE_PHI, DIPOLE_LAT = 0.22, 0.6, 0.12, 0.3, 40.0
P_YEAR_FREQUENCY_SHARE = 0.4  # part of the yearly multiplier carried by wet-day frequency

# --- cloud, radiation, humidity ---------------------------------------------------------
SOLAR_CONSTANT = 0.0820  # MJ m-2 min-1 (FAO-56 eq. 21)
MJ_DAY_TO_W = 1e6 / 86400.0
# Clear-sky radiation Rso = (0.75 + 2e-5 z) Ra (FAO-56 eq. 37); with the Angstrom values
# as = 0.25, bs = 0.50 (FAO-56 eq. 35) a fully overcast day gets a third of Rso.
CLEAR_SKY_BASE, CLEAR_SKY_PER_M, OVERCAST_LOSS = 0.75, 2e-5, 2.0 / 3.0
CLOUD_SLOPE, CLOUD_OFFSET = 1.5, 0.5  # cloud = Phi(1.5 (Z - threshold) + 0.5): wet days > 0.69 (chosen)
# Diurnal range on clear days: 11 K plus 5 K where dry and 3 K in late spring; clouds cut it
# by up to 55% (dry continental stations: ~15-18 K in May-June, ~10 K on rainy days). Chosen.
DTR_BASE, DTR_ARID, DTR_SPRING, DTR_CLOUD_CUT, DTR_SPRING_DOY, DTR_SPRING_SD = 11.0, 5.0, 3.0, 0.55, 160, 60.0
# Dewpoint depression below tmin: FAO-56 Annex 6 takes Tdew ~ Tmin - 2 to 3 K for arid
# regions; in the dry pre-monsoon weeks of the Colorado Plateau dewpoints run much lower
# (chosen: up to ~11 K below tmin in June in the driest places), monsoon air and clouds
# bring them back up. Chosen plausible values.
TD_BASE, TD_ARID, TD_MONSOON, TD_CLOUD_CUT, TD_DRY_DOY, TD_DRY_SD = 3.0, 8.0, 3.0, 0.8, 170, 55.0
TD_ANOM_SD, TD_ANOM_LENGTH_KM, TD_ANOM_PHI = 1.2, 200.0, 0.6
# Dewpoints no higher than 30 degC: air holds no more moisture than it picks up over the warmest
# sea that feeds it (the Gulf of Mexico and the Gulf of California reach 30-31 degC in late summer;
# US dewpoint records are 32-35 degC). Without it the humidity relations of the UCRB give the
# hot desert lowlands near 25 N cloudy monsoon nights with dewpoints near 40 degC. It never
# binds on the UCRB (its warmest tmin in 1981-2016 is 28.3 degC, and the dewpoint lies below tmin).
TD_MAX = 30.0
ARIDITY_WET, ARIDITY_SPAN = 700.0, 450.0  # aridity = clip((700 - P) / 450, 0, 1) (chosen)

#: What of the weather follows the domain and what is the UCRB's (the ``calibration`` attribute).
CALIBRATION = (
    "Weather driven by the domain's real fields: temperature by elevation (standard lapse rate 6.5 K/km) "
    "and latitude, clear-sky radiation and daylength by latitude and elevation, surface pressure by "
    "elevation, orographic precipitation by the (partly smoothed) elevation, a precipitation floor by the land "
    "cover (forests and rain-fed croplands need at least 450-1200 mm a year), the monsoon confined to the North "
    "American monsoon region (114-104 W, fading over 2 degrees). UCRB-calibrated and used unchanged: the "
    "precipitation-elevation law (210 mm below 1300 m to ~1040 mm at 3500 m) and wet-day frequencies, storm "
    "sizes (70 and 250 km) and persistence, the winter storm track's share by latitude (36-43 N) and the "
    "monsoon's share by latitude (36-42.5 N), one domain-wide yearly precipitation and temperature index and a "
    "north-south dipole about 40 N, the temperature's latitude gradient (-0.5 K per degree) above 1150 m and "
    "seasonal range (no maritime climates; below 1150 m the annual mean blends to an Atlantic/Gulf-coast "
    "sea-level law, 14 degC at 39 N and -0.85 K per degree), warming trend, clouds, radiation and humidity "
    "relations (dewpoints capped at 30 degC); random fields on a flat projection at the domain's mean latitude."
)


#: Largest season table (bytes) kept for both year lengths; larger domains recompute on a change.
SEASON_CACHE_BYTES = 256 * 2**20


def saturation_vapour_pressure(t):
    """kPa at ``t`` degC (FAO-56 eq. 11)."""
    return 0.6108 * np.exp(17.27 * t / (t + 237.3))


def surface_pressure(z):
    """kPa at elevation ``z`` m (FAO-56 eq. 7)."""
    return 101.3 * ((293.0 - 0.0065 * z) / 293.0) ** 5.26


def specific_humidity(ea, pressure):
    """kg kg-1 from vapour pressure and air pressure (both kPa): q = 0.622 e / (p - 0.378 e)."""
    return 0.622 * ea / (pressure - 0.378 * ea)


def extraterrestrial_radiation(lat_deg, doy):
    """Daily mean top-of-atmosphere radiation (W m-2) on a (doy, lat) table (FAO-56 eqs. 21-25)."""
    doy = np.asarray(doy, float)[:, None]
    lat = np.deg2rad(np.asarray(lat_deg, float))[None, :]
    decl = 0.409 * np.sin(2 * np.pi * doy / 365 - 1.39)
    dr = 1 + 0.033 * np.cos(2 * np.pi * doy / 365)
    ws = np.arccos(np.clip(-np.tan(lat) * np.tan(decl), -1, 1))
    geometry = ws * np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.sin(ws)
    ra = 24 * 60 / np.pi * SOLAR_CONSTANT * dr * geometry
    return ra * MJ_DAY_TO_W


def daylength_hours(lat_deg, doy):
    """Daylength (h) on a (doy, lat) table: N = 24 ws / pi (FAO-56 eqs. 24, 25, 34)."""
    doy = np.asarray(doy, float)[:, None]
    lat = np.deg2rad(np.asarray(lat_deg, float))[None, :]
    decl = 0.409 * np.sin(2 * np.pi * doy / 365 - 1.39)
    return 24 / np.pi * np.arccos(np.clip(-np.tan(lat) * np.tan(decl), -1, 1))


def surface_elevation(static: xr.Dataset) -> np.ndarray:
    """Elevation (m, float64) of the surface the weather is made for: 0 on sea cells (below sea
    level with water in them: ETOPO5's mean there includes the sea floor, down to -5600 m off
    the coasts of CONUS), the real elevation elsewhere (dry land below sea level keeps it)."""
    z = static["elevation"].to_numpy().astype(float)
    wet = static["landcover"].to_numpy() == 0
    frac = static.get("landcover_fraction")
    if frac is not None and 0 in frac["lc_class"]:
        wet |= np.nan_to_num(frac.sel(lc_class=0).transpose("lat", "lon").to_numpy()) > 0
    sea = (z < 0) & wet
    return np.where(sea, 0.0, z) if sea.any() else z


def _bump(doy, peak, sd):
    return np.exp(-0.5 * ((doy - peak) / sd) ** 2)


@dataclass
class YearWeather:
    """One year of daily weather; arrays are (day, lat, lon) float32."""

    time: pd.DatetimeIndex
    precip: np.ndarray  # mm day-1
    tair: np.ndarray  # degC, daily mean (mid-range)
    tmin: np.ndarray  # degC
    tmax: np.ndarray  # degC
    swdown: np.ndarray  # W m-2
    vpd: np.ndarray  # kPa
    qair: np.ndarray  # kg kg-1
    cloud: np.ndarray  # 0..1, cloudiness used for radiation

    @property
    def doy(self) -> np.ndarray:
        return self.time.day_of_year.to_numpy()


class WeatherGenerator:
    """Daily weather for any year, a pure function of (static fields, seed, year)."""

    def __init__(self, static: xr.Dataset, seed: int):
        self.seed = int(seed)
        self.lat1d = static["lat"].to_numpy()
        self.lon1d = static["lon"].to_numpy()
        z = surface_elevation(static)
        self.elevation = z
        self.lat = np.broadcast_to(self.lat1d[:, None], z.shape)
        self.shape = z.shape
        frac = static["landcover_fraction"]
        self._classes = frac["lc_class"].to_numpy()
        self._fractions = np.nan_to_num(frac.transpose("lc_class", "lat", "lon").to_numpy().astype(float))
        self._fields = {
            "temperature": (SpectralField(self.lat1d, self.lon1d, T_ANOM_LENGTH_KM), T_ANOM_PHI),
            "synoptic": (SpectralField(self.lat1d, self.lon1d, SYNOPTIC_LENGTH_KM), SYNOPTIC_PHI),
            "convective": (SpectralField(self.lat1d, self.lon1d, CONVECTIVE_LENGTH_KM), CONVECTIVE_PHI),
            "dewpoint": (SpectralField(self.lat1d, self.lon1d, TD_ANOM_LENGTH_KM), TD_ANOM_PHI),
        }
        self._season_cache: dict[int, dict] = {}
        self._index_cache: dict[int, dict] = {}

    # ------------------------------------------------------------------ static climate
    @cached_property
    def height(self) -> np.ndarray:
        """0..1: height above the valley floors of the partly smoothed elevation."""
        smooth = gaussian_filter(self.elevation, OROGRAPHIC_SMOOTHING_CELLS, mode="nearest")
        z_eff = (1 - OROGRAPHIC_SMOOTHED_WEIGHT) * self.elevation + OROGRAPHIC_SMOOTHED_WEIGHT * smooth
        return np.clip((z_eff - Z_LOW) / Z_SPAN, 0.0, 1.0).astype(F32)

    @cached_property
    def precip_floor(self) -> np.ndarray:
        """Annual precipitation (mm) the land cover needs: over ~50 km, the mean need of the forests
        and croplands (:data:`HUMID_CLASS_PRECIP`), times their share of the land up to
        :data:`HUMID_FULL_SHARE` (then 1); 0 where there are none, and on open water."""
        need, humid, land = np.zeros(self.shape), np.zeros(self.shape), np.zeros(self.shape)
        for code, f in zip(self._classes, self._fractions):
            if code != 0:
                land += f
            if int(code) in HUMID_CLASS_PRECIP:
                humid += f
                need += HUMID_CLASS_PRECIP[int(code)] * f
        need, humid, land = (gaussian_filter(a, FLOOR_SMOOTHING_CELLS, mode="nearest") for a in (need, humid, land))
        mean_need = np.where(humid > 1e-3, need / np.maximum(humid, 1e-3), 0.0)
        share = np.where(land > 1e-3, humid / np.maximum(land, 1e-3), 0.0)
        return (mean_need * np.clip(share / HUMID_FULL_SHARE, 0.0, 1.0)).astype(F32)

    @cached_property
    def wetness(self) -> np.ndarray:
        """The height (0..~1.1) that sets annual totals and wet-day frequency: :attr:`height`, or
        where the land cover needs more (:attr:`precip_floor`), the height at which the
        precipitation-elevation law gives that much."""
        need = np.clip((self.precip_floor - P_BASE) / P_MOUNTAIN, 0.0, None) ** (1.0 / P_EXPONENT)
        return np.maximum(self.height, need.astype(F32))

    @cached_property
    def annual_precip(self) -> np.ndarray:
        """Climatological annual precipitation (mm), before the yearly multiplier."""
        field = SpectralField(self.lat1d, self.lon1d, P_PATTERN_LENGTH_KM)
        pattern = field.synthesize(field.innovations(stream(self.seed, "precip-pattern"), 1))[0]
        lognormal = np.exp(P_PATTERN_SD * pattern - 0.5 * P_PATTERN_SD**2)
        return ((P_BASE + P_MOUNTAIN * self.wetness**P_EXPONENT) * lognormal).astype(F32)

    @cached_property
    def wet_day_frequency(self) -> np.ndarray:
        return (P_WET_LOW + P_WET_SPAN * self.wetness).astype(F32)

    @cached_property
    def aridity(self) -> np.ndarray:
        return np.clip((ARIDITY_WET - self.annual_precip) / ARIDITY_SPAN, 0.0, 1.0).astype(F32)

    @cached_property
    def monsoon_strength(self) -> np.ndarray:
        frac = np.clip((MONSOON_LAT_ZERO - self.lat) / (MONSOON_LAT_ZERO - MONSOON_LAT_FULL), 0.0, 1.0)
        west, east = MONSOON_LON_FULL
        region = np.clip(1.0 - np.maximum(west - self.lon1d, self.lon1d - east) / MONSOON_LON_FADE, 0.0, 1.0)
        frac = frac * region[None, :]  # (x 1.0 inside the region: exactly the UCRB's numbers)
        return (MONSOON_AMP * frac).astype(F32)

    @cached_property
    def pressure(self) -> np.ndarray:
        return surface_pressure(self.elevation).astype(F32)

    def _season(self, ndays: int) -> dict:
        """Climatological (day, lat, lon) tables for a year of ``ndays`` days (cached)."""
        if ndays in self._season_cache:
            return self._season_cache[ndays]
        if self.lat.size * ndays * 4 * 8 > SEASON_CACHE_BYTES:
            self._season_cache.clear()  # a large domain keeps one year length (~0.9 GB on CONUS), not both
        doy = np.arange(1, ndays + 1, dtype=float)
        d = doy[:, None, None]
        phase = 2 * np.pi * (d - T_WARMEST_DOY) / DAYS_PER_YEAR
        lat, z = self.lat, self.elevation
        t_ann = T_REF - LAPSE_RATE * (z - Z_REF) + T_LAT_GRADIENT * (lat - LAT_REF)
        if (z < Z_LOWLAND).any():  # lowlands (none on the UCRB): towards the sea-level climate
            t_top = T_REF - LAPSE_RATE * (Z_LOWLAND - Z_REF) + T_LAT_GRADIENT * (lat - LAT_REF)
            t_sea = T_SEA_REF + T_SEA_LAT_GRADIENT * (lat - LAT_REF)
            w = np.clip(z / Z_LOWLAND, 0.0, 1.0)
            t_ann = np.where(z < Z_LOWLAND, t_sea + (t_top - t_sea) * w, t_ann)
        t_amp = T_AMP_37N + T_AMP_PER_LAT * (lat - 37.0) + T_AMP_PER_M * (z - 1500.0)
        north = np.clip((lat - STORM_TRACK_LAT_SOUTH) / (STORM_TRACK_LAT_NORTH - STORM_TRACK_LAT_SOUTH), 0.0, 1.0)
        winter_amp = (P_WINTER_AMP_SOUTH + (P_WINTER_AMP_NORTH - P_WINTER_AMP_SOUTH) * north
                      + P_WINTER_AMP_ALTITUDE * self.height)
        monsoon = _bump(d, MONSOON_PEAK_DOY, MONSOON_SD_DAYS)
        monsoon_mean = MONSOON_SD_DAYS * np.sqrt(2 * np.pi) / DAYS_PER_YEAR
        shape = (1 + winter_amp * np.cos(2 * np.pi * (d - 15) / DAYS_PER_YEAR)
                 + self.monsoon_strength * (monsoon - monsoon_mean))
        shape /= shape.mean(axis=0)
        dry_season = _bump(d, TD_DRY_DOY, TD_DRY_SD)
        s = {
            "t_clim": (t_ann + t_amp * np.cos(phase)).astype(F32),
            "t_cloud": (-CLOUD_TEMPERATURE_EFFECT * np.cos(phase)).astype(F32),
            "t_sd": (T_ANOM_SD_MEAN + T_ANOM_SD_SEASONAL * np.cos(2 * np.pi * (d - 15) / DAYS_PER_YEAR)).astype(F32),
            "p_shape": shape.astype(F32),
            # Cloudiness is measured from the climatological wet-day threshold.
            "cloud_threshold": ndtri(
                1 - np.clip(self.wet_day_frequency * shape**WET_DAY_SHARE, 0.01, P_WET_MAX)).astype(F32),
            "mix": (MIX_WINTER + MIX_SUMMER_EXTRA * _bump(d, MIX_PEAK_DOY, MIX_SD_DAYS)).astype(F32),
            "dtr_clear": (DTR_BASE + DTR_ARID * self.aridity
                          + DTR_SPRING * _bump(d, DTR_SPRING_DOY, DTR_SPRING_SD)).astype(F32),
            "td_dry": np.maximum(TD_BASE + TD_ARID * self.aridity * dry_season
                                 - TD_MONSOON * (self.monsoon_strength / MONSOON_AMP) * monsoon, 0.0).astype(F32),
            "rso": (extraterrestrial_radiation(self.lat1d, doy)[:, :, None]
                    * (CLEAR_SKY_BASE + CLEAR_SKY_PER_M * z)).astype(F32),
        }
        self._season_cache[ndays] = s
        return s

    # ------------------------------------------------------------------ yearly parts
    def year_indices(self, year: int) -> dict[str, float]:
        """The yearly random indices (unit variance): precipitation, dipole, temperature."""
        if year not in self._index_cache:
            self._index_cache[year] = self._year_indices(year)
        return self._index_cache[year]

    def _year_indices(self, year: int) -> dict[str, float]:
        x_p = annual_index(self.seed, "precip-year", year, P_YEAR_PHI)
        x_d = annual_index(self.seed, "dipole-year", year, P_DIPOLE_PHI)
        x_t = annual_index(self.seed, "temperature-year", year, T_YEAR_PHI)
        r = T_YEAR_PRECIP_CORR
        return {"precip": x_p, "dipole": x_d, "temperature": r * x_p + np.sqrt(1 - r**2) * x_t}

    def precip_multiplier(self, year: int) -> np.ndarray:
        """Yearly multiplier of precipitation (lat, lon), mean 1 over years."""
        ix = self.year_indices(year)
        dipole = np.clip((DIPOLE_LAT - self.lat) / 3.0, -1.0, 1.0) * P_DIPOLE_SD
        log_m = P_YEAR_SD * ix["precip"] + dipole * ix["dipole"] - 0.5 * (P_YEAR_SD**2 + dipole**2)
        return np.exp(log_m)

    def temperature(self, year: int, cloud: np.ndarray | None = None) -> np.ndarray:
        """Daily mean temperature (day, lat, lon) degC; ``cloud`` adds the cloud effect."""
        ndays = _days_in_year(year)
        s = self._season(ndays)
        frac_year = year + (np.arange(ndays, dtype=F32) + 0.5) / ndays
        trend = WARMING_K_PER_YEAR * (frac_year - TREND_CENTRE_YEAR)
        offset = trend + T_YEAR_SD * self.year_indices(year)["temperature"]
        field, phi = self._fields["temperature"]
        anom = ar1_year_field(field, self.seed, "temperature", year, ndays, 365, phi)
        t = s["t_clim"] + offset.astype(F32)[:, None, None] + s["t_sd"] * anom
        if cloud is not None:
            t += s["t_cloud"] * cloud
        return t

    def year(self, year: int) -> YearWeather:
        """All variables for one calendar year."""
        ndays = _days_in_year(year)
        s = self._season(ndays)
        time = pd.date_range(f"{year}-01-01", periods=ndays, freq="D")

        # Precipitation: occurrence and amount from one latent field.
        mult = self.precip_multiplier(year).astype(F32)
        p_wet = self.wet_day_frequency * s["p_shape"] ** WET_DAY_SHARE * mult**P_YEAR_FREQUENCY_SHARE
        p_wet = np.clip(p_wet, 0.01, P_WET_MAX)
        mean_daily = (self.annual_precip / DAYS_PER_YEAR).astype(F32) * s["p_shape"] * mult
        intensity = mean_daily / p_wet
        syn = ar1_year_field(*self._field_args("synoptic", year, ndays))
        conv = ar1_year_field(*self._field_args("convective", year, ndays))
        latent = np.cos(s["mix"]) * syn + np.sin(s["mix"]) * conv
        # Wet where Phi(latent) > 1 - p; the excess maps to a uniform u in (0, 1), and u to an
        # exponential amount, so the wettest part of a storm gets the largest amounts.
        u = (ndtr(latent) - (1 - p_wet)) / p_wet
        precip = np.where(u > 0, -intensity * np.log1p(-np.minimum(u, F32(1 - 1e-6))), F32(0))
        cloud = ndtr(CLOUD_SLOPE * (latent - s["cloud_threshold"]) + CLOUD_OFFSET)
        del syn, conv, u, latent, p_wet, intensity, mean_daily

        tair = self.temperature(year, cloud)
        dtr = s["dtr_clear"] * (1 - DTR_CLOUD_CUT * cloud)
        tmin = tair - 0.5 * dtr
        tmax = tair + 0.5 * dtr
        swdown = s["rso"] * (1 - OVERCAST_LOSS * cloud)

        dew_anom = ar1_year_field(*self._field_args("dewpoint", year, ndays))
        depression = np.maximum(s["td_dry"] * (1 - TD_CLOUD_CUT * cloud) + TD_ANOM_SD * dew_anom, 0.0)
        ea = saturation_vapour_pressure(np.minimum(tmin - depression, TD_MAX))
        es = 0.5 * (saturation_vapour_pressure(tmax) + saturation_vapour_pressure(tmin))
        vpd = np.maximum(es - ea, 0.0)  # FAO-56 eqs. 12, 14: es from tmax and tmin, ea at the dewpoint
        qair = specific_humidity(ea, self.pressure.astype(F32))
        return YearWeather(time=time, precip=precip, tair=tair, tmin=tmin, tmax=tmax, swdown=swdown,
                           vpd=vpd.astype(F32), qair=qair.astype(F32), cloud=cloud)

    def _field_args(self, name: str, year: int, ndays: int):
        field, phi = self._fields[name]
        return field, self.seed, name, year, ndays, 365, phi


def _days_in_year(year: int) -> int:
    return 366 if pd.Timestamp(year=year, month=1, day=1).is_leap_year else 365
