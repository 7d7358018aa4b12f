"""Climate scenarios: a baseline's forcings changed by delta change or by quantile delta mapping of GCM runs.

    from vegviz.scenarios import DeltaChange, build_scenario, open_scenario, open_baseline
    path = build_scenario("warm2", "virtual_ucrb", "2009:2016", DeltaChange(dt=2, precip=0.9))
    scen = open_scenario("warm2")      # contract layout without lai; lai_process recomputed
    base = open_baseline(scen)         # the baseline over the same days

* :class:`DeltaChange` (:mod:`.delta`): additive temperature, multiplicative precipitation and
  radiation, one value or 12 monthly values; humidity at constant relative humidity (:mod:`.humidity`).
* :class:`GCMScenario` / :func:`quantile_delta_mapping` (:mod:`.qdm`): the change of every
  quantile, month and variable between a GCM's historical and future runs (regridded with
  :func:`vegviz.grid.regrid_mean`) applied to the baseline by QDM (Cannon et al. 2015, with xsdba).
* :func:`build_scenario`, :func:`open_scenario`, :func:`list_scenarios`, :func:`open_baseline`
  (:mod:`.store`): atomic Zarr stores in ``<data dir>/scenarios``, also listed in the catalog
  (``vegviz.open_catalog().scenarios``).
"""
from .delta import DeltaChange, ScenarioError
from .store import build_scenario, list_scenarios, open_baseline, open_scenario, scenario_path, scenarios_dir
from .summary import change_summary

__all__ = ["DeltaChange", "GCMScenario", "ScenarioError", "build_scenario", "change_summary", "list_scenarios",
           "open_baseline", "open_scenario", "quantile_delta_mapping", "scenario_path", "scenarios_dir"]


def __getattr__(name):  # xsdba (and its numba) loads only when a GCM scenario is asked for
    if name in ("GCMScenario", "quantile_delta_mapping"):
        from . import qdm

        return getattr(qdm, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
