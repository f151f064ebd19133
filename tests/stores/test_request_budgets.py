"""Request-path budgets (``tastebud.stores.budget``): the circuit breaker's states, and real
dependencies failing under a budget: a paused Redis costs one short timeout and then nothing,
a stopped PostgreSQL fails at once, a locked table does not open the breaker, and both come
back on their own. Outages happen on servers the tests start (``tests/chaos/services``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from chaos.services import PostgresCluster, RedisServer, need

from tastebud.config import BudgetSettings
from tastebud.stores import StoreUnavailable
from tastebud.stores.budget import CircuitBreaker, CircuitOpen, RequestBudget, within_budget
from tastebud.stores.keys import ApiKeyStore
from tastebud.stores.online import RedisOnlineStore
from tastebud.stores.postgres import PostgresBackend, PostgresDatabase

LIMITS = BudgetSettings(online_ms=50, database_ms=50, breaker_failures=3, breaker_reset_seconds=0.5)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def budget() -> RequestBudget:
    return RequestBudget(LIMITS)


def test_breaker_opens_after_failures_in_a_row_and_lets_one_trial_through() -> None:
    clock = Clock()
    breaker = CircuitBreaker("dep", clock=clock)
    error = ConnectionError("refused")
    for _ in range(2):
        breaker.admit(budget())
        breaker.failed(budget(), error)
    breaker.admit(budget())
    breaker.succeeded()  # a success in between resets the count
    for _ in range(3):
        breaker.admit(budget())
        breaker.failed(budget(), error)
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen, match=r"next try in 0\.5 s"):
        breaker.admit(budget())
    clock.now += 0.5
    breaker.admit(budget())  # the trial
    assert breaker.state == "half-open"
    with pytest.raises(CircuitOpen):  # one trial at a time
        breaker.admit(budget())
    breaker.failed(budget(), error)  # the trial failed: open again, for another reset
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen):
        breaker.admit(budget())
    clock.now += 0.5
    breaker.admit(budget())
    breaker.succeeded()
    assert breaker.state == "closed"
    breaker.admit(budget())


def test_a_trial_that_never_reports_back_is_replaced() -> None:
    clock = Clock()
    breaker = CircuitBreaker("dep", clock=clock)
    for _ in range(3):
        breaker.failed(budget(), TimeoutError())
    clock.now += 0.5
    breaker.admit(budget())  # a trial that hangs or is lost
    clock.now += 0.2
    with pytest.raises(CircuitOpen):
        breaker.admit(budget())
    clock.now += 0.3
    breaker.admit(budget())


def test_a_dependency_that_failed_in_a_request_fails_at_once_for_the_rest_of_it() -> None:
    breaker = CircuitBreaker("dep")
    request = budget()
    breaker.admit(request)
    breaker.failed(request, TimeoutError("hung"))
    assert breaker.state == "closed"  # one failure opens nothing...
    with pytest.raises(CircuitOpen, match="failed earlier in this request"):
        breaker.admit(request)  # ...but this request does not wait on it again
    breaker.admit(budget())  # the next request tries


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    need(RedisServer.available(), "redis-server")
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@contextmanager
def timed() -> Iterator[list[float]]:
    took: list[float] = []
    started = time.perf_counter()
    try:
        yield took
    finally:
        took.append(time.perf_counter() - started)


def test_paused_redis_costs_one_short_timeout_then_calls_fail_at_once(
    redis_server: RedisServer,
) -> None:
    store = RedisOnlineStore(redis_server.url)
    try:
        store.set_many({"k": b"v"})
        redis_server.pause()
        try:
            for _ in range(LIMITS.breaker_failures):  # three requests, one timeout each
                with within_budget(LIMITS):
                    with timed() as took, pytest.raises(StoreUnavailable, match="Timeout"):
                        store.get_many(["k"])
                    assert took[0] < 0.5  # 50 ms, not redis-py's 5 s and retries
                    with timed() as again, pytest.raises(CircuitOpen):
                        store.get_lists(["k"])  # same request: no second wait
                    assert again[0] < 0.01
            assert store.breaker.state == "open"
            with within_budget(LIMITS), timed() as took, pytest.raises(CircuitOpen):
                store.get_many(["k"])
            assert took[0] < 0.01
        finally:
            redis_server.resume()
        time.sleep(LIMITS.breaker_reset_seconds)
        with within_budget(LIMITS):
            assert store.get_many(["k"]) == [b"v"]
        assert store.breaker.state == "closed"
    finally:
        store.close()


def test_outside_a_request_redis_keeps_its_long_timeouts(redis_server: RedisServer) -> None:
    store = RedisOnlineStore(redis_server.url)
    try:
        store.set_many({"k": b"v"})
        redis_server.pause()
        threading.Timer(0.3, redis_server.resume).start()
        assert store.get_many(["k"]) == [b"v"]  # a job waits out a short hang
    finally:
        redis_server.resume()
        store.close()


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    need(PostgresCluster.available(), "PostgreSQL's initdb and pg_ctl")
    cluster = PostgresCluster().init().start()
    yield cluster
    cluster.destroy()


def test_stopped_postgres_fails_fast_and_the_pool_comes_back(cluster: PostgresCluster) -> None:
    database = PostgresDatabase(cluster.url)
    keys = ApiKeyStore(PostgresBackend(database))
    try:
        created = keys.create(["read"], "budget")
        assert created is not None
        cluster.stop()
        try:
            for _ in range(LIMITS.breaker_failures):
                with within_budget(LIMITS), timed() as took, pytest.raises(StoreUnavailable):
                    keys.authenticate(created[1])
                assert took[0] < 0.5  # not the pool's 10 s wait for a connection
            assert database.breaker.state == "open"
        finally:
            cluster.start()
        returned = time.monotonic()
        while True:
            try:
                with within_budget(LIMITS):
                    found = keys.authenticate(created[1])
                break
            except StoreUnavailable:
                assert time.monotonic() - returned < 5.0, "no recovery within 5 s"
                time.sleep(0.1)
        assert found is not None and found.key_id == created[0].key_id
    finally:
        database.close()


def test_a_locked_table_times_out_without_opening_the_breaker(cluster: PostgresCluster) -> None:
    database = PostgresDatabase(cluster.url)
    keys = ApiKeyStore(PostgresBackend(database))
    try:
        created = keys.create(["read"], "locked")
        assert created is not None
        with psycopg.connect(cluster.url) as holder:
            holder.execute("LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE")
            for _ in range(LIMITS.breaker_failures + 1):
                with within_budget(LIMITS), timed() as took, pytest.raises(StoreUnavailable):
                    keys.authenticate(created[1])
                assert took[0] < 0.5  # the read's 50 ms statement timeout
            holder.rollback()
        assert database.breaker.state == "closed"  # the database answered every time
        with within_budget(LIMITS):
            assert keys.authenticate(created[1]) is not None
    finally:
        database.close()
