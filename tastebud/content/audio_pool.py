"""Audio extraction in worker processes, one file at a time each, with a per-file timeout.

``concurrent.futures.ProcessPoolExecutor`` cannot stop one hung task (a decoder stuck on a
broken file): its ``result(timeout=)`` only stops waiting. pebble's ``ProcessPool`` can: it
times each task from the moment a worker takes it, kills the worker past the timeout
(SIGTERM, then SIGKILL for one stuck in C code) and starts another, and reports a worker
that died mid-file (a crash inside a C decoder) as ``ProcessExpired``. Either way the file
is reported with its reason and the batch goes on. Files are handed over no faster than
workers free up, so after ``stop_at`` nothing new starts.

Workers start with ``spawn`` (no fork of a parent holding DuckDB or database threads) and warm
librosa up (imports, numba's compiled kernels) in pebble's initializer, before their first
file, so the timeout and the latency histogram measure files, not start-up.

librosa's kernels are compiled by numba and cached on disk. Workers that compile at the same
time race on that cache (a known numba problem: an index written by one while another reads
it), and a corrupt cache then crashes every later start. So the cache lives in a folder of
our own (``cache_dir``), each worker warms up holding an exclusive lock on it (the first
compiles, the others load what it wrote). pebble knows nothing of start-up failures: a
worker that dies while no file is running breaks its pool (``BrokenProcessPool``), and one
hung in its initializer just never takes a file. What is ours is that policy: a pool broken,
or with no file started for ``STARTUP_TIMEOUT``, gets the cache cleared and one fresh pool;
if that one fails to start too, audio is left out: every remaining file comes back with
reason ``audio_unavailable`` and the build goes on without audio.

pebble's one weak spot here: a worker takes a file under a lock shared by the pool, and one
killed from outside in that instant (not a decoder crash, which happens mid-file) leaves the
lock held; the next worker then gives up after pebble's 60 s lock timeout and the pool breaks,
which the policy above handles as a failed start. The hand-written pool this replaced had no
such window, but a window of microseconds is not worth 270 lines of process management.
"""

from __future__ import annotations

import contextlib
import fcntl
import multiprocessing as mp
import os
import shutil
import sys
import time
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from pebble import ProcessExpired, ProcessPool
from threadpoolctl import threadpool_limits

from tastebud.content.audio import (
    MAX_SECONDS,
    SAMPLE_RATE,
    AudioResult,
    analyse,
    features_from_signal,
)

DEFAULT_TIMEOUT = 60.0
# A cold numba cache compiles librosa's kernels (tens of seconds), and warm-ups queue on the
# cache lock: the last of several workers waits for the others.
STARTUP_TIMEOUT = 300.0
UNAVAILABLE = "audio_unavailable"
LOCK_NAME = ".lock"
POLL_SECONDS = 1.0  # how often the parent looks for a start-up that makes no progress


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


def _warm_up(cache_dir: str) -> None:
    """pebble's initializer, in each worker before its first file: point numba at our cache,
    limit threads, and compile or load librosa's kernels under the cache lock."""
    # Before librosa (and numba) are imported: numba reads it once, at import.
    os.environ["NUMBA_CACHE_DIR"] = cache_dir
    if "numba" in sys.modules:  # imported by the parent's main module on spawn
        from numba.core.config import reload_config  # lazy: only when numba is loaded already

        reload_config()
    # One file per process already fills the cores; threaded BLAS/FFT underneath would
    # oversubscribe them.
    threadpool_limits(1)

    rng = np.random.default_rng(0)
    warm_up = rng.standard_normal(SAMPLE_RATE * 3).astype(np.float32) * 0.1
    with cache_lock(Path(cache_dir)):
        features_from_signal(warm_up, 3.0)


class _StartFailed(Exception):
    """The pool's workers died or hung before any file started."""


