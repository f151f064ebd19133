"""Exposures of an embedded database: Parquet files under ``<database>/exposures``, one folder
per day of ``served_at`` (``date=YYYY-MM-DD``, Hive-style, so DuckDB and Spark read them as
a partitioned dataset), one file per flushed batch and day.

A batch's files are written under hidden temporary names, fsynced and then renamed into
place: a reader sees whole files or none, a failed write leaves nothing to write twice, and a
crash leaves at most ``.tmp`` files that readers skip.
File names carry the process id, a per-process token (pids repeat across restarts) and a
sequence number, so the workers of one server never write the same name. At one flush per
second per worker a day holds up to 86,400 files per worker, so the hourly
``exposures-compact`` job merges them into a few large files
(``tastebud.experiments.exposure_compaction``); readers pick a day's files through its
manifest (``visible``), each row exactly once while compaction runs. The analysis reads a
day in one multi-threaded dataset scan.
"""

from __future__ import annotations

import os
import secrets
import threading
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from tastebud.experiments.exposure import EXPOSURE_SCHEMA, Exposure, exposures_table
from tastebud.experiments.exposure_compaction import visible
from tastebud.experiments.exposure_log import ExposureLog, utc

PARTITION = "date="


class ParquetExposureLog(ExposureLog):
    def __init__(self, root: Path, *, flush_seconds: float = 1.0, batch: int = 1_000) -> None:
        super().__init__(flush_seconds=flush_seconds, batch=batch)
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._token = secrets.token_hex(4)
        self._seq = 0
        self._seq_lock = threading.Lock()

    def _write(self, exposures: list[Exposure]) -> None:
        """One file per day of the batch: all written under temporary names first, then
        renamed, so a failure leaves none of the batch visible (it is written again)."""
        table = exposures_table(exposures)
        days = pc.strftime(table["served_at"], format="%Y-%m-%d").to_pylist()
        distinct = sorted(set(days))
        written: list[tuple[Path, Path]] = []
        try:
            for day in distinct:
                rows = (
                    table
                    if len(distinct) == 1
                    else table.filter(pa.array([d == day for d in days]))
                )
                written.append(self._write_scratch(self.root / f"{PARTITION}{day}", rows))
        except BaseException:
            for scratch, _ in written:
                scratch.unlink(missing_ok=True)
            raise
        for scratch, final in written:
            os.replace(scratch, final)

    def _write_scratch(self, folder: Path, table: pa.Table) -> tuple[Path, Path]:
        """``table`` written and fsynced under a hidden name; (that name, the final one)."""
        folder.mkdir(parents=True, exist_ok=True)
        with self._seq_lock:
            self._seq += 1
            name = f"part-{os.getpid()}-{self._token}-{self._seq:08d}.parquet"
        scratch = folder / f".{name}.tmp"
        pq.write_table(table, scratch, compression="zstd")
        with open(scratch, "rb") as written:
            os.fsync(written.fileno())
        return scratch, folder / name

    def files(self, since: datetime, until: datetime) -> list[Path]:
        """The files of the days ``[since, until)`` touches, as compaction's manifest has
        them: every row in exactly one file."""
        first, last = utc(since).date(), utc(until).date()
        found: list[Path] = []
        for folder in sorted(self.root.glob(f"{PARTITION}*")):
            try:
                day = date.fromisoformat(folder.name.removeprefix(PARTITION))
            except ValueError:
                continue
            if first <= day <= last and folder.is_dir():
                found.extend(visible(folder))
        return found

    def scan(self, since: datetime, until: datetime) -> pa.Table:
        try:
            return self._scan(since, until)
        except FileNotFoundError:  # a file retired longer than the grace period ago: relist
            return self._scan(since, until)

    def _scan(self, since: datetime, until: datetime) -> pa.Table:
        files = self.files(since, until)
        if not files:
            return EXPOSURE_SCHEMA.empty_table()
        served = ds.field("served_at")
        start = pa.scalar(utc(since), EXPOSURE_SCHEMA.field("served_at").type)
        end = pa.scalar(utc(until), EXPOSURE_SCHEMA.field("served_at").type)
        dataset = ds.dataset([str(f) for f in files], schema=EXPOSURE_SCHEMA, format="parquet")
        table = dataset.to_table(filter=(served >= start) & (served < end))
        return table.sort_by([("served_at", "ascending"), ("list_id", "ascending")])
