"""Virtual basins: a SYNTHETIC basin on the real static fields of any domain, the embedded default data set.

A stochastic weather generator driven by the domain's real elevation, latitude and land
cover, a "true" ecohydrological vegetation model on its real MODIS land cover, and a
GLOBMAP-like satellite observation operator, daily on the domain's window of the NLDAS-2
1/8-degree grid, deterministic for a seed and labelled synthetic everywhere
(``ds.attrs["synthetic"] == 1``; ``ds.attrs["calibration"]`` says what of the climate is
calibrated on the UCRB)::

    from vegviz.data.virtual import open_virtual_basin
    ds = open_virtual_basin()                      # the study's UCRB, 1981-2016; built and cached on first use
    ds = open_virtual_basin("small")               # 1998-2005, for tests and demos
    ds = open_virtual_basin("small", domain="gunnison")   # any built-in or user domain (vegviz.domains)

The modules hold the models and their sources: :mod:`.weather`, :mod:`.vegetation`,
:mod:`.observation`; :mod:`.chain` chains them, :mod:`.store` streams them to Zarr.
"""
from .chain import GENERATOR_VERSION, SPINUP_YEARS, VirtualBasin, generate
from .store import VARIANTS, build_store, cache_dir, open_virtual_basin, read_marker, static_fingerprint, store_name

__all__ = [
    "GENERATOR_VERSION",
    "SPINUP_YEARS",
    "VARIANTS",
    "VirtualBasin",
    "build_store",
    "cache_dir",
    "generate",
    "open_virtual_basin",
    "read_marker",
    "static_fingerprint",
    "store_name",
]
