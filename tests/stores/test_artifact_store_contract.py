"""The ArtifactStore contract, run against a local folder and fsspec's memory filesystem."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest

from tastebud.stores import ArtifactNotFound, ArtifactStore


@pytest.fixture(params=["local", "memory"])
def artifacts(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return ArtifactStore(str(tmp_path / "artifacts"))
    return ArtifactStore(f"memory://tb-{uuid.uuid4().hex}")


def test_put_get_and_checksum(artifacts: ArtifactStore) -> None:
    data = b"model weights" * 1000
    digest = artifacts.put_bytes("models/als/v1/weights.npz", data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert artifacts.get_bytes("models/als/v1/weights.npz") == data
    assert artifacts.sha256("models/als/v1/weights.npz") == digest
    assert artifacts.exists("models/als/v1/weights.npz")


def test_overwrite_and_list(artifacts: ArtifactStore) -> None:
    artifacts.put_bytes("models/a/1", b"x")
    artifacts.put_bytes("models/a/1", b"y")
    artifacts.put_bytes("models/b/2", b"z")
    artifacts.put_bytes("embeddings/e", b"w")
    assert artifacts.get_bytes("models/a/1") == b"y"
    assert artifacts.list("models") == ["models/a/1", "models/b/2"]
    assert artifacts.list() == ["embeddings/e", "models/a/1", "models/b/2"]
    assert artifacts.list("nothing-here") == []


def test_missing_and_delete(artifacts: ArtifactStore) -> None:
    with pytest.raises(ArtifactNotFound):
        artifacts.get_bytes("nope")
    artifacts.put_bytes("k", b"v")
    assert artifacts.delete("k") is True
    assert artifacts.delete("k") is False
    assert not artifacts.exists("k")


def test_files(artifacts: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(b"abc")
    artifacts.put_file("f/in.bin", source)
    out = artifacts.get_file("f/in.bin", tmp_path / "out" / "copy.bin")
    assert out.read_bytes() == b"abc"


@pytest.mark.parametrize("key", ["", "/", "../escape", "a/../../b", "a//b"])
def test_keys_cannot_escape_the_root(artifacts: ArtifactStore, key: str) -> None:
    with pytest.raises(ValueError, match="invalid artifact key"):
        artifacts.put_bytes(key, b"x")
