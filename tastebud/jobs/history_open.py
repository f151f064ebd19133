"""Which run history a database URL opens: SQLite for the embedded mode, PostgreSQL
otherwise. Apart from ``history`` (the shared SQL), which both backends build on, so the
backends import the base and nothing imports back."""

from __future__ import annotations

from urllib.parse import urlsplit

from tastebud.config import Settings
from tastebud.jobs.history import RunHistory
from tastebud.jobs.history_postgres import PostgresRunHistory
from tastebud.jobs.history_sqlite import SqliteRunHistory
from tastebud.stores import POSTGRES_SCHEMES, StoreError, local_path


def open_run_history(settings: Settings) -> RunHistory:
    """The run history behind ``settings.database_url`` (its own connections)."""
    url = settings.resolved_database_url
    scheme = urlsplit(url).scheme
    if scheme == "embedded":
        return SqliteRunHistory(local_path(url))
    if scheme in POSTGRES_SCHEMES:
        return PostgresRunHistory(url)
    raise StoreError(f"unsupported database URL scheme {scheme!r} for job history")
