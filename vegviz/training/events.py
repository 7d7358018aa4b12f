"""Training events: what a dashboard or a notebook follows while a model trains.

The trainer calls every subscriber (any callable taking one event) synchronously, from
the thread that trains. A subscriber must therefore be quick and, in a GUI, hand the
event to its own event loop (e.g. Panel's ``pn.state.execute`` or a Bokeh document's
``add_next_tick_callback``). An exception raised by a subscriber is logged and does not
stop training.

Kinds and their fields (all events also carry ``run_dir`` and ``time``, a Unix time):

=========  =====================================================================
``start``  epoch (first epoch to run, 1-based), max_epochs, batches_per_epoch,
           device, precision, resumed, config (dict)
``batch``  epoch, batch (1-based), batches (per epoch), loss, seconds, device
``epoch``  epoch, train_loss, val_loss, val_nse_median, seconds, device, lr,
           checkpoint, improved, best_epoch, best_val_loss
``stop``   epoch, batch, checkpoint (a stop request was honoured)
``end``    reason ("max_epochs" | "early_stopping" | "stopped"), epochs (completed),
           best_epoch, best_val_loss, best_checkpoint, seconds
``error``  epoch, error (text), traceback (text)
=========  =====================================================================
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time as _time
from dataclasses import dataclass, field
from typing import Callable, ClassVar

log = logging.getLogger(__name__)

__all__ = [
    "BatchEvent", "EndEvent", "EpochEvent", "ErrorEvent", "Event", "EventBus", "EventLog", "StartEvent",
    "StopEvent",
]


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of all training events; ``kind`` names the subclass."""

    kind: ClassVar[str] = "event"
    run_dir: str = ""
    time: float = field(default_factory=_time.time)

    def to_dict(self) -> dict:
        return {"kind": self.kind, **dataclasses.asdict(self)}


@dataclass(frozen=True, kw_only=True)
class StartEvent(Event):
    kind: ClassVar[str] = "start"
    epoch: int
    max_epochs: int
    batches_per_epoch: int
    device: str
    precision: str
    resumed: bool
    config: dict


@dataclass(frozen=True, kw_only=True)
class BatchEvent(Event):
    kind: ClassVar[str] = "batch"
    epoch: int
    batch: int
    batches: int
    loss: float
    seconds: float
    device: str


@dataclass(frozen=True, kw_only=True)
class EpochEvent(Event):
    kind: ClassVar[str] = "epoch"
    epoch: int
    train_loss: float
    val_loss: float
    val_nse_median: float
    seconds: float
    device: str
    lr: float
    checkpoint: str
    improved: bool
    best_epoch: int
    best_val_loss: float


@dataclass(frozen=True, kw_only=True)
class StopEvent(Event):
    kind: ClassVar[str] = "stop"
    epoch: int
    batch: int
    checkpoint: str


@dataclass(frozen=True, kw_only=True)
class EndEvent(Event):
    kind: ClassVar[str] = "end"
    reason: str
    epochs: int
    best_epoch: int
    best_val_loss: float
    best_checkpoint: str
    seconds: float


@dataclass(frozen=True, kw_only=True)
class ErrorEvent(Event):
    kind: ClassVar[str] = "error"
    epoch: int
    error: str
    traceback: str


Subscriber = Callable[[Event], object]


class EventBus:
    """Thread-safe list of subscribers; :meth:`emit` calls each one with the event."""

    def __init__(self):
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Add ``fn``; returns a function that removes it again."""
        if not callable(fn):
            raise TypeError(f"a subscriber must be callable (it receives each event), got {fn!r}")
        with self._lock:
            self._subscribers.append(fn)

        def unsubscribe() -> None:
            with self._lock:
                if fn in self._subscribers:
                    self._subscribers.remove(fn)

        return unsubscribe

    def emit(self, event: Event) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for fn in subscribers:
            try:
                fn(event)
            except Exception:  # a broken dashboard must not kill a long training run
                log.exception("training event subscriber %r failed on a %s event", fn, event.kind)


class EventLog:
    """A subscriber that keeps every event (thread-safe), e.g. for notebooks and tests.

    >>> log = EventLog(); trainer.subscribe(log); trainer.fit()
    >>> [e.val_loss for e in log.of("epoch")]
    """

    def __init__(self):
        self._events: list[Event] = []
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)

    @property
    def events(self) -> list[Event]:
        with self._lock:
            return list(self._events)

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)
