"""Audio extraction in worker processes, one file at a time each, with a per-file timeout.

``concurrent.futures.ProcessPoolExecutor`` cannot stop one hung task (a decoder stuck on a
broken file): its ``result(timeout=)`` only stops waiting. Here each worker has its own pipe
and runs one file at a time, so the parent knows when each file started; a worker past the
timeout is killed and replaced, a worker that dies (a crash inside a C decoder) is replaced,
and either way the file is reported with its reason and the batch goes on.

Workers start with ``spawn`` (no fork of a parent holding DuckDB or database threads) and warm
librosa up (imports, numba's compiled kernels) before their first file, so the timeout and
the latency histogram measure files, not start-up.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import time
from collections import deque
from collections.abc import Iterator, Mapping
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import numpy as np

from tastebud.content.audio import MAX_SECONDS, SAMPLE_RATE, AudioResult, analyse

DEFAULT_TIMEOUT = 60.0
STARTUP_TIMEOUT = 300.0  # a cold numba cache compiles librosa's kernels: tens of seconds


def _serve(connection: Connection, max_seconds: float) -> None:
    """Worker loop: warm up, say ready, then analyse one path per message until None."""
    # One file per process already fills the cores; threaded BLAS/FFT underneath would
    # oversubscribe them.
    from threadpoolctl import threadpool_limits

    from tastebud.content.audio import features_from_signal

    threadpool_limits(1)

    rng = np.random.default_rng(0)
    features_from_signal(rng.standard_normal(SAMPLE_RATE * 3).astype(np.float32) * 0.1, 3.0)
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
    def __init__(self, context: Any, max_seconds: float) -> None:
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, max_seconds), daemon=True)
        self.process.start()
        child.close()
        self.ready = False
        self.task: tuple[str, str] | None = None
        self.started = time.monotonic()

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
    ``timeout`` seconds gives reason ``timeout``; a worker that died gives ``worker_crashed``.
    """

    def __init__(
        self,
        workers: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_seconds: float = MAX_SECONDS,
        start_method: str = "spawn",
    ) -> None:
        self.workers = max(1, workers or min(os.cpu_count() or 1, 4))
        self.timeout = timeout
        self.max_seconds = max_seconds
        self._context = mp.get_context(start_method)
        self._pool: list[_Worker] = []

    def __enter__(self) -> AudioPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for worker in self._pool:
            worker.stop()
        self._pool.clear()

    def _spawn(self) -> _Worker:
        return _Worker(self._context, self.max_seconds)

    def run(
        self, paths: Mapping[str, str | Path], stop_at: float | None = None
    ) -> Iterator[tuple[str, AudioResult]]:
        """Results as files finish. After ``stop_at`` (``time.monotonic()``) no new file is
        started: files in progress finish, the others come back with reason ``deferred``."""
        pending = deque((key, str(path)) for key, path in paths.items())
        if not pending:
            return
        while len(self._pool) < min(self.workers, len(pending)):
            self._pool.append(self._spawn())
        busy = 0
        while pending or busy:
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
            for index, reason, result in finished:
                worker = self._pool[index]
                worker.stop(kill=True)
                self._pool[index] = self._spawn()
                if worker.task is None:  # died or hung while starting up
                    if not worker.ready:
                        raise RuntimeError(f"audio worker failed to start ({reason})")
                    continue
                busy -= 1
                seconds = time.monotonic() - worker.started
                result.reason = reason
                result.detail = f"{Path(worker.task[1]).name} after {seconds:.1f} s"
                result.seconds = seconds
                yield worker.task[0], result
