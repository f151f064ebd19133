"""The model registry, on a local folder and on fsspec ``memory://`` (one suite, both stores)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fsspec.implementations.local import LocalFileSystem
from registry_helpers import ModelFactory, manifest_for, register_many

from tastebud.registry import (
    MANIFEST_NAME,
    ChecksumMismatch,
    ModelLoadError,
    ModelRegistry,
    ModelVersion,
    RegistryError,
    UnknownAlias,
    VersionNotFound,
)
from tastebud.registry.aliases import HISTORY_LIMIT
from tastebud.registry.manifest import VERSION_PATTERN, git_commit, new_version_id
from tastebud.stores import ArtifactStore


def _files(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file()
    }


# -- register, list, get ------------------------------------------------------------------


def test_register_writes_files_and_a_complete_manifest(
    registry: ModelRegistry, artifacts: ArtifactStore, make_model: ModelFactory
) -> None:
    source = make_model()
    version = registry.register(source, manifest_for())
    assert VERSION_PATTERN.match(version.model_version)
    sources = _files(source)
    assert set(version.files) == {"factors.bin", "vocab/items.txt", "tag.txt"}
    for name, data in sources.items():
        assert version.files[name].sha256 == hashlib.sha256(data).hexdigest()
        assert version.files[name].bytes == len(data)
        key = f"models/versions/{version.model_version}/{name}"
        assert artifacts.get_bytes(key) == data
    stored = json.loads(
        artifacts.get_bytes(f"models/versions/{version.model_version}/{MANIFEST_NAME}")
    )
    assert stored["model_version"] == version.model_version
    assert stored["model"] == "als" and stored["user_count"] == 3 and stored["embedding_dim"] == 2
    assert stored["metrics"]["cf.offline.ndcg@10"] == 0.25
    assert stored["code_version"]["package"]
    assert stored["time_range"]["start"].startswith("2024-01-01")
    # created_at defaults to the registration time.
    assert abs(version.created_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert registry.get(version.model_version) == version


def test_caller_fields_are_kept_and_numpy_values_become_json(
    registry: ModelRegistry, make_model: ModelFactory
) -> None:
    created = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    version = registry.register(
        make_model(),
        manifest_for(
            created_at=created,
            user_count=np.int64(7),
            params={"factors": np.int32(64), "alphas": np.array([1.0, 10.0])},
            metrics={"cf.offline.ndcg@10": np.float64(0.31), "cf.offline.mrr": float("nan")},
            time_range=(datetime(2026, 10, 1), datetime(2026, 10, 31)),
            dataset="ml-100k",
        ),
    )
    again = registry.get(version.model_version)
    assert again.created_at == created
    assert again.user_count == 7
    assert again.params == {"factors": 64, "alphas": [1.0, 10.0]}
    assert again.metrics == {"cf.offline.ndcg@10": 0.31, "cf.offline.mrr": None}
    assert again.time_range is not None and again.time_range.end == datetime(
        2026, 10, 31, tzinfo=UTC
    )
    assert again.model_dump()["dataset"] == "ml-100k"


def test_list_versions_is_newest_first(registry: ModelRegistry, make_model: ModelFactory) -> None:
    assert registry.list_versions() == []
    versions = register_many(registry, make_model, 4)
    assert [item.model_version for item in registry.list_versions()] == versions[::-1]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model": ""}, "model"),
        ({"user_count": -1}, "user_count"),
        ({"embedding_dim": 0}, "embedding_dim"),
        ({"model_version": "20260101T000000Z-abcdef"}, "set by the registry"),
        ({"files": {}}, "set by the registry"),
        ({"time_range": {"start": "2024-02-01", "end": "2024-01-01"}}, "ends before it starts"),
        ({"params": {"x": object()}}, "not JSON-serializable"),
    ],
)
def test_invalid_manifests_are_refused_before_any_upload(
    registry: ModelRegistry,
    artifacts: ArtifactStore,
    make_model: ModelFactory,
    overrides: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(RegistryError, match=message):
        registry.register(make_model(), manifest_for(**overrides))
    assert artifacts.list("models") == []


def test_missing_required_fields_are_named(
    registry: ModelRegistry, make_model: ModelFactory
) -> None:
    manifest = manifest_for()
    del manifest["item_count"]
    with pytest.raises(RegistryError, match="item_count"):
        registry.register(make_model(), manifest)


def _empty(folder: Path) -> None:
    folder.mkdir()


def _with_manifest(folder: Path) -> None:
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"w")
    (folder / MANIFEST_NAME).write_text("{}")


def _with_hidden(folder: Path) -> None:
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"w")
    (folder / ".scratch").write_bytes(b"s")


def _with_broken_link(folder: Path) -> None:
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"w")
    (folder / "vocab.txt").symlink_to(folder / "gone.txt")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (None, "not a folder"),
        (_empty, "no files"),
        (_with_manifest, "writes its own"),
        (_with_hidden, "hidden"),
        (_with_broken_link, "vocab.txt is not a regular file"),
    ],
)
def test_bad_source_folders_are_refused(
    registry: ModelRegistry, artifacts: ArtifactStore, tmp_path: Path, build: Any, message: str
) -> None:
    folder = tmp_path / "source"
    if build is not None:
        build(folder)
    with pytest.raises(RegistryError, match=message):
        registry.register(folder, manifest_for())
    assert artifacts.list("models") == []


# -- failed and interrupted registrations ----------------------------------------------------


class Killed(BaseException):
    """Stands for the process dying: no ``except Exception`` cleanup runs."""


class FailingStore(ArtifactStore):
    """The real store (same URL, same bytes) failing its ``fail_at``-th write."""

    def __init__(
        self, real: ArtifactStore, fail_at: int, error: BaseException, break_deletes: bool = False
    ) -> None:
        super().__init__(real.url)
        self.writes = 0
        self.fail_at = fail_at
        self.error = error
        self.break_deletes = break_deletes

    def put_bytes(self, key: str, data: bytes) -> str:
        self.writes += 1
        if self.writes == self.fail_at:
            raise self.error
        return super().put_bytes(key, data)

    def delete(self, key: str) -> bool:
        if self.break_deletes:
            raise OSError("store went away")
        return super().delete(key)


@pytest.mark.parametrize(
    ("fail_at", "break_deletes"),
    [(2, False), (4, False), (2, True), (4, True)],
    ids=["mid-upload", "manifest-write", "mid-upload-no-cleanup", "manifest-write-no-cleanup"],
)
def test_a_failed_registration_leaves_the_registry_as_it_was(
    registry: ModelRegistry,
    artifacts: ArtifactStore,
    make_model: ModelFactory,
    tmp_path: Path,
    fail_at: int,
    break_deletes: bool,
) -> None:
    existing = registry.register(make_model(), manifest_for())
    registry.promote(existing.model_version)
    before = (registry.list_versions(), registry.aliases())
    failing = ModelRegistry(
        FailingStore(artifacts, fail_at, OSError("disk full"), break_deletes),
        cache_dir=tmp_path / "cache",
    )
    # 3 files, then the manifest: write 4 is the manifest.
    with pytest.raises(RegistryError, match="nothing was registered: disk full"):
        failing.register(make_model(), manifest_for(), aliases=["canary"])
    assert (registry.list_versions(), registry.aliases()) == before
    assert registry.resolve("production") == existing.model_version
    with pytest.raises(VersionNotFound):
        registry.resolve("canary")


def test_an_interrupted_registration_is_invisible_and_collected_later(
    artifacts: ArtifactStore, make_model: ModelFactory, tmp_path: Path
) -> None:
    registry = ModelRegistry(artifacts, cache_dir=tmp_path / "cache")
    dying = ModelRegistry(FailingStore(artifacts, 3, Killed()), cache_dir=tmp_path / "cache")
    with pytest.raises(Killed):
        dying.register(make_model(), manifest_for())
    leftovers = artifacts.list("models/versions")
    assert len(leftovers) == 2  # two files uploaded, no manifest
    assert registry.list_versions() == []
    version = leftovers[0].split("/")[2]
    with pytest.raises(VersionNotFound):
        registry.get(version)
    # Within the grace period gc leaves it alone (it may still be uploading)...
    assert registry.gc().partial == []
    assert len(artifacts.list("models/versions")) == 2
    # ...after it, the leftovers go.
    later = ModelRegistry(artifacts, cache_dir=tmp_path / "cache", partial_grace=timedelta(0))
    assert later.gc().partial == [version]
    assert artifacts.list("models/versions") == []


# -- resolve, promote, rollback ---------------------------------------------------------------


def test_resolve_versions_and_aliases(registry: ModelRegistry, make_model: ModelFactory) -> None:
    first, second = register_many(registry, make_model, 2)
    assert registry.resolve(first) == first
    with pytest.raises(VersionNotFound, match="points to no version"):
        registry.resolve("production")
    registry.promote(second)
    assert registry.resolve("production") == second
    assert registry.get("production").model_version == second
    with pytest.raises(UnknownAlias, match="production, canary, shadow"):
        registry.resolve("staging")
    with pytest.raises(VersionNotFound, match="no model version"):
        registry.resolve(new_version_id())
    with pytest.raises(UnknownAlias):
        registry.promote(first, "staging")


def test_promote_and_rollback_follow_the_alias_history(
    registry: ModelRegistry, make_model: ModelFactory
) -> None:
    v1, v2, v3 = register_many(registry, make_model, 3)
    registry.promote(v1)
    registry.promote(v2)
    registry.promote(v2)  # already there: no history entry
    registry.promote(v3)
    assert registry.aliases() == {"production": v3}
    assert registry.rollback().model_version == v2
    assert registry.rollback().model_version == v1
    with pytest.raises(RegistryError, match="no previous version"):
        registry.rollback()
    assert registry.resolve("production") == v1
    state = registry.alias_state("production")
    assert [(event.action, event.version, event.replaced) for event in state.history] == [
        ("promote", v1, None),
        ("promote", v2, v1),
        ("promote", v3, v2),
        ("rollback", v2, v3),
        ("rollback", v1, v2),
    ]


def test_aliases_are_independent_and_promote_accepts_an_alias(
    registry: ModelRegistry, make_model: ModelFactory
) -> None:
    v1, v2 = register_many(registry, make_model, 2)
    registry.promote(v1)
    canary = registry.register(make_model(), manifest_for(), aliases=["canary", "shadow"])
    assert registry.aliases() == {
        "production": v1,
        "canary": canary.model_version,
        "shadow": canary.model_version,
    }
    registry.promote("canary", "production")
    assert registry.resolve("production") == canary.model_version
    assert registry.rollback("production").model_version == v1
    with pytest.raises(RegistryError, match="canary has no previous"):
        registry.rollback("canary")
    with pytest.raises(UnknownAlias):
        registry.register(make_model(), manifest_for(), aliases=["stable"])
    assert len(registry.list_versions()) == 3
    assert v2 in {item.model_version for item in registry.list_versions()}


class SlowStore(ArtifactStore):
    """Yields the GIL between reading and writing aliases.json, so unlocked threads would
    interleave their read-modify-writes."""

    def get_bytes(self, key: str) -> bytes:
        data = super().get_bytes(key)
        time.sleep(0.002)
        return data


def _promote_concurrently_in_threads(
    artifacts: ArtifactStore, cache: Path, pairs: list[tuple[str, str]], rounds: int
) -> None:
    def work(a: str, b: str) -> None:
        registry = ModelRegistry(SlowStore(artifacts.url), cache_dir=cache)
        for index in range(rounds):
            registry.promote(a if index % 2 == 0 else b)

    threads = [threading.Thread(target=work, args=pair) for pair in pairs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


PROMOTER = """
import sys
from pathlib import Path
from tastebud.registry import ModelRegistry
from tastebud.stores import ArtifactStore
url, cache, a, b, rounds = sys.argv[1:]
registry = ModelRegistry(ArtifactStore(url), cache_dir=Path(cache))
for index in range(int(rounds)):
    registry.promote(a if index % 2 == 0 else b)
