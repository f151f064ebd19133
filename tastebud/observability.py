"""Observability base: structured logs (structlog) and one Prometheus registry.

Logs are JSON lines when stderr is not a terminal (or ``log_format = "json"``), and carry
whatever is bound with ``bind_context`` (request_id, trace_id, job run id) via contextvars,
so every line of one request can be found together. Metric names follow
``tastebud_<domain>_<metric>_<unit>``; ``metrics.counter(...)`` builds and checks them.

structlog is imported on first use, not with this module: with what it imports (rich's
tracebacks, pygments, asyncio) it is about 0.05 s of every command's start-up, and most
light commands never log (docs/benchmarks.md, "Command-line start-up"). So
``configure_logging`` before structlog is loaded only records the configuration, and
``get_logger``/``bind_context`` apply it when they load structlog: any line logged through
them is configured as asked.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

NAMESPACE = "tastebud"
NAME_PART = re.compile(r"[a-z][a-z0-9_]*")
# Keys never written to logs, whatever a caller binds (API keys, raw payloads).
REDACTED_KEYS = frozenset({"api_key", "authorization", "password", "secret", "token", "payload"})


def _redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in REDACTED_KEYS.intersection(event):
        event[key] = "[redacted]"
    return event


class _CurrentStderr:
    """Whatever ``sys.stderr`` is at write time. Binding the stream at configure time breaks
    when it is swapped and closed later (test runners, embedding applications)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


LogFormat = Literal["auto", "json", "console"]
_pending: tuple[str, LogFormat] | None = None


def configure_logging(level: str = "INFO", fmt: LogFormat = "auto") -> None:
    """Set up structlog once per process; safe to call again (the last call wins).

    If structlog is not loaded yet, the configuration waits for its first use (see the
    module docstring)."""
    global _pending
    if "structlog" not in sys.modules:
        _pending = (level, fmt)
        return
    _pending = None
    _apply(level, fmt)


def _structlog() -> Any:
    """structlog, configured as last asked."""
    import structlog  # lazy: CLI start-up (see the module docstring)

    if _pending is not None:
        configure_logging(*_pending)
    return structlog


def _apply(level: str, fmt: LogFormat) -> None:
    import structlog  # lazy: CLI start-up (see the module docstring)

    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )


class _Logger:
    """A logger that loads structlog on its first call, so modules that keep one at module
    level (``log = get_logger(__name__)``) cost nothing to import."""

    __slots__ = ("_logger", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, attribute: str) -> Any:
        if self._logger is None:
            self._logger = _structlog().get_logger(self._name)
        return getattr(self._logger, attribute)


def get_logger(name: str) -> Any:
    return _Logger(name)


def bind_context(**values: Any) -> None:
    """Attach values (request_id, trace_id...) to every log line of this context."""
    _structlog().contextvars.bind_contextvars(**values)


def clear_context() -> None:
    _structlog().contextvars.clear_contextvars()


class Metrics:
    """One registry for the process; metrics are created once and reused by name.

    prometheus_client is imported when the first metric (or the registry) is asked for:
    commands that count nothing start ~60 ms sooner (docs/benchmarks.md, CLI start-up)."""

    def __init__(self) -> None:
        self._registry: CollectorRegistry | None = None
        self._made: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def registry(self) -> CollectorRegistry:
        if self._registry is None:
            from prometheus_client import CollectorRegistry  # lazy: CLI start-up (class docstring)

            with self._lock:
                if self._registry is None:
                    self._registry = CollectorRegistry(auto_describe=True)
        return self._registry

    @staticmethod
    def name(domain: str, metric: str, unit: str) -> str:
        for part in (domain, metric, unit):
            if not NAME_PART.fullmatch(part):
                raise ValueError(f"metric name part {part!r} must match {NAME_PART.pattern}")
        return f"{NAMESPACE}_{domain}_{metric}_{unit}"

    def _get(self, kind: type, name: str, doc: str, labels: Sequence[str], **extra: Any) -> Any:
        registry = self.registry
        with self._lock:
            made = self._made.get(name)
            if made is None:
                made = kind(name, doc, list(labels), registry=registry, **extra)
                self._made[name] = made
            elif not isinstance(made, kind):
                raise ValueError(f"metric {name} already exists as {type(made).__name__}")
            return made

    def counter(
        self, domain: str, metric: str, unit: str, doc: str, labels: Sequence[str] = ()
    ) -> Counter:
        from prometheus_client import Counter  # lazy: CLI start-up (class docstring)

        return self._get(Counter, self.name(domain, metric, unit), doc, labels)

    def gauge(
        self, domain: str, metric: str, unit: str, doc: str, labels: Sequence[str] = ()
    ) -> Gauge:
        from prometheus_client import Gauge  # lazy: CLI start-up (class docstring)

        return self._get(Gauge, self.name(domain, metric, unit), doc, labels)

    def histogram(
        self,
        domain: str,
        metric: str,
        unit: str,
        doc: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] | None = None,
    ) -> Histogram:
        from prometheus_client import Histogram  # lazy: CLI start-up (class docstring)

        return self._get(
            Histogram,
            self.name(domain, metric, unit),
            doc,
            labels,
            buckets=tuple(Histogram.DEFAULT_BUCKETS if buckets is None else buckets),
        )


metrics = Metrics()
