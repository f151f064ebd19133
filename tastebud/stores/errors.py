"""What every store shares and nothing heavy: the error classes and ``Closeable``.

Apart from ``base.py`` (which imports pyarrow for the event interfaces) so that the light
commands (``tastebud keys``, ``dlq``, ``models``) and the artifact and gateway stores can use
them without paying for pyarrow at start-up (docs/benchmarks.md, CLI start-up).
"""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Closeable:
    """Something holding connections: close it, or use it in a ``with`` block."""

    def close(self) -> None:
        """Release connections; the default has none."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class StoreError(RuntimeError):
    """A store could not do what was asked (unreachable, corrupt, misconfigured)."""


class StoreUnavailable(StoreError):
    """A transient failure: the caller may retry (server down, lock held too long)."""
