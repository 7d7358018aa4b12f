"""Ensembles of one model: N members that differ only in their random seed.

The one home of the member rules:

* member ``k`` (0-based) of run ``base`` is the run named :func:`member_name` ``(base, k)``
  = ``"<base>-m<k>"`` (in an experiment ``base`` is the model, e.g. ``convlstm-m1``);
* its configuration is the base one with ``seed = base seed + k`` (:func:`member_config`),
  which changes the initial weights and the sample order, nothing else;
* the ensemble's prediction is the member mean and its spread the standard deviation
  across members with ``ddof=1`` (the unbiased variance estimate: with 2-5 members the
  population formula would understate the spread by a factor sqrt((N-1)/N))
  (:func:`ensemble_mean_spread`).

Seed ensembles measure the part of a deep-learning model's uncertainty that comes from
training alone (Lakshminarayanan et al. 2017, "Simple and scalable predictive
uncertainty estimation using deep ensembles", NeurIPS 30), and their mean is usually more
skilful than a typical member.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from .config import Config, ConfigError

__all__ = ["SPREAD_SUFFIX", "check_members", "ensemble_mean_spread", "member_config", "member_name"]

#: suffix of an ensemble's spread variable in combined predictions (``convlstm_spread``)
SPREAD_SUFFIX = "_spread"


def check_members(members) -> int:
    if isinstance(members, bool) or not isinstance(members, (int, np.integer)) or members < 1:
        raise ConfigError(f"members: expected a whole number >= 1 (1 = no ensemble), got {members!r}")
    return int(members)


def member_name(base: str, k: int) -> str:
    """The run name of member ``k`` of ``base``: ``'<base>-m<k>'``."""
    return f"{base}-m{int(k)}"


def member_config(config: Config, k: int, name: str | None = None) -> Config:
    """``config`` for member ``k``: seed + k (and ``name`` when given)."""
    changes = {"seed": config.seed + int(k)}
    if name is not None:
        changes["name"] = name
    return config.replace(**changes)


def ensemble_mean_spread(members: list[xr.DataArray], name: str) -> tuple[xr.DataArray, xr.DataArray]:
    """(mean, spread) across ``members`` (same grid and dates), named ``name`` and ``name + '_spread'``.

    The spread variable carries ``ensemble = "spread"``, which keeps it out of
    :func:`vegviz.evaluation.model_variables` (it is not a simulation of LAI to score).
    """
    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
    xr.align(*members, join="exact")
    stack = xr.concat(members, dim="member", coords="minimal", compat="override", join="override")
    mean = stack.mean("member").astype(np.float32)
    spread = stack.std("member", ddof=1).astype(np.float32)
    attrs = {k: v for k, v in members[0].attrs.items() if k in ("units", "standard_name")}
    mean = mean.rename(name).assign_attrs(attrs, ensemble="mean", ensemble_members=len(members),
                                          long_name=f"LAI, mean of {len(members)} {name} ensemble members")
    spread = spread.rename(name + SPREAD_SUFFIX).assign_attrs(
        units=attrs.get("units", "m2 m-2"), ensemble="spread", ensemble_members=len(members),
        long_name=f"standard deviation (ddof=1) of LAI across {len(members)} {name} ensemble members")
    return mean, spread
