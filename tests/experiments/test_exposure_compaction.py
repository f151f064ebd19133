"""Compaction of the embedded exposure log on real files: the same rows before and after
(and the same analysis), fewer files, a reader looping during compaction (and a writer
appending) sees each row exactly once, and a run killed between its steps leaves a state
that readers read right and the next run repairs."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tastebud.config import ExperimentSettings
from tastebud.experiments import exposure_compaction
from tastebud.experiments.definition import Experiment
from tastebud.experiments.exposure import Exposure
from tastebud.experiments.exposure_compaction import MANIFEST, compact
from tastebud.experiments.exposure_parquet import ParquetExposureLog
from tastebud.experiments.metrics import experiment_data
from tastebud.experiments.sources import parquet_files
from tastebud.schemas import Event, events_to_arrow

T0 = datetime(2026, 3, 1, 23, 29, 45, tzinfo=UTC)  # row 605 is past midnight: two days
SINCE, UNTIL = T0 - timedelta(days=1), T0 + timedelta(days=2)
NOW = T0 + timedelta(days=1)
FAST = {"min_age_seconds": 0.0, "grace_seconds": 0.0}


def exposure(n: int, writer: int = 0) -> Exposure:
    rng = random.Random(n)
    variant = ("control", "treatment")[n % 2] if n % 7 else None
    return Exposure(
        list_id=f"w{writer}-list-{n:06d}",
        served_at=T0 + timedelta(seconds=n * 3),
        experiment="exp" if variant else None,
        variant=variant,
        user_id=f"u{n % 97 * 2 + n % 2}",
        session_id=None,
        items=tuple(f"i{rng.randrange(40)}" for _ in range(n % 5)),
        model_version="m1",
        latency_ms=float(n % 13),
    )


def fill(root: Path, files: int, rows: int = 10, writer: int = 0) -> ParquetExposureLog:
    """``files`` flushes of ``rows`` exposures each (a batch across midnight writes two)."""
    log = ParquetExposureLog(root, flush_seconds=3600.0)
    for f in range(files):
        for r in range(rows):
            log.append(exposure(f * rows + r, writer))
        log.flush()
    return log


def ids(log: ParquetExposureLog) -> Counter[str]:
    return Counter(log.scan(SINCE, UNTIL)["list_id"].to_pylist())


def on_disk(root: Path, pattern: str = "*.parquet") -> int:
    return sum(1 for _ in root.rglob(pattern))


def test_compaction_keeps_every_row_once_and_drops_the_file_count(tmp_path: Path) -> None:
    log = fill(tmp_path, files=120)
    before = log.scan(SINCE, UNTIL)
    assert on_disk(tmp_path) == 121  # the batch across midnight wrote two
    done = compact(tmp_path, target_rows=500, **FAST)
    assert done is not None and sum(day.inputs for day in done) == 121
    after = log.scan(SINCE, UNTIL)
    assert after.equals(before)  # scan sorts: the same rows, the same order
    assert len(log.files(SINCE, UNTIL)) == 4  # 605 rows, then 595 after midnight
    assert on_disk(tmp_path) == 121 + 4  # the inputs wait out their grace period
    assert compact(tmp_path, target_rows=500, **FAST) is not None  # deletes them
    assert on_disk(tmp_path) == 4 and on_disk(tmp_path, "part-*") == 0
    assert log.scan(SINCE, UNTIL).equals(before)
    # the metrics' Parquet sources (a folder, a glob) read through the manifest too
    assert len(parquet_files(tmp_path)) == len(parquet_files(f"{tmp_path}/**/*.parquet")) == 4


def test_new_parts_and_small_merged_files_merge_again(tmp_path: Path) -> None:
    log = fill(tmp_path, files=30)
    compact(tmp_path, **FAST)
    more = ParquetExposureLog(tmp_path)  # another worker
    for n in range(50):
        more.append(exposure(n, writer=1))
    more.flush()
    compact(tmp_path, **FAST)
    assert len(log.files(SINCE, UNTIL)) == 1  # the day's one merged file
    counted = ids(log)
    assert len(counted) == 350 and set(counted.values()) == {1}
    young = compact(tmp_path, min_age_seconds=3600.0, grace_seconds=0.0)
    assert young is not None and all(day.inputs == 0 for day in young)


def test_a_reader_during_compaction_sees_each_row_exactly_once(tmp_path: Path) -> None:
    """A reader loops over scan while a writer appends and compaction runs again and
    again with no grace period (inputs deleted at the next run): no row is ever seen twice
    or missed."""
    fill(tmp_path, files=150)
    first = set(ids(ParquetExposureLog(tmp_path)))
    stop = threading.Event()
    problems: list[str] = []
    scans = 0

    def read() -> None:
        nonlocal scans
        reader = ParquetExposureLog(tmp_path)
        while not stop.is_set():
            counted = ids(reader)
            twice = [k for k, v in counted.items() if v > 1]
            if twice or not first <= set(counted):
                problems.append(f"twice {twice[:3]}, missing {len(first - set(counted))}")
            scans += 1

    writer = ParquetExposureLog(tmp_path)
    thread = threading.Thread(target=read)
    thread.start()
    try:
        for round_ in range(12):
            for n in range(20):
                writer.append(exposure(10_000 + round_ * 20 + n, writer=2))
            writer.flush()
            compact(tmp_path, target_rows=400, **FAST)
    finally:
        stop.set()
        thread.join()
    assert not problems, problems[:3]
    assert scans >= 3
    counted = ids(writer)
    assert len(counted) == 1_500 + 240 and set(counted.values()) == {1}


class Crash(BaseException):
    """Stands for the process dying at that point."""


def test_a_crash_before_the_commit_leaves_the_inputs_and_a_rerun_repairs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = fill(tmp_path, files=40)
    before = ids(log)

    def crash(*_: object) -> None:
        raise Crash

    monkeypatch.setattr(exposure_compaction, "_commit", crash)
    with pytest.raises(Crash):
        compact(tmp_path, target_rows=150, **FAST)
    merged = list(tmp_path.rglob("merged-*.parquet"))
    assert merged and not list(tmp_path.rglob(MANIFEST))  # outputs written, never listed
    assert ids(log) == before and len(log.files(SINCE, UNTIL)) == 40
    monkeypatch.undo()
    compact(tmp_path, target_rows=150, **FAST)
    assert not any(path.exists() for path in merged)  # the orphans went first
    assert ids(log) == before and len(log.files(SINCE, UNTIL)) == 3


def test_a_crash_while_deleting_the_inputs_is_finished_by_the_rerun(tmp_path: Path) -> None:
    log = fill(tmp_path, files=40)
    before = ids(log)
    compact(tmp_path, **FAST)
    parts = sorted(tmp_path.rglob("part-*.parquet"))
    for path in parts[: len(parts) // 2]:  # what the killed run had deleted
        path.unlink()
    assert ids(log) == before
    compact(tmp_path, **FAST)
    assert on_disk(tmp_path, "part-*") == 0 and ids(log) == before


KILLER = """
import sys
from tastebud.experiments.exposure_compaction import compact
print("ready", flush=True)
compact(sys.argv[1], min_age_seconds=0.0, grace_seconds=0.0, target_rows=int(sys.argv[2]))
"""


def test_killed_at_random_points_a_rerun_finishes(tmp_path: Path) -> None:
    """A real SIGKILL at a few points of a run in another process: readers read the same
    rows after each kill, and a last run leaves only merged files."""
    log = fill(tmp_path, files=800, rows=2)  # a first run takes about 0.5 s
    before = ids(log)
    rng = random.Random(7)
    killed = 0
    for _ in range(4):
        process = subprocess.Popen(
            [sys.executable, "-c", KILLER, str(tmp_path), str(rng.choice([100, 400]))],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0.0, 0.25))
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            killed += 1
        process.wait()
        process.stdout.close()
        assert ids(log) == before
    assert killed >= 1  # the first run at least died midway (a finished one leaves less work)
    compact(tmp_path, **FAST)
    compact(tmp_path, **FAST)
    assert ids(log) == before
    assert on_disk(tmp_path, "part-*") == 0 and on_disk(tmp_path, ".*") == 0


def _events() -> list[Event]:
    rng = random.Random(3)
    return [
        Event(
            event_id=f"e{n}",
            user_id=f"u{rng.randrange(194)}",
            item_id=f"i{rng.randrange(40)}",
            event_type=rng.choice(["click", "play", "skip", "like"]),
            value=float(rng.randrange(100)),
            timestamp=T0 + timedelta(seconds=rng.randrange(-86_400, 3 * 3_000)),
            session_id=f"s{rng.randrange(50)}",
            context={"list_id": f"w0-list-{rng.randrange(1_000):06d}"} if n % 3 else {},
        )
        for n in range(3_000)
    ]


def _same(left: object, right: object, path: str = "data") -> None:
    if isinstance(left, np.ndarray):
        assert isinstance(right, np.ndarray)
        assert (
            np.array_equal(np.sort(left), np.sort(right))
            if "values" in path
            else (np.array_equal(left, right))
        ), path
    elif hasattr(left, "__dict__"):
        assert type(left) is type(right), path
        for name in vars(left):
            _same(getattr(left, name), getattr(right, name), f"{path}.{name}")
    elif isinstance(left, dict):
        assert left.keys() == right.keys(), path  # type: ignore[union-attr]
        for key in left:
            _same(left[key], right[key], f"{path}[{key}]")  # type: ignore[index]
    else:
        assert left == right, path


def test_the_analysis_is_identical_before_and_after(tmp_path: Path) -> None:
    log = fill(tmp_path, files=100)
    experiment = Experiment(
        key="exp",
        variants=[{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
        goals=["click_through"],
        start=T0,
    )
    settings = ExperimentSettings(pre_period_days=1)
    events = events_to_arrow(_events())

    def data() -> object:
        return experiment_data(experiment, settings, events, log.scan, catalog_size=40, now=NOW)

    before = data()
    compact(tmp_path, target_rows=300, **FAST)
    compact(tmp_path, target_rows=300, **FAST)
    assert on_disk(tmp_path, "part-*") == 0
    _same(before, data())