"""


def test_concurrent_promotes_lose_no_update(
    registry: ModelRegistry, artifacts: ArtifactStore, make_model: ModelFactory, tmp_path: Path
) -> None:
    """Two processes (local store) or threads (memory store: one process) promote in a loop,
    each alternating between its own two versions, so every promote is a change: the history
    must hold all of them, and aliases.json must stay valid JSON."""
    v = register_many(registry, make_model, 4)
    rounds = 30
    pairs = [(v[0], v[1]), (v[2], v[3])]
    if isinstance(artifacts.fs, LocalFileSystem):
        children = [
            subprocess.Popen(
                [sys.executable, "-c", PROMOTER, artifacts.url, str(tmp_path), a, b, str(rounds)]
            )
            for a, b in pairs
        ]
        assert [child.wait(timeout=60) for child in children] == [0, 0]
    else:
        _promote_concurrently_in_threads(artifacts, tmp_path / "c", pairs, rounds)
    document = json.loads(artifacts.get_bytes("models/aliases.json"))
    state = registry.alias_state("production")
    assert len(state.history) == len(document["aliases"]["production"]["history"])
    assert len(state.history) == 2 * rounds <= HISTORY_LIMIT
    assert len(state.previous) == 2 * rounds - 1
    assert state.version in {v[1], v[3]}  # each worker's last promote is its second version


# -- gc ----------------------------------------------------------------------------------------


def test_gc_keeps_the_newest_and_everything_aliases_need(
    registry: ModelRegistry, artifacts: ArtifactStore, make_model: ModelFactory
) -> None:
    v = register_many(registry, make_model, 9)
    registry.promote(v[0])  # production, old
    registry.promote(v[1], "canary")
    registry.promote(v[2], "canary")  # v1 stays in canary's history
    dry = registry.gc(keep=3, dry_run=True)
    assert sorted(dry.deleted) == sorted(v[3:6])
    assert len(registry.list_versions()) == 9
    result = registry.gc(keep=3)
    assert sorted(result.deleted) == sorted(v[3:6])
    assert sorted(result.kept) == sorted([*v[:3], *v[6:]])
    remaining = {item.model_version for item in registry.list_versions()}
    assert remaining == set(result.kept)
    for version in result.deleted:
        assert artifacts.list(f"models/versions/{version}") == []
    assert registry.rollback("canary").model_version == v[1]


def test_gc_keep_zero_spares_only_aliases(
    registry: ModelRegistry, make_model: ModelFactory
) -> None:
    v = register_many(registry, make_model, 3)
    registry.promote(v[1])
    assert sorted(registry.gc(keep=0).deleted) == sorted([v[0], v[2]])
    assert [item.model_version for item in registry.list_versions()] == [v[1]]
    with pytest.raises(RegistryError, match="keep"):
        registry.gc(keep=-1)


def test_gc_collects_old_half_written_versions_only(
    registry: ModelRegistry, artifacts: ArtifactStore
) -> None:
    old = new_version_id(datetime.now(UTC) - timedelta(days=2))
    fresh = new_version_id()
    artifacts.put_bytes(f"models/versions/{old}/factors.bin", b"half")
    artifacts.put_bytes(f"models/versions/{fresh}/factors.bin", b"half")
    artifacts.put_bytes("models/versions/not-a-version/notes.txt", b"not ours")
    emptied = new_version_id(datetime.now(UTC) - timedelta(days=3))
    artifacts.put_bytes(f"models/versions/{emptied}/x", b"")
    artifacts.delete(f"models/versions/{emptied}/x")  # a folder with no listable file left
    assert registry.list_versions() == []
    assert registry.gc().partial == sorted([old, emptied])
    assert not artifacts.fs.exists(f"{artifacts.root}/models/versions/{emptied}")
    assert artifacts.list("models/versions") == [
        f"models/versions/{fresh}/factors.bin",
        "models/versions/not-a-version/notes.txt",
    ]


# -- fetch, checksums, load -------------------------------------------------------------------


def test_fetch_copies_a_verified_version(
    registry: ModelRegistry, make_model: ModelFactory, tmp_path: Path
) -> None:
    source = make_model()
    version = registry.register(source, manifest_for(), aliases=["production"])
    folder = registry.fetch("production", tmp_path / "fetched")
    files = _files(folder)
    assert files.pop(MANIFEST_NAME) == version.to_json()
    assert files == _files(source)
    assert ModelVersion.from_dir(folder) == version
    with pytest.raises(RegistryError, match="not an empty folder"):
        registry.fetch("production", folder)


@pytest.mark.parametrize("target", ["fetch", "load"])
def test_tampered_files_in_the_store_are_caught(
    registry: ModelRegistry,
    artifacts: ArtifactStore,
    make_model: ModelFactory,
    tmp_path: Path,
    target: str,
) -> None:
    version = registry.register(make_model(), manifest_for()).model_version
    artifacts.put_bytes(f"models/versions/{version}/vocab/items.txt", b"i9\n")
    if target == "fetch":
        with pytest.raises(ChecksumMismatch, match=r"vocab/items\.txt.*sha256") as caught:
            registry.fetch(version, tmp_path / "out")
        assert caught.value.name == "vocab/items.txt"
        assert not (tmp_path / "out").exists()
    else:
        with pytest.raises(ModelLoadError, match=r"vocab/items\.txt"):
            registry.load(version, lambda path: path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("delete", "tag.txt' is missing from the store"),
        ("add", "extra.bin' is in the store but not in the manifest"),
    ],
)
def test_missing_and_extra_files_in_the_store_are_caught(
    registry: ModelRegistry,
    artifacts: ArtifactStore,
    make_model: ModelFactory,
    tmp_path: Path,
    change: str,
    message: str,
) -> None:
    version = registry.register(make_model(), manifest_for()).model_version
    if change == "delete":
        artifacts.delete(f"models/versions/{version}/tag.txt")
    else:
        artifacts.put_bytes(f"models/versions/{version}/extra.bin", b"?")
    with pytest.raises(ChecksumMismatch, match=message):
        registry.fetch(version, tmp_path / "out")


class CountingStore(ArtifactStore):
    def __init__(self, real: ArtifactStore) -> None:
        super().__init__(real.url)
        self.reads: list[str] = []

    def get_bytes(self, key: str) -> bytes:
        self.reads.append(key)
        return super().get_bytes(key)


def _load_tag(path: Path) -> str:
    """A loader that, like a real one, checks the files against the manifest's shapes."""
    manifest = ModelVersion.from_dir(path)
    items = (path / "vocab" / "items.txt").read_text().split()
    if len(items) != manifest.item_count:
        raise ValueError(f"{len(items)} items, manifest says {manifest.item_count}")
    return (path / "tag.txt").read_text()


