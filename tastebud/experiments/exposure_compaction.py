"""Compaction of the embedded exposure log: a day's many small files (one per flush per
worker, up to 86,400 a day each) merged into a few large ones, while servers write and
readers read.

Why a manifest. A reader lists a folder and then opens the files, so no order of "rename
the merged file in, remove the inputs" is safe for a bare glob: between the two steps it
sees the rows twice, or (the other way round) not at all. So each day folder holds one small
manifest, ``_compaction.json`` (hidden from Parquet globs and pyarrow's discovery by its
``_``), and readers choose their files through it (``visible``): the merged files it lists,
plus the writers' ``part-*`` files it does not cover. Everything else is invisible: a merged
file not (or no longer) listed, a covered part. Renaming a new manifest into place is the
single commit point that swaps inputs for output, in one step, for every reader.

Coverage is a number per writer, not a list of names: a writer (``<pid>-<token>``, one log
instance) writes its files one after another, so its files appear in a folder in ``seq``
order. Once the compactor has seen a writer's file ``seq = N`` it has seen all of that
writer's earlier ones, and "every part of writer w with seq <= N" names exactly the rows
merged. New parts get higher numbers and stay visible until a later run covers them.

Steps, each safe to be killed after: (1) merged files written under hidden ``.tmp`` names,
fsynced, renamed to ``merged-*.parquet`` (not yet listed, so no reader reads them); (2) the
new manifest renamed in (the commit); (3) once ``grace_seconds`` have passed, the inputs the
commit retired are deleted and then dropped from the manifest. Retired files stay on disk
through the grace period (the event store's retire-with-grace), so a reader holding the
previous file list still finds them; ``scan`` also retries once on a file gone under it. A
crash before (2) leaves the inputs and unlisted outputs that the next run deletes before it
redoes the work; a crash in (3) leaves files the next run finishes deleting. One compactor at
a time per log (a non-blocking ``flock``; another run skips).

Live writers are never touched: a part is immutable once visible (written under a hidden
name first), and only parts older than ``min_age_seconds`` (default 5 minutes: many flush
periods) are merged. Memory stays bounded: input rows are streamed a batch at a time into
row groups of ``ROW_GROUP_ROWS``, and an output file closes at ``target_rows`` rows or
``target_bytes`` bytes. Merged files under the target are merged again with the next run's
parts, so a day ends as ``rows / target_rows`` files and a few more. Run by the hourly
``exposures-compact`` job (docs/jobs.md); measured in docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from tastebud.experiments.exposure import EXPOSURE_SCHEMA
from tastebud.stores.local_files import exclusive_lock, fsync_dir

MANIFEST = "_compaction.json"
LOCK = "_compaction.lock"
PARTITION = "date="
PART = re.compile(r"^part-(?P<writer>\d+-[0-9a-f]+)-(?P<seq>\d+)\.parquet$")
MERGED = re.compile(r"^merged-\d+-\d+-[0-9a-f]+\.parquet$")
ROW_GROUP_ROWS = 128 * 1024
TARGET_ROWS = 1_000_000
TARGET_BYTES = 64 * 1024 * 1024
MIN_AGE_SECONDS = 300.0
GRACE_SECONDS = 900.0


@dataclass
class Manifest:
    """One day folder's committed state: the merged files readers read (name: rows), how
    far each writer's parts are covered, and what earlier commits retired (deleted after
    the grace period)."""

    generation: int = 0
    files: dict[str, int] = field(default_factory=dict)
    covers: dict[str, int] = field(default_factory=dict)
    retired: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        try:
            raw = json.loads((folder / MANIFEST).read_text())
        except FileNotFoundError:
            return cls()
        return cls(raw["generation"], raw["files"], raw["covers"], raw["retired"])

    def write(self, folder: Path) -> None:
        """Atomically: a hidden temporary file, fsynced, renamed over the old one."""
        scratch = folder / f".{MANIFEST}.{secrets.token_hex(4)}.tmp"
        body = {"version": 1, **self.__dict__}
        with open(scratch, "w") as handle:
            json.dump(body, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(scratch, folder / MANIFEST)
        fsync_dir(folder)

    def covered(self, name: str) -> bool:
        """Whether ``name`` is a part this manifest's merged files hold."""
        match = PART.match(name)
        return bool(match) and int(match["seq"]) <= self.covers.get(match["writer"], 0)


