"""Refusals: too little data in a window for a result worth publishing. Kept apart from
``window`` (which loads the engines, so numpy and pyarrow) because ``tastebud jobs list``
imports the job definitions' errors and must start light (``tests/test_cli_startup.py``)."""

from __future__ import annotations

from typing import Any


class InsufficientData(RuntimeError):
    """Too little data in the window for a result worth publishing: the run is *refused*
    (not retried, not a failure), and whatever was published before keeps serving.

    ``reason`` is a short stable label for history and metrics; ``details`` the measured
    support and the minimum it missed, kept in the run history."""

    reason = "insufficient_data"

    def __init__(
        self, message: str, *, reason: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason
        self.details = dict(details or {})


class EmptyWindow(InsufficientData):
    """No events in the window: nothing to compute, previous outputs stay."""

    reason = "empty_window"
