"""The alias names, apart from the pydantic models of ``aliases.py``, so that command-line
help can list them without importing pydantic (CLI start-up, docs/benchmarks.md)."""

from __future__ import annotations

ALIASES: tuple[str, ...] = ("production", "canary", "shadow")
