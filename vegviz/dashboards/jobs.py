"""A background job for a dashboard: work in a thread, progress and the end applied on the page's thread.

    job = BackgroundJob(work, on_progress=show, on_done=finished, name="scenario")
    job.start()        # work(job) runs in a daemon thread
    job.cancel()       # asks it to stop: the next job.report() / job.check() raises JobCancelled
    job.wait(60)       # without an event loop (tests, scripts): drain until it ended

Why a queue: the work runs off the event loop, where nothing may touch the page. It calls
``job.report(fraction, text)``, which only queues the message; :meth:`BackgroundJob.poll` drains
the queue on the page's thread and calls ``on_progress(fraction, text)``, and ``on_done(result,
error)`` once the work returned or raised. A periodic callback polls every ``period`` ms while
the job runs (in a served session and in a Jupyter kernel); code without an event loop calls
:meth:`poll` or :meth:`wait`, as for the training dashboard (:mod:`vegviz.dashboards.training`).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable

import panel as pn

log = logging.getLogger(__name__)

__all__ = ["BackgroundJob", "JobCancelled"]


class JobCancelled(Exception):
    """Raised inside the work when the job was asked to stop (:meth:`BackgroundJob.cancel`)."""


class BackgroundJob:
    """``work(job)`` in a daemon thread; its reports and its end are applied on the page's thread by :meth:`poll`."""

    def __init__(self, work: Callable, *, on_progress: Callable | None = None, on_done: Callable | None = None,
                 name: str = "vegviz-job", period: int = 300):
        self.work, self.name, self.period = work, name, period
        self.on_progress, self.on_done = on_progress, on_done
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._periodic = None
        self.running = False
        self.result = self.error = None

    # ------------------------------------------------------------------ on the work's thread
    def report(self, fraction: float | None, text: str = "", *, check: bool = True) -> None:
        """Queue a progress message (``fraction`` of the work done, 0..1, or None).

        Raises :class:`JobCancelled` first when the job was asked to stop, unless ``check`` is
        False (a message about work already done, e.g. a file written, must not be undone).
        """
        if check:
            self.check()
        self._queue.put(("progress", fraction, text))

    def check(self) -> None:
        """Raise :class:`JobCancelled` when :meth:`cancel` was called."""
        if self._cancel.is_set():
            raise JobCancelled("cancelled")

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def _run(self) -> None:
        try:
            result, error = self.work(self), None
        except BaseException as e:  # JobCancelled included: the page says what happened
            result, error = None, e
            if not isinstance(e, JobCancelled):
                log.exception("background job %s failed", self.name)
        self._queue.put(("done", result, error))

    # ------------------------------------------------------------------ on the page's thread
    def start(self) -> "BackgroundJob":
        if self.running:
            raise RuntimeError(f"job {self.name} is already running")
        self.running = True
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        if self._periodic is None:  # fires in a served session or a running kernel loop
            self._periodic = pn.state.add_periodic_callback(self.poll, period=self.period)
        return self

    def cancel(self) -> None:
        """Ask the work to stop at its next report or check."""
        self._cancel.set()

    def poll(self) -> int:
        """Apply the queued messages (thread-safe, non-blocking); returns how many were applied."""
        if not self._lock.acquire(blocking=False):
            return 0  # another caller is draining already
        try:
            n = 0
            while True:
                try:
                    kind, a, b = self._queue.get_nowait()
                except queue.Empty:
                    return n
                n += 1
                if kind == "progress":
                    self._call(self.on_progress, a, b)
                else:
                    self.running = False
                    self.result, self.error = a, b
                    self._stop_polling()
                    self._call(self.on_done, a, b)
        finally:
            self._lock.release()

    def wait(self, timeout: float | None = None, interval: float = 0.1) -> None:
        """Poll until the work has ended (TimeoutError after ``timeout`` s)."""
        poll_until_done(self.poll, lambda: self.running, f"job {self.name}", timeout, interval)

    @staticmethod
    def _call(callback, *args) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:  # a page's bug must not stop the draining
            log.exception("a job callback failed")

    def _stop_polling(self) -> None:
        stop_periodic(self._periodic)
        self._periodic = None


def poll_until_done(poll: Callable[[], object], running: Callable[[], bool], what: str,
                    timeout: float | None = None, interval: float = 0.1) -> None:
    """Call ``poll`` until ``running()`` is false: how notebooks and tests wait for a page's background work
    (a server never blocks; its periodic callback polls). TimeoutError naming ``what`` after ``timeout`` s."""
    t0 = time.monotonic()
    while True:
        poll()
        if not running():
            return
        if timeout is not None and time.monotonic() - t0 > timeout:
            raise TimeoutError(f"{what} still runs after {timeout} s")
        time.sleep(interval)


def stop_periodic(callback) -> None:
    """Stop a Panel periodic callback (None: nothing to stop); its session may be gone already."""
    if callback is None:
        return
    try:
        callback.stop()
    except Exception:
        log.debug("could not stop the periodic callback", exc_info=True)
