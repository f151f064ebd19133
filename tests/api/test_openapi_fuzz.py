"""Fuzz the API from its own OpenAPI schema (schemathesis), against a live server: no 5xx,
and every response matches what the schema documents (status codes, content types, bodies).
The number of examples is bounded so the suite stays fast."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.gateway_testing import LiveServer, gateway_settings
from tastebud.api.app import create_app
from tastebud.stores import open_database

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def live_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    home = tmp_path_factory.mktemp("fuzz") / "home"
    config = gateway_settings(home, max_body_bytes=64 * 1024)
    with open_database(config.resolved_database_url) as database:
        created = database.gateway.keys.create(["admin"], "fuzz", rate_per_second=1e6, burst=1e6)
        assert created is not None
        with LiveServer(config) as server:
            yield server.url, created[1]


# The schema the app serves, as built from its settings (the app opens no store until its
# lifespan starts, so building it here touches nothing).
schema = schemathesis.openapi.from_dict(
    create_app(gateway_settings(Path(tempfile.gettempdir()) / "tastebud-fuzz-schema")).openapi()
)


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms_to_its_schema(case: Any, live_gateway: tuple[str, str]) -> None:
    url, key = live_gateway
    response = case.call(base_url=url, headers={"X-API-Key": key})
    case.validate_response(response, checks=CHECKS)
