"""One way to retry a call to a dependency, for the job runner, the gateway's appends and the
Python client: exponential backoff with jitter and a cap, for transient errors only.

Retrying a bug or bad input gives the same failure again and delays the alert, so only what
``stores.errors.is_transient`` calls transient is retried (the one rule: a store outage,
a network or driver connection error, a ``TransientError``; never a refusal of the data).

The loop, its stop conditions and the injected sleep are tenacity's; what is ours is the
policy (``RetryPolicy``: one delay formula for every caller) and the request budget. On a
server's request path (``stores.budget``) a retry

* never starts when its wait would end after ``budgets.retry_ms`` from the first attempt, so
  a request thread never sleeps without bound, whatever ``gateway.store_retries`` says;
* stops at a ``CircuitOpen``: the store failed earlier in this request or its breaker is
  open, so another try within this request is refused without being made.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tastebud.stores.errors import is_transient

if TYPE_CHECKING:
    import tenacity
# Called before each wait: the attempt that failed (1-based), its error (None when a result
# was retried) and the seconds about to be slept.
OnRetry = Callable[[int, BaseException | None, float], None]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long: attempt ``n`` (1-based) that failed is followed by a wait of
    ``min(cap, base x 2^(n-1))``, of which a random share up to ``jitter`` is taken off.
    ``jitter=1`` is "full jitter" (uniform between 0 and the backoff), which spreads out
    many callers hitting one store at once (the gateway, the client); the jobs' default 0.5
    keeps at least half the backoff, so a retried job never comes back at once."""

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


def retrying(
    policy: RetryPolicy,
    *,
    retry_on: Callable[[BaseException], bool] = is_transient,
    retry_result: Callable[[Any], bool] | None = None,
    wait_hint: Callable[[Any], float | None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: OnRetry | None = None,
) -> tenacity.Retrying:
    """A tenacity ``Retrying`` for ``policy``: call it with the function and its arguments.

    It returns the function's result, or raises its last error when the attempts are spent
    or the error is not to be retried. ``retry_result`` retries a returned value too (an
    HTTP 503), and the last such value is returned when the attempts run out;
    ``wait_hint(value)`` may name the wait instead of the backoff (a Retry-After header),
    capped at ``policy.cap_seconds``. Build it per call: it reads the request budget that is
    current when it is built."""
    # ``RetryPolicy`` is in every job definition; the CLI's light commands list jobs.
    # lazy: tenacity (it imports asyncio) and the budgets (settings) wait for a first retry
    import tenacity

    from tastebud.stores.budget import CircuitOpen, current_budget

    budget = current_budget()
    stop: tenacity.stop.stop_base = tenacity.stop_after_attempt(policy.max_attempts)
    if budget is not None:
        stop = stop | tenacity.stop_before_delay(budget.settings.retry_ms / 1000)

    def should_retry(error: BaseException) -> bool:
        if budget is not None and isinstance(error, CircuitOpen):
            return False
        return retry_on(error)

    retry: tenacity.retry.retry_base = tenacity.retry_if_exception(should_retry)
    if retry_result is not None:
        retry = retry | tenacity.retry_if_result(retry_result)

    def wait(state: tenacity.RetryCallState) -> float:
        outcome = state.outcome
        if wait_hint is not None and outcome is not None and not outcome.failed:
            hinted = wait_hint(outcome.result())
            if hinted is not None:
                return max(0.0, min(hinted, policy.cap_seconds))
        return policy.delay(state.attempt_number)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        if on_retry is None or state.outcome is None or state.next_action is None:
            return
        on_retry(state.attempt_number, state.outcome.exception(), state.next_action.sleep)

    return tenacity.Retrying(
        stop=stop,
        wait=wait,
        retry=retry,
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
        # Out of attempts on a retried *value*: hand it back (an error is raised as it is).
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
    )
