"""Process-based LAI: the growing season index (GSI) phenology model with water limitation.

Usable on its own on any model-ready Dataset (see :mod:`vegviz.contract`)::

    from vegviz.physics import add_lai_process
    ds = add_lai_process(ds)                       # calibrates on 1981-2001 only
    ds["lai_process"]                              # float32 (time, lat, lon), m2 m-2

The model (details and sources in :mod:`vegviz.physics.gsi` and :mod:`vegviz.physics.lai`):

1. daily iGSI = iTmin * iVPD * iPhotoperiod (Jolly, Nemani & Running 2005, Global Change
   Biology 11:619-632), daylength from FAO-56 (Allen et al. 1998) eq. 24 and 34;
2. times a water term W from the 90-day antecedent moisture index P / PET (PET of
   Hargreaves & Samani 1985), 0 at P/PET <= 0.05 and 1 at >= 0.5;
3. index = trailing 21-day mean (causal: today and the 20 days before);
4. lai_process = lai_min + (lai_max - lai_min) * index with per-cell 5th/95th percentiles of
   the observed LAI in the calibration period.

For records larger than memory, :func:`iter_lai_process` gives the same values block by
block of days (running windows carried over), with peak memory independent of the record's length.

Thresholds and windows live in :class:`GSIParameters`.
"""
from .gsi import (
    growing_season_index,
    i_photoperiod,
    i_tmin,
    i_vpd,
    indicator,
    moisture_indicator,
    potential_evapotranspiration,
    process_index,
    water_limitation,
)
from .lai import CALIBRATION, add_lai_process, calibrate_lai_range, iter_lai_process
from .meteo import hargreaves_pet, saturation_vapour_pressure, surface_pressure, vpd_from_qair
from .params import DEFAULT, GSIParameters
from .running import TrailingMean, TrailingSum, trailing_mean
from .solar import daylength, extraterrestrial_radiation, solar_declination

__all__ = [
    "CALIBRATION",
    "DEFAULT",
    "GSIParameters",
    "TrailingMean",
    "TrailingSum",
    "add_lai_process",
    "calibrate_lai_range",
    "daylength",
    "extraterrestrial_radiation",
    "growing_season_index",
    "hargreaves_pet",
    "i_photoperiod",
    "i_tmin",
    "i_vpd",
    "indicator",
    "iter_lai_process",
    "moisture_indicator",
    "potential_evapotranspiration",
    "process_index",
    "saturation_vapour_pressure",
    "solar_declination",
    "surface_pressure",
    "trailing_mean",
    "vpd_from_qair",
    "water_limitation",
]
