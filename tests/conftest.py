"""Shared fixtures: real PostgreSQL and Redis (skipped when unreachable, unless
TASTEBUD_REQUIRE_SERVICES=1 makes that a failure), a private TASTEBUD_HOME, event factories."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
import redis
import structlog
from event_factories import T0, make_events  # noqa: F401  (re-exported for fixtures)

POSTGRES_URL = os.environ.get(
    "TASTEBUD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TASTEBUD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("TASTEBUD_REQUIRE_SERVICES") == "1"
DATASETS = Path(
    os.environ.get(
        "TASTEBUD_TEST_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"
    )
)


def _unavailable(service: str, error: Exception) -> None:
    message = f"{service} unreachable ({error}); set TASTEBUD_TEST_{service.upper()}_URL"
    if REQUIRE_SERVICES:
        pytest.fail(f"TASTEBUD_REQUIRE_SERVICES=1 but {message}")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        _unavailable("postgres", error)
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A URL whose search_path is a fresh schema, dropped after the test."""
    schema = f"tb_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in postgres_server else "?"
    yield f"{postgres_server}{separator}options={quote(f'-csearch_path={schema}')}"
    with psycopg.connect(postgres_server, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(scope="session")
def redis_server() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        _unavailable("redis", error)
    return REDIS_URL


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    """A URL with a private key prefix; its keys are deleted after the test."""
    prefix = f"tbtest:{uuid.uuid4().hex[:12]}:"
    separator = "&" if "?" in redis_server else "?"
    yield f"{redis_server}{separator}prefix={quote(prefix)}"
    client = redis.Redis.from_url(redis_server)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def movielens_dir() -> Path:
    if not (DATASETS / "ml-100k" / "u.data").is_file():
        pytest.skip(f"MovieLens copies not found under {DATASETS}")
    return DATASETS


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private TASTEBUD_HOME; no config file or TASTEBUD_* variable leaks in."""
    for name in list(os.environ):
        if name.startswith("TASTEBUD_") and not name.startswith("TASTEBUD_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TASTEBUD_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """CLI runs bind structlog to their captured stderr, which is closed afterwards; start
    and end each test with structlog's defaults so later log lines have a live stream."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()
