"""Helpers for the HTTP API tests: settings, keys, an in-process client and a live server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.exceptions import StarletteDeprecationWarning

from tastebud.api.app import create_app
from tastebud.config import Settings, load_settings
from tastebud.stores import Database

with warnings.catch_warnings():
    # Starlette asks for httpx2 and warns when it finds httpx; the test client works the same
    # with either, and pytest turns warnings into errors.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient


def gateway_settings(home: Path, database_url: str | None = None, **gateway: Any) -> Settings:
    options: dict[str, Any] = {"key_cache_seconds": 0.0, **gateway}
    return load_settings(
        home=home, database_url=database_url, online_url="memory://", gateway=options
    )


@dataclass
class Api:
    """A client over the app with one key per scope, and the database to check what it did."""

    client: TestClient
    settings: Settings
    database: Database
    keys: dict[str, str]

    def headers(self, scope: str = "ingest", **extra: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[scope], **extra}

    def post_events(self, body: Any, scope: str = "ingest", **headers: str) -> Any:
        return self.client.post("/v1/events", json=body, headers=self.headers(scope, **headers))


def make_keys(database: Database) -> dict[str, str]:
    keys: dict[str, str] = {}
    for scope in ("ingest", "read", "admin"):
        created = database.gateway.keys.create([scope], f"test {scope}")
        assert created is not None
        keys[scope] = created[1]
    return keys


class LiveServer:
    """uvicorn serving an app in a thread, on a free loopback port."""

    def __init__(self, settings: Settings) -> None:
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=0, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the live server did not start")
            time.sleep(0.02)
        return self

    @property
    def url(self) -> str:
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServerProcess:
    """``tastebud serve`` in its own process group, so a test can SIGKILL the parent and its
    workers at once, as a crash or an OOM kill would."""

    def __init__(self, env: dict[str, str], port: int, workers: int, log: Path) -> None:
        self.env = env
        self.port = port
        self.workers = workers
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> ServerProcess:
        command = [sys.executable, "-m", "tastebud", "serve", "--port", str(self.port)]
        command += ["--workers", str(self.workers)]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=log, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"the server did not start: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL the whole group: the parent and every worker, with no shutdown at all."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def server_env(home: Path, **variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASTEBUD_")}
    env.update({"TASTEBUD_HOME": str(home), "TASTEBUD_LOG_LEVEL": "WARNING", **variables})
    return env
