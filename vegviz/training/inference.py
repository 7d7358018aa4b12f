"""Predictions: a trained model run over a whole data set, as a Dataset on the same grid.

The model runs sequence-to-sequence over the full period from a zero state, with the
state carried from chunk to chunk; the inputs are read out of core (:mod:`.reader`), a
chunk at a time, over the whole domain or in tiles with a halo (``config.tile``,
``config.halo``; :mod:`.tiles`), so only the output grows with the period. The first
``config.burn_in`` days spin the state up and are NaN in the output (attribute
``burn_in_days``), as are cells outside the mask. The output has one variable, named
after the model (its registry name, e.g. ``convlstm``), and provenance attributes: the
configuration as YAML, the checkpoint and its SHA-256, the source data's attributes and
the vegviz version.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from ..contract import cf_attrs
from ..io import write_netcdf_atomic
from .checkpoint import file_sha256, vegviz_version
from .config import Config
from .data import prepare
from .device import resolve, settings
from .reader import BlockCache, WindowReader
from .tiles import stream
from .trainer import INFERENCE_CHUNK
from .windows import Normalization

__all__ = ["predict", "write_predictions"]


def _attr(value):
    """A NetCDF-safe attribute value (bools and None are not)."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if value is None:
        return ""
    if isinstance(value, (str, int, float, np.integer, np.floating)):
        return value
    return str(value)


def predict(model: torch.nn.Module, ds: xr.Dataset, config: Config, stats: Normalization, *,
            checkpoint=None, device: str | None = None, chunk: int = INFERENCE_CHUNK,
            name: str | None = None, threads: int | None = None, tile: int | None = None,
            halo: int | None = None) -> xr.Dataset:
    """Run ``model`` over the whole period of ``ds``; LAI (m2 m-2) on the grid of ``ds``.

    Parameters
    ----------
    model
        A trained model (e.g. ``Run.model()``).
    ds
        A model-ready Dataset holding the model's input channels and ``mask`` (the target
        is not needed). It is validated against the contract.
    config, stats
        The run's configuration and normalisation statistics.
    checkpoint
        Path of the checkpoint the weights came from (recorded with its SHA-256).
    device
        Overrides ``config.device``.
    chunk
        Days per forward call.
    name
        Variable name (default: ``config.model``).
    threads
        CPU threads for this call (default: the run's ``num_threads``, a training setting: runs
        trained side by side often have 1). A projection passes torch's thread count.
    tile, halo
        Predict in ``tile`` x ``tile`` squares, each run with ``halo`` more cells on every side
        (default: ``config.tile`` and ``config.halo``; ``tile`` None: the whole domain at once).
    """
    stats.check_channels(config.channels)
    sub = prepare(ds, config, with_target=False)
    hw = resolve(config, device)
    model = model.to(hw.device)
    t = sub["time"].values
    reader = WindowReader(sub, stats, t[0], t[-1], with_target=False, cache=BlockCache(config.cache_mb * 2**20))
    tile = config.tile if tile is None else tile
    halo = config.halo if halo is None else halo
    out = np.full(reader.shape, np.nan, dtype=np.float32)
    run_settings = config.replace(num_threads=int(threads)) if threads else config
    with settings(run_settings, hw):  # the run's thread count: predicting on all cores of a busy machine crawls
        for t0, t1, piece, y in stream(model, reader, hw, chunk=chunk, tile=tile, halo=halo):
            out[t0:t1, piece.rows, piece.cols] = stats.denormalize(y)
    out[:, ~reader.mask] = np.nan
    out[: config.burn_in] = np.nan

    var = name or config.model
    attrs = cf_attrs("lai")
    attrs.update(long_name=f"leaf area index simulated by {var}", model=config.model,
                 comment=f"the first {config.burn_in} days spin up the model state and are NaN")
    coords = {"time": sub["time"], "lat": sub["lat"], "lon": sub["lon"]}
    result = xr.Dataset({var: (("time", "lat", "lon"), out, attrs)}, coords=coords)
    result.attrs.update({
        "title": f"LAI predictions of {var}",
        "source": f"vegviz.training.predict ({config.model}) driven by: {ds.attrs.get('source', 'unknown data')}",
        "synthetic": _attr(ds.attrs.get("synthetic", 0)),
        "model": config.model,
        "data": str(config.data),
        "burn_in_days": int(config.burn_in),
        "config": config.to_yaml(),
        "checkpoint": str(checkpoint) if checkpoint else "",
        "checkpoint_sha256": file_sha256(checkpoint) if checkpoint else "",
        "vegviz_version": vegviz_version(),
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Conventions": "CF-1.8",
    })
    for key, value in ds.attrs.items():
        result.attrs[f"data_{key}"] = _attr(value)
    return result


def write_predictions(pred: xr.Dataset, path) -> Path:
    """Write predictions to NetCDF (engine netcdf4, compressed) atomically; return the path."""
    encoding = {}
    for v in pred.data_vars:
        shape = pred[v].shape
        encoding[v] = {"zlib": True, "complevel": 4, "_FillValue": np.float32(np.nan),
                       "chunksizes": (min(shape[0], INFERENCE_CHUNK), *shape[1:])}
    return write_netcdf_atomic(pred, path, encoding)
