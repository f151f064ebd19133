"""A long fuzzing run of the HTTP API (issue 16): ``tastebud serve`` on each backend (the
embedded store, and PostgreSQL in a schema of its own), fuzzed by the schemathesis CLI from
the server's own ``/openapi.json`` with every check, ``--max-examples`` per operation (CI runs
12, ``tests/api/test_openapi_fuzz.py``) and NUL bytes allowed in generated strings. The
checks are narrowed exactly as in CI (``FUZZ_EXCEPTIONS`` there: per-entry batch answers, and
push keys that must be real curve points).

Counts the requests sent, the 5xx answered and the failures by check, from schemathesis's
NDJSON event stream; writes ``results/fuzz_api.json``; exits 1 on any 5xx or failure.

Run:  flock /work/wt/bench.lock .venv/bin/python benchmarks/fuzz_api.py --max-examples 300
A focused run (one operation, both backends, seconds):  ... --operation "POST /v1/features"
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe
from serve_process import ServeProcess, server_env

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "fuzz_api.json"
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"

CONFIG = """
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422",
                     "428", "429", "431"]

[generation]
allow-x00 = true

[[operations]]
include-name = ["POST /v1/events", "PUT /v1/items", "PUT /v1/users"]
checks.negative_data_rejection.enabled = false

[[operations]]
include-name = "POST /v1/push/subscriptions"
checks.positive_data_acceptance.enabled = false
"""


def fuzz(backend: str, max_examples: int, folder: Path, operations: list[str]) -> dict[str, Any]:
    home = folder / backend
    env = server_env(
        TASTEBUD_HOME=str(home),
        TASTEBUD_GATEWAY__AUTH_FAILURE_BURST="1e9",
        TASTEBUD_ONLINE_URL="memory://",
    )
    schema = None
    if backend == "postgres":
        schema = f"tb_fuzz_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(POSTGRES, autocommit=True) as connection:
            connection.execute(f"CREATE SCHEMA {schema}")
        env["TASTEBUD_DATABASE_URL"] = f"{POSTGRES}?options={quote(f'-csearch_path={schema}')}"
    try:
        command = [sys.executable, "-m", "tastebud", "keys", "create", "--scope", "admin"]
        command += ["--rate", "1000000", "--burst", "1000000", "--name", "fuzz"]
        key = subprocess.run(
            command,
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[-1]
        config = folder / f"{backend}.toml"
        config.write_text(CONFIG)
        events = folder / f"{backend}.ndjson"
        with ServeProcess(env, 1, folder / f"{backend}.log") as server:
            started = time.perf_counter()
            # Every check is on by default; ``--checks all`` would override the config.
            fuzzer = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config)]
            fuzzer += ["run", f"{server.url}/openapi.json", "--max-examples", str(max_examples)]
            fuzzer += ["--continue-on-failure", "--generation-deterministic"]
            fuzzer += ["-H", f"X-API-Key: {key}"]
            for name in operations:  # a focused run: only these operations
                fuzzer += ["--include-name", name]
            fuzzer += ["--report", "ndjson", "--report-ndjson-path", str(events)]
            run = subprocess.run(
                fuzzer,
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            seconds = time.perf_counter() - started
    finally:
        if schema is not None:
            with psycopg.connect(POSTGRES, autocommit=True) as connection:
                connection.execute(f"DROP SCHEMA {schema} CASCADE")
    return summarize(backend, events, seconds, run)


def summarize(
    backend: str, events: Path, seconds: float, run: subprocess.CompletedProcess[str]
) -> dict[str, Any]:
    """Statuses from the NDJSON stream's recorded interactions; failures from the CLI's
    summary (one line per kind of failure, with its count of unique failures)."""
    statuses: Counter[int] = Counter()
    for line in events.read_text().splitlines():
        for body in json.loads(line).values():
            recorder = body.get("recorder") if isinstance(body, dict) else None
            for interaction in ((recorder or {}).get("interactions") or {}).values():
                response = interaction.get("response") or {}
                if "status_code" in response:
                    statuses[int(response["status_code"])] += 1
    failures = {
        match.group(1): int(match.group(2))
        for match in re.finditer(r"(ST\d+ [^:\n]+): (\d+)", run.stdout)
    }
    return {
        "backend": backend,
        "requests": sum(statuses.values()),
        "server_errors": sum(n for status, n in statuses.items() if status >= 500),
        "statuses": {str(status): n for status, n in sorted(statuses.items())},
        "failures": failures,
        "seconds": round(seconds, 1),
        "schemathesis_exit": run.returncode,
        "schemathesis_summary": run.stdout[run.stdout.rfind("SUMMARY") :][:2000],
        # The failures section names each failing operation and its curl reproduction.
        "schemathesis_failures": _failures_section(run.stdout),
    }


def _failures_section(stdout: str) -> str:
    start = stdout.find("FAILURES")
    return "" if start < 0 else stdout[start : stdout.rfind("SUMMARY")][:20_000]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=300)
    parser.add_argument("--backends", default="embedded,postgres")
    parser.add_argument(
        "--operation",
        action="append",
        default=[],
        help='Fuzz only this operation ("POST /v1/features"); repeatable. Default: all.',
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tastebud-fuzz-") as scratch:
        results = [
            fuzz(backend, args.max_examples, Path(scratch), args.operation)
            for backend in args.backends.split(",")
        ]
    document = {
        "benchmark": "fuzz_api",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": describe(),
        "max_examples": args.max_examples,
        "operations": args.operation or "all",
        "results": results,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    for result in results:
        print(
            f"{result['backend']}: {result['requests']} requests in {result['seconds']} s,"
            f" {result['server_errors']} x 5xx, failures {result['failures'] or 0}"
            f" (schemathesis exit {result['schemathesis_exit']})"
        )
    bad = any(r["server_errors"] or r["failures"] or r["schemathesis_exit"] for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
