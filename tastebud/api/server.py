"""uvicorn's HTTP/1.1 protocols with TCP_NODELAY on every connection.

asyncio turns Nagle's algorithm off for the TCP connections it accepts, but only when the
listening socket says it is TCP; with ``--workers`` > 1 uvicorn hands each worker a socket
rebuilt without that, so responses (headers and body are two writes) wait for the client's
delayed ACK: ~40 ms per keep-alive request, measured (docs/benchmarks.md).

``http_protocol()`` picks httptools (a C parser, from ``uvicorn[standard]``) when it is
installed, and the pure-Python h11 otherwise.

These subclass uvicorn's internal protocol classes, so pyproject.toml pins uvicorn to the
releases ``tests/api/test_uvicorn_internals.py`` has passed on.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


def _no_delay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):  # not a TCP socket after all
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        _no_delay(transport)
        super().connection_made(transport)


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is not installed
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

if HttpToolsProtocol is not None:

    class NoDelayHttpToolsProtocol(HttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            _no_delay(transport)
            super().connection_made(transport)


def http_protocol() -> type[asyncio.Protocol]:
    """The fastest installed HTTP/1.1 protocol class (module-level, so worker processes can
    unpickle it), with TCP_NODELAY."""
    if HttpToolsProtocol is None:
        return NoDelayH11Protocol
    return NoDelayHttpToolsProtocol
