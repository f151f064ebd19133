"""SQLite connections per thread end with their thread (issue 16, worker memory): the server's
thread pool retires idle threads and starts new ones, and every connection a retired thread
left open, with its page cache, used to stay until the process ended."""

from __future__ import annotations

import gc
import os
import threading
from pathlib import Path

from tastebud.stores.sqlite import SqliteDatabase


def open_descriptors(path: Path) -> int:
    """This process's open files that are the database file itself."""
    count = 0
    for descriptor in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{descriptor}") == str(path):
                count += 1
        except OSError:
            continue
    return count


def test_a_threads_connection_closes_when_the_thread_ends(tmp_path: Path) -> None:
    path = tmp_path / "kv.db"
    database = SqliteDatabase(path, "CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY)")
    try:
        before = open_descriptors(path)

        def use() -> None:
            database.connection().execute("SELECT count(*) FROM kv").fetchone()

        for _ in range(8):  # waves of short-lived threads, as a pool that retires idle ones
            threads = [threading.Thread(target=use) for _ in range(10)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        gc.collect()
        # SQLite keeps a closed connection's descriptor while another connection of the
        # process holds the file, and gives it to the next connection that opens it: a
        # wave or two's worth, where every connection kept open would leave 80.
        assert open_descriptors(path) <= before + 20
        use()  # the opening thread's connection still works
    finally:
        database.close()
    assert open_descriptors(path) == 0
