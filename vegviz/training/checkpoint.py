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

A training run commits each state through one file, ``checkpoints/last.pt`` (see
:meth:`vegviz.training.Trainer.fit`): the other files of an epoch (``epoch_NNN.pt``,
``best.pt``, ``history.csv``) are derived from it and written after it, so a kill or a
full disk at any instant leaves the previous state or the new one, and the next writer
re-derives what is missing. :func:`remove_stale_temporaries` clears the temporary files a
killed writer left.
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import warnings
import zipfile
from pathlib import Path

from ..io import write_atomic

import torch

__all__ = ["CHECKPOINT_FORMAT", "file_sha256", "fsync_dir", "load_checkpoint", "remove_stale_temporaries",
           "save_checkpoint", "vegviz_version", "write_atomic"]

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


def _pickled(path: Path) -> bool:
    """Whether ``path`` is a whole pickle (a torch zip file, or a pickle of protocol 2 or later), not garbage."""
    try:
        with open(path, "rb") as f:
            return f.read(1) == pickle.PROTO or zipfile.is_zipfile(f)
    except OSError:
        return False


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True``; a clear error for missing or foreign files."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist. Fix: train first, or pick one of "
                                f"{sorted(p.name for p in path.parent.glob('*.pt')) or 'no checkpoints there'}")
    try:
        with warnings.catch_warnings():  # torch's notes on foreign pickles: the error below says what matters
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, EOFError, RuntimeError, KeyError, zipfile.BadZipFile, OSError) as e:
        # a file cut short (a full disk, a copy interrupted: torch says OSError EINVAL) or not a checkpoint at all
        if isinstance(e, PermissionError):
            raise
        others = sorted(p.name for p in path.parent.glob("epoch_*.pt") if p != path)
        if isinstance(e, pickle.UnpicklingError) and "weights only load failed" in str(e).lower() and _pickled(path):
            # torch advises weights_only=False: never for a file like this one
            found = re.search(r"GLOBAL ([\w.]+)", str(e))
            raise ValueError(f"{path} is not a vegviz checkpoint: it holds pickled Python objects"
                             + (f" (it refers to {found.group(1)})" if found else "") + " that vegviz checkpoints never contain, "
                             "so it must not be trusted: loading it in full (torch.load with weights_only=False) "
                             "would run the code it carries. Fix: delete it or move it away and use a checkpoint "
                             "written by vegviz.training" + (f" (e.g. copy {others[-1]} over it)" if others else "")
                             + ", or train into a new run folder") from None
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


def fsync_dir(path) -> None:
    """Make the renames done in folder ``path`` durable (POSIX; a no-op where a folder cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # Windows, or a folder that is gone
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder: nothing more can be done
        pass
    finally:
        os.close(fd)


#: the files of a run folder that only the training process writes (their temporaries are its own)
RUN_FILES = ("config.yaml", "provenance.yaml", "history.csv", "predictions.nc")


def remove_stale_temporaries(run_dir) -> list[Path]:
    """Delete the temporary files (``.NAME.*.tmp``) a killed writer left in ``run_dir`` and its checkpoints.

    Call it only from the one process that writes the run (the run folder's lock holder): every
    ``.*.tmp`` in ``checkpoints/``, and in the run folder those of the files training writes
    (:data:`RUN_FILES`). Returns the paths removed.
    """
    run_dir = Path(run_dir)
    found = list((run_dir / "checkpoints").glob(".*.tmp"))
    for name in RUN_FILES:
        found += run_dir.glob(f".{name}.*.tmp")
    removed = []
    for p in found:
        try:
            if p.is_file():
                p.unlink()
                removed.append(p)
        except FileNotFoundError:
            pass
    return removed
