"""Online key-value stores: ``memory://`` (one process), the embedded SQLite file (shared by
server workers and jobs on one machine) and ``redis://``. One contract suite covers all three.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis

from tastebud.stores.base import OnlineStore, StoreUnavailable
from tastebud.stores.sqlite import SqliteDatabase, chunks, placeholders


class MemoryOnlineStore(OnlineStore):
    """A dict with expiry times, for tests and single-process use."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[bytes, float | None]] = {}
        self._lock = threading.Lock()

    def _live(self, key: str, now: float) -> bytes | None:
        entry = self._values.get(key)
        if entry is None:
            return None
        value, expires_at = entry
        if expires_at is not None and expires_at <= now:
            del self._values[key]
            return None
        return value

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        now = time.monotonic()
        with self._lock:
            return [self._live(key, now) for key in keys]

    def set_many(self, values: Mapping[str, bytes], ttl_seconds: float | None = None) -> None:
        _check_ttl(ttl_seconds)
        expires_at = None if ttl_seconds is None else time.monotonic() + ttl_seconds
        with self._lock:
            for key, value in values.items():
                self._values[key] = (bytes(value), expires_at)

    def delete_many(self, keys: Sequence[str]) -> int:
        now = time.monotonic()
        with self._lock:
            live = [key for key in set(keys) if self._live(key, now) is not None]
            for key in live:
                del self._values[key]
        return len(live)


SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    expires_at REAL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_expiry ON kv (expires_at) WHERE expires_at IS NOT NULL;
"""


class SqliteOnlineStore(OnlineStore):
    """The embedded default: one SQLite file in WAL mode that every local process shares.
    Expired rows are invisible at once and purged on later writes."""

    def __init__(self, path: Path) -> None:
        self._db = SqliteDatabase(path, SQLITE_SCHEMA)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        now = time.time()
        found: dict[str, bytes] = {}
        connection = self._db.connection()
        for chunk in chunks(list(keys)):
            found.update(
                connection.execute(
                    f"SELECT key, value FROM kv WHERE key IN ({placeholders(len(chunk))})"
                    " AND (expires_at IS NULL OR expires_at > ?)",
                    [*chunk, now],
                ).fetchall()
            )
        return [found.get(key) for key in keys]

    def set_many(self, values: Mapping[str, bytes], ttl_seconds: float | None = None) -> None:
        _check_ttl(ttl_seconds)
        now = time.time()
        expires_at = None if ttl_seconds is None else now + ttl_seconds
        with self._db.write() as connection:
            connection.executemany(
                "INSERT OR REPLACE INTO kv (key, value, expires_at) VALUES (?, ?, ?)",
                [(key, bytes(value), expires_at) for key, value in values.items()],
            )
            connection.execute(
                "DELETE FROM kv WHERE key IN (SELECT key FROM kv WHERE expires_at <= ? LIMIT 1000)",
                (now,),
            )

    def delete_many(self, keys: Sequence[str]) -> int:
        now = time.time()
        deleted = 0
        with self._db.write() as connection:
            for chunk in chunks(sorted(set(keys))):
                marks = placeholders(len(chunk))
                (live,) = connection.execute(
                    f"SELECT count(*) FROM kv WHERE key IN ({marks})"
                    " AND (expires_at IS NULL OR expires_at > ?)",
                    [*chunk, now],
                ).fetchone()
                connection.execute(f"DELETE FROM kv WHERE key IN ({marks})", chunk)
                deleted += live
        return deleted

    def close(self) -> None:
        self._db.close()


class RedisOnlineStore(OnlineStore):
    """Redis: MGET for reads, pipelined SET ... PX for writes with a TTL. Every key is
    prefixed (``?prefix=`` in the URL, default ``tastebud:``) so tastebud can share a Redis."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        self.prefix = query.pop("prefix", "tastebud:")
        clean = urlunsplit(parts._replace(query=urlencode(query)))
        self._client = redis.Redis.from_url(
            clean, socket_timeout=5.0, socket_connect_timeout=5.0, health_check_interval=30
        )

    def _key(self, key: str) -> str:
        return self.prefix + key

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        try:
            return list(self._client.mget([self._key(key) for key in keys]))  # type: ignore[arg-type]
        except redis.RedisError as error:
            raise StoreUnavailable(f"Redis: {error}") from error

    def set_many(self, values: Mapping[str, bytes], ttl_seconds: float | None = None) -> None:
        _check_ttl(ttl_seconds)
        if not values:
            return
        try:
            if ttl_seconds is None:
                self._client.mset({self._key(k): bytes(v) for k, v in values.items()})
                return
            pipeline = self._client.pipeline(transaction=False)
            milliseconds = max(1, int(ttl_seconds * 1000))
            for key, value in values.items():
                pipeline.set(self._key(key), bytes(value), px=milliseconds)
            pipeline.execute()
        except redis.RedisError as error:
            raise StoreUnavailable(f"Redis: {error}") from error

    def delete_many(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        try:
            return int(self._client.delete(*[self._key(key) for key in set(keys)]))  # type: ignore[arg-type]
        except redis.RedisError as error:
            raise StoreUnavailable(f"Redis: {error}") from error

    def close(self) -> None:
        self._client.close()


def _check_ttl(ttl_seconds: float | None) -> None:
    if ttl_seconds is not None and ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive (or None for no expiry)")