class AudioPool:
    """``workers`` processes analysing files; use as a context manager.

    ``run(paths)`` yields ``(key, AudioResult)`` as files finish (any order). A file past
    ``timeout`` seconds gives reason ``timeout``; a worker that died gives ``worker_crashed``;
    once no worker can start, the remaining files give ``audio_unavailable``.
    ``cache_dir``: numba's kernel cache (default ``default_cache_dir()``). The workers start
    with the first batch, as many as it has files (up to ``workers``), and serve later ones.
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
        self._pool: ProcessPool | None = None
        self._size = 0
        self._cleared = False
        self._in_flight: dict[Future[AudioResult], tuple[str, str, float]] = {}
        self.unavailable: str | None = None  # why no more workers are started, once so

    def __enter__(self) -> AudioPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.stop()
            self._pool.join()
            self._pool = None

    @property
    def in_progress(self) -> list[str]:
        """Keys of the files a worker is analysing now."""
        return [key for future, (key, _, _) in list(self._in_flight.items()) if future.running()]

    def _ready_pool(self, files: int) -> ProcessPool:
        """The running pool, started (with the cache lock warm-up) if there is none."""
        if self._pool is not None and not self._pool.active:  # broken while idle
            self.close()
        if self._pool is None:
            self._size = min(self.workers, files)
            self._pool = ProcessPool(
                max_workers=self._size,
                initializer=_warm_up,
                initargs=(str(self.cache_dir),),
                context=self._context,
            )
        return self._pool

    def _failed_start(self, reason: str) -> None:
        """The pool's workers died or hung while warming up. The first time, the kernel cache
        may be corrupt (left by a race in an older run): clear it and start a fresh pool. A
        fresh pool that fails too means audio cannot run here: start no more workers."""
        self.close()
        if not self._cleared:
            clear_cache(self.cache_dir)
            self._cleared = True
        else:
            self.unavailable = f"audio workers could not start ({reason}, with a fresh cache)"

    def _outcome(self, future: Future[AudioResult], path: str, handed_at: float) -> AudioResult:
        """The file's result, or why it has none; raises _StartFailed for a broken pool."""
        try:
            return future.result()
        except BrokenProcessPool as error:
            raise _StartFailed("died while starting") from error
        except FutureTimeout:
            reason, seconds = "timeout", self.timeout
        except ProcessExpired:
            reason, seconds = "worker_crashed", time.monotonic() - handed_at
        except Exception as error:  # analyse never raises; this is pebble or pickling
            detail = f"{Path(path).name}: {type(error).__name__}: {error}"
            return AudioResult(None, "extract_error", detail)
        return AudioResult(None, reason, f"{Path(path).name} after {seconds:.1f} s", seconds)

    def run(
        self, paths: Mapping[str, str | Path], stop_at: float | None = None
    ) -> Iterator[tuple[str, AudioResult]]:
        """Results as files finish. After ``stop_at`` (``time.monotonic()``) no new file is
        started: files in progress finish, the others come back with reason ``deferred``."""
        try:
            yield from self._run(deque((key, str(path)) for key, path in paths.items()), stop_at)
        finally:  # the caller stopped early: files in progress are abandoned (pebble kills)
            for future in self._in_flight:
                future.cancel()
            self._in_flight.clear()

    def _run(
        self, pending: deque[tuple[str, str]], stop_at: float | None
    ) -> Iterator[tuple[str, AudioResult]]:
        in_flight = self._in_flight
        progress_at = time.monotonic()  # a file started or finished, or the pool started
        while pending or in_flight:
            if self.unavailable is not None:  # none could start: the files go without audio
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
            try:
                pool = self._ready_pool(len(pending) + len(in_flight))
                while pending and len(in_flight) < self._size:
                    key, path = pending.popleft()
                    future = pool.schedule(analyse, (path, self.max_seconds), timeout=self.timeout)
                    in_flight[future] = (key, path, time.monotonic())
                done, _ = wait(in_flight, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
                if not done and not pool.active:  # a pebble thread died: its futures never end
                    raise RuntimeError("the pool's manager stopped")
                if done or any(future.running() for future in in_flight):
                    progress_at = time.monotonic()
                elif time.monotonic() - progress_at > STARTUP_TIMEOUT:
                    raise _StartFailed(f"no file started in {STARTUP_TIMEOUT:g} s")
                for future in done:
                    key, path, handed_at = in_flight[future]
                    result = self._outcome(future, path, handed_at)
                    del in_flight[future]
                    yield key, result
            except (_StartFailed, RuntimeError) as error:  # RuntimeError: pebble's pool broke
                reason = str(error) if isinstance(error, _StartFailed) else "died while starting"
                pending.extendleft(reversed([(k, p) for k, p, _ in in_flight.values()]))
                in_flight.clear()
                self._failed_start(reason)
                progress_at = time.monotonic()
