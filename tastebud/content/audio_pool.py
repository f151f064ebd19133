"""Audio extraction in worker processes, one file at a time each, with a per-file timeout.

``concurrent.futures.ProcessPoolExecutor`` cannot stop one hung task (a decoder stuck on a
broken file): its ``result(timeout=)`` only stops waiting. Here each worker has its own pipe
and runs one file at a time, so the parent knows when each file started; a worker past the
timeout is killed and replaced, a worker that dies (a crash inside a C decoder) is replaced,
and either way the file is reported with its reason and the batch goes on.

Workers start with ``spawn`` (no fork of a parent holding DuckDB or database threads) and warm
librosa up (imports, numba's compiled kernels) before their first file, so the timeout and
the latency histogram measure files, not start-up.

librosa's kernels are compiled by numba and cached on disk. Workers that compile at the same
time race on that cache (a known numba problem: an index written by one while another reads
it), and a corrupt cache then crashes every later start. So the cache lives in a folder of
our own (``cache_dir``), each worker warms up holding an exclusive lock on it (the first
compiles, the others load what it wrote), and a worker that dies while warming up gets the
cache cleared and one more try. Workers that still cannot start leave audio out: every file
comes back with reason ``audio_unavailable`` and the build goes on without audio.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import multiprocessing as mp
import os
import shutil
import sys
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import numpy as np

from tastebud.content.audio import MAX_SECONDS, SAMPLE_RATE, AudioResult, analyse

DEFAULT_TIMEOUT = 60.0
# A cold numba cache compiles librosa's kernels (tens of seconds), and warm-ups queue on the
# cache lock: the last of several workers waits for the others.
STARTUP_TIMEOUT = 300.0
UNAVAILABLE = "audio_unavailable"
LOCK_NAME = ".lock"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/tastebud/numba`` (``~/.cache/...``): shared by every tastebud home
    of the user, as compiled kernels depend only on the code (numba keys them by its path)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tastebud" / "numba"


@contextmanager
def cache_lock(cache_dir: Path) -> Iterator[None]:
    """An exclusive lock on the kernel cache, across processes (released if one dies)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / LOCK_NAME, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def clear_cache(cache_dir: Path) -> None:
    """Remove the compiled kernels (not the lock), under the lock."""
    with cache_lock(cache_dir):
        for entry in cache_dir.iterdir():
            if entry.name == LOCK_NAME:
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()


def _serve(connection: Connection, max_seconds: float, cache_dir: str) -> None:
    """Worker loop: warm up, say ready, then analyse one path per message until None."""
    # Before librosa (and numba) are imported: numba reads it once, at import.
    os.environ["NUMBA_CACHE_DIR"] = cache_dir
    if "numba" in sys.modules:  # imported by the parent's main module on spawn
        from numba.core.config import reload_config

        reload_config()
    # One file per process already fills the cores; threaded BLAS/FFT underneath would
    # oversubscribe them.
    from threadpoolctl import threadpool_limits

    from tastebud.content.audio import features_from_signal

    threadpool_limits(1)

    rng = np.random.default_rng(0)
    warm_up = rng.standard_normal(SAMPLE_RATE * 3).astype(np.float32) * 0.1
    with cache_lock(Path(cache_dir)):
        features_from_signal(warm_up, 3.0)
    connection.send("ready")
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        key, path = message
        connection.send((key, analyse(path, max_seconds)))


class _Worker:
    def __init__(self, context: Any, max_seconds: float, cache_dir: Path) -> None:
        self.connection, child = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(child, max_seconds, str(cache_dir)), daemon=True
        )
        self.process.start()
        child.close()
        self.ready = False
        self.task: tuple[str, str] | None = None
        self.spawned = self.started = time.monotonic()

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.connection.send(None)
            except (BrokenPipeError, OSError):
                self.process.kill()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.connection.close()


