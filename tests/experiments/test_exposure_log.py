"""The ExposureLog contract, run against every backend (embedded Parquet, PostgreSQL): what is
appended is scanned back whole and in order, appends never block, a full queue drops and
counts, the writer flushes by size and by time, close flushes, a failed write is retried."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pyarrow.dataset as ds
import pytest

from tastebud.config import load_settings
from tastebud.experiments.exposure import EXPOSURE_SCHEMA, Exposure
from tastebud.experiments.exposure_log import ExposureLog
from tastebud.experiments.exposure_open import open_exposure_log
from tastebud.experiments.exposure_parquet import ParquetExposureLog
from tastebud.stores import Database, open_database

T0 = datetime(2026, 3, 1, 23, 59, 58, 123456, tzinfo=UTC)

Opener = Callable[..., ExposureLog]


@pytest.fixture(params=["embedded", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "embedded":
        url = f"embedded://{tmp_path / 'db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    with open_database(url) as opened:
        yield opened


@pytest.fixture
def opener(database: Database, tmp_path: Path) -> Iterator[Opener]:
    opened: list[ExposureLog] = []

    def make(flush_seconds: float = 60.0, batch: int = 1_000) -> ExposureLog:
        settings = load_settings(
            home=tmp_path,
            experiments={"exposure_flush_seconds": flush_seconds, "exposure_batch": batch},
        )
        log = open_exposure_log(settings, database)
        opened.append(log)
        return log

    yield make
    for log in opened:
        log.close()


def exposure(n: int, at: datetime = T0, **changes: object) -> Exposure:
    fields: dict[str, object] = {
        "list_id": f"list-{n:05d}",
        "served_at": at + timedelta(milliseconds=n),
        "experiment": "blend" if n % 2 else None,
        "variant": ("control", "diverse")[n % 3 % 2] if n % 2 else None,
        "user_id": f"u{n}" if n % 5 else None,
        "session_id": "sess-ünï" if n % 5 == 0 else None,
        "items": tuple(f"i{n + k}" for k in range(n % 4)),
        "model_version": "20260301T000000Z-abc" if n % 7 else None,
        "latency_ms": 1.25 + n,
        "degraded": n % 11 == 0,
    }
    fields.update(changes)
    return Exposure(**fields)  # type: ignore[arg-type]


def rows(log: ExposureLog, since: datetime = T0 - timedelta(days=1), days: float = 3) -> list:
    table = log.scan(since, since + timedelta(days=days))
    assert table.schema.equals(EXPOSURE_SCHEMA)
    return [Exposure(**{**row, "items": tuple(row["items"])}) for row in table.to_pylist()]


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_appended_exposures_scan_back_whole_in_order(opener: Opener) -> None:
    log = opener()
    written = [exposure(n) for n in range(40)]  # across midnight: 2026-03-01 and -02
    for e in reversed(written):
        assert log.append(e)
    assert log.scan(T0 - timedelta(days=1), T0 + timedelta(days=1)).num_rows == 0
    assert log.flush() == 40 and log.pending == 0
    assert rows(log) == written
    # [since, until): the bounds, to the microsecond
    window = log.scan(written[3].served_at, written[10].served_at)
    assert window["list_id"].to_pylist() == [e.list_id for e in written[3:10]]
    assert rows(log, since=T0 + timedelta(days=2)) == []


def test_the_writer_flushes_by_batch_size_and_by_time(opener: Opener) -> None:
    by_size = opener(flush_seconds=60.0, batch=10)
    for n in range(25):
        by_size.append(exposure(n))
    wait_for(lambda: by_size.written >= 20)
    assert len(rows(by_size)) >= 20
    by_time = opener(flush_seconds=0.05, batch=1_000)
    later = T0 + timedelta(days=10)
    by_time.append(exposure(1, at=later, list_id="later"))
    wait_for(lambda: by_time.written == 1)
    assert [e.list_id for e in rows(by_time, since=later)] == ["later"]


def test_close_flushes_and_later_appends_are_dropped(opener: Opener) -> None:
    log = opener()
    for n in range(5):
        log.append(exposure(n))
    log.close()
    assert log.written == 5
    assert not log.append(exposure(6)) and log.dropped == 1
    reader = opener()
    assert [e.list_id for e in rows(reader)] == [f"list-{n:05d}" for n in range(5)]


def test_a_full_queue_drops_and_counts_without_blocking(opener: Opener) -> None:
    log = opener(batch=1)  # the queue holds 20 (QUEUE_BATCHES) rows
    with log._write_lock:  # the writer is busy: nothing leaves the queue
        started = time.perf_counter()
        accepted = sum(log.append(exposure(n)) for n in range(100))
        elapsed = time.perf_counter() - started
    assert accepted == log.capacity == 20 and log.dropped == 80
    assert elapsed < 0.5  # 100 appends; blocking would have waited for the writer
    wait_for(lambda: log.pending == 0)
    log.flush()
    assert len(rows(log)) == 20


def test_concurrent_appends_are_all_written(opener: Opener) -> None:
    log = opener(flush_seconds=0.02, batch=50)

    def serve(worker: int) -> None:
        for n in range(200):
            log.append(exposure(worker * 1_000 + n, list_id=f"w{worker}-{n}"))

    threads = [threading.Thread(target=serve, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    assert log.dropped == 0
    assert len({e.list_id for e in rows(opener(), days=10)}) == 800


def break_writes(database: Database, log: ExposureLog) -> Callable[[], None]:
    """Make the next write fail on the real backend; returns what repairs it."""
    if isinstance(log, ParquetExposureLog):
        blocker = log.root / "date=2026-03-01"
        blocker.write_text("not a folder")  # the day's folder cannot be made
        return blocker.unlink
    with psycopg.connect(database.url, autocommit=True) as connection:
        connection.execute("ALTER TABLE exposures RENAME TO exposures_away")

    def repair() -> None:
        with psycopg.connect(database.url, autocommit=True) as connection:
            connection.execute("ALTER TABLE exposures_away RENAME TO exposures")

    return repair


def test_a_failed_write_is_kept_and_written_next_time(opener: Opener, database: Database) -> None:
    log = opener()
    repair = break_writes(database, log)
    for n in range(3):
        log.append(exposure(n))
    with pytest.raises(Exception):  # noqa: B017  (each backend raises its own error)
        log.flush()
    assert log.pending == 3 and log.written == 0
    repair()
    assert log.flush() == 3
    assert [e.list_id for e in rows(log)] == ["list-00000", "list-00001", "list-00002"]


def test_embedded_files_are_a_hive_partitioned_parquet_dataset(tmp_path: Path) -> None:
    log = ParquetExposureLog(tmp_path / "exposures")
    for n in range(4):
        log.append(exposure(n, at=T0 + timedelta(seconds=n)))  # 23:59:58 .. 00:00:01
    log.close()
    files = sorted(p.relative_to(tmp_path / "exposures").as_posix() for p in log.root.rglob("*"))
    days = [f for f in files if "/" not in f]
    assert days == ["date=2026-03-01", "date=2026-03-02"]
    assert not [f for f in files if f.endswith(".tmp")]
    assert all(f.split("/")[1].startswith("part-") for f in files if "/" in f)
    dataset = ds.dataset(log.root, format="parquet", partitioning="hive")
    assert dataset.to_table().num_rows == 4


def test_embedded_a_batch_across_midnight_is_written_whole_or_not_at_all(tmp_path: Path) -> None:
    log = ParquetExposureLog(tmp_path / "exposures")
    blocker = log.root / "date=2026-03-02"
    blocker.write_text("not a folder")  # the second day cannot be written
    for n in range(4):
        log.append(exposure(n, at=T0 + timedelta(seconds=n)))  # 03-01 and 03-02
    with pytest.raises(OSError):
        log.flush()
    assert rows(log) == [] and not list(log.root.rglob("*.tmp"))
    blocker.unlink()
    assert log.flush() == 4
    assert [e.list_id for e in rows(log)] == [f"list-{n:05d}" for n in range(4)]
