"""What ``tastebud.api.server`` takes from uvicorn's internals, checked against the installed
uvicorn: the protocol classes' import paths, the ``connection_made`` hook they override, and
that a real uvicorn server built with them serves a request with TCP_NODELAY on the accepted
socket. A uvicorn release that moves or reshapes these fails here, before a deployment does;
the pin in pyproject.toml is the range this file has passed on."""

from __future__ import annotations

import asyncio
import inspect
import socket
import threading
import time
import tomllib
from collections.abc import Iterator
from http.client import HTTPConnection
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from packaging.requirements import Requirement
from packaging.version import Version

from tastebud.api import server

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

# (tastebud's subclass, uvicorn's module, uvicorn's class) for every protocol installed here.
SUBCLASSED = [
    (server.NoDelayH11Protocol, "uvicorn.protocols.http.h11_impl", "H11Protocol"),
]
if server.HttpToolsProtocol is not None:
    SUBCLASSED.append(
        (
            server.NoDelayHttpToolsProtocol,
            "uvicorn.protocols.http.httptools_impl",
            "HttpToolsProtocol",
        )
    )
PROTOCOL_IDS = [base for _, _, base in SUBCLASSED]


def uvicorn_requirement() -> Requirement:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    (requirement,) = [
        Requirement(line) for line in dependencies if Requirement(line).name == "uvicorn"
    ]
    return requirement


def test_the_pin_is_a_bounded_range_holding_the_installed_uvicorn() -> None:
    specifier = uvicorn_requirement().specifier
    assert any(spec.operator in ("<", "<=", "~=", "==") for spec in specifier), (
        f"uvicorn is pinned {specifier}: give it an upper bound, the last release "
        "tests/api/test_uvicorn_internals.py passed on"
    )
    installed = Version(version("uvicorn"))
    assert specifier.contains(installed), (
        f"uvicorn {installed} is installed, outside the tested range {specifier}: run this "
        "file against it and move the pin"
    )


def test_httptools_is_installed_as_uvicorn_standard_promises() -> None:
    """``uvicorn[standard]`` brings httptools; without it serving falls back to h11 (slower)."""
    assert server.HttpToolsProtocol is not None
    assert server.http_protocol() is server.NoDelayHttpToolsProtocol


def overridden(ours: type) -> dict[str, Any]:
    """The methods our subclass defines over uvicorn's (whatever server.py adds later)."""
    return {
        name: attribute
        for name, attribute in vars(ours).items()
        if inspect.isfunction(attribute) and (not name.startswith("__") or name == "__init__")
    }


@pytest.mark.parametrize(("ours", "module", "name"), SUBCLASSED, ids=PROTOCOL_IDS)
def test_the_subclassed_protocol_keeps_its_path_and_hooks(
    ours: type[asyncio.Protocol], module: str, name: str
) -> None:
    base = getattr(__import__(module, fromlist=[name]), name)
    assert ours.__bases__ == (base,)
    assert issubclass(base, asyncio.Protocol)
    methods = overridden(ours)
    assert "connection_made" in methods
    for method, function in methods.items():
        # uvicorn still implements each hook we override (our overrides call it through
        # super()), with the parameters we override it with.
        owner = next((k for k in base.__mro__ if method in vars(k)), None)
        assert owner is not None and owner.__module__.startswith("uvicorn."), (
            f"{module}.{name} no longer implements {method}"
        )
        expected = list(inspect.signature(getattr(base, method)).parameters)
        assert list(inspect.signature(function).parameters) == expected, (
            f"{module}.{name}.{method} now takes {expected}"
        )


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


def recording(protocol: type[asyncio.Protocol], seen: list[int]) -> type[asyncio.Protocol]:
    """``protocol``, noting TCP_NODELAY on each connection's socket once it is set up."""

    class Recording(protocol):  # type: ignore[valid-type,misc]
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            sock = transport.get_extra_info("socket")
            seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    return Recording


@pytest.fixture
def serve() -> Iterator[Any]:
    """Run a uvicorn server in a thread on a socket built as ``--workers`` builds them (no
    protocol number, so asyncio leaves Nagle on) and on asyncio's own loop (uvloop turns
    Nagle off itself); yield a function that starts one."""
    running: list[tuple[uvicorn.Server, threading.Thread, socket.socket]] = []

    def start(protocol: type[asyncio.Protocol]) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        config = uvicorn.Config(
            hello, http=protocol, ws="none", loop="asyncio", lifespan="off", log_level="warning"
        )
        uvicorn_server = uvicorn.Server(config)
        thread = threading.Thread(target=uvicorn_server.run, args=([sock],), daemon=True)
        thread.start()
        running.append((uvicorn_server, thread, sock))
        deadline = time.monotonic() + 30
        while not uvicorn_server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        return sock.getsockname()[1]

    yield start
    for uvicorn_server, thread, sock in running:
        uvicorn_server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def get(port: int) -> tuple[int, bytes]:
    connection = HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(("ours", "module", "name"), SUBCLASSED, ids=PROTOCOL_IDS)
def test_a_real_uvicorn_server_serves_with_no_delay(
    serve: Any, ours: type[asyncio.Protocol], module: str, name: str
) -> None:
    seen: list[int] = []
    port = serve(recording(ours, seen))

    assert get(port) == (200, b"hello")
    assert seen and all(seen), "TCP_NODELAY is off on the accepted connection"


def test_without_the_subclass_nagle_stays_on(serve: Any) -> None:
    """The control: uvicorn's own class on such a socket leaves Nagle on, which is why the
    subclass exists. If this fails, asyncio or uvicorn now sets TCP_NODELAY itself and
    ``tastebud.api.server`` can go."""
    base = SUBCLASSED[-1][0].__bases__[0]
    seen: list[int] = []
    port = serve(recording(base, seen))

    assert get(port) == (200, b"hello")
    assert seen == [0]
