"""Retry policy: exponential backoff with jitter and a cap, for transient errors only.

Retrying a bug or bad input gives the same failure three times and delays the alert, so
only errors that say "try again" are retried: store outages (``StoreUnavailable``),
connection errors, OS-level timeouts, and ``TransientJobError`` raised by a job.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

TRANSIENT_NAMES = frozenset({"OperationalError", "InterfaceError", "PoolTimeout"})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    base_seconds: float = 2.0
    cap_seconds: float = 60.0
    jitter: float = 0.5  # the delay is drawn from [1 - jitter, 1] x the backoff

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.base_seconds < 0 or self.cap_seconds < 0 or not 0 <= self.jitter <= 1:
            raise ValueError("delays must be >= 0 and jitter within [0, 1]")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        backoff = min(self.cap_seconds, self.base_seconds * 2 ** (attempt - 1))
        draw = (rng or random).random()
        return backoff * (1.0 - self.jitter * draw)


def is_transient(error: BaseException) -> bool:
    """Whether trying again may help (see the module docstring)."""
    from tastebud.jobs.base import TransientJobError
    from tastebud.stores import StoreUnavailable

    if isinstance(error, TransientJobError | StoreUnavailable | ConnectionError | TimeoutError):
        return True
    # Database drivers' connection-level errors, without importing every driver.
    return type(error).__name__ in TRANSIENT_NAMES
