"""Building, registering and updating embedding artifacts: the schema manifest and checksums,
coverage and per-item failures, and incremental runs that process only what changed."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from content_samples import catalog, chord, click_track, write

from tastebud.content import (
    build,
    embedding_registry,
    latest_artifact,
    load_artifact,
    register_artifact,
)
from tastebud.content.artifact import content_hash
from tastebud.content.audio import AudioResult, analyse
from tastebud.content.embedder import EmbedOptions
from tastebud.registry import ModelLoadError, ModelRegistry
from tastebud.schemas import Item
from tastebud.stores.artifacts import ArtifactStore

NOW = datetime(2025, 1, 1, tzinfo=UTC)


class InlineAudio:
    """Runs extraction in-process and remembers which files it was asked for."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(
        self, paths: Mapping[str, str], stop_at: float | None = None
    ) -> Iterator[tuple[str, AudioResult]]:
        for key, path in paths.items():
            self.calls.append(key)
            yield key, analyse(path)


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return embedding_registry(ArtifactStore(str(tmp_path / "artifacts")), tmp_path / "cache")


@pytest.fixture
def items(tmp_path: Path) -> list[Item]:
    audio = {
        0: write(tmp_path / "rock0.wav", click_track(140, seconds=6)),
        1: write(tmp_path / "jazz1.wav", chord([57, 60, 64], seconds=6)),
        2: tmp_path / "missing.wav",
        3: write(tmp_path / "silent.wav", np.zeros(22_050 * 4, dtype=np.float32)),
    }
    (tmp_path / "cover.wav").write_bytes(b"\xff\xd8\xff\xe0JFIF" + bytes(500))  # a JPEG
    audio[4] = tmp_path / "cover.wav"
    result = catalog(40, audio)
    result[5].attributes["energy"] = float("nan")
    result.append(Item(item_id="zz-empty"))
    return result


def test_build_register_load(items: list[Item], registry: ModelRegistry) -> None:
    result = build(items, {"item000": 10}, audio_runner=InlineAudio(), now=NOW)
    artifact = result.artifact
    assert artifact is not None and result.mode == "full" and result.processed == 41
    assert artifact.vectors.shape == (41, 128)
    norms = np.linalg.norm(artifact.vectors, axis=1)
    assert np.allclose(norms[:-1], 1.0, atol=1e-5) and norms[-1] == 0
    report = artifact.report
    assert report["failures_by_reason"] == {
        "missing_file": 1,
        "silent": 1,
        "unsupported_format": 1,
        "nan_attribute": 1,
        "no_content": 1,
    }
    failures = {(f["item_id"], f["reason"]) for f in report["failures"]}
    assert ("item002", "missing_file") in failures and ("zz-empty", "no_content") in failures
    assert report["coverage"]["coverage_ratio"] == pytest.approx(40 / 41)
    assert report["coverage"]["audio_extracted"] == 2 and report["coverage"]["audio_paths"] == 5
    # Items whose audio failed still have metadata and text embeddings.
    assert norms[2] == pytest.approx(1.0) and norms[3] == pytest.approx(1.0)

    version = register_artifact(registry, artifact)
    extra = version.model_dump()
    assert extra["model"] == "content-embedding" and version.embedding_dim == 128
    assert extra["content_embedding_schema"]["version"] == "emb_v1.0.0"
    assert extra["content_embedding_schema"]["checksum"].startswith("sha256:")
    assert {"embeddings.npy", "schema.json", "report.json", "items.parquet"} <= set(version.files)
    assert registry.aliases() == {"production": version.model_version}

    loaded = load_artifact(registry)
    assert loaded.version == version.model_version
    assert np.array_equal(loaded.vectors, artifact.vectors)
    assert loaded.item_ids == artifact.item_ids
    folder = registry.cache_dir / version.model_version
    schema = json.loads((folder / "schema.json").read_text())
    assert schema["dimension"] == 128 and "tempo" in schema["fields"]
    assert "category_rock" in schema["fields"] and schema["created_at"].startswith("2025-01-01")


def test_similar_items_are_close(items: list[Item]) -> None:
    artifact = build(items, {}, audio_runner=InlineAudio(), now=NOW).artifact
    assert artifact is not None
    rows = {item_id: row for row, item_id in enumerate(artifact.item_ids)}
    vectors = artifact.vectors
    same = vectors[rows["item010"]] @ vectors[rows["item012"]]  # rock, rock
    other = vectors[rows["item010"]] @ vectors[rows["item011"]]  # rock, jazz
    assert same > 0.5 > other


def test_tampered_artifact_does_not_load(items: list[Item], registry: ModelRegistry) -> None:
    artifact = build(items, {}, audio_runner=InlineAudio(), now=NOW).artifact
    assert artifact is not None
    version = register_artifact(registry, artifact)
    key = f"embeddings/versions/{version.model_version}/embeddings.npy"
    data = bytearray(registry.artifacts.get_bytes(key))
    data[-1] ^= 0xFF
    registry.artifacts.put_bytes(key, bytes(data))
    with pytest.raises(ModelLoadError, match=r"embeddings\.npy"):
        load_artifact(registry)


