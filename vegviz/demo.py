"""The Binder demo's settings: small enough that the dashboards and one training run fit in 2 GB.

A free Binder machine (mybinder.org) has about 2 GB of memory, a few CPU cores and no GPU.
``binder/start`` sets ``VEGVIZ_DEMO=binder``; then :func:`dashboard_defaults` gives the
:class:`~vegviz.dashboards.TrainingDashboard` these settings instead of the study's (the
study's 365-day windows on the full basin would not fit), and notebooks can ask for
:func:`demo_config`::

    from vegviz.demo import demo_config
    run = vegviz.training.train(demo_config(model="convlstm_physics"))

The memory these settings need is measured by ``benchmarks/bench_binder_memory.py``
(serving the dashboards, opening the page and training one model) and stated in
``binder/README.md``.
"""
from __future__ import annotations

import os

from .presets import dashboard_settings, preset_data, preset_settings

__all__ = ["DEMO_ENV", "DEMO_MAX_CELLS", "DEMO_SETTINGS", "dashboard_defaults", "demo_config", "demo_data",
           "demo_mode", "fits_demo"]

DEMO_ENV = "VEGVIZ_DEMO"

#: the demo's Config settings (besides ``data``): the ``quick`` preset (:mod:`vegviz.presets`: a small basin,
#: an 8-filter network on 90-day windows, three epochs), with two threads to match Binder's CPU share
DEMO_SETTINGS: dict = {**preset_settings("quick"), "num_threads": 2}
DEMO_DATA = "virtual_ucrb_small"
#: the largest domain (cells of its window) whose data the demo offers for training: the UCRB's 63 x 54,
#: for which the memory was measured; CONUS (224 x 464) would not fit in 2 GB
DEMO_MAX_CELLS = 63 * 54


def demo_mode() -> str | None:
    """The demo named by ``$VEGVIZ_DEMO`` ("binder"), or None when it is unset or empty."""
    value = os.environ.get(DEMO_ENV, "").strip().lower()
    return value or None


def demo_data(domain=None) -> str:
    """The demo's data set: the small virtual basin of ``domain`` (a name or Domain; default the study's)."""
    return DEMO_DATA if domain is None else preset_data("quick", domain)


def fits_demo(domain) -> bool:
    """Whether a domain is small enough for the demo machine (at most :data:`DEMO_MAX_CELLS` cells)."""
    nlat, nlon = domain.grid.shape
    return nlat * nlon <= DEMO_MAX_CELLS


def demo_config(domain=None, **overrides):
    """The Binder demo's :class:`~vegviz.training.Config` on the small virtual basin of ``domain``
    (default the study's UCRB); ``overrides`` win (``data=`` too)."""
    from .training import Config

    settings = {**DEMO_SETTINGS, **overrides}
    data = settings.pop("data", demo_data(domain))
    return Config.for_data(data, **settings)


def dashboard_defaults() -> dict:
    """TrainingDashboard settings for the demo when ``$VEGVIZ_DEMO`` is set, else ``{}`` (the normal defaults).

    The same numbers as :func:`demo_config`, under the dashboard's parameter names; the
    thread count never exceeds this machine's cores (the widget's bound).
    """
    if demo_mode() is None:
        return {}
    return {**dashboard_settings("quick"), "data": DEMO_DATA,
            "threads": max(1, min(DEMO_SETTINGS["num_threads"], os.cpu_count() or 1))}