def test_load_uses_a_reverified_cache_and_repairs_it(
    artifacts: ArtifactStore, make_model: ModelFactory, tmp_path: Path
) -> None:
    store = CountingStore(artifacts)
    registry = ModelRegistry(store, cache_dir=tmp_path / "cache")
    version = registry.register(make_model("hello"), manifest_for(), aliases=["production"])
    assert registry.load("production", _load_tag) == "hello"
    file_reads = [key for key in store.reads if not key.endswith(".json")]
    assert len(file_reads) == 3
    store.reads.clear()
    assert registry.load("production", _load_tag) == "hello"
    assert [key for key in store.reads if not key.endswith(".json")] == []  # from the cache
    cached = tmp_path / "cache" / version.model_version
    (cached / "tag.txt").write_text("tampered")
    (cached / "stray.tmp").write_text("?")
    assert registry.load("production", _load_tag) == "hello"  # damaged copy replaced
    assert (cached / "tag.txt").read_text() == "hello" and not (cached / "stray.tmp").exists()


def test_load_failures_are_model_load_errors(
    registry: ModelRegistry, make_model: ModelFactory
) -> None:
    version = registry.register(make_model("ok"), manifest_for()).model_version

    def broken_loader(path: Path) -> str:
        raise ValueError("shape mismatch: 5 items, expected 4")

    def failing_smoke(model: str) -> None:
        raise RuntimeError("empty recommendation list")

    with pytest.raises(ModelLoadError, match=r"loader failed.*ValueError: shape mismatch"):
        registry.load(version, broken_loader)
    with pytest.raises(ModelLoadError, match=r"smoke check failed.*empty recommendation list"):
        registry.load(version, _load_tag, failing_smoke)
    with pytest.raises(ModelLoadError, match="smoke check failed"):
        registry.load(version, _load_tag, lambda model: False)
    with pytest.raises(ModelLoadError, match="points to no version"):
        registry.load("production", _load_tag)
    wrong_shape = registry.register(make_model(), manifest_for(item_count=9)).model_version
    with pytest.raises(ModelLoadError, match="4 items, manifest says 9"):
        registry.load(wrong_shape, _load_tag)
    seen: list[str] = []
    assert registry.load(version, _load_tag, seen.append) == "ok"
    assert seen == ["ok"]


