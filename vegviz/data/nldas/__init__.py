"""NLDAS-2 hourly forcing: read both formats, crop to the grid, aggregate to daily, write Zarr, fetch.

::

    from vegviz.data import nldas
    ds = nldas.nldas_daily("downloads/nldas", start="2001-01-01", end="2001-12-31")  # lazy
    nldas.write_daily_zarr("downloads/nldas", "forcing.zarr")        # resumable, dask/distributed
    nldas.plan_granules("2001-01-01", "2001-01-31")                     # offline list of granules
    nldas.fetch("2001-01-01", "2001-01-31", "downloads/nldas")         # Earthdata login needed

Day boundary, formulas and sources: :mod:`.daily` and docs/real_data.md.
"""
from .daily import DAILY, aggregate_day, find_granules, group_days, nldas_daily
from .download import CredentialsMissing, earthdata_credentials, fetch, plan_granules
from .files import FIELDS, REQUIRED, Granule, NldasError, granule_name, open_hourly, parse_name, read_granule
from .store import open_daily_zarr, partial_path, read_marker, write_daily_zarr

__all__ = [
    "DAILY", "FIELDS", "REQUIRED", "CredentialsMissing", "Granule", "NldasError", "aggregate_day",
    "earthdata_credentials", "fetch", "find_granules", "granule_name", "group_days", "nldas_daily",
    "open_daily_zarr", "open_hourly", "parse_name", "partial_path", "plan_granules", "read_granule",
    "read_marker", "write_daily_zarr",
]
