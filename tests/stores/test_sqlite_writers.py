"""The embedded backends' SQLite plumbing: writers from several processes and threads queue
on the writer lock, and every transaction lands once."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest

from tastebud.stores.sqlite import SqliteDatabase

SCHEMA = "CREATE TABLE IF NOT EXISTS counter (writer TEXT, n INTEGER)"


def _write(path: str, writer: str, count: int) -> None:
    database = SqliteDatabase(Path(path), SCHEMA)
    for n in range(count):
        with database.write() as connection:
            connection.execute("INSERT INTO counter VALUES (?, ?)", (writer, n))
    database.close()


def test_writers_in_several_processes_and_threads_all_commit(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    SqliteDatabase(path, SCHEMA).close()
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_write, args=(str(path), f"p{n}", 150)) for n in range(2)]
    for process in processes:
        process.start()
    threads = [threading.Thread(target=_write, args=(str(path), f"t{n}", 150)) for n in range(2)]
    for thread in threads:
        thread.start()
    for worker in [*processes, *threads]:
        worker.join(timeout=120)
    assert all(process.exitcode == 0 for process in processes)
    database = SqliteDatabase(path)
    rows = database.connection().execute(
        "SELECT writer, count(*), count(DISTINCT n) FROM counter GROUP BY writer ORDER BY 1"
    )
    assert rows.fetchall() == [(name, 150, 150) for name in ("p0", "p1", "t0", "t1")]
    assert (tmp_path / "db.sqlite.lock").exists()
    database.close()


def test_a_failed_transaction_rolls_back_and_releases_the_lock(tmp_path: Path) -> None:
    database = SqliteDatabase(tmp_path / "db.sqlite", SCHEMA)
    with pytest.raises(RuntimeError), database.write() as connection:
        connection.execute("INSERT INTO counter VALUES ('x', 1)")
        raise RuntimeError("boom")
    other = threading.Thread(target=_write, args=(str(tmp_path / "db.sqlite"), "y", 1))
    other.start()
    other.join(timeout=30)
    assert not other.is_alive()  # the lock was released
    rows = database.connection().execute("SELECT writer FROM counter").fetchall()
    assert rows == [("y",)]
    database.close()
