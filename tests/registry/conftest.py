"""Registry fixtures: one store per backend (a local folder and fsspec ``memory://``), a
registry on it, and small model folders to register."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_helpers import ModelFactory

from tastebud.registry import ModelRegistry
from tastebud.stores import ArtifactStore


@pytest.fixture(params=["local", "memory"])
def artifacts(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactStore]:
    if request.param == "local":
        yield ArtifactStore(str(tmp_path / "artifacts"))
        return
    store = ArtifactStore(f"memory://tb-registry-{uuid.uuid4().hex}")
    yield store
    if store.fs.exists(store.root):
        store.fs.rm(store.root, recursive=True)


@pytest.fixture
def registry(artifacts: ArtifactStore, tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(artifacts, cache_dir=tmp_path / "cache")


@pytest.fixture
def make_model(tmp_path: Path) -> ModelFactory:
    """A model folder: factors, a nested vocabulary file, and a tag that varies per call."""
    counter = iter(range(1_000_000))

    def build(tag: str | None = None) -> Path:
        index = next(counter)
        folder = tmp_path / f"model-{index}"
        (folder / "vocab").mkdir(parents=True)
        (folder / "factors.bin").write_bytes(bytes(range(256)) * 4 + str(index).encode())
        (folder / "vocab" / "items.txt").write_text("i1\ni2\ni3\ni4\n")
        (folder / "tag.txt").write_text(tag or f"model {index}")
        return folder

    return build
