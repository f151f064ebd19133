"""``tastebud push keys`` and ``tastebud push status`` through the command line."""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from tastebud.cli.main import app
from tastebud.config import load_settings
from tastebud.stores import open_database
from tastebud.stores.push import PushSubscription

runner = CliRunner()


def test_push_keys_are_made_once_shown_and_rotated(home: Path) -> None:
    status = runner.invoke(app, ["push", "status"])
    assert status.exit_code == 0 and "no VAPID keys: run `tastebud push keys`" in status.output
    made = runner.invoke(app, ["push", "keys"])
    assert made.exit_code == 0, made.output
    public = made.output.strip().splitlines()[-1]
    point = base64.urlsafe_b64decode(public + "=" * (-len(public) % 4))
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)  # a P-256 key
    again = runner.invoke(app, ["push", "keys"])
    assert "exist already" in again.output and again.output.strip().endswith(public)
    with open_database(load_settings().resolved_database_url) as database:
        database.push.subscribe(PushSubscription("https://p.example/1", "u1", "k", "a"))
    assert "1 subscriptions" in runner.invoke(app, ["push", "status"]).output
    rotated = runner.invoke(app, ["push", "keys", "--rotate"])
    assert rotated.exit_code == 0
    assert "dropped 1 subscriptions" in rotated.output
    assert rotated.output.strip().splitlines()[-1] != public
    assert "0 subscriptions" in runner.invoke(app, ["push", "status"]).output
