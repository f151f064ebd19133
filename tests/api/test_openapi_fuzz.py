"""Fuzz the API from its own OpenAPI schema (schemathesis), against a live server on each
backend (embedded and PostgreSQL: NUL bytes were 500s only on PostgreSQL, issue 16), with
every check schemathesis has: no 5xx, statuses, content types, headers and bodies as
documented, schema-valid requests accepted and schema-violating ones refused, auth enforced.
The number of examples per operation is bounded so the suite stays fast; a longer run is
``benchmarks/fuzz_api.py``.

Two checks are narrowed where the documented contract is per entry, which a JSON schema
cannot state (``FUZZ_EXCEPTIONS``)."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from api.gateway_testing import LiveServer, gateway_settings
from tastebud.api.app import create_app
from tastebud.stores import open_database

# Batch writes answer per entry: a batch with one schema-violating entry among good ones is
# 202/200 with that entry rejected (and the good ones stored), by design.
BATCH_WRITES = {"POST /v1/events", "PUT /v1/items", "PUT /v1/users"}
# A push subscription's keys must be a real P-256 point: no schema can say which strings are.
CRYPTOGRAPHIC = {"POST /v1/push/subscriptions"}
# An experiment's definition has rules across fields and settings that no JSON schema
# states (weights summing to 1, unique variant names, configured metrics, free namespace
# ranges): a schema-valid one may be refused with 422 naming the field, by design.
CROSS_FIELD = {"PUT /v1/experiments/{key}"}
FUZZ_EXCEPTIONS = {
    **{label: [negative_data_rejection] for label in BATCH_WRITES},
    **{label: [positive_data_acceptance] for label in CRYPTOGRAPHIC | CROSS_FIELD},
}
# 413 is a refusal too (a body of the documented shape, over the byte limit).
CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [
                    *("400", "401", "403", "404", "405", "406", "409"),
                    *("413", "415", "422", "428", "429", "431"),
                ]
            }
        }
    }
)


@pytest.fixture(scope="module", params=["embedded", "postgres"])
def live_gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    home = tmp_path_factory.mktemp("fuzz") / "home"
    with _DatabaseUrl(request) as url:
        # One client address sends every fuzzed key: failed checks are not rate-limited here.
        config = gateway_settings(home, url, auth_failure_burst=1e9)
        with open_database(config.resolved_database_url) as database:
            created = database.gateway.keys.create(
                ["admin"], "fuzz", rate_per_second=1e6, burst=1e6
            )
            assert created is not None
            with LiveServer(config) as server:
                yield server.url, created[1]


class _DatabaseUrl:
    """None for the embedded store; for PostgreSQL a schema of its own for the module."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.server = (
            None if request.param == "embedded" else request.getfixturevalue("postgres_server")
        )
        self.schema = f"tb_fuzz_{uuid.uuid4().hex[:12]}"

    def __enter__(self) -> str | None:
        if self.server is None:
            return None
        with psycopg.connect(self.server, autocommit=True) as connection:
            connection.execute(f"CREATE SCHEMA {self.schema}")
        separator = "&" if "?" in self.server else "?"
        return f"{self.server}{separator}options={quote(f'-csearch_path={self.schema}')}"

    def __exit__(self, *_: object) -> None:
        if self.server is not None:
            with psycopg.connect(self.server, autocommit=True) as connection:
                connection.execute(f"DROP SCHEMA {self.schema} CASCADE")


# The schema the app serves, as built from its settings (the app opens no store until its
# lifespan starts, so building it here touches nothing).
schema = schemathesis.openapi.from_dict(
    create_app(gateway_settings(Path(tempfile.gettempdir()) / "tastebud-fuzz-schema")).openapi(),
    config=CONFIG,
)


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms_to_its_schema(case: Any, live_gateway: tuple[str, str]) -> None:
    url, key = live_gateway
    response = case.call(base_url=url, headers={"X-API-Key": key})
    case.validate_response(response, excluded_checks=FUZZ_EXCEPTIONS.get(case.operation.label))
