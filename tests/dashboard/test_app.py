"""``app.py`` as ``tastebud dashboard`` runs it (navigation, the source from the
environment: a server's URL and key, or in-process over the settings' stores), and the
command's refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

import tastebud.dashboard.app as dashboard_app
from dashboard.conftest import ServedWorld
from dashboard.pages import messages
from tastebud.cli.main import app

APP = str(Path(dashboard_app.__file__))


def test_the_app_reads_a_server_named_in_the_environment(
    served: ServedWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASTEBUD_DASHBOARD_URL", served.url)
    monkeypatch.setenv("TASTEBUD_DASHBOARD_KEY", served.read_key)
    test = AppTest.from_file(APP, default_timeout=60).run()
    assert messages(test)["exception"] == [] and messages(test)["error"] == []
    assert test.title[0].value == "Recommendations explorer"  # the default page
    assert f"Data: {served.url}" in [caption.value for caption in test.sidebar.caption]
    assert len(test.table[0].value) == 10


def test_the_app_runs_in_process_without_a_url(
    served: ServedWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TASTEBUD_DASHBOARD_URL", raising=False)
    monkeypatch.setenv("TASTEBUD_HOME", str(served.home))
    monkeypatch.setenv("TASTEBUD_ONLINE_URL", "memory://")  # its own, beside the server's
    test = AppTest.from_file(APP, default_timeout=60).run()
    assert messages(test)["exception"] == [] and messages(test)["error"] == []
    assert any("embedded stores" in caption.value for caption in test.sidebar.caption)
    assert len(test.table[0].value) == 10


def test_the_command_refuses_a_bad_url_or_a_url_without_a_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TASTEBUD_DASHBOARD_KEY", raising=False)
    runner = CliRunner()
    bad = runner.invoke(app, ["dashboard", "--url", "localhost:8000", "--key", "k"])
    assert bad.exit_code != 0 and "must start with http:// or https://" in bad.output
    keyless = runner.invoke(app, ["dashboard", "--url", "http://127.0.0.1:1"])
    assert keyless.exit_code != 0 and "--url needs --key" in keyless.output
