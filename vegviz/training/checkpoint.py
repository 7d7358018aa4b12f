"""Checkpoints that survive a crash: atomic writes and plain, safely loadable contents.

A checkpoint is a dict of tensors and plain Python types (numbers, strings, lists,
dicts, None), so it loads with ``torch.load(path, weights_only=True)``, which runs no
pickled code. It holds everything needed to continue training exactly where it stopped:
model, optimiser, scheduler and gradient-scaler state, the epoch and the batch within
it, the early-stopping bookkeeping, the history so far, the normalisation statistics,
the configuration, the torch random state (see :mod:`vegviz.training.trainer`) and the
run's provenance (``"provenance"``: the record of :func:`vegviz.provenance.record`, also in
the run's ``provenance.yaml``; absent in checkpoints written before it was recorded).

Every file is written to a temporary file in the same folder, flushed to disk and then
moved over the target with ``os.replace`` (atomic on POSIX and Windows), so a crash or a
kill during a write leaves the previous file intact.
"""
from __future__ import annotations

import hashlib
import io
import pickle
import zipfile
from pathlib import Path

from ..io import write_atomic

import torch

__all__ = ["CHECKPOINT_FORMAT", "file_sha256", "load_checkpoint", "save_checkpoint", "vegviz_version", "write_atomic"]

#: bumped when the checkpoint layout changes incompatibly
CHECKPOINT_FORMAT = 1


def vegviz_version() -> str:
    """The installed vegviz version (recorded in checkpoints and predictions)."""
    try:
        from .. import __version__
    except ImportError:  # vegviz imported as a namespace package (a stale editable install)
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("vegviz")
        except PackageNotFoundError:
            return "0+unknown"
    return __version__


def to_bytes(state: dict) -> bytes:
    """The serialised checkpoint (``torch.save`` format)."""
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def save_checkpoint(state: dict, *paths) -> list[Path]:
    """Serialise ``state`` once and write it atomically to each of ``paths``."""
    data = to_bytes(state)
    return [write_atomic(p, data) for p in paths]


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True``; a clear error for missing or foreign files."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist. Fix: train first, or pick one of "
                                f"{sorted(p.name for p in path.parent.glob('*.pt')) or 'no checkpoints there'}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, EOFError, RuntimeError, KeyError, zipfile.BadZipFile) as e:
        # a file cut short (a full disk, a copy interrupted) or not a checkpoint at all
        others = sorted(p.name for p in path.parent.glob("epoch_*.pt") if p != path)
        raise ValueError(f"checkpoint {path} cannot be read ({type(e).__name__}): the file is damaged or not a "
                         "torch checkpoint. Fix: " + (f"copy an earlier epoch's checkpoint over it (the latest is "
                         f"{others[-1]})" if others else "delete it") + ", or train into a new run folder") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a vegviz training checkpoint (format {CHECKPOINT_FORMAT}). "
                         "Fix: pass a checkpoint written by vegviz.training")
    return state


def file_sha256(path, block: int = 1 << 20) -> str:
    """Hex SHA-256 of a file (provenance of predictions)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()
