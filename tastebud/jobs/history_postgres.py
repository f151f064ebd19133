"""The PostgreSQL run history: ``tastebud_job_runs``, and job locks as session advisory
locks on a dedicated connection (released by the server if the holder dies). The SQL is
``RunHistory``'s, shared with SQLite; only the locks are PostgreSQL's own.

Advisory locks are per database cluster, not per schema: the key hashes the database and
schema with the job name, so two deployments in two schemas of one PostgreSQL never hold
each other's jobs up, while every scheduler of one deployment contends for the same lock."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from tastebud.jobs.base import JobAlreadyRunning
from tastebud.jobs.history import RunHistory
from tastebud.stores import StoreUnavailable


def advisory_key(name: str, scope: str = "") -> int:
    """A signed 64-bit advisory-lock key for a job name in ``scope`` (the database and
    schema), stable across processes."""
    digest = hashlib.blake2b(f"tastebud-job:{scope}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresRunHistory(RunHistory):
    """``tastebud_job_runs`` in the configured PostgreSQL; locks are advisory locks held on a
    dedicated connection for as long as the run lasts."""

    def __init__(self, url: str) -> None:
        # lazy: psycopg loads for a PostgreSQL URL only
        from tastebud.stores.postgres import PostgresBackend, PostgresDatabase

        self.url = url
        database = PostgresDatabase(url, max_size=2)
        super().__init__(PostgresBackend(database, owned=True), "tastebud_job_runs")

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        import psycopg  # lazy: psycopg loads for a PostgreSQL URL only

        try:
            connection = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as error:
            raise StoreUnavailable(f"PostgreSQL: {error}") from error
        try:
            (scope,) = connection.execute(  # type: ignore[misc]
                "SELECT current_database() || '.' || coalesce(current_schema(), '')"
            ).fetchone()
            key = advisory_key(name, scope)
            (acquired,) = connection.execute(  # type: ignore[misc]
                "SELECT pg_try_advisory_lock(%s)", (key,)
            ).fetchone()
            if not acquired:
                raise JobAlreadyRunning(
                    f"{name} is already running (PostgreSQL advisory lock {key} is held)"
                )
            try:
                yield
            finally:
                connection.execute("SELECT pg_advisory_unlock(%s)", (key,))
        finally:
            connection.close()
