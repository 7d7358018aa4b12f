"""Atomic writes: a reader (or a crash) never sees half a file."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_atomic", "write_netcdf_atomic"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temporary(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
    return tmp


def write_atomic(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, fsync, os.replace)."""
    path = Path(path)
    tmp = _temporary(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def string_encoding(ds) -> dict:
    """Encoding that stores every text variable and coordinate as fixed-width characters.

    xarray writes text as HDF5 variable-length strings by default. A file with one is a
    crash hazard: when it is open twice in one process (a lazily opened dataset plus a
    second open) and one handle reads the strings and closes, HDF5 keeps a dangling file
    pointer in the string datatype, and a later open of that file fails with "NetCDF: HDF
    error" or segfaults (netcdf-c issue 2510, HDF5 issue 3649; still so in HDF5 2.2.0).
    Character arrays have no such datatype, and xarray reads them back as text.
    """
    return {name: {"dtype": "S1"} for name, v in ds.variables.items() if v.dtype.kind in "UO"
            and (v.dtype.kind == "U" or all(isinstance(x, str) for x in v.values.ravel()))}


def write_netcdf_atomic(ds, path, encoding: dict | None = None) -> Path:
    """``ds.to_netcdf`` (engine netcdf4) into a temporary file, then renamed into place.

    Text is written as fixed-width characters (:func:`string_encoding`), never as
    variable-length strings.
    """
    path = Path(path)
    tmp = _temporary(path)
    merged = string_encoding(ds)
    for name, enc in (encoding or {}).items():
        merged[name] = {**merged.get(name, {}), **enc}
    try:
        ds.to_netcdf(tmp, engine="netcdf4", encoding=merged)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
