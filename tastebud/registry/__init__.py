"""The model registry: versioned, checksummed model artifacts with a manifest each, and the
``production`` / ``canary`` / ``shadow`` aliases serving follows (see docs/registry.md).

Names are imported on first use (``tastebud.lazy``), so ``tastebud.registry.errors`` and
``.aliases`` stay cheap for the command line.

Layer (docs/architecture.md): may import ``stores`` and the core only; models are saved and
loaded through callables handed to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tastebud.lazy import lazy_exports

if TYPE_CHECKING:
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

__getattr__ = lazy_exports(
    __name__,
    {
        "ALIASES": "aliases",
        "AliasEvent": "aliases",
        "AliasState": "aliases",
        "ChecksumMismatch": "errors",
        "ModelLoadError": "errors",
        "RegistryError": "errors",
        "UnknownAlias": "errors",
        "VersionNotFound": "errors",
        "verify_folder": "files",
        "MANIFEST_NAME": "manifest",
        "CodeVersion": "manifest",
        "FileEntry": "manifest",
        "ModelVersion": "manifest",
        "TimeRange": "manifest",
        "code_version": "manifest",
        "GcResult": "registry",
        "ModelRegistry": "registry",
        "open_registry": "registry",
    },
)
