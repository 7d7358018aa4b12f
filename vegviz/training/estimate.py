"""How long the chosen settings will take here: measured on the first batches, said before the wait.

:class:`TimeEstimate` is a training subscriber (:mod:`.events`). After the first few batches of a
session (the very first one is left out: it pays for allocation and kernel selection) it says
how long an epoch's training steps take at that pace and how long the run can take at most
(``max_epochs``; early stopping may end it sooner). After the first epoch, whose time includes
validation and the checkpoint, it says the same from the measured epoch. ``vegviz train`` uses
it; from code: ``train(config, subscribers=[TimeEstimate()])``.
"""
from __future__ import annotations

import statistics
from typing import Callable

from .events import BatchEvent, EpochEvent, Event, StartEvent

__all__ = ["TimeEstimate", "duration"]


def duration(seconds: float) -> str:
    """``seconds`` for a person: "40 s", "3.5 min", "2.1 h"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class TimeEstimate:
    """Says (through ``log``) how long training will take, from the batches measured so far.

    ``sample``: batches timed (after the first) before the first estimate; fewer when an epoch is shorter.
    """

    def __init__(self, log: Callable[[str], object] | None = None, sample: int = 3):
        if log is None:
            from tqdm.auto import tqdm

            log = tqdm.write  # between the progress bars, not through them
        self.log, self.sample = log, max(1, int(sample))
        self.lines: list[str] = []
        self._start: StartEvent | None = None
        self._seconds: list[float] = []
        self._said_batches = self._said_epoch = self._first_seen = False

    def _say(self, text: str) -> None:
        self.lines.append(text)
        self.log(text)

    def __call__(self, event: Event) -> None:
        if isinstance(event, StartEvent):
            self._start, self._seconds = event, []
            self._said_batches = self._said_epoch = self._first_seen = False
        elif self._start is None:
            return
        elif isinstance(event, BatchEvent) and not self._said_batches:
            self._on_batch(event)
        elif isinstance(event, EpochEvent) and not self._said_epoch:
            self._said_epoch = True
            left = self._start.max_epochs - event.epoch
            if left > 0:
                self._say(f"time: epoch {event.epoch} took {duration(event.seconds)} with validation; the "
                          + (f"{left} epochs left take" if left != 1 else "1 epoch left takes")
                          + f" at most about {duration(left * event.seconds)}" + self._early_stop_note(left))

    def _on_batch(self, event: BatchEvent) -> None:
        if self._first_seen:
            self._seconds.append(event.seconds)
        self._first_seen = True  # the session's first batch is left out (allocation, kernel choice)
        if len(self._seconds) < self.sample and event.batch < event.batches:
            return
        self._said_batches = True
        if not self._seconds:
            return  # an epoch of one batch: the epoch's own time says it
        step = statistics.median(self._seconds)
        s = self._start
        epoch = step * s.batches_per_epoch
        epochs = s.max_epochs - s.epoch + 1
        pace = duration(step) if step >= 1 else f"{step * 1000:.0f} ms"
        self._say(f"time: {pace} per batch on {event.device} ({s.batches_per_epoch} batches per epoch): about "
                  f"{duration(epoch)} of training steps per epoch; {epochs} epoch{'s' if epochs != 1 else ''} at "
                  f"most: about {duration(epochs * epoch)} plus validation" + self._early_stop_note(epochs))

    def _early_stop_note(self, epochs: int) -> str:
        patience = (self._start.config or {}).get("patience")
        if not patience or patience >= epochs:  # cannot end a run this short sooner
            return ""
        return f" (early stopping after {patience} epochs without improvement may end it sooner)"
