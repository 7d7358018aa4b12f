"""Parameters of the process-based LAI model, with the published defaults."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class GSIParameters:
    """Thresholds and windows of the growing season index (GSI) LAI model.

    The indicator thresholds are those of Jolly, Nemani & Running (2005), Global Change
    Biology 11:619-632, doi:10.1111/j.1365-2486.2005.00930.x (their Table 1 / Fig. 1):
    each limiting factor is a linear ramp between two thresholds.
    """

    #: iTmin is 0 at or below ``tmin_lo`` and 1 at or above ``tmin_hi`` (degC; Jolly et al. 2005)
    tmin_lo: float = -2.0
    tmin_hi: float = 5.0
    #: iVPD is 1 at or below ``vpd_lo`` and 0 at or above ``vpd_hi`` (kPa; Jolly et al. 2005)
    vpd_lo: float = 0.9
    vpd_hi: float = 4.1
    #: iPhotoperiod is 0 at or below ``photoperiod_lo`` and 1 at or above ``photoperiod_hi``
    #: (hours; Jolly et al. 2005 give 36000 s and 39600 s)
    photoperiod_lo: float = 10.0
    photoperiod_hi: float = 11.0
    #: running-mean window of the daily index (days; Jolly et al. 2005 use 21 days)
    window: int = 21
    #: solar altitude (degrees) that defines sunrise/sunset for the daylength: -0.833 counts
    #: atmospheric refraction (34') and the solar semi-diameter (16'), Meeus (1998),
    #: Astronomical Algorithms, ch. 15; 0 gives FAO-56 eq. 25/34 (geometric centre of the Sun)
    sun_altitude: float = -0.833
    #: length (days) of the antecedent window of the water-limitation term
    water_window: int = 90
    #: the water term is 0 at or below ``moisture_lo`` and 1 at or above ``moisture_hi`` of
    #: the antecedent moisture index P/PET; the UNEP aridity-index boundaries hyper-arid/arid
    #: (0.05) and semi-arid/dry sub-humid (0.5) (Middleton & Thomas 1992/1997, World Atlas of
    #: Desertification, UNEP), applied to the antecedent window instead of the long-term climate
    moisture_lo: float = 0.05
    moisture_hi: float = 0.5
    #: quantiles of the observed LAI of a cell in the calibration period that give lai_min, lai_max
    lai_quantiles: tuple[float, float] = (0.05, 0.95)
    #: cells with fewer observations than this in the calibration period take a fallback range
    min_observations: int = 10

    def __post_init__(self):
        for name in ("tmin", "vpd", "photoperiod", "moisture"):
            lo, hi = getattr(self, f"{name}_lo"), getattr(self, f"{name}_hi")
            if not lo < hi:
                raise ValueError(f"GSIParameters: {name}_lo ({lo}) must be below {name}_hi ({hi}). "
                                 "Fix: pass thresholds in increasing order")
        for name in ("window", "water_window", "min_observations"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise ValueError(f"GSIParameters: {name} must be a positive integer, got {v!r}")
        q0, q1 = self.lai_quantiles
        if not 0 <= q0 < q1 <= 1:
            raise ValueError(f"GSIParameters: lai_quantiles must satisfy 0 <= low < high <= 1, got "
                             f"{self.lai_quantiles}. Fix: e.g. lai_quantiles=(0.05, 0.95)")

    def to_json(self) -> str:
        """The parameters as a JSON string (for netCDF/Zarr attributes)."""
        return json.dumps(asdict(self))


DEFAULT = GSIParameters()
