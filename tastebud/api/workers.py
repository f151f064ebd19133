"""Several server worker processes, each accepting on its own ``SO_REUSEPORT`` socket.

Why not uvicorn's ``--workers``: it binds one listening socket in the parent and hands it
to every worker. The first worker to wake takes every connection waiting at that moment, so
a few keep-alive clients all land on one worker and the others idle (measured: 4 load
connections, one worker at 11.2 CPU-seconds, the other at 0.02; docs/benchmarks.md). With
one ``SO_REUSEPORT`` socket per worker the kernel spreads new connections over the workers by
a hash of their addresses. Gunicorn shares one socket the same way, so this small
supervisor is written here: it starts the workers, restarts one that dies, and stops them
all on SIGTERM or SIGINT.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any

from tastebud.observability import get_logger

log = get_logger("tastebud.api")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
GRACE_SECONDS = 15.0
# A worker that dies this soon after starting most likely cannot start at all (a broken
# config, an unreachable database): after a few such deaths in a row the server gives up.
QUICK_DEATH_SECONDS = 20.0
QUICK_DEATHS_ALLOWED = 3


class WorkersFailed(RuntimeError):
    """The workers could not be kept running."""


def reuse_port_supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def _socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _worker(host: str, port: int, options: dict[str, Any]) -> None:
    import uvicorn  # lazy: only the spawned worker serves; the supervisor never needs it

    # Bound now (a busy port fails here), listening only once uvicorn has run the app's
    # start-up: a listening socket joins the port's group at once, and a worker still
    # loading its model (a replacement, under load: seconds) would be handed connections
    # it cannot answer yet. uvicorn listens (backlog 2048) after the lifespan's start.
    sock = _socket(host, port)
    config = uvicorn.Config(host=host, port=port, **options)
    uvicorn.Server(config).run(sockets=[sock])


def run_workers(host: str, port: int, workers: int, options: dict[str, Any]) -> None:
    """Serve ``options["app"]`` (uvicorn.Config keywords) from ``workers`` processes,
    restarting one that dies, until SIGTERM or SIGINT."""
    reserved, port = _reserve(host, port)
    context = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, _: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    started: dict[int, float] = {}

    def start() -> BaseProcess:
        process = context.Process(target=_worker, args=(host, port, options), daemon=False)
        process.start()
        started[id(process)] = time.monotonic()
        return process

    processes = [start() for _ in range(workers)]
    log.info("workers_started", workers=workers, host=host, port=port)
    try:
        _supervise(processes, start, started, lambda: stopping)
    finally:
        _stop(processes)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        reserved.close()


def _reserve(host: str, port: int) -> tuple[socket.socket, int]:
    """A bound, non-listening socket holding the address (it takes no connections), and
    the port (port 0 resolved once, so that every worker gets the same one).

    The address is first bound without SO_REUSEPORT, so a port already in use (even by
    another server that set SO_REUSEPORT) fails here instead of being shared."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))  # without SO_REUSEPORT: fails if anyone listens there
            port = probe.getsockname()[1]
        return _socket(host, port), port
    except OSError as error:
        raise WorkersFailed(f"cannot listen on {host}:{port}: {error.strerror}") from None


def _supervise(
    processes: list[BaseProcess],
    start: Callable[[], BaseProcess],
    started: dict[int, float],
    stopping: Callable[[], bool],
) -> None:
    """Restart each worker that dies until stopped; give up after a few quick deaths."""
    quick_deaths = 0
    while not stopping():
        time.sleep(0.2)
        for n, process in enumerate(processes):
            if process.is_alive() or stopping():
                continue
            lived = time.monotonic() - started.pop(id(process))
            log.error("worker_died", pid=process.pid, exitcode=process.exitcode, lived=lived)
            quick_deaths = quick_deaths + 1 if lived < QUICK_DEATH_SECONDS else 0
            if quick_deaths >= QUICK_DEATHS_ALLOWED:
                raise WorkersFailed(
                    f"{quick_deaths} workers died within {QUICK_DEATH_SECONDS:.0f} s of"
                    " starting; see the log above"
                )
            processes[n] = start()


def _stop(processes: list[BaseProcess]) -> None:
    """SIGTERM to every worker (uvicorn shuts down gracefully), SIGKILL after the grace."""
    for process in processes:
        if process.is_alive() and process.pid is not None:
            process.terminate()
    deadline = time.monotonic() + GRACE_SECONDS
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
