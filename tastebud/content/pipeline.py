"""Build or update the content embeddings of a catalog: what the CLI and the ``embed`` job run.

A first run (or ``rebuild``) fits the embedder on the whole catalog. Later runs start from
the ``production`` artifact and process only items that are new or whose content hash
changed (``only`` forces a given set); every other vector is carried over unchanged, and
removed items are dropped. Audio is the slow part, so an item whose audio file is unchanged
reuses its stored audio features even on a rebuild.

Per-item problems (bad audio, NaN attributes, nothing to embed) are recorded in the report
with a reason and counted in ``tastebud_content_embed_fail_count``; the run goes on.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from tastebud.content.artifact import EmbeddingArtifact, Failure, audio_key, content_hash
from tastebud.content.audio import AudioResult
from tastebud.content.audio_pool import DEFAULT_TIMEOUT, AudioPool
from tastebud.content.embedder import ContentEmbedder, EmbedOptions
from tastebud.content.metadata import attribute_values
from tastebud.observability import get_logger, metrics
from tastebud.schemas import Item

log = get_logger(__name__)

PROCESSED = metrics.counter("content", "embed_processed", "count", "Items embedded.")
FAILED = metrics.counter(
    "content", "embed_fail", "count", "Per-item content problems, by reason.", ["reason"]
)
LATENCY = metrics.histogram(
    "content",
    "embed_latency",
    "ms",
    "Audio extraction per file (stage=audio) and whole runs (stage=run).",
    ["stage"],
    buckets=(10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 1800000),
)
COVERAGE = metrics.gauge(
    "content", "embed_coverage", "ratio", "Share of catalog items with a content embedding."
)

# (paths by item id, stop starting new files after this monotonic time) -> results
AudioRunner = Callable[[Mapping[str, str], float | None], Iterable[tuple[str, AudioResult]]]
DEFERRED = "deferred"
PENDING_HASH = "pending"  # stored for items whose audio was deferred: the next run retries


@dataclass
class AudioSettings:
    workers: int | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_seconds: float = 600.0
    cache_dir: Path | None = None  # numba's kernel cache; None: AudioPool's default


@dataclass
class BuildResult:
    artifact: EmbeddingArtifact | None  # None: nothing changed, no new version
    processed: int
    reused: int
    removed: int
    failures: list[Failure] = field(default_factory=list)
    mode: str = "full"
    deferred: int = 0


def pool_runner(settings: AudioSettings) -> AudioRunner:
    def run(paths: Mapping[str, str], stop_at: float | None) -> Iterator[tuple[str, AudioResult]]:
        with AudioPool(
            settings.workers, settings.timeout, settings.max_seconds, cache_dir=settings.cache_dir
        ) as pool:
            yield from pool.run(paths, stop_at)

    return run


def extract_audio(
    items: Sequence[Item],
    previous: EmbeddingArtifact | None,
    runner: AudioRunner,
    failures: list[Failure],
    deferred: set[str],
    stop_at: float | None = None,
    check: Callable[[], None] | None = None,
) -> dict[str, dict[str, float]]:
    """Audio features of ``items``: reused when the audio key is unchanged, else extracted.
    Items whose file was not started before ``stop_at`` are added to ``deferred``."""
    known: dict[str, tuple[str | None, dict[str, float] | None]] = {}
    if previous is not None:
        for item_id, key in zip(previous.item_ids, previous.audio_keys, strict=True):
            known[item_id] = (key, previous.audio.get(item_id))
    features: dict[str, dict[str, float]] = {}
    todo: dict[str, str] = {}
    for item in items:
        key = audio_key(item)
        if key is None:
            continue
        old_key, old = known.get(item.item_id, (None, None))
        if old is not None and old_key == key:
            features[item.item_id] = old
        else:
            todo[item.item_id] = str(item.attributes["audio_path"])
    for item_id, result in runner(todo, stop_at) if todo else ():
        if check is not None:
            check()
        if result.reason == DEFERRED:
            deferred.add(item_id)
            continue
        LATENCY.labels("audio").observe(result.seconds * 1000)
        if result.features is not None:
            features[item_id] = result.features
        else:
            failures.append(Failure(item_id, "audio", result.reason or "error", result.detail))
    return features


def build(
    items: Sequence[Item],
    item_events: Mapping[str, float] | Callable[[], Mapping[str, float]],
    previous: EmbeddingArtifact | None = None,
    *,
    options: EmbedOptions | None = None,
    only: Sequence[str] | None = None,
    rebuild: bool = False,
    audio_runner: AudioRunner | None = None,
    now: datetime | None = None,
    audio_stop_at: float | None = None,
    check: Callable[[], None] | None = None,
) -> BuildResult:
    """Embed a catalog (see the module docstring). ``items`` is the whole catalog;
    ``item_events`` (events per item, for creator popularity) may be a function, called only
    when the embedder is fitted: incremental runs never need to read the event log.

    ``audio_stop_at`` bounds the audio work of one run (a job's time budget): files not
    started by then are *deferred*, their items embedded without audio for now and stored
    with a pending hash, so the next run processes them again. ``check`` is called between
    files (a job's cancellation check)."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    runner = audio_runner or pool_runner(AudioSettings())
    failures: list[Failure] = []
    catalog = sorted(items, key=lambda item: item.item_id)
    hashes = {item.item_id: content_hash(item) for item in catalog}
    by_id = {item.item_id: item for item in catalog}
    wanted = set(only) if only is not None else None
    for item_id in sorted((wanted or set()) - set(by_id)):
        failures.append(Failure(item_id, "item", "unknown_item", "not in the catalog"))
    full, embedder_options, targets = _plan(catalog, hashes, previous, options, rebuild, wanted)
    removed = 0 if previous is None else len(set(previous.item_ids) - set(by_id))
    if not full and not targets and not removed:
        return BuildResult(None, 0, len(catalog), 0, failures, mode="unchanged")

    deferred: set[str] = set()
    audio = extract_audio(targets, previous, runner, failures, deferred, audio_stop_at, check)
    for item_id in deferred:
        hashes[item_id] = PENDING_HASH
    failures.extend(_attribute_failures(targets))
    if full:
        counts = item_events() if callable(item_events) else item_events
        embedder = ContentEmbedder(embedder_options).fit(catalog, audio, counts, now)
    else:  # an incremental run keeps the previous embedder
        assert previous is not None
        embedder = previous.embedder
    vectors, present = embedder.embed(targets, audio)
    failures.extend(_content_failures(targets, present))

    artifact = _merge(catalog, hashes, targets, vectors, present, audio, previous, embedder, full)
    artifact.created_at = now
    mode = "full" if full else "incremental"
    result = BuildResult(
        artifact, len(targets), len(catalog) - len(targets), removed, failures, mode, len(deferred)
    )
    artifact.report = report(result, artifact)
    elapsed_ms = (time.perf_counter() - started) * 1000
    _record(result, artifact, elapsed_ms)
    return result


def _content_failures(targets: list[Item], present: Mapping[str, Any]) -> Iterator[Failure]:
    """A failure for each item with no usable input at all (no vector worth keeping)."""
    for item, has_content in zip(targets, present["any"], strict=True):
        if not has_content:
            yield Failure(item.item_id, "item", "no_content", "no usable input")


def _attribute_failures(targets: Iterable[Item]) -> Iterator[Failure]:
    """A failure for each attribute that is not a number (the item is embedded without it)."""
    for item in targets:
        _, bad = attribute_values(item)
        yield from (Failure(item.item_id, "attributes", "nan_attribute", n) for n in bad)


def _plan(
    catalog: list[Item],
    hashes: dict[str, str],
    previous: EmbeddingArtifact | None,
    options: EmbedOptions | None,
    rebuild: bool,
    wanted: set[str] | None,
) -> tuple[bool, EmbedOptions, list[Item]]:
    """Whether the run is full (no usable previous artifact, or a rebuild), the embedder's
    options, and the items to embed: all on a full run, else the wanted ones, or the new
    and changed ones."""
    if previous is None or rebuild or _incompatible(previous, options):
        embedder_options = options or (previous.embedder.options if previous else EmbedOptions())
        return True, embedder_options, catalog
    old_rows = {item_id: row for row, item_id in enumerate(previous.item_ids)}
    targets = [
        item
        for item in catalog
        if (wanted is not None and item.item_id in wanted)
        or (
            wanted is None
            and (
                item.item_id not in old_rows
                or previous.hashes[old_rows[item.item_id]] != hashes[item.item_id]
            )
        )
    ]
    return False, previous.embedder.options, targets


def _incompatible(previous: EmbeddingArtifact, options: EmbedOptions | None) -> bool:
    return options is not None and asdict(options) != asdict(previous.embedder.options)


def _merge(
    catalog: Sequence[Item],
    hashes: Mapping[str, str],
    targets: Sequence[Item],
    vectors: np.ndarray,
    present: Mapping[str, np.ndarray],
    audio: Mapping[str, dict[str, float]],
    previous: EmbeddingArtifact | None,
    embedder: ContentEmbedder,
    full: bool,
) -> EmbeddingArtifact:
    """The new version: processed rows from this run, every other row carried over."""
    new_rows = {item.item_id: row for row, item in enumerate(targets)}
    old_rows = {} if previous is None or full else {i: r for r, i in enumerate(previous.item_ids)}
    ids = [item.item_id for item in catalog]
    out = np.zeros((len(ids), embedder.options.dim), dtype=np.float32)
    has_audio = np.zeros(len(ids), dtype=bool)
    has_text = np.zeros(len(ids), dtype=bool)
    keys: list[str | None] = []
    merged_audio: dict[str, dict[str, float]] = {}
    for row, item in enumerate(catalog):
        keys.append(audio_key(item))
        if item.item_id in new_rows:
            source = new_rows[item.item_id]
            out[row] = vectors[source]
            has_audio[row] = bool(present["audio"][source])
            has_text[row] = bool(present["text"][source])
            if item.item_id in audio:
                merged_audio[item.item_id] = audio[item.item_id]
        else:
            assert previous is not None
            source = old_rows[item.item_id]
            out[row] = previous.vectors[source]
            has_audio[row] = previous.has_audio[source]
            has_text[row] = previous.has_text[source]
            keys[-1] = previous.audio_keys[source]
            if item.item_id in previous.audio:
                merged_audio[item.item_id] = previous.audio[item.item_id]
    return EmbeddingArtifact(
        item_ids=ids,
        vectors=out,
        hashes=[hashes[i] for i in ids],
        audio_keys=keys,
        has_audio=has_audio,
        has_text=has_text,
        audio=merged_audio,
        embedder=embedder,
        report={},
    )


def report(result: BuildResult, artifact: EmbeddingArtifact) -> dict[str, Any]:
    """Coverage of the whole catalog and this run's failures (the failures of items carried
    over are in the report of the version that processed them)."""
    total = len(artifact.item_ids)
    embedded = int(artifact.embedded.sum())
    with_path = sum(1 for key in artifact.audio_keys if key is not None)
    with_audio = int(artifact.has_audio.sum())
    return {
        "mode": result.mode,
        "processed": result.processed,
        "reused": result.reused,
        "removed": result.removed,
        "audio_deferred": result.deferred,
        "coverage": {
            "items": total,
            "embedded": embedded,
            "coverage_ratio": embedded / total if total else 0.0,
            "audio_paths": with_path,
            "audio_extracted": with_audio,
            "audio_ratio": with_audio / with_path if with_path else None,
            "text": int(artifact.has_text.sum()),
        },
        "failures_by_reason": dict(Counter(f.reason for f in result.failures)),
        "failures": [asdict(f) for f in result.failures],
    }


def _record(result: BuildResult, artifact: EmbeddingArtifact, elapsed_ms: float) -> None:
    PROCESSED.inc(result.processed)
    for failure in result.failures:
        FAILED.labels(failure.reason).inc()
    LATENCY.labels("run").observe(elapsed_ms)
    COVERAGE.set(artifact.report["coverage"]["coverage_ratio"])
    log.info(
        "content_embedded",
        mode=result.mode,
        processed=result.processed,
        reused=result.reused,
        failures=len(result.failures),
        coverage=artifact.report["coverage"]["coverage_ratio"],
    )
