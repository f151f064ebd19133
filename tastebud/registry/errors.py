"""The model registry's errors: one base class, so callers (the CLI, the server) can catch
everything the registry raises in one place and still tell the cases apart."""

from __future__ import annotations


class RegistryError(Exception):
    """Anything the model registry refuses or cannot do."""


class VersionNotFound(RegistryError, LookupError):
    """No committed version by that name, or an alias that points to none."""


class UnknownAlias(RegistryError, ValueError):
    """An alias name outside ``production``, ``canary`` and ``shadow``."""


class ChecksumMismatch(RegistryError):
    """A fetched file's bytes differ from the manifest (or a file is missing or extra)."""

    def __init__(self, version: str, name: str, reason: str) -> None:
        super().__init__(f"version {version}: file {name!r} {reason}")
        self.version = version
        self.name = name


class ModelLoadError(RegistryError):
    """Fetching, verifying, loading or smoke-testing a version failed; the caller keeps
    serving what it had."""

    def __init__(self, ref: str, reason: str) -> None:
        super().__init__(f"cannot load model {ref}: {reason}")
        self.ref = ref
        self.reason = reason
