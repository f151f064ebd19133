"""Where served lists go: an ``ExposureLog`` takes each exposure without ever blocking a
request and writes them in batches off the request path.

``append`` puts the exposure on a bounded in-memory queue (a deque: one atomic append, no
lock) and returns at once; when the queue is full the exposure is dropped and counted
(``tastebud_experiment_exposures_total{outcome="dropped"}``), never waited for. A writer
thread flushes every ``experiments.exposure_flush_seconds`` or as soon as
``experiments.exposure_batch`` rows wait; ``close`` flushes what is left (the app's
shutdown). A batch that fails to write is kept for the next flush while the queue has room.

Backends (one contract suite, ``tests/experiments/test_exposure_log.py``): Parquet files
under the embedded database folder (``tastebud.experiments.exposure_parquet``) and a table
on the PostgreSQL pool (``tastebud.experiments.exposure_postgres``). ``scan(since, until)``
reads them back as an Arrow table of ``EXPOSURE_SCHEMA`` for the analysis.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from datetime import UTC, datetime

import pyarrow as pa

from tastebud.experiments.exposure import Exposure
from tastebud.observability import get_logger, metrics

log = get_logger("tastebud.experiments")

EXPOSURES = metrics.counter(
    "experiment",
    "exposures",
    "total",
    "Served lists given to the exposure log, by outcome: written, dropped (queue full), "
    "failed (a write that failed and could not be kept for the next).",
    labels=("outcome",),
)
QUEUE_BATCHES = 20  # the queue holds this many batches before it drops


class ExposureLog(ABC):
    """Appends never block; a writer thread does the writing (started on first append)."""

    def __init__(self, *, flush_seconds: float = 1.0, batch: int = 1_000) -> None:
        self.flush_seconds = flush_seconds
        self.batch = batch
        self.capacity = batch * QUEUE_BATCHES
        self.dropped = 0
        self.written = 0
        self._queue: deque[Exposure] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._write_lock = threading.Lock()  # one writer at a time (thread, flush, close)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        self._dropped_metric = EXPOSURES.labels(outcome="dropped")

    # -- the request path -----------------------------------------------------------------

    def append(self, exposure: Exposure) -> bool:
        """Queue ``exposure``; False (and counted) when the queue is full or the log closed."""
        queue = self._queue
        if len(queue) >= self.capacity or self._closed:
            self.dropped += 1
            self._dropped_metric.inc()
            return False
        queue.append(exposure)
        if self._thread is None:
            self._start()
        if len(queue) >= self.batch:
            self._wake.set()
        return True

    @property
    def pending(self) -> int:
        return len(self._queue)

    # -- the writer -------------------------------------------------------------------------

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._closed:
                thread = threading.Thread(target=self._run, name="tastebud-exposures")
                thread.daemon = True
                self._thread = thread
                thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception as error:  # the writer must outlive any one failure
                log.error("exposure_flush_failed", error=f"{type(error).__name__}: {error}")

    def flush(self) -> int:
        """Write everything queued now; returns the rows written. A batch that fails is put
        back at the head of the queue when there is room (else dropped, counted), and the
        error raised."""
        written = 0
        with self._write_lock:
            while self._queue:
                rows = self._take(self.batch)
                try:
                    self._write(rows)
                except Exception:
                    self._put_back(rows)
                    raise
                written += len(rows)
                self.written += len(rows)
                EXPOSURES.labels(outcome="written").inc(len(rows))
        return written

    def _take(self, count: int) -> list[Exposure]:
        rows: list[Exposure] = []
        queue = self._queue
        while queue and len(rows) < count:
            rows.append(queue.popleft())
        return rows

    def _put_back(self, rows: list[Exposure]) -> None:
        room = max(0, self.capacity - len(self._queue))
        kept = rows[:room]
        self._queue.extendleft(reversed(kept))
        lost = len(rows) - len(kept)
        if lost:
            self.dropped += lost
            EXPOSURES.labels(outcome="failed").inc(lost)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the writer and flush what is queued (a failure is logged, not raised)."""
        self._closed = True
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        deadline = time.monotonic() + timeout
        while self._queue and time.monotonic() < deadline:
            try:
                self.flush()
            except Exception as error:
                log.error("exposure_flush_failed", error=f"{type(error).__name__}: {error}")
                break
        if self._queue:
            log.error("exposures_lost_at_close", rows=len(self._queue))

    def __enter__(self) -> ExposureLog:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- what a backend writes ---------------------------------------------------------------

    @abstractmethod
    def _write(self, exposures: list[Exposure]) -> None:
        """Store one batch durably (all of it or none)."""

    @abstractmethod
    def scan(self, since: datetime, until: datetime) -> pa.Table:
        """Exposures served in ``[since, until)`` (aware datetimes), as ``EXPOSURE_SCHEMA``."""


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is read as UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
