"""The virtual UCRB: a SYNTHETIC basin on the study grid, the embedded default data set.

A stochastic weather generator driven by the real elevation, a "true" ecohydrological
vegetation model on the real MODIS land cover, and a GLOBMAP-like satellite observation
operator, daily on the UCRB 1/8-degree grid, deterministic for a seed and labelled
synthetic everywhere (``ds.attrs["synthetic"] == 1``)::

    from vegviz.data.virtual import open_virtual_basin
    ds = open_virtual_basin()            # 1981-2016; built and cached on first use (~1 min)
    ds = open_virtual_basin("small")     # 1998-2005, for tests and demos

The modules hold the models and their sources: :mod:`.weather`, :mod:`.vegetation`,
:mod:`.observation`; :mod:`.chain` chains them, :mod:`.store` streams them to Zarr.
"""
from .chain import GENERATOR_VERSION, SPINUP_YEARS, VirtualBasin, generate
from .store import VARIANTS, build_store, cache_dir, open_virtual_basin, read_marker, store_name

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
    "store_name",
]
