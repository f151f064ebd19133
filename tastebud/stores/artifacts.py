"""Artifact storage for models and embeddings: a local folder by default, any fsspec URL
(``s3://``, ``gcs://``, ``memory://``...) when the matching fsspec backend is installed."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

from tastebud.stores.errors import StoreError


class ArtifactNotFound(StoreError, KeyError):
    """No artifact under that key."""


class ArtifactStore:
    """Bytes under slash-separated keys. Writes are atomic on local disk (temp file + rename),
    so a reader never sees half an artifact."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.fs, root = fsspec.core.url_to_fs(url)
        self.root = root.rstrip("/")
        self._local = isinstance(self.fs, LocalFileSystem)
        if self._local:
            Path(self.root).mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> str:
        parts = key.strip("/").split("/")
        if not key.strip("/") or any(part in ("", ".", "..") for part in parts):
            raise ValueError(f"invalid artifact key {key!r}")
        return f"{self.root}/{'/'.join(parts)}"

    def put_bytes(self, key: str, data: bytes) -> str:
        """Store ``data``; returns its sha256 hex digest."""
        path = self._path(key)
        parent = path.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        if self._local:
            temporary = f"{parent}/.{uuid.uuid4().hex}.tmp"
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        else:
            with self.fs.open(path, "wb") as handle:
                handle.write(data)
        return hashlib.sha256(data).hexdigest()

    def get_bytes(self, key: str) -> bytes:
        try:
            with self.fs.open(self._path(key), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            raise ArtifactNotFound(key) from None

    def put_file(self, key: str, source: str | Path) -> str:
        return self.put_bytes(key, Path(source).read_bytes())

    def get_file(self, key: str, destination: str | Path) -> Path:
        destination = Path(destination)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(self.get_bytes(key))
        return destination

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self._path(key)))

    def sha256(self, key: str) -> str:
        return hashlib.sha256(self.get_bytes(key)).hexdigest()

    def list(self, prefix: str = "") -> list[str]:
        """Keys under ``prefix`` (a folder-like path), sorted."""
        base = self._path(prefix) if prefix.strip("/") else self.root
        if not self.fs.exists(base):
            return []
        found = self.fs.find(base)
        root = self.root.rstrip("/") + "/"
        keys = []
        for path in found:
            path = str(path)
            relative = path[len(root) :] if path.startswith(root) else path.lstrip("/")
            if not relative.rsplit("/", 1)[-1].startswith("."):
                keys.append(relative)
        return sorted(keys)

    def delete(self, key: str) -> bool:
        path = self._path(key)
        if not self.fs.exists(path):
            return False
        self.fs.rm(path)
        return True
