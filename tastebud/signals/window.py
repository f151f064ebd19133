"""What a signal computation reads: a window of events (an interval of a store) with its
settings, and a cancellation check. A job's ``JobContext`` is one; the feature store builds
an ``EventWindow`` for a snapshot. Too little data is a refusal (``InsufficientData``), not
a failure: whatever was computed before keeps serving."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from tastebud.engines import Engine, EventSource, engine_name, open_engine
from tastebud.signals.errors import EmptyWindow, InsufficientData

__all__ = [
    "EmptyWindow",
    "EventWindow",
    "InsufficientData",
    "Window",
    "engine",
    "event_weights",
    "source",
]

if TYPE_CHECKING:
    from tastebud.config import Settings
    from tastebud.stores import Stores


class Window(Protocol):
    """An interval of the event store and what computing over it needs. ``job_name`` picks
    the engine (``[jobs] engines``) and labels the reads; ``check`` raises once the caller
    has abandoned the work."""

    @property
    def job_name(self) -> str: ...
    @property
    def start(self) -> datetime: ...
    @property
    def end(self) -> datetime: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def stores(self) -> Stores: ...

    def check(self) -> None: ...


def _never_abandoned() -> None:
    return None


@dataclass(frozen=True)
class EventWindow:
    """A ``Window`` outside a job run (a feature snapshot); ``cancelled`` is the check."""

    job_name: str
    start: datetime
    end: datetime
    settings: Settings
    stores: Stores
    cancelled: Callable[[], None] = field(default=_never_abandoned)

    def check(self) -> None:
        self.cancelled()


def event_weights(settings: Settings) -> dict[str, float]:
    return {name: spec.weight for name, spec in settings.events.types.items()}


def engine(window: Window) -> Engine:
    """The engine this work runs on (``[jobs] engine``/``engines``, ``--engine``)."""
    return open_engine(window.settings, engine_name(window.settings, window.job_name))


def source(window: Window) -> EventSource:
    """The window's events, read with its cancellation check."""
    return EventSource(window.stores.events, window.check, window.job_name)
