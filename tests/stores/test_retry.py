"""The one retry helper (``tastebud.stores.retry``) and the one rule for "transient"
(``tastebud.stores.errors.is_transient``) that jobs, the gateway and the client share."""

from __future__ import annotations

import random
import sqlite3
import time

import httpx
import pytest

from tastebud.config import BudgetSettings
from tastebud.jobs import TransientJobError
from tastebud.stores.budget import CircuitOpen, within_budget
from tastebud.stores.errors import StoreDataError, StoreError, StoreUnavailable, is_transient
from tastebud.stores.retry import RetryPolicy, retrying


class Flaky:
    """Fails with ``errors`` in turn, then returns "done"; counts its calls."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def test_one_rule_for_transient() -> None:
    request = httpx.Request("GET", "http://127.0.0.1:1/")
    transient = [
        StoreUnavailable("down"),
        CircuitOpen("open"),
        TransientJobError("try later"),
        ConnectionResetError(),
        TimeoutError(),
        sqlite3.OperationalError("database is locked"),
        httpx.ConnectError("refused", request=request),
        httpx.ReadTimeout("slow", request=request),
        httpx.RemoteProtocolError("closed mid-answer", request=request),
    ]
    permanent_or_bug = [
        StoreDataError("NUL in text"),
        StoreError("corrupt"),
        sqlite3.IntegrityError("UNIQUE constraint failed"),
        UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
        httpx.UnsupportedProtocol("ftp://", request=request),
        ValueError("bug"),
        KeyError("x"),
    ]
    assert [error for error in transient if not is_transient(error)] == []
    assert [error for error in permanent_or_bug if is_transient(error)] == []


def test_transient_errors_are_retried_with_the_policy_delays() -> None:
    slept: list[float] = []
    flaky = Flaky(StoreUnavailable("1"), ConnectionError("2"))
    policy = RetryPolicy(max_attempts=3, base_seconds=0.1, cap_seconds=1.0, jitter=0.0)
    assert retrying(policy, sleep=slept.append)(flaky) == "done"
    assert flaky.calls == 3 and slept == [0.1, 0.2]


def test_attempts_run_out_and_the_last_error_is_raised() -> None:
    slept: list[float] = []
    retried: list[int] = []
    flaky = Flaky(*(StoreUnavailable(str(n)) for n in range(5)))
    policy = RetryPolicy(max_attempts=3, base_seconds=0.1, jitter=1.0)
    with pytest.raises(StoreUnavailable, match=r"^2$"):
        retrying(policy, sleep=slept.append, on_retry=lambda n, e, s: retried.append(n))(flaky)
    assert flaky.calls == 3 and retried == [1, 2]
    assert 0 <= slept[0] <= 0.1 and 0 <= slept[1] <= 0.2  # full jitter


@pytest.mark.parametrize("error", [ValueError("bug"), StoreDataError("refused")])
def test_other_errors_are_raised_at_once(error: Exception) -> None:
    slept: list[float] = []
    flaky = Flaky(error)
    with pytest.raises(type(error)):
        retrying(RetryPolicy(max_attempts=5), sleep=slept.append)(flaky)
    assert flaky.calls == 1 and slept == []


def test_a_retried_value_comes_back_when_attempts_run_out() -> None:
    answers = iter([503, 503, 503, 503])
    slept: list[float] = []
    policy = RetryPolicy(max_attempts=3, base_seconds=0.1, cap_seconds=5.0, jitter=0.0)
    result = retrying(
        policy,
        retry_result=lambda status: status == 503,
        wait_hint=lambda status: 30.0,  # a Retry-After past the cap is capped
        sleep=slept.append,
    )(lambda: next(answers))
    assert result == 503 and slept == [5.0, 5.0]


def test_a_request_never_waits_past_its_retry_budget() -> None:
    # Outside a request: every attempt the policy allows.
    policy = RetryPolicy(max_attempts=20, base_seconds=0.1, cap_seconds=10.0, jitter=0.0)
    unbounded = Flaky(*(StoreUnavailable(str(n)) for n in range(30)))
    with pytest.raises(StoreUnavailable):
        retrying(policy, sleep=lambda seconds: None)(unbounded)
    assert unbounded.calls == 20

    # In a request with a 1 s budget: waits of 0.1, 0.2, 0.4 end before it; 0.8 more would not.
    flaky = Flaky(*(StoreUnavailable(str(n)) for n in range(30)))
    started = time.monotonic()
    with within_budget(BudgetSettings(retry_ms=1000)), pytest.raises(StoreUnavailable):
        retrying(policy)(flaky)
    assert flaky.calls == 4
    assert 0.7 <= time.monotonic() - started < 1.0


def test_a_refused_call_ends_the_retries_of_a_request() -> None:
    # The store failed earlier in this request (or its breaker is open): another try
    # within the request would be refused without being made, so no wait is spent on it.
    policy = RetryPolicy(max_attempts=5, base_seconds=0.1)
    slept: list[float] = []
    flaky = Flaky(*(CircuitOpen("open") for _ in range(5)))
    with within_budget(BudgetSettings()), pytest.raises(CircuitOpen):
        retrying(policy, sleep=slept.append)(flaky)
    assert flaky.calls == 1 and slept == []


def test_full_jitter_spreads_waits_over_the_whole_backoff() -> None:
    policy = RetryPolicy(max_attempts=5, base_seconds=1.0, cap_seconds=5.0, jitter=1.0)
    rng = random.Random(0)
    for attempt, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (10, 5.0)):
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert min(delays) < ceiling * 0.1 and max(delays) > ceiling * 0.9  # full jitter
    with pytest.raises(ValueError):
        RetryPolicy(jitter=1.5)
