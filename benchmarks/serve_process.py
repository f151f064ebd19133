"""Shared by the HTTP benchmarks: ``tastebud serve`` in its own process group on a free
loopback port, a minimal HTTP/1.1 response reader for asyncio load generators, and running a
load generator in a spawned process (so its CPU is not the measured server's)."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_env(**variables: str) -> dict[str, str]:
    """This process's environment without any TASTEBUD_* setting, plus ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASTEBUD_")}
    env.update({"TASTEBUD_LOG_LEVEL": "WARNING", **variables})
    return env


class ServeProcess:
    """``python -m tastebud serve --workers N``, started on ``with`` once /readyz answers
    (and the other workers had time to start), stopped with SIGTERM to its group."""

    def __init__(self, env: dict[str, str], workers: int, log: Path) -> None:
        self.env = env
        self.workers = workers
        self.log = log
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServeProcess:
        command = [sys.executable, "-m", "tastebud", "serve", "--port", str(self.port)]
        command += ["--workers", str(self.workers)]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=log, start_new_session=True, cwd=ROOT
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).is_success:
                    time.sleep(3 if self.workers > 1 else 0)  # the other workers start too
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"server did not start: {self.log.read_text()[-2000:]}")

    def metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=10).text

    def __exit__(self, *_: object) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one response (headers and a Content-Length body); return its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return int(lines[0].split()[1])


def _call(target: Callable[..., Any], args: tuple[Any, ...], pipe: Any) -> None:
    pipe.send(target(*args))


def run_in_process(target: Callable[..., Any], *args: Any) -> Any:
    """``target(*args)`` in a spawned process (``target`` must be importable). A target
    that dies raises here instead of leaving the parent waiting on the pipe forever."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_call, args=(target, args, child))
    process.start()
    child.close()
    while not parent.poll(0.5):
        if not process.is_alive() and not parent.poll(0.5):
            raise RuntimeError(f"{target.__name__} died (exit code {process.exitcode})")
    result = parent.recv()
    process.join()
    return result
