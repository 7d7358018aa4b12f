"""Predictions: a trained model run over a whole data set, as a Dataset on the same grid.

The model runs sequence-to-sequence over the full period from a zero state, with the
state carried from chunk to chunk; the inputs are read out of core (:mod:`.reader`), a
chunk at a time, over the whole domain or in tiles with a halo (``config.tile``,
``config.halo``; :mod:`.tiles`). With ``path`` the output is written piece by piece into
NetCDF, so memory does not grow with the period or the domain either. The first
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
from ..io import NetCDFGridWriter, write_netcdf_atomic
from .checkpoint import file_sha256, vegviz_version
from .config import Config
from .data import prepare
from .device import resolve, settings
from .reader import BlockCache, WindowReader
from .tiles import days_per_call, stream, tiles
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
            halo: int | None = None, path=None) -> xr.Dataset:
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
    path
        Write the predictions piece by piece into this NetCDF file (atomically: it appears
        when complete) and return it lazily opened, so that memory stays bounded however
        large the output (CONUS over decades); None: return them in memory.
    """
    stats.check_channels(config.channels)
    sub = prepare(ds, config, with_target=False)
    hw = resolve(config, device)
    model = model.to(hw.device)
    t = sub["time"].values
    reader = WindowReader(sub, stats, t[0], t[-1], with_target=False, cache=BlockCache(config.cache_mb * 2**20))
    tile = config.tile if tile is None else tile
    halo = config.halo if halo is None else halo
    var = name or config.model
    attrs = cf_attrs("lai")
    attrs.update(long_name=f"leaf area index simulated by {var}", model=config.model,
                 comment=f"the first {config.burn_in} days spin up the model state and are NaN")
    template = xr.Dataset(coords={"time": sub["time"], "lat": sub["lat"], "lon": sub["lon"]},
                          attrs=_provenance(ds, config, var, checkpoint))
    mask, burn_in = reader.mask, config.burn_in

    def pieces():
        run_settings = config.replace(num_threads=int(threads)) if threads else config
        with settings(run_settings, hw):  # the run's thread count: predicting on all cores of a busy machine crawls
            for t0, t1, piece, y in stream(model, reader, hw, chunk=chunk, tile=tile, halo=halo):
                y = stats.denormalize(y)
                y[:, ~mask[piece.rows, piece.cols]] = np.nan
                y[: max(0, burn_in - t0)] = np.nan
                yield slice(t0, t1), piece.rows, piece.cols, y

    if path is None:
        out = np.full(reader.shape, np.nan, dtype=np.float32)
        for days, rows, cols, y in pieces():
            out[days, rows, cols] = y
        return template.assign({var: (("time", "lat", "lon"), out, attrs)})
    # chunks the pieces fill whole: a time step of the stream by a tile (or 64 cells, untiled)
    n_days, nlat, nlon = reader.shape
    run = tiles(nlat, nlon, tile, halo)
    square = (run[0].rows.stop, run[0].cols.stop) if len(run) > 1 else (min(nlat, 64), min(nlon, 64))
    chunks = (min(n_days, days_per_call(reader.n_channels, run, chunk)), *square)
    with NetCDFGridWriter(path, template, var, attrs, chunks) as f:
        for days, rows, cols, y in pieces():
            f.write(days, rows, cols, y)
    return xr.open_dataset(path, engine="netcdf4", chunks={})


def _provenance(ds: xr.Dataset, config: Config, var: str, checkpoint) -> dict:
    """The global attributes of a predictions file: what made it, from what."""
    attrs = {
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
    }
    for key, value in ds.attrs.items():
        attrs[f"data_{key}"] = _attr(value)
    return attrs


def write_predictions(pred: xr.Dataset, path) -> Path:
    """Write predictions to NetCDF (engine netcdf4, compressed) atomically; return the path."""
    encoding = {}
    for v in pred.data_vars:
        shape = pred[v].shape
        encoding[v] = {"zlib": True, "complevel": 4, "_FillValue": np.float32(np.nan),
                       "chunksizes": (min(shape[0], INFERENCE_CHUNK), *shape[1:])}
    return write_netcdf_atomic(pred, path, encoding)
