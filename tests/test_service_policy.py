"""Service-backed tests skip with a reason when the server is unreachable, and fail instead
when TASTEBUD_REQUIRE_SERVICES=1 (as in CI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_redis_test(require: bool) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "TASTEBUD_TEST_REDIS_URL": "redis://127.0.0.1:1/0",
        "TASTEBUD_REQUIRE_SERVICES": "1" if require else "0",
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "tests/stores/test_online_store_contract.py::test_overwrite[redis]",
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("require", [False, True])
def test_unreachable_service(require: bool) -> None:
    result = run_redis_test(require)
    if require:
        assert result.returncode == 1, result.stdout
        assert "TASTEBUD_REQUIRE_SERVICES=1 but redis unreachable" in result.stdout
    else:
        assert result.returncode == 0, result.stdout
        assert "1 skipped" in result.stdout
        assert "redis unreachable" in result.stdout and "TASTEBUD_TEST_REDIS_URL" in result.stdout
