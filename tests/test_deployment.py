"""deploy/compose.yaml against docs/deployment.md, by parsing (no Docker engine runs here):
the services the docs name exist and run what the docs say, every variable in the docs'
environment table is set on the services it names with the value shown, and every
TASTEBUD_* variable in the file is a real setting."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from tastebud.config import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "deploy" / "compose.yaml"
DOCS = ROOT / "docs" / "deployment.md"
API_NODES = ("api-1", "api-2", "api-3")


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    document = yaml.safe_load(COMPOSE.read_text())
    found: dict[str, dict[str, Any]] = document["services"]
    return found


def environment_table() -> list[tuple[str, list[str], str]]:
    """(variable, services, value) of each row of the docs' "Environment" table."""
    section = DOCS.read_text().split("## Environment", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            variable = cells[0].strip("`")
            value = re.match(r"`([^`]*)`", cells[2])
            assert value is not None, line
            rows.append((variable, [s.strip() for s in cells[1].split(",")], value.group(1)))
    return rows


def is_setting(variable: str) -> bool:
    """Whether TASTEBUD_A__B names a field of Settings (nested by ``__``)."""
    model: type[BaseModel] = Settings
    parts = variable.removeprefix("TASTEBUD_").lower().split("__")
    for n, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        if n < len(parts) - 1:
            annotation = field.annotation
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    return True


def test_the_layout_the_docs_draw(services: dict[str, dict[str, Any]]) -> None:
    for name in (*API_NODES, "lb", "scheduler", "postgres", "redis", "spark-master"):
        assert name in services, name
    for name in API_NODES:
        assert services[name]["command"][0] == "serve"
        assert "/readyz" in " ".join(services[name]["healthcheck"]["test"])
        assert "ports" not in services[name]  # reached through the balancer only
    schedulers = [n for n, s in services.items() if s.get("command") == ["scheduler"]]
    assert schedulers == ["scheduler"]  # one scheduler
    assert services["spark-master"]["profiles"] == ["spark"]
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert all(f"server {name}:8000" in nginx for name in API_NODES)
    for service in services.values():
        build = service.get("build")
        if build is not None:
            assert (COMPOSE.parent / build["context"] / build["dockerfile"]).is_file()


def test_every_node_shares_the_same_stores(services: dict[str, dict[str, Any]]) -> None:
    stateful = (*API_NODES, "scheduler", "spark-worker")
    urls = {
        name: tuple(
            services[name]["environment"][variable]
            for variable in (
                "TASTEBUD_DATABASE_URL",
                "TASTEBUD_ONLINE_URL",
                "TASTEBUD_ARTIFACTS_URL",
            )
        )
        for name in stateful
    }
    assert len(set(urls.values())) == 1, urls
    database, online, _ = urls["api-1"]
    assert database.startswith("postgresql://") and online.startswith("redis://")
    settings = Settings(database_url=database, online_url=online)
    assert settings.resolved_database_url == database


def test_the_docs_environment_table_matches_the_file(services: dict[str, dict[str, Any]]) -> None:
    rows = environment_table()
    assert len(rows) >= 8
    for variable, names, value in rows:
        if variable != "FORWARDED_ALLOW_IPS":  # uvicorn's own
            assert is_setting(variable), variable
        for name in names:
            assert name in services, (variable, name)
            assert services[name]["environment"].get(variable) == value, (variable, name)


def test_every_tastebud_variable_in_the_file_is_a_setting(
    services: dict[str, dict[str, Any]],
) -> None:
    variables = {v for s in services.values() for v in s.get("environment", {})}
    tastebud = {v for v in variables if v.startswith("TASTEBUD_")}
    assert tastebud and all(is_setting(v) for v in tastebud), sorted(
        v for v in tastebud if not is_setting(v)
    )
    assert not is_setting("TASTEBUD_JOBS__NO_SUCH_THING")  # the check can fail
