"""A local push service for the push tests: HTTPS on a loopback port (a self-signed
certificate the client trusts through REQUESTS_CA_BUNDLE), playing the browser's side of
RFC 8291 too: each subscription's P-256 key pair and auth secret are made here, and every
message is decrypted with them by ``http_ece``. It checks the VAPID signature (RFC 8292) and
answers each endpoint with the status a test sets (201 by default; 404/410 for a gone one)."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import http_ece
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

from tastebud.stores.push import PushSubscription


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Device:
    """One browser's subscription keys."""

    token: str
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def p256dh(self) -> str:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(point)


@dataclass
class Received:
    token: str
    payload: dict[str, Any]
    headers: dict[str, str]  # lower-cased names
    vapid_key: str  # the `k=` of the Authorization header


class PushService:
    def __init__(self, folder: Path) -> None:
        self.devices: dict[str, Device] = {}
        self.status: dict[str, int] = {}
        self.received: list[Received] = []
        self.failures: list[str] = []
        self.on_message: Callable[[Received], None] | None = None
        self.cert = folder / "push-service.pem"
        key = folder / "push-service.key"
        _self_signed(self.cert, key)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def endpoint(self, token: str) -> str:
        return f"{self.origin}/push/{token}"

    def device(self, token: str, user_id: str, timezone: str | None = "UTC") -> PushSubscription:
        """A new browser subscription at ``/push/{token}`` for ``user_id``."""
        device = self.devices[token] = Device(token)
        return PushSubscription(
            endpoint=self.endpoint(token),
            user_id=user_id,
            p256dh=device.p256dh,
            auth=b64url(device.auth),
            timezone=timezone,
        )

    def messages(self, token: str) -> list[dict[str, Any]]:
        return [entry.payload for entry in self.received if entry.token == token]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                token = self.path.rsplit("/", 1)[-1]
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = service.status.get(token, 201)
                try:
                    received = service._decrypt(
                        token, body, {k.lower(): v for k, v in self.headers.items()}
                    )
                except Exception as error:  # reported to the test, answered 400
                    service.failures.append(f"{token}: {type(error).__name__}: {error}")
                    status = 400
                else:
                    if status == 201:
                        service.received.append(received)
                        if service.on_message is not None:
                            service.on_message(received)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def _decrypt(self, token: str, body: bytes, headers: dict[str, str]) -> Received:
        device = self.devices[token]
        assert headers.get("content-encoding") == "aes128gcm", headers
        vapid_key = _check_vapid(headers.get("authorization", ""), self.origin)
        plain = http_ece.decrypt(
            body, private_key=device.private_key, auth_secret=device.auth, version="aes128gcm"
        )
        return Received(token, json.loads(plain), headers, vapid_key)

    def __enter__(self) -> PushService:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _check_vapid(header: str, audience: str) -> str:
    """Verify the ES256 JWT of ``Authorization: vapid t=..., k=...``; returns ``k``."""
    scheme, _, rest = header.partition(" ")
    assert scheme == "vapid", header
    parts = dict(part.strip().split("=", 1) for part in rest.split(","))
    token, key = parts["t"], parts["k"]
    head, claims, signature = token.split(".")
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
    raw = unb64url(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public.verify(der, f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
    decoded = json.loads(unb64url(claims))
    assert decoded["aud"] == audience, decoded
    assert decoded["sub"].startswith("mailto:"), decoded
    return key


def _self_signed(cert_path: Path, key_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@contextmanager
def push_service(folder: Path) -> Iterator[PushService]:
    with PushService(folder) as service:
        yield service
