"""Named training settings: one option on the command line, one click in the training dashboard.

    vegviz train --preset quick                  # minutes on a laptop CPU: the small virtual basin
    vegviz experiment --preset study             # the study's settings (the Config defaults)
    vegviz train --preset quick --domain gunnison --set window=120    # later options win

``quick`` trains on the small virtual basin of the domain (1998-2005) with an 8-filter network on
90-day windows for 3 epochs; ``study`` is the study's configuration (the full virtual basin,
365-day windows, 25 epochs with early stopping). The Binder demo (:mod:`vegviz.demo`) is ``quick``
with two threads. Importing this module loads no torch.
"""
from __future__ import annotations

import copy

__all__ = ["PRESETS", "dashboard_settings", "preset_data", "preset_settings"]

#: Config settings per preset (besides ``data``: :func:`preset_data`). Each quick setting bounds time or
#: memory: the batch, window and filters bound the activations kept for the backward pass (``chunk``
#: truncates it further); three epochs show the loss falling.
PRESETS: dict[str, dict] = {
    "quick": {"hparams": {"filters": 8}, "window": 90, "burn_in": 30, "stride": 45, "chunk": 30, "batch_size": 4,
              "max_epochs": 3, "patience": 3},
    "study": {},  # the Config defaults are the study's settings
}
#: which virtual basin of the domain a preset trains on
_VARIANT = {"quick": "small", "study": "full"}


def _check(name: str) -> str:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}. Fix: choose one of {', '.join(PRESETS)}")
    return name


def preset_settings(name: str) -> dict:
    """The Config settings of preset ``name`` (a copy; ``data`` is not among them)."""
    return copy.deepcopy(PRESETS[_check(name)])


def preset_data(name: str, domain=None) -> str:
    """The catalog entry preset ``name`` trains on: the full or small virtual basin of ``domain`` (default UCRB)."""
    from .domains import virtual_entry

    return virtual_entry(domain if domain is not None else "ucrb", _VARIANT[_check(name)])


def dashboard_settings(name: str, domain=None) -> dict:
    """Preset ``name`` under the :class:`~vegviz.dashboards.TrainingDashboard`'s parameter names (all its
    settings a preset fixes: a ``study`` preset resets the ones ``quick`` changed)."""
    from .training.config import Config, ModelConfig

    s = {**{f: getattr(Config, f) for f in ("window", "burn_in", "stride", "chunk", "batch_size", "max_epochs",
                                             "patience")},
         **preset_settings(name)}
    filters = s.get("hparams", {}).get("filters", ModelConfig().filters)
    return {"data": preset_data(name, domain), "filters": filters, "max_epochs": s["max_epochs"],
            "window": s["window"], "burn_in": s["burn_in"], "stride": s["stride"], "chunk": s["chunk"],
            "batch_size": s["batch_size"], "extra": {"patience": s["patience"]}}