def visible(folder: Path, names: Iterable[str] | None = None) -> list[Path]:
    """The files a reader of ``folder`` reads: each row exactly once. ``names``: a listing
    already taken (else the folder is listed); list first, then read the manifest, so a
    commit in between only swaps covered parts for the merged files the manifest names."""
    listed = sorted(os.listdir(folder) if names is None else names)
    manifest = Manifest.read(folder)
    parts = [n for n in listed if PART.match(n) and not manifest.covered(n)]
    return [folder / name for name in sorted(manifest.files)] + [folder / n for n in parts]


def visible_files(files: Iterable[str]) -> list[str]:
    """``files`` (paths from a glob or a folder walk) less what compaction made invisible,
    for every folder that holds a compaction manifest; other files pass unchanged."""
    by_folder: dict[Path, list[str]] = {}
    for file in files:
        by_folder.setdefault(Path(file).parent, []).append(file)
    kept: list[str] = []
    for folder, found in by_folder.items():
        if not (folder / MANIFEST).exists():
            kept.extend(found)
            continue
        names = {Path(f).name: f for f in found}
        for path in visible(folder, [n for n in names if PART.match(n) or MERGED.match(n)]):
            kept.append(names.get(path.name, str(path)))
        kept.extend(f for n, f in names.items() if not (PART.match(n) or MERGED.match(n)))
    return sorted(kept)


@dataclass
class Compacted:
    """What one run did in one day folder."""

    day: str
    inputs: int = 0
    rows: int = 0
    outputs: int = 0
    deleted: int = 0

    def asdict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def compact(
    root: Path,
    *,
    now: float | None = None,
    min_age_seconds: float = MIN_AGE_SECONDS,
    grace_seconds: float = GRACE_SECONDS,
    target_rows: int = TARGET_ROWS,
    target_bytes: int = TARGET_BYTES,
) -> list[Compacted] | None:
    """Compact every day folder under ``root`` (an exposure log's folder); what each did,
    or None when another compactor holds the lock. ``now``: the clock (epoch seconds)."""
    root = Path(root)
    if not root.is_dir():
        return []
    clock = time.time() if now is None else now
    with exclusive_lock(root / LOCK) as acquired:
        if not acquired:
            return None
        done = []
        for folder in sorted(root.glob(f"{PARTITION}*")):
            if folder.is_dir():
                step = compact_day(
                    folder,
                    now=clock,
                    min_age_seconds=min_age_seconds,
                    grace_seconds=grace_seconds,
                    target_rows=target_rows,
                    target_bytes=target_bytes,
                )
                if step.inputs or step.deleted:
                    done.append(step)
        return done


def compact_day(
    folder: Path,
    *,
    now: float,
    min_age_seconds: float,
    grace_seconds: float,
    target_rows: int,
    target_bytes: int,
) -> Compacted:
    """One day folder (the caller holds the lock): clean up, merge, commit, retire."""
    result = Compacted(folder.name.removeprefix(PARTITION))
    manifest = Manifest.read(folder)
    _remove_orphans(folder, manifest, now, grace_seconds)
    result.deleted = _delete_retired(folder, manifest, now - grace_seconds)
    parts, covers = _eligible(folder, manifest, now - min_age_seconds)
    small = sorted(name for name, rows in manifest.files.items() if rows < target_rows)
    if not parts and len(small) < 2:
        return result
    inputs = [folder / name for name in small] + parts
    generation = manifest.generation + 1
    outputs = _write_merged(folder, inputs, generation, target_rows, target_bytes)
    retired_covers = {w: [manifest.covers.get(w, 0), n] for w, n in covers.items()}
    files = {n: r for n, r in manifest.files.items() if n not in small}
    files.update(outputs)
    _commit(
        folder,
        Manifest(
            generation,
            files,
            {**manifest.covers, **covers},
            [*manifest.retired, {"at": now, "covers": retired_covers, "files": small}],
        ),
    )
    result.inputs, result.outputs = len(inputs), len(outputs)
    result.rows = sum(outputs.values())
    return result


def _commit(folder: Path, manifest: Manifest) -> None:
    """The commit point: readers switch from the inputs to the outputs here."""
    manifest.write(folder)


