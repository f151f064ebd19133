"""Stores behind small interfaces, each opened from a URL.

* database (events, catalog, metadata): ``embedded:///path/to/dir`` or ``postgresql://...``
* online key-value: ``sqlite:///path/online.db``, ``memory://`` or ``redis://host:6379/0``
* artifacts: a folder or any fsspec URL

Layer (docs/architecture.md): may import the core only (settings, schemas, logging).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlsplit

from tastebud.lazy import lazy_exports
from tastebud.stores.dead_letters import DeadLetterStore
from tastebud.stores.errors import Closeable, StoreDataError, StoreError, StoreUnavailable
from tastebud.stores.keys import ApiKeyStore
from tastebud.stores.push import PushStore

if TYPE_CHECKING:
    from tastebud.config import Settings
    from tastebud.stores.artifacts import ArtifactNotFound, ArtifactStore
    from tastebud.stores.base import (
        AppendResult,
        CatalogStore,
        EventQuery,
        EventStats,
        EventStore,
        OnlineStore,
    )
    from tastebud.stores.sql import SqlBackend

__all__ = [
    "AppendResult",
    "ArtifactNotFound",
    "ArtifactStore",
    "CatalogStore",
    "Closeable",
    "Database",
    "EventQuery",
    "EventStats",
    "EventStore",
    "GatewayStores",
    "OnlineStore",
    "PushStore",
    "StoreDataError",
    "StoreError",
    "StoreUnavailable",
    "Stores",
    "local_path",
    "open_database",
    "open_gateway_stores",
    "open_online_store",
    "open_stores",
]

# The interfaces import pyarrow: resolved on first use, so that the light commands (keys,
# dlq, models) start quickly (docs/benchmarks.md, CLI start-up).
__getattr__ = lazy_exports(
    __name__,
    {
        "AppendResult": "base",
        "CatalogStore": "base",
        "EventQuery": "base",
        "EventStats": "base",
        "EventStore": "base",
        "OnlineStore": "base",
        "ArtifactNotFound": "artifacts",
        "ArtifactStore": "artifacts",
    },
)

POSTGRES_SCHEMES = ("postgresql", "postgres")


def local_path(url: str) -> Path:
    """The folder or file an ``embedded://`` / ``sqlite://`` URL names."""
    parts = urlsplit(url)
    path = unquote(parts.netloc + parts.path)
    if not path:
        raise StoreError(f"{url!r} names no path")
    return Path(path).expanduser()


EMBEDDED_TUNING = {
    "segment_rows": int,
    "compact_rows": int,
    "max_small_segments": int,
    "retired_grace_seconds": float,
}


def _embedded_tuning(url: str) -> dict[str, float]:
    """Query parameters of an embedded URL, e.g. ``embedded:///dir?compact_rows=10000``."""
    tuning: dict[str, float] = {}
    for key, value in parse_qsl(urlsplit(url).query):
        if key not in EMBEDDED_TUNING:
            raise StoreError(
                f"unknown embedded store option {key!r}: use {', '.join(EMBEDDED_TUNING)}"
            )
        try:
            tuning[key] = EMBEDDED_TUNING[key](value)
        except ValueError:
            raise StoreError(f"embedded store option {key}={value!r} is not a number") from None
    return tuning


@dataclass
class GatewayStores(Closeable):
    """The gateway's metadata stores (API keys, dead letters) on one SQL backend."""

    keys: ApiKeyStore
    dead_letters: DeadLetterStore
    backend: SqlBackend

    @classmethod
    def on(cls, backend: SqlBackend) -> GatewayStores:
        return cls(ApiKeyStore(backend), DeadLetterStore(backend), backend)

    def close(self) -> None:
        """Close the backend (a no-op for a pool another store owns)."""
        self.backend.close()


def _embedded_gateway(url: str) -> GatewayStores:
    """Keys and letters in ``gateway.db``, its own file so key lookups and DLQ writes never
    wait behind an event append."""
    # lazy: sqlite3 loads for an embedded URL only (start-up)
    from tastebud.stores.sqlite import SqliteBackend, SqliteDatabase

    return GatewayStores.on(SqliteBackend(SqliteDatabase(local_path(url) / "gateway.db")))


