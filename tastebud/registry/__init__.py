"""The model registry: versioned, checksummed model artifacts with a manifest each, and the
``production`` / ``canary`` / ``shadow`` aliases serving follows (see docs/registry.md)."""

from tastebud.registry.aliases import ALIASES, AliasEvent, AliasState
from tastebud.registry.errors import (
    ChecksumMismatch,
    ModelLoadError,
    RegistryError,
    UnknownAlias,
    VersionNotFound,
)
from tastebud.registry.files import verify_folder
from tastebud.registry.manifest import (
    MANIFEST_NAME,
    CodeVersion,
    FileEntry,
    ModelVersion,
    TimeRange,
    code_version,
)
from tastebud.registry.registry import GcResult, ModelRegistry, open_registry

__all__ = [
    "ALIASES",
    "MANIFEST_NAME",
    "AliasEvent",
    "AliasState",
    "ChecksumMismatch",
    "CodeVersion",
    "FileEntry",
    "GcResult",
    "ModelLoadError",
    "ModelRegistry",
    "ModelVersion",
    "RegistryError",
    "TimeRange",
    "UnknownAlias",
    "VersionNotFound",
    "code_version",
    "open_registry",
    "verify_folder",
]
