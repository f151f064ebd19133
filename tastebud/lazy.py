"""Lazy re-exports for a package's ``__init__`` (PEP 562 module ``__getattr__``).

A package that re-exports its submodules' names makes importing any one submodule import
them all: ``tastebud.registry.errors`` would bring fsspec and the stores. The command line
answers in under 0.5 s (docs/benchmarks.md, CLI start-up) only if its help can name aliases
and catch registry errors without that, so such packages resolve their names on first use.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: each name in ``homes`` is imported from
    its submodule (``homes[name]``) when first asked for, then kept on the package."""

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{home}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
