"""Auth hardening (issue 16): failed key lookups cached briefly and rate-limited per client
address; oversized or too many request headers answered 431; the bootstrap admin key never
written to a server's log."""

from __future__ import annotations

import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from api.gateway_testing import Api, ServerProcess, free_port, server_env
from tastebud.gateway.keys import ADMIN_KEY_FILE, KeyAuthenticator
from tastebud.stores import open_database
from tastebud.stores.keys import ApiKey

EVENT = {"user_id": "u1", "item_id": "i1", "event_type": "like", "timestamp": 1.7e9}


class CountingKeys:
    """The real key store, counting the lookups that reach it."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.lookups = 0

    def authenticate(self, secret: str) -> ApiKey | None:
        self.lookups += 1
        return self.store.authenticate(secret)


def test_an_unknown_key_is_remembered_briefly(home: Path) -> None:
    now = [0.0]
    with open_database(f"embedded://{home / 'db'}") as database:
        store = CountingKeys(database.gateway.keys)
        keys = KeyAuthenticator(store, 5.0, clock=lambda: now[0], miss_seconds=2.0)  # type: ignore[arg-type]
        for _ in range(50):
            assert keys.authenticate("tb_random_guess") is None
        assert store.lookups == 1
        now[0] = 2.5  # past the window: looked up again
        assert keys.authenticate("tb_random_guess") is None and store.lookups == 2
        created = database.gateway.keys.create(["read"], "late")
        assert created is not None
        now[0] = 10.0
        assert keys.authenticate(created[1]) is not None


def test_failed_keys_are_rate_limited_per_client_address(
    api_factory: Callable[..., Api],
) -> None:
    api = api_factory(auth_failures_per_second=0.5, auth_failure_burst=5, key_cache_seconds=60)
    assert api.post_events(EVENT).status_code == 202  # this key is now cached
    statuses = []
    for _ in range(8):
        headers = {"X-API-Key": f"tb_{secrets.token_hex(8)}"}
        statuses.append(api.client.post("/v1/events", json=EVENT, headers=headers).status_code)
    assert statuses == [401] * 5 + [429] * 3
    limited = api.client.post("/v1/events", json=EVENT, headers={"X-API-Key": "tb_x"})
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    # A key already checked keeps working from the cache: the limit is on failed checks.
    assert api.post_events(EVENT).status_code == 202
    # A key not checked yet waits too: it would cost a lookup.
    other = api.post_events(EVENT, scope="admin")
    assert other.status_code == 429


def test_header_limits_are_431(embedded_api: Api) -> None:
    client = embedded_api.client
    many = [(f"x-h{n}", "1") for n in range(2000)]
    response = client.get("/healthz", headers=many)
    assert response.status_code == 431, response.text
    assert response.json()["error"]["code"] == "headers_too_large"
    huge = client.get("/healthz", headers={"x-big": "a" * 1_000_000})
    assert huge.status_code == 431
    assert client.get("/healthz", headers={"x-fine": "a" * 1000}).status_code == 200


def test_the_bootstrap_key_goes_to_an_owner_only_file_not_the_log(tmp_path: Path) -> None:
    home = tmp_path / "home"
    log = tmp_path / "server.log"
    env = server_env(home, TASTEBUD_LOG_LEVEL="INFO")
    server = ServerProcess(env, free_port(), 1, log).start()
    try:
        key_file = home / ADMIN_KEY_FILE
        secret = key_file.read_text().strip()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        text = log.read_text()
        assert secret not in text and str(key_file) in text.replace("\n", "")
        response = httpx.get(f"{server.url}/v1/popular", headers={"X-API-Key": secret})
        assert response.status_code == 200, response.text
    finally:
        server.stop()
