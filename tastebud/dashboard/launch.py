"""Start the dashboard: ``streamlit run app.py`` in a child process, pointed at a server (or
at the in-process API) through the environment ``app.py`` reads. ``tastebud dashboard`` waits
on it; ``tastebud quickstart`` runs it beside the server and the scheduler."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tastebud.dashboard.app_env import KEY_VARIABLE, URL_VARIABLE

APP = Path(__file__).with_name("app.py")


def command(host: str, port: int) -> list[str]:
    """The ``streamlit run`` command line: headless (no browser opened, no e-mail prompt),
    no usage statistics sent, the file watcher off (an installed package does not change)."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.headless", "true",
        "--server.address", host,
        "--server.port", str(port),
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "minimal",
    ]  # fmt: skip


def environment(url: str | None, key: str | None) -> dict[str, str]:
    """This process's environment with the source ``app.py`` reads: ``url`` with ``key``
    (neither: in-process over the settings' stores)."""
    env = dict(os.environ)
    env.pop(URL_VARIABLE, None)
    env.pop(KEY_VARIABLE, None)
    if url:
        env[URL_VARIABLE] = url
    if key:
        env[KEY_VARIABLE] = key
    return env


def start(host: str, port: int, url: str | None, key: str | None) -> subprocess.Popen[bytes]:
    """The dashboard process, reading ``url`` with ``key`` (neither: in-process)."""
    return subprocess.Popen(command(host, port), env=environment(url, key))