def test_incremental_processes_only_new_and_changed(
    items: list[Item], registry: ModelRegistry, tmp_path: Path
) -> None:
    audio = InlineAudio()
    first = build(items, {}, audio_runner=audio, now=NOW)
    assert first.artifact is not None
    register_artifact(registry, first.artifact)
    assert sorted(audio.calls) == ["item000", "item001", "item002", "item003", "item004"]
    previous = latest_artifact(registry)
    assert previous is not None

    audio.calls.clear()
    unchanged = build(items, {}, previous, audio_runner=audio)
    assert unchanged.artifact is None and unchanged.mode == "unchanged" and audio.calls == []

    changed = [item.model_copy(deep=True) for item in items]
    changed[7] = changed[7].model_copy(update={"title": "Thunder riot 7"})
    changed[1].attributes["audio_path"] = str(write(tmp_path / "new.wav", click_track(90, 6)))
    new = Item(item_id="item999", title="Thunder anthem new", categories=["rock"])
    catalog_now = [item for item in changed if item.item_id != "item020"] + [new]
    second = build(catalog_now, {}, previous, audio_runner=audio)
    artifact = second.artifact
    assert artifact is not None and second.mode == "incremental"
    assert second.processed == 3 and second.removed == 1
    assert audio.calls == ["item001"]  # only the changed audio is decoded again
    assert "item020" not in artifact.item_ids and "item999" in artifact.item_ids
    old = dict(zip(previous.item_ids, previous.vectors, strict=True))
    new_rows = dict(zip(artifact.item_ids, artifact.vectors, strict=True))
    assert np.array_equal(new_rows["item010"], old["item010"])  # carried over untouched
    assert not np.array_equal(new_rows["item007"], old["item007"])
    assert artifact.embedder.fit_id_ == previous.embedder.fit_id_
    assert artifact.audio["item001"]["tempo"] == pytest.approx(90, rel=0.05)
    # With only a title and a category it still lands nearer the rock items than the jazz.
    rock = np.mean([new_rows["item999"] @ old[f"item{i:03d}"] for i in range(10, 30, 2)])
    jazz = np.mean([new_rows["item999"] @ old[f"item{i:03d}"] for i in range(11, 31, 2)])
    assert rock > jazz + 0.2


def test_forced_items_unknown_items_and_rebuild(items: list[Item], registry: ModelRegistry) -> None:
    audio = InlineAudio()
    first = build(items, {}, audio_runner=audio, now=NOW)
    assert first.artifact is not None
    register_artifact(registry, first.artifact)
    previous = latest_artifact(registry)
    assert previous is not None
    forced = build(items, {}, previous, only=["item010", "nope"], audio_runner=audio)
    assert forced.processed == 1
    assert [(f.item_id, f.reason) for f in forced.failures] == [("nope", "unknown_item")]

    audio.calls.clear()
    rebuilt = build(items, {}, previous, rebuild=True, audio_runner=audio)
    assert rebuilt.mode == "full" and rebuilt.artifact is not None
    assert rebuilt.artifact.embedder.fit_id_ != previous.embedder.fit_id_
    # Audio that did not change is reused from the previous version, even on a rebuild;
    # only the files that failed before are tried again.
    assert sorted(audio.calls) == ["item002", "item003", "item004"]
    other = build(items, {}, previous, options=EmbedOptions(dim=64), audio_runner=audio)
    assert other.mode == "full" and other.artifact is not None
    assert other.artifact.vectors.shape == (41, 64)


def test_content_hash_covers_every_input(tmp_path: Path) -> None:
    base = Item(item_id="a", title="t", categories=["x", "y"], attributes={"k": 1})
    same = Item(item_id="a", title="t", categories=["y", "x"], attributes={"k": 1})
    assert content_hash(base) == content_hash(same)
    for update in ({"title": "u"}, {"creator": "c"}, {"categories": ["x"]}, {"attributes": {}}):
        assert content_hash(base.model_copy(update=update)) != content_hash(base)
    path = write(tmp_path / "a.wav", chord([60], seconds=3))
    with_audio = base.model_copy(update={"attributes": {"k": 1, "audio_path": str(path)}})
    before = content_hash(with_audio)
    write(path, chord([62], seconds=4))
    assert content_hash(with_audio) != before


def test_deferred_audio_is_taken_up_by_the_next_run(
    items: list[Item], registry: ModelRegistry
) -> None:
    def out_of_time(
        paths: Mapping[str, str], stop_at: float | None = None
    ) -> Iterator[tuple[str, AudioResult]]:
        for key in paths:
            yield key, AudioResult(None, "deferred")

    first = build(items, {}, audio_runner=out_of_time, now=NOW)
    assert first.artifact is not None and first.deferred == 5
    assert first.artifact.report["audio_deferred"] == 5
    assert first.failures and all(f.reason != "deferred" for f in first.failures)
    assert first.artifact.report["coverage"]["coverage_ratio"] == pytest.approx(40 / 41)
    register_artifact(registry, first.artifact)
    previous = latest_artifact(registry)
    assert previous is not None
    audio = InlineAudio()
    second = build(items, {}, previous, audio_runner=audio)
    assert second.mode == "incremental" and second.processed == 5
    assert sorted(audio.calls) == ["item000", "item001", "item002", "item003", "item004"]
    assert (
        second.artifact is not None and second.artifact.report["coverage"]["audio_extracted"] == 2
    )
