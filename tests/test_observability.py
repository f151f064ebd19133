from __future__ import annotations

import json

import pytest
from prometheus_client import generate_latest

from tastebud.observability import (
    Metrics,
    bind_context,
    clear_context,
    configure_logging,
    get_logger,
)


def test_json_logs_carry_bound_ids_and_hide_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    bind_context(request_id="req-1", trace_id="trace-9")
    get_logger("test").info("ingest.batch", rows=3, api_key="tb_secret")
    clear_context()
    get_logger("test").debug("hidden")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert len(lines) == 1
    (line,) = lines
    assert line["event"] == "ingest.batch" and line["rows"] == 3
    assert line["request_id"] == "req-1" and line["trace_id"] == "trace-9"
    assert line["api_key"] == "[redacted]" and line["level"] == "info" and "timestamp" in line


def test_metric_names_follow_the_convention() -> None:
    metrics = Metrics()
    counter = metrics.counter("ingest", "rows", "total", "Rows.", ["kind"])
    assert metrics.counter("ingest", "rows", "total", "Rows.", ["kind"]) is counter
    counter.labels("events").inc(5)
    metrics.histogram("store", "append_latency", "seconds", "Latency.").observe(0.01)
    text = generate_latest(metrics.registry).decode()
    assert 'tastebud_ingest_rows_total{kind="events"} 5.0' in text
    assert "tastebud_store_append_latency_seconds_bucket" in text
    with pytest.raises(ValueError, match="must match"):
        metrics.counter("Bad-Domain", "rows", "total", "x")
    with pytest.raises(ValueError, match="already exists"):
        metrics.gauge("ingest", "rows", "total", "x")


def test_logging_configured_before_structlog_loads_applies_on_first_use() -> None:
    """``configure_logging`` does not import structlog (CLI start-up); the first logger
    applies what was asked, in a fresh interpreter where nothing else loaded structlog."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from tastebud.observability import configure_logging, get_logger\n"
        "configure_logging('WARNING', 'json')\n"
        "assert 'structlog' not in sys.modules\n"
        "log = get_logger('probe')\n"
        "log.info('hidden')\n"
        "log.warning('shown', token='tb_secret')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    (line,) = [json.loads(text) for text in done.stderr.splitlines()]
    assert line["event"] == "shown" and line["level"] == "warning"
    assert line["token"] == "[redacted]"
