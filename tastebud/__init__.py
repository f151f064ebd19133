"""tastebud: a hybrid recommendation engine (events in, ranked lists out)."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    """``__version__`` on first use: importlib.metadata costs ~25 ms of every command's
    start-up (docs/benchmarks.md, CLI start-up), and most commands never ask."""
    if name != "__version__":
        raise AttributeError(f"module 'tastebud' has no attribute {name!r}")
    from importlib import metadata  # lazy: ~25 ms of start-up (see the docstring)

    try:
        version = metadata.version("tastebud")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        version = "0.0.0+unknown"
    globals()["__version__"] = version
    return version
