"""Local folders on either side of the registry: the model folder being registered, and a
fetched copy that must match its manifest byte for byte before anything loads it."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from tastebud.registry.errors import ChecksumMismatch, RegistryError
from tastebud.registry.manifest import MANIFEST_NAME, ModelVersion, hash_file


def source_files(source_dir: Path) -> dict[str, Path]:
    """Every file under ``source_dir`` by its slash-separated relative name."""
    if not source_dir.is_dir():
        raise RegistryError(f"{source_dir} is not a folder")
    files: dict[str, Path] = {}
    for path in sorted(source_dir.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        name = path.relative_to(source_dir).as_posix()
        if any(part.startswith(".") for part in name.split("/")):
            raise RegistryError(f"{name}: hidden files cannot be registered")
        if not path.is_file():
            raise RegistryError(f"{name} is not a regular file (a broken link?)")
        files[name] = path
    if not files:
        raise RegistryError(f"{source_dir} has no files to register")
    if MANIFEST_NAME in files:
        raise RegistryError(f"{source_dir} has a {MANIFEST_NAME}; the registry writes its own")
    return files


def verify_folder(manifest: ModelVersion, folder: Path) -> None:
    """Check that ``folder`` holds exactly the manifest's files (plus ``manifest.json``, the
    same manifest), each with its recorded size and sha256."""
    version = manifest.model_version
    found = {
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if not path.is_dir() or path.is_symlink()
    }
    expected = {*manifest.files, MANIFEST_NAME}
    missing = sorted(expected - found)
    if missing:
        raise ChecksumMismatch(version, missing[0], "is missing")
    extra = sorted(found - expected)
    if extra:
        raise ChecksumMismatch(version, extra[0], "is not in the manifest")
    try:
        local = ModelVersion.from_dir(folder)
    except (ValidationError, ValueError):
        raise ChecksumMismatch(version, MANIFEST_NAME, "is not a valid manifest") from None
    if local != manifest:
        raise ChecksumMismatch(version, MANIFEST_NAME, "differs from the registry's")
    for name, entry in manifest.files.items():
        actual = hash_file(folder / name)
        if actual.sha256 != entry.sha256 or actual.bytes != entry.bytes:
            raise ChecksumMismatch(
                version, name, f"has sha256 {actual.sha256[:12]}…, expected {entry.sha256[:12]}…"
            )
