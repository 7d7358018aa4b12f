"""Panel dashboards: training, daily LAI maps, skill, time series, comparisons, scenarios, and the app joining them.

Each dashboard is a ``pn.viewable.Viewer`` with declared parameters: show it inline in a
notebook (``LaiMaps()``), serve it (``LaiMaps().servable()``), or run the combined app with
``panel serve dashboards/`` from the repository root. They read data only through
:mod:`vegviz.dashboards.sources` (the catalog and the runs directory).
"""
from __future__ import annotations

import importlib

_LAZY = {
    "LaiMaps": "maps", "Skill": "skill", "TimeSeries": "timeseries", "TrainingDashboard": "training",
    "Compare": "compare", "ScenariosDashboard": "scenarios", "App": "app",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(name)