def _eligible(folder: Path, manifest: Manifest, before: float) -> tuple[list[Path], dict[str, int]]:
    """The uncovered parts to merge, and each writer's new coverage: per writer, every
    visible part up to its newest one older than ``before``."""
    by_writer: dict[str, list[tuple[int, str]]] = {}
    newest_old: dict[str, int] = {}
    for entry in os.scandir(folder):
        match = PART.match(entry.name)
        if not match or manifest.covered(entry.name):
            continue
        writer, seq = match["writer"], int(match["seq"])
        by_writer.setdefault(writer, []).append((seq, entry.name))
        if entry.stat().st_mtime < before and seq > newest_old.get(writer, 0):
            newest_old[writer] = seq
    parts = [
        folder / name
        for writer, upto in sorted(newest_old.items())
        for seq, name in sorted(by_writer[writer])
        if seq <= upto
    ]
    return parts, newest_old


def _write_merged(
    folder: Path, inputs: list[Path], generation: int, target_rows: int, target_bytes: int
) -> dict[str, int]:
    """``inputs`` streamed into merged files (renamed in, fsynced, not yet listed)."""
    token = secrets.token_hex(4)
    outputs: dict[str, int] = {}
    writer: pq.ParquetWriter | None = None
    scratch = folder / ".merged.tmp"
    rows = 0

    def close() -> None:
        nonlocal writer, rows
        if writer is None:
            return
        writer.close()
        with open(scratch, "rb") as handle:
            os.fsync(handle.fileno())
        name = f"merged-{generation:06d}-{len(outputs):03d}-{token}.parquet"
        os.replace(scratch, folder / name)
        outputs[name], writer, rows = rows, None, 0

    try:
        for group in _row_groups(inputs):
            while group.num_rows:
                if writer is None:
                    scratch = folder / f".merged-{generation:06d}-{len(outputs):03d}.tmp"
                    writer = pq.ParquetWriter(scratch, EXPOSURE_SCHEMA, compression="zstd")
                room = target_rows - rows
                writer.write_table(group.slice(0, room), row_group_size=ROW_GROUP_ROWS)
                rows += min(room, group.num_rows)
                group = group.slice(room)
                if rows >= target_rows or scratch.stat().st_size >= target_bytes:
                    close()
        close()
    except BaseException:
        if writer is not None:
            writer.close()
            scratch.unlink(missing_ok=True)
        raise
    fsync_dir(folder)
    return outputs


def _row_groups(inputs: list[Path]) -> Iterator[pa.Table]:
    """The inputs' rows in tables of about ``ROW_GROUP_ROWS`` (a few files read ahead)."""
    dataset = ds.dataset([str(p) for p in inputs], schema=EXPOSURE_SCHEMA, format="parquet")
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in dataset.to_batches(batch_readahead=4, fragment_readahead=8):
        pending.append(batch)
        count += batch.num_rows
        if count >= ROW_GROUP_ROWS:
            yield pa.Table.from_batches(pending, EXPOSURE_SCHEMA).combine_chunks()
            pending, count = [], 0
    if pending:
        yield pa.Table.from_batches(pending, EXPOSURE_SCHEMA).combine_chunks()


def _delete_retired(folder: Path, manifest: Manifest, cutoff: float) -> int:
    """Delete what commits before ``cutoff`` retired, then drop those entries."""
    due = [entry for entry in manifest.retired if entry["at"] < cutoff]
    if not due:
        return 0
    deleted = 0
    for name in os.listdir(folder):
        match = PART.match(name)
        gone = match is not None and any(
            lo < int(match["seq"]) <= hi
            for entry in due
            for lo, hi in [entry["covers"].get(match["writer"], (0, 0))]
        )
        gone = gone or any(name in entry["files"] for entry in due)
        if gone:
            with contextlib.suppress(FileNotFoundError):
                (folder / name).unlink()
                deleted += 1
    manifest.retired = [entry for entry in manifest.retired if entry["at"] >= cutoff]
    manifest.write(folder)
    return deleted


def _remove_orphans(folder: Path, manifest: Manifest, now: float, grace: float) -> None:
    """Merged files no commit listed (a compactor killed before its commit: the lock says
    none runs now) and temporary files of writers dead for longer than the grace period."""
    known = set(manifest.files) | {f for entry in manifest.retired for f in entry["files"]}
    for entry in os.scandir(folder):
        name = entry.name
        orphan = MERGED.match(name) is not None and name not in known
        ours = name.startswith(".merged-") and name.endswith(".tmp")
        stale = name.endswith(".tmp") and _mtime(entry) < now - grace
        if orphan or ours or stale:
            Path(entry.path).unlink(missing_ok=True)


def _mtime(entry: os.DirEntry[str]) -> float:
    """When ``entry`` was written; +inf when it is gone (a writer renamed its scratch)."""
    try:
        return entry.stat().st_mtime
    except FileNotFoundError:
        return float("inf")
