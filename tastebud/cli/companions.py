"""What ``tastebud quickstart`` (``make run``) runs beside its server: the job scheduler and
the dashboard, each a child process in its own session (a terminal's Ctrl-C reaches the
quickstart alone, which then stops them in order), their output in ``<home>/logs/``."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

from tastebud.cli.common import console
from tastebud.config import Settings

READY_SECONDS = 60.0
# How long Ctrl-C waits for each to stop before killing it: the scheduler stops between
# jobs, and a long one (an AutoML train) would otherwise hold the terminal for minutes;
# a job killed so runs again at its next interval.
STOP_SECONDS = 5.0


def dashboard_port(host: str, wanted: int) -> int:
    """``wanted`` when it is free, else a free port (said, as the server's port is)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for candidate in (wanted, 0):
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, candidate))
            except OSError:
                console.print(f"[yellow]note[/] port {wanted} is taken; the dashboard uses another")
                continue
            return int(probe.getsockname()[1])
    raise OSError(f"no port for the dashboard on {host}")  # pragma: no cover


class Companions:
    """The scheduler and the dashboard of one quickstart; ``stop`` ends both."""

    def __init__(self, settings: Settings, host: str, port: int) -> None:
        self.settings = settings
        self.host, self.port = host, port
        shown = f"[{host}]" if ":" in host else host
        self.dashboard_url = f"http://{shown}:{port}"
        self.logs = settings.home / "logs"
        self.processes: list[subprocess.Popen[bytes]] = []
        self._files: list[IO[bytes]] = []

    def _spawn(self, command: list[str], log: str, env: dict[str, str] | None = None) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        output = (self.logs / log).open("ab")
        self._files.append(output)
        self.processes.append(
            subprocess.Popen(
                command, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        )

    def start(self, api_url: str, key: str) -> bool:
        """Start both; True once the dashboard answers (within a minute)."""
        # lazy: the dashboard's launcher (CLI start-up)
        from tastebud.dashboard.launch import command, environment

        self._spawn([sys.executable, "-m", "tastebud", "scheduler"], "scheduler.log")
        self._spawn(command(self.host, self.port), "dashboard.log", environment(api_url, key))
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline and self.processes[-1].poll() is None:
            try:
                if httpx.get(f"{self.dashboard_url}/_stcore/health", timeout=2).is_success:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        return False

    def log(self, name: str) -> Path:
        return self.logs / name

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for output in self._files:
            output.close()
