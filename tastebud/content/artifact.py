"""The versioned embedding artifact, stored through the model registry (prefix
``embeddings``) exactly like a model: immutable versions, sha256 of every file, aliases.

A version's folder::

    embeddings.npy     float32 (items x dim), rows in items.parquet order, unit length
    items.parquet      item_id, content_hash, audio_key, has_audio, has_text, embedded
    audio.parquet      the raw audio features (reused when an item's audio is unchanged)
    schema.json        version, fields, dimension, created_at, sha256 of embeddings.npy
    report.json        coverage and every per-item failure with its reason
    state/             the fitted embedder (JSON + npz, no pickle)

``production`` points at the newest build; ``tastebud content embed`` and the ``embed`` job
start from it, so only new and changed items are processed.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tastebud.content.audio import AUDIO_FIELDS
from tastebud.content.embedder import SCHEMA_VERSION, ContentEmbedder
from tastebud.registry import MANIFEST_NAME, ModelRegistry, ModelVersion, RegistryError
from tastebud.registry.manifest import jsonable
from tastebud.schemas import Item
from tastebud.stores.artifacts import ArtifactStore

REGISTRY_PREFIX = "embeddings"
MODEL_NAME = "content-embedding"
ALIAS = "production"


def audio_key(item: Item) -> str | None:
    """What identifies an item's audio input: path, size and mtime (reading every file to
    hash it would cost as much as decoding it). None when it has no ``audio_path``."""
    path = item.attributes.get("audio_path")
    if not isinstance(path, str) or not path:
        return None
    try:
        stat = Path(path).stat()
    except OSError:
        return f"{path}|missing"
    return f"{path}|{stat.st_size}|{stat.st_mtime_ns}"


def content_hash(item: Item) -> str:
    """sha256 of everything an item's embedding is computed from."""
    document = {
        "title": item.title,
        "creator": item.creator,
        "categories": sorted(item.categories),
        "created_at": item.created_at.isoformat() if item.created_at else None,
        "attributes": item.attributes,
        "audio": audio_key(item),
    }
    text = json.dumps(document, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class Failure:
    item_id: str
    stage: str  # audio, attributes, item
    reason: str
    detail: str = ""


@dataclass
class EmbeddingArtifact:
    """Everything one version holds, in memory."""

    item_ids: list[str]
    vectors: np.ndarray
    hashes: list[str]
    audio_keys: list[str | None]
    has_audio: np.ndarray
    has_text: np.ndarray
    audio: dict[str, dict[str, float]]
    embedder: ContentEmbedder
    report: dict[str, Any]
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    version: str | None = None
    stored_schema: dict[str, Any] | None = None  # schema.json of a loaded version

    @property
    def embedded(self) -> np.ndarray:
        return np.linalg.norm(self.vectors, axis=1) > 0

    def schema(self, sha256: str) -> dict[str, Any]:
        return {
            "version": SCHEMA_VERSION,
            "fields": self.embedder.fields(),
            "dimension": int(self.vectors.shape[1]),
            "created_at": self.created_at.isoformat(),
            "sha256": sha256,
            "fit_id": self.embedder.fit_id_,
            "text_encoder": self.embedder.text_.kind,
            "block_weights": self.embedder.assembler_.weights,
            "pca_components": self.embedder.assembler_.explained_dims,
            "items": len(self.item_ids),
        }

    def save(self, folder: Path) -> dict[str, Any]:
        """Write the version folder; returns its schema."""
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "embeddings.npy", np.ascontiguousarray(self.vectors, np.float32))
        table = pa.table(
            {
                "item_id": pa.array(self.item_ids, pa.string()),
                "content_hash": pa.array(self.hashes, pa.string()),
                "audio_key": pa.array(self.audio_keys, pa.string()),
                "has_audio": pa.array(self.has_audio, pa.bool_()),
                "has_text": pa.array(self.has_text, pa.bool_()),
                "embedded": pa.array(self.embedded, pa.bool_()),
            }
        )
        pq.write_table(table, folder / "items.parquet")
        ids = sorted(self.audio)
        columns: dict[str, Any] = {"item_id": pa.array(ids, pa.string())}
        for name in AUDIO_FIELDS:
            columns[name] = pa.array([self.audio[i][name] for i in ids], pa.float64())
        pq.write_table(pa.table(columns), folder / "audio.parquet")
        self.embedder.save(folder / "state")
        digest = hashlib.sha256((folder / "embeddings.npy").read_bytes()).hexdigest()
        schema = self.schema(digest)
        (folder / "schema.json").write_text(json.dumps(schema, indent=2) + "\n")
        report = jsonable(self.report)
        (folder / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        return schema

    @classmethod
    def load(cls, folder: Path) -> EmbeddingArtifact:
        """Read a fetched version; the embeddings must match the schema's checksum."""
        schema = json.loads((folder / "schema.json").read_text())
        digest = hashlib.sha256((folder / "embeddings.npy").read_bytes()).hexdigest()
        if digest != schema["sha256"]:
            raise RegistryError(f"embeddings.npy in {folder} does not match schema.json")
        vectors = np.load(folder / "embeddings.npy", allow_pickle=False)
        items = pq.read_table(folder / "items.parquet").to_pydict()
        audio_table = pq.read_table(folder / "audio.parquet").to_pylist()
        audio = {row.pop("item_id"): row for row in audio_table}
        if vectors.shape != (len(items["item_id"]), schema["dimension"]):
            raise RegistryError(f"embeddings.npy in {folder} has shape {vectors.shape}")
        return cls(
            item_ids=items["item_id"],
            vectors=vectors,
            hashes=items["content_hash"],
            audio_keys=items["audio_key"],
            has_audio=np.array(items["has_audio"], dtype=bool),
            has_text=np.array(items["has_text"], dtype=bool),
            audio=audio,
            embedder=ContentEmbedder.load(folder / "state"),
            report=json.loads((folder / "report.json").read_text()),
            created_at=datetime.fromisoformat(schema["created_at"]),
            version=_version_of(folder),
            stored_schema=schema,
        )


def _version_of(folder: Path) -> str | None:
    if not (folder / MANIFEST_NAME).is_file():
        return None
    return ModelVersion.from_dir(folder).model_version


def embedding_registry(artifacts: ArtifactStore, cache_dir: Path | None = None) -> ModelRegistry:
    """The registry embedding versions live in (same store as models, own prefix)."""
    return ModelRegistry(artifacts, REGISTRY_PREFIX, cache_dir=cache_dir)


def register_artifact(
    registry: ModelRegistry, artifact: EmbeddingArtifact, extra: Mapping[str, Any] | None = None
) -> ModelVersion:
    """Save, register and point ``production`` at a new version."""
    with tempfile.TemporaryDirectory(prefix="tastebud-embed-") as scratch:
        folder = Path(scratch) / "artifact"
        schema = artifact.save(folder)
        coverage = artifact.report.get("coverage", {})
        manifest = {
            "model": MODEL_NAME,
            "created_at": artifact.created_at,
            "user_count": 0,
            "item_count": len(artifact.item_ids),
            "embedding_dim": schema["dimension"],
            "params": artifact.embedder.options.__dict__,
            "metrics": {
                "content.coverage_ratio": coverage.get("coverage_ratio"),
                "content.audio_coverage_ratio": coverage.get("audio_ratio"),
            },
            "content_embedding_schema": {k: schema[k] for k in ("version", "dimension")}
            | {"checksum": f"sha256:{schema['sha256']}", "fit_id": schema["fit_id"]},
            "failures_by_reason": artifact.report.get("failures_by_reason", {}),
            **(extra or {}),
        }
        version = registry.register(folder, manifest, aliases=[ALIAS])
    artifact.version = version.model_version
    return version


def load_artifact(registry: ModelRegistry, ref: str = ALIAS) -> EmbeddingArtifact:
    """A registered version (checksums verified by the registry, then by the schema)."""
    return registry.load(ref, EmbeddingArtifact.load)


def latest_artifact(registry: ModelRegistry) -> EmbeddingArtifact | None:
    """The version ``production`` points at, or None before the first build."""
    try:
        registry.resolve(ALIAS)
    except RegistryError:
        return None
    return load_artifact(registry, ALIAS)