class AudioPool:
    """``workers`` processes analysing files; use as a context manager.

    ``run(paths)`` yields ``(key, AudioResult)`` as files finish (any order). A file past
    ``timeout`` seconds gives reason ``timeout``; a worker that died gives ``worker_crashed``;
    once no worker can start, the remaining files give ``audio_unavailable``.
    ``cache_dir``: numba's kernel cache (default ``default_cache_dir()``).
    """

    def __init__(
        self,
        workers: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_seconds: float = MAX_SECONDS,
        start_method: str = "spawn",
        cache_dir: Path | None = None,
    ) -> None:
        self.workers = max(1, workers or min(os.cpu_count() or 1, 4))
        self.timeout = timeout
        self.max_seconds = max_seconds
        self.cache_dir = cache_dir if cache_dir is not None else default_cache_dir()
        self._context = mp.get_context(start_method)
        self._pool: list[_Worker] = []
        self._cleared_at: float | None = None
        self.unavailable: str | None = None  # why no more workers are started, once so

    def __enter__(self) -> AudioPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for worker in self._pool:
            worker.stop()
        self._pool.clear()

    def _spawn(self) -> _Worker:
        return _Worker(self._context, self.max_seconds, self.cache_dir)

    def _failed_start(self, worker: _Worker, reason: str) -> None:
        """A worker died or hung while warming up. The first time, the kernel cache may be
        corrupt (left by a race in an older run): clear it and start again. A worker that
        started after the clear and fails too means audio cannot run here: stop starting
        workers (those already running finish the batch)."""
        if self._cleared_at is None:
            clear_cache(self.cache_dir)
            self._cleared_at = time.monotonic()
        elif worker.spawned >= self._cleared_at:
            self.unavailable = f"audio workers could not start ({reason}, with a fresh cache)"

    def run(
        self, paths: Mapping[str, str | Path], stop_at: float | None = None
    ) -> Iterator[tuple[str, AudioResult]]:
        """Results as files finish. After ``stop_at`` (``time.monotonic()``) no new file is
        started: files in progress finish, the others come back with reason ``deferred``."""
        pending = deque((key, str(path)) for key, path in paths.items())
        if not pending:
            return
        if self.unavailable is None:
            while len(self._pool) < min(self.workers, len(pending)):
                self._pool.append(self._spawn())
        busy = 0
        while pending or busy:
            if not self._pool:  # none could start: the files go without audio
                while pending:
                    key, path = pending.popleft()
                    detail = f"{Path(path).name}: {self.unavailable}"
                    yield key, AudioResult(None, UNAVAILABLE, detail)
                return
            if stop_at is not None and pending and time.monotonic() > stop_at:
                while pending:
                    key, path = pending.popleft()
                    yield key, AudioResult(None, "deferred", Path(path).name)
                continue
            for worker in self._pool:
                if worker.ready and worker.task is None and pending:
                    worker.task = pending.popleft()
                    worker.started = time.monotonic()
                    worker.connection.send(worker.task)
                    busy += 1
            now = time.monotonic()
            # Only a file in progress or a start-up can time out; an idle worker cannot.
            deadlines = [
                w.started + (self.timeout if w.ready else STARTUP_TIMEOUT)
                if w.task is not None or not w.ready
                else math.inf
                for w in self._pool
            ]
            soonest = min(deadlines)
            timeout = None if soonest == math.inf else max(0.0, soonest - now)
            ready = wait([w.connection for w in self._pool], timeout=timeout)
            finished: list[tuple[int, str, AudioResult]] = []
            for index, worker in enumerate(self._pool):
                if worker.connection in ready:
                    try:
                        message = worker.connection.recv()
                    except (EOFError, OSError):
                        finished.append((index, "worker_crashed", AudioResult(None)))
                        continue
                    if message == "ready":
                        worker.ready = True
                        continue
                    key, result = message
                    worker.task = None
                    busy -= 1
                    yield key, result
                elif time.monotonic() > deadlines[index]:
                    finished.append((index, "timeout", AudioResult(None)))
            gone: list[int] = []
            for index, reason, result in finished:
                worker = self._pool[index]
                worker.stop(kill=True)
                if not worker.ready:  # died or hung while starting up
                    self._failed_start(worker, reason)
                if self.unavailable is None:
                    self._pool[index] = self._spawn()
                else:
                    gone.append(index)
                if worker.task is None:
                    continue
                busy -= 1
                seconds = time.monotonic() - worker.started
                result.reason = reason
                result.detail = f"{Path(worker.task[1]).name} after {seconds:.1f} s"
                result.seconds = seconds
                yield worker.task[0], result
            for index in sorted(gone, reverse=True):
                del self._pool[index]