# -- code version ------------------------------------------------------------------------------

SHA = "0123456789abcdef0123456789abcdef01234567"


def test_git_commit_is_read_from_files_and_never_fails(tmp_path: Path) -> None:
    assert git_commit(tmp_path) is None
    git = tmp_path / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    assert git_commit(tmp_path) is None  # branch without commits
    (git / "packed-refs").write_text(f"# pack-refs\n{SHA} refs/heads/main\n")
    assert git_commit(tmp_path) == SHA
    (git / "refs" / "heads" / "main").write_text(SHA.replace("0", "f") + "\n")
    assert git_commit(tmp_path) == SHA.replace("0", "f")
    (git / "HEAD").write_text(SHA)  # detached
    assert git_commit(tmp_path) == SHA
    (git / "HEAD").write_bytes(b"\xff\xfe")
    assert git_commit(tmp_path) is None


def test_rollback_to_a_collected_version_fails_and_leaves_the_alias(
    registry: ModelRegistry, make_model: ModelFactory
) -> None:
    v = register_many(registry, make_model, 5)
    for version in v[:4]:
        registry.promote(version)
    registry.gc(keep=1)  # keeps v4 (newest), v3 (current), v2 (last rollback target)
    assert {item.model_version for item in registry.list_versions()} == {v[2], v[3], v[4]}
    assert registry.rollback().model_version == v[2]
    with pytest.raises(VersionNotFound, match=f"roll back to {v[1]}, which no longer exists"):
        registry.rollback()
    assert registry.resolve("production") == v[2]


def test_retire_points_an_alias_nowhere_and_records_why(
    registry: ModelRegistry, make_model: ModelFactory
) -> None:
    version = registry.register(make_model(), manifest_for()).model_version
    registry.promote(version, "canary", reason="rollout-x started")
    assert registry.retire("canary", "rollout-x rolled back: empty_lists") == version
    assert "canary" not in registry.aliases()
    assert registry.retire("canary", "again") is None  # nothing to retire: nothing recorded
    history = registry.alias_state("canary").history
    assert [(e.action, e.version, e.reason) for e in history] == [
        ("promote", version, "rollout-x started"),
        ("retire", version, "rollout-x rolled back: empty_lists"),
    ]