@dataclass
class Database(Closeable):
    """The stores behind one database URL (events, catalog; later the metadata stores of
    jobs, keys and the model registry). On PostgreSQL they share one connection pool."""

    url: str
    events: EventStore
    catalog: CatalogStore

    @cached_property
    def gateway(self) -> GatewayStores:
        """API keys and the dead-letter queue, opened on first use. Embedded: ``gateway.db``
        in the database folder; PostgreSQL: tables on the event store's connection pool."""
        # lazy: pyarrow and psycopg load for a PostgreSQL URL only
        from tastebud.stores.postgres_events import PostgresEventStore

        if isinstance(self.events, PostgresEventStore):
            # lazy: psycopg loads for a PostgreSQL URL only
            from tastebud.stores.postgres import PostgresBackend

            return GatewayStores.on(PostgresBackend(self.events.database))
        return _embedded_gateway(self.url)

    @cached_property
    def push(self) -> PushStore:
        """Web push subscriptions and VAPID keys, opened on first use. Embedded: ``push.db``
        in the database folder; PostgreSQL: tables on the event store's connection pool."""
        # lazy: pyarrow and psycopg load for a PostgreSQL URL only
        from tastebud.stores.postgres_events import PostgresEventStore

        if isinstance(self.events, PostgresEventStore):
            # lazy: psycopg loads for a PostgreSQL URL only
            from tastebud.stores.postgres import PostgresBackend

            return PushStore(PostgresBackend(self.events.database))
        # lazy: sqlite3 loads for an embedded URL only (start-up)
        from tastebud.stores.sqlite import SqliteBackend, SqliteDatabase

        return PushStore(SqliteBackend(SqliteDatabase(local_path(self.url) / "push.db")))

    def sql_backend(self, name: str) -> SqlBackend:
        """A SQL backend for a store of plain rows that lives above this package (the
        quality results): embedded, ``{name}.db`` in the database folder; PostgreSQL, the
        event store's pool (not closed with the backend). The caller closes it."""
        # lazy: pyarrow and psycopg load for a PostgreSQL URL only
        from tastebud.stores.postgres_events import PostgresEventStore

        if isinstance(self.events, PostgresEventStore):
            # lazy: psycopg loads for a PostgreSQL URL only
            from tastebud.stores.postgres import PostgresBackend

            return PostgresBackend(self.events.database)
        # lazy: sqlite3 loads for an embedded URL only (start-up)
        from tastebud.stores.sqlite import SqliteBackend, SqliteDatabase

        return SqliteBackend(SqliteDatabase(local_path(self.url) / f"{name}.db"))

    def close(self) -> None:
        if "push" in self.__dict__:
            self.push.close()
        if "gateway" in self.__dict__:
            self.gateway.close()
        self.catalog.close()
        self.events.close()


def open_database(url: str) -> Database:
    scheme = urlsplit(url).scheme
    if scheme == "embedded":
        # lazy: the embedded backends (pyarrow, DuckDB, sqlite3) load for their URL only
        from tastebud.stores.catalog import SqlCatalogStore
        from tastebud.stores.embedded_events import EmbeddedEventStore
        from tastebud.stores.sqlite import SqliteBackend, SqliteDatabase

        root = local_path(url)
        events = EmbeddedEventStore(root / "events", **_embedded_tuning(url))
        catalog = SqlCatalogStore(SqliteBackend(SqliteDatabase(root / "catalog.db")))
        return Database(url, events, catalog)
    if scheme in POSTGRES_SCHEMES:
        # lazy: the PostgreSQL backends (psycopg, pyarrow) load for their URL only
        from tastebud.stores.catalog import SqlCatalogStore
        from tastebud.stores.postgres import PostgresBackend, PostgresDatabase
        from tastebud.stores.postgres_events import PostgresEventStore

        pool = PostgresDatabase(url)
        return Database(
            url,
            PostgresEventStore(pool, owns_database=True),
            SqlCatalogStore(PostgresBackend(pool)),
        )
    raise StoreError(
        f"unsupported database URL scheme {scheme!r}: use embedded:///path or postgresql://..."
    )


def open_online_store(url: str) -> OnlineStore:
    # lazy: redis-py and sqlite3 load when an online store is opened (start-up)
    from tastebud.stores import online

    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return online.MemoryOnlineStore()
    if scheme == "sqlite":
        return online.SqliteOnlineStore(local_path(url))
    if scheme in ("redis", "rediss", "unix"):
        return online.RedisOnlineStore(url)
    raise StoreError(
        f"unsupported online store URL scheme {scheme!r}: use sqlite:///path, memory:// or redis://"
    )


@dataclass
class Stores(Closeable):
    """Every store a process needs, opened from settings; close it (or use ``with``)."""

    database: Database
    online: OnlineStore
    artifacts: ArtifactStore

    @property
    def events(self) -> EventStore:
        return self.database.events

    @property
    def catalog(self) -> CatalogStore:
        return self.database.catalog

    def close(self) -> None:
        self.database.close()
        self.online.close()


def open_gateway_stores(url: str) -> GatewayStores:
    """Only the API keys and dead letters of a database URL, for the commands that need
    nothing else (``tastebud keys``, ``dlq``): the event store's pyarrow and DuckDB are not
    imported, so they start quickly. On PostgreSQL the stores own their connection pool."""
    scheme = urlsplit(url).scheme
    if scheme == "embedded":
        return _embedded_gateway(url)
    if scheme in POSTGRES_SCHEMES:
        # lazy: psycopg loads for a PostgreSQL URL only
        from tastebud.stores.postgres import PostgresBackend, PostgresDatabase

        return GatewayStores.on(PostgresBackend(PostgresDatabase(url), owned=True))
    raise StoreError(
        f"unsupported database URL scheme {scheme!r}: use embedded:///path or postgresql://..."
    )


def open_stores(settings: Settings) -> Stores:
    # lazy: fsspec loads when the artifact store is opened (start-up)
    from tastebud.stores.artifacts import ArtifactStore

    database = open_database(settings.resolved_database_url)
    try:
        online = open_online_store(settings.resolved_online_url)
        artifacts = ArtifactStore(settings.resolved_artifacts_url)
    except Exception:
        database.close()
        raise
    return Stores(database=database, online=online, artifacts=artifacts)
