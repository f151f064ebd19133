"""Budgets on the request path: short timeouts and a circuit breaker per dependency.

A server request that reads Redis or PostgreSQL must not wait long for either: a hung Redis
used to cost every call its 5 s socket timeout (and redis-py's retries), a stopped
PostgreSQL every call a 10 s wait for a pooled connection. While serving a request, the API
sets a ``RequestBudget`` (``within_budget``); the Redis and PostgreSQL stores see it and

* give each call a short timeout (``[budgets]`` in the settings: tens of milliseconds),
* pass each call through their ``CircuitBreaker``: after ``breaker_failures`` failures in a
  row it opens, and calls fail at once (``StoreUnavailable``) for ``breaker_reset_seconds``;
  then one trial call goes through, and its success closes the breaker again,
* fail at once for the rest of a request once the dependency failed in it, so one request
  pays at most one timeout per dependency.

Calls outside a request (jobs, the model watcher, start-up) carry no budget and keep the
stores' long timeouts. The context variable reaches the worker threads a request runs in
(``anyio.to_thread`` and Starlette copy the context).

Why not pybreaker: its ``call`` runs the guarded function while holding the breaker's lock,
so every thread calling one dependency waits in line (a hung call stalls them all); purgatory
and circuitbreaker keep their state without a lock and let every concurrent call through a
half-open breaker, so a hung dependency costs each of them a timeout again. This breaker is
small: a lock around its state only, and one trial call at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from tastebud.config import BudgetSettings
from tastebud.observability import get_logger, metrics
from tastebud.stores.base import StoreUnavailable

log = get_logger("tastebud.stores")

BREAKER_OPENED = metrics.counter(
    "store",
    "breaker_opened",
    "total",
    "Times a store's circuit breaker opened (its dependency failed or timed out repeatedly).",
    labels=("store",),
)
BREAKER_REJECTED = metrics.counter(
    "store",
    "breaker_rejected",
    "calls",
    "Store calls failed at once on the request path: the breaker was open, or the store had "
    "already failed in the same request.",
    labels=("store",),
)


@dataclass
class RequestBudget:
    """One request's budget: the configured limits, and the stores that already failed in
    this request (shared by the threads the request runs in)."""

    settings: BudgetSettings
    failed: set[str] = field(default_factory=set)


_BUDGET: ContextVar[RequestBudget | None] = ContextVar("tastebud_request_budget", default=None)


def current_budget() -> RequestBudget | None:
    """The budget of the request being served, or None outside a request."""
    return _BUDGET.get()


@contextmanager
def within_budget(settings: BudgetSettings) -> Iterator[RequestBudget]:
    """Serve one request under ``settings``' budgets (the API's middleware does)."""
    budget = RequestBudget(settings)
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


class CircuitOpen(StoreUnavailable):
    """A call refused without trying: the dependency failed recently."""


class CircuitBreaker:
    """Closed (calls go through), open (calls fail at once) and half-open (one trial call).

    Thread-safe; the lock guards the state only, never a call. Thresholds come from the
    request's budget, so the settings of the running server apply."""

    def __init__(self, name: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None  # None: closed
        self._trial_since: float | None = None  # a trial call is out (half-open)
        self.last_error = ""

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            return "half-open" if self._trial_since is not None else "open"

    def admit(self, budget: RequestBudget) -> None:
        """Raise ``CircuitOpen`` unless a call may go ahead now."""
        reset = budget.settings.breaker_reset_seconds
        if self.name in budget.failed:
            BREAKER_REJECTED.labels(store=self.name).inc()
            raise CircuitOpen(f"{self.name}: failed earlier in this request ({self.last_error})")
        with self._lock:
            if self._opened_at is None:
                return
            now = self._clock()
            # One trial at a time; a trial that never reported back is replaced after `reset`.
            trial_due = self._trial_since is None or now - self._trial_since >= reset
            if now - self._opened_at >= reset and trial_due:
                self._trial_since = now
                return
            retry_in = max(0.0, self._opened_at + reset - now)
        BREAKER_REJECTED.labels(store=self.name).inc()
        raise CircuitOpen(
            f"{self.name}: circuit open after repeated failures ({self.last_error});"
            f" next try in {retry_in:.1f} s"
        )

    def succeeded(self) -> None:
        """The dependency answered (an error that is the caller's, such as bad data, counts
        as an answer)."""
        with self._lock:
            was_open = self._opened_at is not None
            self._failures = 0
            self._opened_at = None
            self._trial_since = None
        if was_open:
            log.info("circuit_closed", store=self.name)

    def failed(self, budget: RequestBudget, error: BaseException) -> None:
        """The dependency failed or timed out: count it, and open after enough in a row."""
        self.last_error = f"{type(error).__name__}: {str(error)[:200]}"
        budget.failed.add(self.name)
        with self._lock:
            self._failures += 1
            trial = self._trial_since is not None
            opening = trial or (
                self._opened_at is None and self._failures >= budget.settings.breaker_failures
            )
            if opening:
                self._opened_at = self._clock()
                self._trial_since = None
        if opening and not trial:
            BREAKER_OPENED.labels(store=self.name).inc()
            log.warning("circuit_opened", store=self.name, error=self.last_error)
