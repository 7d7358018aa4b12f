"""Atomic writes: a reader (or a crash) never sees half a file.

A write that fails on a full disk raises ``OSError(ENOSPC)`` naming the target file (Python's own
error names no file, and HDF5 reports a full disk as "NetCDF: HDF error"), after its temporary
file is removed: the target is left as it was.
"""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
import uuid
from pathlib import Path

__all__ = ["NetCDFGridWriter", "building_path", "disk_full", "remove_abandoned_builds", "replace_directory",
           "write_atomic", "write_netcdf_atomic"]


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


#: free bytes under which a failed write is put down to a full disk (HDF5 does not say ENOSPC)
FULL_BYTES = 1 << 20


def disk_full(path, error: BaseException) -> OSError | None:
    """``OSError(ENOSPC)`` naming ``path`` when ``error`` (of a write to ``path``) comes from a full disk, else None.

    ENOSPC, or an HDF5 error ("NetCDF: HDF error") while the disk holding ``path`` has almost no
    space left. Call it before removing the partial file: that file holds the space that is missing.
    """
    path = Path(path)
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        pass
    elif isinstance(error, (OSError, RuntimeError)) and "HDF error" in str(error):
        try:
            if shutil.disk_usage(path.parent).free >= FULL_BYTES:
                return None
        except OSError:
            return None
    else:
        return None
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def _temporary_for(path: Path) -> str:
    try:
        return _temporary(path)
    except OSError as e:  # a full disk refuses even the empty temporary file
        full = disk_full(path, e)
        if full is not None:
            raise full from e
        raise


def _discard(tmp, path: Path, error: BaseException) -> None:
    """Remove the temporary file of a failed write; raise the disk-full error naming ``path`` if that was it."""
    full = disk_full(path, error)
    Path(tmp).unlink(missing_ok=True)
    if full is not None:
        raise full from error


def write_atomic(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, fsync, os.replace)."""
    path = Path(path)
    tmp = _temporary_for(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        _discard(tmp, path, e)
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
    tmp = _temporary_for(path)
    merged = string_encoding(ds)
    for name, enc in (encoding or {}).items():
        merged[name] = {**merged.get(name, {}), **enc}
    try:
        ds.to_netcdf(tmp, engine="netcdf4", encoding=merged)
        os.replace(tmp, path)
    except BaseException as e:
        _discard(tmp, path, e)
        raise
    return path


class NetCDFGridWriter:
    """One (time, lat, lon) float32 variable written piece by piece into a new NetCDF file, atomically.

    For outputs larger than memory (predictions of CONUS over decades): ``template`` (the
    coordinates and global attributes) is written first, the variable is then filled through
    :meth:`write` in any order, and the file appears at ``path`` only when the ``with`` block
    ends without an error; on an error the temporary file is removed and ``path`` is untouched.
    Cells never written read as NaN. ``chunks`` should align with the pieces written, so that
    HDF5 never reads back a compressed chunk to finish it.
    """

    def __init__(self, path, template, name: str, attrs: dict, chunks: tuple[int, int, int], complevel: int = 4):
        self.path, self.template, self.name, self.attrs = Path(path), template, name, attrs
        self.chunks, self.complevel = tuple(int(c) for c in chunks), complevel
        self._tmp = self._nc = self._var = None

    def __enter__(self) -> "NetCDFGridWriter":
        import netCDF4
        import numpy as np

        self._tmp = _temporary_for(self.path)
        try:
            self.template.to_netcdf(self._tmp, engine="netcdf4", encoding=string_encoding(self.template))
            self._nc = netCDF4.Dataset(self._tmp, "a")
            self._var = self._nc.createVariable(self.name, "f4", ("time", "lat", "lon"), zlib=True,
                                                complevel=self.complevel, chunksizes=self.chunks,
                                                fill_value=np.float32(np.nan))
            self._var.setncatts(self.attrs)
        except BaseException as e:
            self._abort(e)
            raise
        return self

    def write(self, times: slice, rows: slice, cols: slice, values) -> None:
        self._var[times, rows, cols] = values

    def _abort(self, error: BaseException | None = None) -> None:
        full = None if error is None else disk_full(self.path, error)
        if self._nc is not None:
            try:
                self._nc.close()
            except (OSError, RuntimeError):  # a full disk fails the close too: the file goes anyway
                pass
        Path(self._tmp).unlink(missing_ok=True)
        if full is not None:
            raise full from error

    def __exit__(self, kind, error, tb) -> None:
        if kind is not None:
            self._abort(error)
            return
        try:
            self._nc.close()
            with open(self._tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(self._tmp, self.path)
        except BaseException as e:
            _discard(self._tmp, self.path, e)
            raise


# ----------------------------------------------------------------------------- whole directories
# A store or a result folder is built under a temporary name beside its place and renamed into it,
# so a reader sees the old one or the new one, never half of either.

def building_path(path) -> Path:
    """The temporary directory beside ``path`` to build it in (named after this process, for
    :func:`remove_abandoned_builds`)."""
    path = Path(path)
    return path.parent / f".{path.name}.building-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def replace_directory(tmp, path) -> None:
    """Move the finished directory ``tmp`` to ``path``; an old one is moved aside first, then deleted."""
    tmp, path = Path(tmp), Path(path)
    old = None
    if path.exists():
        old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(path, old)
    os.rename(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def remove_abandoned_builds(path) -> None:
    """Delete the temporary directories of earlier builds of ``path`` whose process is gone."""
    path = Path(path)
    for p in path.parent.glob(f".{path.name}.*-*"):
        kind, _, rest = p.name[len(path.name) + 2:].partition("-")
        pid = rest.split("-")[0]
        if kind == "old" or (kind == "building" and pid.isdigit() and not _alive(int(pid))):
            shutil.rmtree(p, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
