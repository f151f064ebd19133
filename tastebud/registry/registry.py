"""The model registry: immutable, checksummed model versions in the artifact store, and the
aliases serving follows.

Layout under the artifact store (``prefix`` defaults to ``models``)::

    {prefix}/versions/{version}/<every file of the source folder>
    {prefix}/versions/{version}/manifest.json    written last: the commit marker
    {prefix}/aliases.json                       where each alias points, and its history
    {prefix}/.aliases.lock                      flock target (local stores only)

A version without ``manifest.json`` does not exist for readers; ``gc`` deletes such leftovers
once they are older than a grace period, so a failed or interrupted registration changes
nothing anyone can see.

Over 400 lines because ``ModelRegistry`` is one class whose writes (register, promote,
rollback, gc) and reads (resolve, fetch, load with its local cache) share one layout and
one alias lock; its parts around it (manifest, aliases, errors) are modules of their own.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from fsspec.implementations.local import LocalFileSystem
from pydantic import ValidationError

from tastebud.config import Settings
from tastebud.observability import get_logger
from tastebud.registry.aliases import (
    ALIASES,
    ALIASES_NAME,
    LOCK_NAME,
    AliasBook,
    AliasState,
    alias_lock,
    check_alias,
)
from tastebud.registry.errors import (
    ChecksumMismatch,
    ModelLoadError,
    RegistryError,
    UnknownAlias,
    VersionNotFound,
)
from tastebud.registry.files import source_files, verify_folder
from tastebud.registry.manifest import (
    MANIFEST_NAME,
    RESERVED_FIELDS,
    VERSION_PATTERN,
    FileEntry,
    ModelVersion,
    code_version,
    hash_file,
    new_version_id,
    validation_message,
    version_time,
)
from tastebud.stores.artifacts import ArtifactNotFound, ArtifactStore

T = TypeVar("T")
log = get_logger(__name__)

DEFAULT_PARTIAL_GRACE = timedelta(hours=6)


@dataclass
class GcResult:
    """What ``gc`` deleted (or would delete, on a dry run) and what it kept."""

    deleted: list[str] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


class ModelRegistry:
    """Registers, finds, promotes and loads model versions kept in an ``ArtifactStore``."""

    def __init__(
        self,
        artifacts: ArtifactStore,
        prefix: str = "models",
        *,
        cache_dir: Path | None = None,
        partial_grace: timedelta = DEFAULT_PARTIAL_GRACE,
    ) -> None:
        self.artifacts = artifacts
        self.prefix = prefix.strip("/")
        if not self.prefix or any(part in ("", ".", "..") for part in self.prefix.split("/")):
            raise ValueError(f"invalid registry prefix {prefix!r}")
        self.cache_dir = Path(
            cache_dir or Path(tempfile.gettempdir()) / f"tastebud-models-{os.getuid()}"
        )
        self.partial_grace = partial_grace
        local = isinstance(artifacts.fs, LocalFileSystem)
        self._lock_file = Path(artifacts.root, self.prefix, LOCK_NAME) if local else None
        self._lock_key = f"{artifacts.fs.protocol}:{artifacts.root}/{self.prefix}"

    # -- keys ---------------------------------------------------------------------------

    def _version_key(self, version: str) -> str:
        return f"{self.prefix}/versions/{version}"

    def _manifest_key(self, version: str) -> str:
        return f"{self._version_key(version)}/{MANIFEST_NAME}"

    # -- registering --------------------------------------------------------------------

    def register(
        self, source_dir: Path, manifest: Mapping[str, Any], *, aliases: Sequence[str] = ()
    ) -> ModelVersion:
        """Upload every file of ``source_dir`` as a new version and return its manifest.

        The manifest is validated and every file hashed before anything is uploaded, and
        ``manifest.json`` goes up last, so a failure at any point leaves no visible version.
        """
        for alias in aliases:
            check_alias(alias)
        files = source_files(Path(source_dir))
        try:
            entries = {name: hash_file(path) for name, path in files.items()}
        except OSError as error:
            raise RegistryError(f"cannot read {error.filename}: {error.strerror}") from error
        version = self._new_version()
        document = self._build_manifest(manifest, version, entries)
        base = self._version_key(version)
        try:
            for name, path in files.items():
                digest = self.artifacts.put_bytes(f"{base}/{name}", path.read_bytes())
                if digest != entries[name].sha256:
                    raise RegistryError(f"{name} changed while it was being registered")
            self.artifacts.put_bytes(self._manifest_key(version), document.to_json())
        except Exception as error:
            self._discard(version, quiet=True)
            if isinstance(error, RegistryError):
                raise
            raise RegistryError(
                f"registering {source_dir} failed, nothing was registered: {error}"
            ) from error
        log.info("model_registered", model_version=version, model=document.model)
        for alias in aliases:
            self.promote(version, alias)
        return document

    def _new_version(self) -> str:
        while True:
            version = new_version_id()
            if not self.artifacts.list(self._version_key(version)):
                return version

    def _build_manifest(
        self, given: Mapping[str, Any], version: str, files: dict[str, FileEntry]
    ) -> ModelVersion:
        reserved = sorted(RESERVED_FIELDS.intersection(given))
        if reserved:
            raise RegistryError(f"manifest fields set by the registry: {', '.join(reserved)}")
        now = datetime.now(UTC)
        document: dict[str, Any] = {"created_at": now, "code_version": code_version()}
        document.update(given)
        document.update(model_version=version, registered_at=now, files=files)
        try:
            return ModelVersion.model_validate(document)
        except (ValidationError, ValueError) as error:
            message = (
                validation_message(error) if isinstance(error, ValidationError) else str(error)
            )
            raise RegistryError(f"invalid manifest: {message}") from None

    # -- reading ------------------------------------------------------------------------

    def _layout(self) -> dict[str, set[str]]:
        """Every version folder in the store (committed or not) with its file names."""
        root = f"{self.prefix}/versions/"
        layout: dict[str, set[str]] = {}
        for key in self.artifacts.list(f"{self.prefix}/versions"):
            version, _, name = key.removeprefix(root).partition("/")
            if name:
                layout.setdefault(version, set()).add(name)
        return layout

    def _version_folders(self) -> set[str]:
        """Version folder names, including ones holding no listable file (only a killed
        writer's hidden temp file, or nothing): the artifact listing cannot see those."""
        folder = f"{self.artifacts.root}/{self.prefix}/versions"
        try:
            entries = self.artifacts.fs.ls(folder, detail=False)
        except (FileNotFoundError, NotADirectoryError):
            return set()
        return {str(entry).rstrip("/").rsplit("/", 1)[-1] for entry in entries}

    def _read_manifest(self, version: str) -> ModelVersion:
        try:
            data = self.artifacts.get_bytes(self._manifest_key(version))
        except ArtifactNotFound:
            raise VersionNotFound(f"no model version {version}") from None
        try:
            manifest = ModelVersion.from_json(data)
        except ValidationError as error:
            raise RegistryError(
                f"manifest of {version} is invalid: {validation_message(error)}"
            ) from None
        if manifest.model_version != version:
            raise RegistryError(f"manifest of {version} names {manifest.model_version}")
        return manifest

    def list_versions(self) -> list[ModelVersion]:
        """Committed versions, newest first. A manifest that cannot be read is skipped (and
        logged) rather than hiding every other version."""
        versions = []
        for version, names in self._layout().items():
            if MANIFEST_NAME not in names or not VERSION_PATTERN.match(version):
                continue
            try:
                versions.append(self._read_manifest(version))
            except RegistryError as error:
                log.warning("model_manifest_unreadable", model_version=version, error=str(error))
        versions.sort(key=lambda item: (item.registered_at, item.model_version), reverse=True)
        return versions

    def resolve(self, ref: str) -> str:
        """The version a ref names: an alias (``production``, ``canary``, ``shadow``) or a
        version id. Raises ``VersionNotFound`` or ``UnknownAlias``."""
        ref = ref.strip()
        if ref in ALIASES:
            version = self._read_aliases().current().get(ref)
            if version is None:
                raise VersionNotFound(f"alias {ref} points to no version yet")
            if not self.artifacts.exists(self._manifest_key(version)):
                raise VersionNotFound(f"alias {ref} points to {version}, which no longer exists")
            return version
        if VERSION_PATTERN.match(ref):
            if not self.artifacts.exists(self._manifest_key(ref)):
                raise VersionNotFound(f"no model version {ref}")
            return ref
        raise UnknownAlias(
            f"{ref!r} is neither a model version (like 20261122T013000Z-3f9a1c) "
            f"nor an alias ({', '.join(ALIASES)})"
        )

    def get(self, ref: str) -> ModelVersion:
        """The manifest of the version ``ref`` names."""
        return self._read_manifest(self.resolve(ref))

    def aliases(self) -> dict[str, str]:
        """Where each alias points now (aliases never promoted are absent)."""
        return self._read_aliases().current()

    def alias_state(self, alias: str) -> AliasState:
        """One alias: its version, rollback targets and history of changes."""
        return self._read_aliases().aliases.get(check_alias(alias), AliasState())

    # -- aliases ------------------------------------------------------------------------

    def _read_aliases(self) -> AliasBook:
        try:
            data = self.artifacts.get_bytes(f"{self.prefix}/{ALIASES_NAME}")
        except ArtifactNotFound:
            return AliasBook()
        try:
            return AliasBook.model_validate_json(data)
        except ValidationError as error:
            raise RegistryError(
                f"{self.prefix}/{ALIASES_NAME} is invalid: {validation_message(error)}"
            ) from None

    def _write_aliases(self, book: AliasBook) -> None:
        data = (book.model_dump_json(indent=2) + "\n").encode("utf-8")
        self.artifacts.put_bytes(f"{self.prefix}/{ALIASES_NAME}", data)

    def _locked(self) -> Any:
        return alias_lock(self._lock_key, self._lock_file)

    def validate(
        self,
        ref: str,
        loader: Callable[[Path], T],
        smoke: Callable[[T], object] | None = None,
    ) -> ModelVersion:
        """Check that ``ref`` would serve: fetched and checksum-verified, built by ``loader``
        (which checks the arrays' shapes) and answering ``smoke``. Raises ``ModelLoadError``
        with the reason; returns the manifest."""
        manifest = self.get(ref)
        self.load(manifest.model_version, loader, smoke)
        return manifest

    def promote(
        self,
        ref: str,
        alias: str = "production",
        *,
        loader: Callable[[Path], T] | None = None,
        smoke: Callable[[T], object] | None = None,
        reason: str = "",
    ) -> ModelVersion:
        """Point ``alias`` at the version ``ref`` names (a version, or another alias: promote
        ``canary`` to ``production``). Promoting the current version changes nothing. With a
        ``loader``, the version is validated first (``validate``) and a version that would
        not serve is refused (``ModelLoadError``), the alias left as it was."""
        check_alias(alias)
        if loader is not None:
            ref = self.validate(ref, loader, smoke).model_version  # outside the lock: slow
        with self._locked():
            manifest = self.get(ref)
            book = self._read_aliases()
            state = book.state(alias)
            if state.version != manifest.model_version:
                state.promote(manifest.model_version, reason)
                self._write_aliases(book)
                log.info("model_promoted", alias=alias, model_version=manifest.model_version)
        return manifest

    def rollback(
        self,
        alias: str = "production",
        *,
        loader: Callable[[Path], T] | None = None,
        smoke: Callable[[T], object] | None = None,
    ) -> ModelVersion:
        """Point ``alias`` back at the version it pointed to before its last change; with a
        ``loader``, only once that version is validated (as ``promote`` does)."""
        check_alias(alias)
        if loader is not None:
            previous = self.alias_state(alias).previous
            if previous and self.artifacts.exists(self._manifest_key(previous[-1])):
                self.validate(previous[-1], loader, smoke)
        with self._locked():
            book = self._read_aliases()
            state = book.state(alias)
            if not state.previous:
                raise RegistryError(f"alias {alias} has no previous version to roll back to")
            target = state.previous[-1]
            if not self.artifacts.exists(self._manifest_key(target)):
                raise VersionNotFound(
                    f"alias {alias} would roll back to {target}, which no longer exists"
                )
            manifest = self._read_manifest(target)
            state.rollback()
            self._write_aliases(book)
            log.info("model_rolled_back", alias=alias, model_version=target)
        return manifest

    def retire(self, alias: str, reason: str) -> str | None:
        """Point ``alias`` nowhere (a canary rolled back), recording why in its history.
        Returns the version it pointed to (None: it pointed nowhere already)."""
        check_alias(alias)
        with self._locked():
            book = self._read_aliases()
            state = book.state(alias)
            retired = state.version
            if retired is not None:
                state.retire(reason)
                self._write_aliases(book)
                log.warning(
                    "model_alias_retired", alias=alias, model_version=retired, reason=reason
                )
        return retired

    # -- garbage collection -------------------------------------------------------------

    def gc(self, keep: int = 5, *, dry_run: bool = False) -> GcResult:
        """Delete all but the ``keep`` newest versions, sparing any version an alias points
        to or has among its last ``keep`` history entries, and delete half-written versions
        older than the grace period. Holds the alias lock, so no promote races it."""
        if keep < 0:
            raise RegistryError("keep must be 0 or more")
        result = GcResult()
        with self._locked():
            versions = [item.model_version for item in self.list_versions()]
            protected = set(versions[:keep]) | self._read_aliases().protected(keep)
            cutoff = datetime.now(UTC) - self.partial_grace
            layout = self._layout()
            for version in self._version_folders() | set(layout):
                started = version_time(version)
                if MANIFEST_NAME not in layout.get(version, ()) and started and started < cutoff:
                    result.partial.append(version)
            result.partial.sort()
            result.deleted = [version for version in versions if version not in protected]
            result.kept = [version for version in versions if version in protected]
            if not dry_run:
                for version in [*result.deleted, *result.partial]:
                    self._discard(version)
                self._prune_cache(set(result.kept))
        log.info("model_gc", deleted=len(result.deleted), partial=len(result.partial))
        return result

    def _discard(self, version: str, *, quiet: bool = False) -> None:
        """Delete a version: its manifest first (invisible at once), then its files."""
        base = self._version_key(version)
        try:
            self.artifacts.delete(self._manifest_key(version))
            for key in self.artifacts.list(base):
                self.artifacts.delete(key)
            folder = f"{self.artifacts.root}/{base}"
            if self.artifacts.fs.exists(folder):  # empty folders, leftover temp files
                self.artifacts.fs.rm(folder, recursive=True)
        except Exception as error:
            if not quiet:
                raise
            log.warning("model_discard_failed", model_version=version, error=str(error))
        shutil.rmtree(self.cache_dir / version, ignore_errors=True)

    def _prune_cache(self, keep: set[str]) -> None:
        """Drop cached copies of versions that are gone and stale temporary downloads."""
        if not self.cache_dir.is_dir():
            return
        stale = time.time() - self.partial_grace.total_seconds()
        for entry in self.cache_dir.iterdir():
            if entry.name.startswith("."):
                if entry.stat().st_mtime < stale:
                    shutil.rmtree(entry, ignore_errors=True)
            elif VERSION_PATTERN.match(entry.name) and entry.name not in keep:
                shutil.rmtree(entry, ignore_errors=True)

    # -- fetching and loading -----------------------------------------------------------

    def fetch(self, ref: str, destination: Path) -> Path:
        """Copy a verified version (its files and ``manifest.json``) into ``destination``,
        which must be absent or empty. Raises ``ChecksumMismatch`` naming a bad file."""
        manifest = self.get(ref)
        destination = Path(destination)
        if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
            raise RegistryError(f"{destination} exists and is not an empty folder")
        source = self._cached(manifest)
        destination.parent.mkdir(parents=True, exist_ok=True)
        staging = destination.parent / f".{destination.name}.{uuid.uuid4().hex}.tmp"
        try:
            shutil.copytree(source, staging)
            verify_folder(manifest, staging)
            os.replace(staging, destination)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return destination

    def read_file(self, ref: str, name: str) -> bytes:
        """One file of a version, checked against its manifest's sha256: for readers that
        need a small part (the data-quality checks read the id vocabularies) without
        downloading the whole model."""
        manifest = self.get(ref)
        entry = manifest.files.get(name)
        if entry is None:
            raise RegistryError(f"version {manifest.model_version} has no file {name!r}")
        try:
            data = self.artifacts.get_bytes(f"{self._version_key(manifest.model_version)}/{name}")
        except ArtifactNotFound:
            raise ChecksumMismatch(
                manifest.model_version, name, "is missing from the store"
            ) from None
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            raise ChecksumMismatch(manifest.model_version, name, "does not match its sha256")
        return data

    def _cached(self, manifest: ModelVersion) -> Path:
        """The local copy of a version, re-verified; (re)downloaded when absent or damaged."""
        version = manifest.model_version
        path = self.cache_dir / version
        if path.is_dir():
            try:
                verify_folder(manifest, path)
                return path
            except ChecksumMismatch as error:
                log.warning("model_cache_damaged", model_version=version, error=str(error))
                shutil.rmtree(path, ignore_errors=True)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        staging = self.cache_dir / f".{version}.{uuid.uuid4().hex}.tmp"
        try:
            self._download(manifest, staging)
            try:
                os.rename(staging, path)
            except OSError:
                if not path.is_dir():
                    raise
                verify_folder(manifest, path)  # another process cached it first
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return path

    def _download(self, manifest: ModelVersion, target: Path) -> None:
        version = manifest.model_version
        base = f"{self._version_key(version)}/"
        present = {key.removeprefix(base) for key in self.artifacts.list(base)} - {MANIFEST_NAME}
        missing = sorted(set(manifest.files) - present)
        if missing:
            raise ChecksumMismatch(version, missing[0], "is missing from the store")
        extra = sorted(present - set(manifest.files))
        if extra:
            raise ChecksumMismatch(version, extra[0], "is in the store but not in the manifest")
        for name in manifest.files:
            try:
                data = self.artifacts.get_bytes(f"{self._version_key(version)}/{name}")
            except ArtifactNotFound:
                raise ChecksumMismatch(version, name, "is missing from the store") from None
            path = target / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        (target / MANIFEST_NAME).write_bytes(manifest.to_json())
        verify_folder(manifest, target)

    def load(
        self,
        ref: str,
        loader: Callable[[Path], T],
        smoke: Callable[[T], object] | None = None,
    ) -> T:
        """Fetch and verify a version, build it with ``loader(folder)`` and check it with
        ``smoke(model)`` (which raises, or returns False, on failure). Every failure is a
        ``ModelLoadError`` with the reason, so a server can keep serving what it has."""
        try:
            manifest = self.get(ref)
            path = self._cached(manifest)
        except RegistryError as error:
            raise ModelLoadError(ref, str(error)) from error
        except Exception as error:
            raise ModelLoadError(ref, f"fetch failed: {_describe(error)}") from error
        label = manifest.model_version
        try:
            model = loader(path)
        except Exception as error:
            raise ModelLoadError(ref, f"loader failed on {label}: {_describe(error)}") from error
        if smoke is not None:
            try:
                passed = smoke(model)
            except Exception as error:
                raise ModelLoadError(
                    ref, f"smoke check failed on {label}: {_describe(error)}"
                ) from error
            if passed is False:
                raise ModelLoadError(ref, f"smoke check failed on {label}")
        return model


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def open_registry(settings: Settings, artifacts: ArtifactStore | None = None) -> ModelRegistry:
    """The registry of a deployment: in its artifact store (``stores.artifacts`` when the
    caller has the stores open), with the fetch cache under ``{home}/cache/models``."""
    if artifacts is None:
        try:
            artifacts = ArtifactStore(settings.resolved_artifacts_url)
        except (ImportError, ValueError, OSError) as error:
            raise RegistryError(
                f"cannot open the artifact store {settings.resolved_artifacts_url}: {error}"
            ) from error
    return ModelRegistry(artifacts, cache_dir=settings.home / "cache" / "models")
