"""The HNSW index as a versioned artifact: one index per model version (an index is only
valid for the item factors it was built from, so it lives and dies with that version)::

    indexes/{model_version}/hnsw.faiss
    indexes/{model_version}/manifest.json   written last: the commit marker

An index without ``manifest.json`` does not exist for readers, so a build that dies half
way changes nothing serving can see. The ``index`` job saves; serving loads and verifies.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tastebud.ranking.retrieval import EF_SEARCH, HnswRetriever
from tastebud.stores.artifacts import ArtifactNotFound, ArtifactStore

INDEX_PREFIX = "indexes"
INDEX_NAME = "hnsw.faiss"
INDEX_MANIFEST = "manifest.json"
INDEX_FORMAT = 1


class IndexIntegrityError(ValueError):
    """A stored index cannot be trusted: serving must fall back to exact scoring."""


class IndexChecksumError(IndexIntegrityError):
    """The index file is missing or its bytes differ from the manifest's sha256."""


class IndexShapeError(IndexIntegrityError):
    """The index covers a different item count or dimension than expected."""


def index_prefix(model_version: str) -> str:
    return f"{INDEX_PREFIX}/{model_version}"


def save_index(
    artifacts: ArtifactStore,
    model_version: str,
    retriever: HnswRetriever,
    *,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """Store the index of ``model_version``; returns the manifest's key. The manifest (sha256,
    item count, dim, params, built_at, plus ``extra``) goes up last."""
    base = index_prefix(model_version)
    data = retriever.to_bytes()
    digest = artifacts.put_bytes(f"{base}/{INDEX_NAME}", data)
    manifest = {
        **(extra or {}),
        "format": INDEX_FORMAT,
        "model_version": model_version,
        "kind": retriever.kind,
        "file": INDEX_NAME,
        "sha256": digest,
        "bytes": len(data),
        "item_count": retriever.n_items,
        "dim": retriever.dim,
        "params": retriever.params,
        "built_at": datetime.now(UTC).isoformat(),
    }
    key = f"{base}/{INDEX_MANIFEST}"
    artifacts.put_bytes(key, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return key


def read_index_manifest(artifacts: ArtifactStore, model_version: str) -> dict[str, Any] | None:
    """The committed manifest of ``model_version``'s index, or None when there is none."""
    key = f"{index_prefix(model_version)}/{INDEX_MANIFEST}"
    try:
        data = artifacts.get_bytes(key)
    except ArtifactNotFound:
        return None
    try:
        manifest = json.loads(data)
    except ValueError as error:
        raise IndexIntegrityError(f"{key} is not valid JSON: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != INDEX_FORMAT:
        raise IndexIntegrityError(f"{key} is not an index manifest of format {INDEX_FORMAT}")
    return manifest


def load_index(
    artifacts: ArtifactStore,
    model_version: str,
    *,
    item_count: int | None = None,
    dim: int | None = None,
    ef_search: int = EF_SEARCH,
) -> HnswRetriever | None:
    """The verified index of ``model_version``, or None when none was committed. Checks the
    file's sha256 and that the index matches the manifest's item count and dim (and the
    model's, when ``item_count``/``dim`` are given)."""
    manifest = read_index_manifest(artifacts, model_version)
    if manifest is None:
        return None
    key = f"{index_prefix(model_version)}/{manifest.get('file', INDEX_NAME)}"
    try:
        data = artifacts.get_bytes(key)
    except ArtifactNotFound:
        raise IndexChecksumError(f"{key} is named by its manifest but missing") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != manifest.get("sha256"):
        raise IndexChecksumError(
            f"checksum mismatch for {key}: manifest says {manifest.get('sha256')}, "
            f"the file hashes to {actual}"
        )
    try:
        retriever = HnswRetriever.from_bytes(data, ef_search)
    except RuntimeError as error:  # faiss reports unreadable indexes as RuntimeError
        raise IndexIntegrityError(f"{key} is not a readable faiss index: {error}") from None
    expected = {
        "manifest item_count": (manifest.get("item_count"), retriever.n_items),
        "manifest dim": (manifest.get("dim"), retriever.dim),
        "model item_count": (item_count, retriever.n_items),
        "model dim": (dim, retriever.dim),
    }
    for label, (wanted, found) in expected.items():
        if wanted is not None and wanted != found:
            raise IndexShapeError(
                f"index of {model_version}: {label} is {wanted} but the index has {found}"
            )
    return retriever
