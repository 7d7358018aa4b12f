"""One writer per run folder: an exclusive lock that the holder's end releases, however it ends.

A run or experiment folder is written by one process at a time. :class:`RunLock` holds
``<folder>/.vegviz.lock`` with ``fcntl.flock(LOCK_EX | LOCK_NB)`` while the folder is being
written (:func:`vegviz.training.train`, ``Trainer.fit``, the training dashboard's runs,
``vegviz experiment``; under ``torchrun`` rank 0 alone, the only rank that writes). A second
writer is refused at once with :class:`RunBusyError`, which names the holder (pid, host, start
time and command: the holder writes them into the file as JSON) and the fix.

Why flock: the kernel drops the lock when the last descriptor of its open file description is
closed, so a process that crashes or is SIGKILLed leaves no stale lock, and no one has to guess
from a pid whether the holder still lives. Two opens of the file are two descriptions, so two
RunLocks conflict inside one process too (the dashboard trains every session's run in a thread
of one server); a table of the locks this process holds refuses the second before it opens a
descriptor (see NFS). A child forked without exec while the lock is held shares the
description and keeps the lock after its parent dies: the error then says that the recorded
pid has ended. (Python opens files close-on-exec, so subprocesses do not inherit it.)

The file is never removed: a process that opened it just before an unlink would lock an inode
that no one else sees, while a third one locks a new file. Release empties it instead.

On NFS, Linux emulates flock with POSIX byte-range locks kept by the server (NFSv4, or NFSv3 with
lockd), so the lock holds across hosts; a holder's process that ends releases it, a holder's
host that crashes keeps it until the server's lease runs out (NFSv4: about 90 s). Closing any
descriptor of the file drops a process's POSIX locks on it, which is why a second RunLock of
this process never opens the file. Mounted with ``nolock`` or ``local_lock=flock``, locks are
seen only on the host that took them. POSIX only (fcntl).
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import shlex
import socket
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["LOCK_FILE", "RunBusyError", "RunLock", "command_line", "held_here"]

LOCK_FILE = ".vegviz.lock"

# the locks this process holds, by the lock file's resolved path
_HELD: dict[str, RunLock] = {}
_TABLE = threading.Lock()


def held_here(folder) -> bool:
    """Whether this process holds ``folder``'s lock (a caller of :meth:`Run.predict` that is training it)."""
    with _TABLE:
        return str((Path(folder).expanduser() / LOCK_FILE).resolve()) in _HELD


class RunBusyError(RuntimeError):
    """The folder is being written by another process, or by another thread or session of this one.

    ``holder``: what the holder recorded (pid, host, started, command; empty when it has not yet).
    """

    def __init__(self, message: str, folder: Path | None = None, holder: dict | None = None):
        super().__init__(message)
        self.folder, self.holder = folder, dict(holder or {})


def command_line() -> str:
    """This process's command line, as a refused writer is shown it."""
    argv = list(sys.argv) or ["python"]
    if Path(argv[0]).parts[-2:] == ("vegviz", "__main__.py"):  # python -m vegviz
        argv[0] = "vegviz"
    return shlex.join(argv)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _busy(folder: Path, lock_file: Path, info: dict) -> RunBusyError:
    pid, host = info.get("pid"), info.get("host")
    here = host == socket.gethostname()
    what = f"since {info.get('started', '?')} (`{info.get('command', '?')}`)"
    if not pid:  # locked, its record not written yet (or written by something else)
        who, stop = "another process (it has just taken the lock and not yet said who it is)", "stop it"
    elif here and pid == os.getpid():
        who = f"this process (pid {pid}: another thread or dashboard session) {what}"
        stop = "stop it where it was started (e.g. the Stop button of the dashboard session that trains it)"
    elif here and not _alive(pid):
        who = (f"pid {pid} on host {host} {what}; that process has ended but the lock is still held, by a "
               "process it forked that inherited the lock file")
        stop = f"end that process (`fuser -v {lock_file}` names it)"
    else:
        who = f"pid {pid} on host {host} {what}"
        stop = f"stop it (`kill {pid}`{'' if here else f' on {host}'})"
    return RunBusyError(f"run folder {folder} is being written by {who}. Fix: wait for it to finish or {stop}, "
                        "or train into another folder (--name NEW / --run-dir FOLDER; another run name in the "
                        "dashboard)", folder, info)


def _read(fd: int) -> dict:
    try:
        info = json.loads(os.pread(fd, 1 << 16, 0) or b"{}")
    except (OSError, ValueError):  # half-written, or not ours
        return {}
    return info if isinstance(info, dict) else {}


class RunLock:
    """The exclusive lock of one run (or experiment) folder; a context manager, also :meth:`acquire`/:meth:`release`.

    ``command``: what the holder is doing, shown to a refused writer (default: this process's
    command line). Not re-entrant: nesting holders (``train()`` around ``Trainer.fit()``) check
    :attr:`held` first. Any thread may release it: the dashboard takes it on the page's thread and
    its training thread lets it go when the run ends.
    """

    def __init__(self, folder, command: str | None = None):
        self.folder = Path(folder).expanduser()
        self.command = command
        self.info: dict = {}
        self._fd: int | None = None
        self._key = ""

    def __repr__(self) -> str:
        return f"RunLock({str(self.folder)!r}, {'held' if self.held else 'free'})"

    @property
    def path(self) -> Path:
        return self.folder / LOCK_FILE

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        """Take the lock (creating the folder), or raise :class:`RunBusyError` at once: it never waits."""
        if self.held:
            raise RuntimeError(f"{self.path} is held by this RunLock already. Fix: check `held` before acquire()")
        self.folder.mkdir(parents=True, exist_ok=True)
        key = str(self.path.resolve())
        with _TABLE:
            other = _HELD.get(key)
            if other is not None:  # in this process: do not open the file (see NFS in the module docstring)
                raise _busy(self.folder, self.path, other.info)
            fd = os.open(key, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                info = _read(fd)
                os.close(fd)
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise _busy(self.folder, self.path, info) from None
                raise
            self.info = {"pid": os.getpid(), "host": socket.gethostname(),
                         "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                         "command": self.command or command_line()}
            try:  # a dead holder's record may be longer than ours: empty the file first
                os.ftruncate(fd, 0)
                os.pwrite(fd, (json.dumps(self.info) + "\n").encode(), 0)
                os.fsync(fd)
            except BaseException:
                os.close(fd)
                raise
            self._fd, self._key = fd, key
            _HELD[key] = self
        return self

    def release(self) -> None:
        """Let the folder go (nothing when not held). The file stays, emptied."""
        with _TABLE:
            fd, self._fd = self._fd, None
            if fd is None:
                return
            _HELD.pop(self._key, None)
            try:
                os.ftruncate(fd, 0)  # no record of a writer that has gone
                # explicitly: a forked child that shares the description must not keep the folder
                fcntl.flock(fd, fcntl.LOCK_UN)
            except OSError:
                pass
            finally:
                os.close(fd)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
