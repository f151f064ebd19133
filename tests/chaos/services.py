"""Real dependencies the chaos tests own: a ``redis-server`` and a throwaway PostgreSQL
cluster, each on a spare loopback port, which a test may pause (SIGSTOP), kill (SIGKILL),
stop and restart without touching the machine's shared services."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import redis


def need(available: bool, what: str) -> None:
    """Skip without ``what`` on this machine; with TASTEBUD_REQUIRE_SERVICES=1 (CI), fail."""
    if available:
        return
    import pytest

    if os.environ.get("TASTEBUD_REQUIRE_SERVICES") == "1":
        pytest.fail(f"TASTEBUD_REQUIRE_SERVICES=1 but {what} is not installed")
    pytest.skip(f"needs {what}")


def spare_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait(ready: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not come up within {timeout:g} s")


class RedisServer:
    """``redis-server`` in the foreground (no persistence), on ``port``."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder = folder
        self.port = port or spare_port()
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.folder)]
        with open(self.folder / "redis.log", "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log)
        _wait(self._pings, f"redis-server on port {self.port}")
        return self

    def _pings(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)  # a stopped process dies on SIGKILL too
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        self.kill()


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian's layout), if any."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
    )
    return Path(found[-1]).parent if found else None


class PostgresCluster:
    """A throwaway cluster: ``initdb`` into a temporary folder, then ``pg_ctl`` start/stop on
    a spare port, trust auth on loopback only. initdb refuses to run as root, so as root the
    cluster belongs to the ``postgres`` system user (``runuser``)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or spare_port()
        self.bin = postgres_bin()
        self.folder = Path(tempfile.mkdtemp(prefix="tastebud-chaos-pg-"))
        self.data = self.folder / "data"
        self.owner: str | None = "postgres" if os.geteuid() == 0 else None

    @staticmethod
    def available() -> bool:
        if postgres_bin() is None:
            return False
        if os.geteuid() != 0:
            return True
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return False
        return shutil.which("runuser") is not None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str, timeout: float = 60.0) -> None:
        assert self.bin is not None
        argv = [str(self.bin / command[0]), *command[1:]]
        if self.owner is not None:
            argv = ["runuser", "-u", self.owner, "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=timeout)

    def init(self) -> PostgresCluster:
        if self.owner is not None:
            shutil.chown(self.folder, self.owner, self.owner)
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        return self

    def start(self) -> PostgresCluster:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.folder / "postgres.log"),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip
        _wait(self._answers, f"PostgreSQL on port {self.port}")
        return self

    def _answers(self) -> bool:
        try:
            with psycopg.connect(self.url, connect_timeout=2) as connection:
                connection.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def stop(self, mode: str = "fast") -> None:
        """``fast``: every session is ended at once, as a restart or failover does."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
