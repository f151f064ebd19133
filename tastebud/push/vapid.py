"""VAPID key pairs (RFC 8292, the `vapid t=..., k=...` scheme): P-256 keys made with
``cryptography`` through py_vapid, the
library pywebpush signs with, and the public key in the form browsers take."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid02

from tastebud.stores.push import PushStore, VapidKeys


def generate_keys() -> VapidKeys:
    vapid = Vapid02()
    vapid.generate_keys()
    return VapidKeys(private_pem=vapid.private_pem().decode(), public_key=public_key_of(vapid))


def public_key_of(vapid: Vapid02) -> str:
    """The uncompressed point, base64url without padding: ``applicationServerKey``."""
    point = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(point).rstrip(b"=").decode()


def signer(keys: VapidKeys) -> Vapid02:
    """The key pair as py_vapid's signer, which pywebpush takes as ``vapid_private_key``."""
    return Vapid02.from_pem(keys.private_pem.encode())


def ensure_keys(store: PushStore, *, rotate: bool = False) -> tuple[VapidKeys, bool]:
    """The stored key pair, made first if there is none (or ``rotate``); True if new."""
    if not rotate:
        existing = store.vapid_keys()
        if existing is not None:
            return existing, False
    fresh = generate_keys()
    if store.save_vapid_keys(fresh, replace=rotate):
        return fresh, True
    stored = store.vapid_keys()  # another process made them first
    assert stored is not None
    return stored, False
