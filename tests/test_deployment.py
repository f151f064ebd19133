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


# deploy/k8s/tastebud.yaml: the same layout as Kubernetes manifests.

K8S = ROOT / "deploy" / "k8s" / "tastebud.yaml"


@pytest.fixture(scope="module")
def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    """Every object of the file by (kind, name); a name twice in one kind fails."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for document in yaml.safe_load_all(K8S.read_text()):
        key = (document["kind"], document["metadata"]["name"])
        assert key not in found, key
        assert document["apiVersion"], key
        found[key] = document
    return found


def pod_environment(
    manifests: dict[tuple[str, str], dict[str, Any]], container: dict[str, Any]
) -> dict[str, str]:
    """A container's environment: its envFrom ConfigMaps and Secrets, then its env."""
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            environment.update(manifests["ConfigMap", source["configMapRef"]["name"]]["data"])
        else:
            environment.update(manifests["Secret", source["secretRef"]["name"]]["stringData"])
    environment.update({item["name"]: item["value"] for item in container.get("env", [])})
    return environment


def container_of(manifests: dict[tuple[str, str], dict[str, Any]], name: str) -> dict[str, Any]:
    deployment = manifests["Deployment", name]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, name
    return containers[0]


def selects(service: dict[str, Any], deployment: dict[str, Any]) -> bool:
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    return bool(service["spec"]["selector"].items() <= labels.items())


def test_the_k8s_layout_the_docs_draw(manifests: dict[tuple[str, str], dict[str, Any]]) -> None:
    api, scheduler = manifests["Deployment", "api"], manifests["Deployment", "scheduler"]
    assert api["spec"]["replicas"] >= 3
    container = container_of(manifests, "api")
    assert container["args"][0] == "serve" and "--workers" in container["args"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    service = manifests["Service", "api"]
    assert selects(service, api) and not selects(service, scheduler)
    assert service["spec"]["ports"][0]["port"] == 8000
    # one scheduler, never two during a rollout
    assert scheduler["spec"]["replicas"] == 1
    assert scheduler["spec"]["strategy"]["type"] == "Recreate"
    assert container_of(manifests, "scheduler")["args"] == ["scheduler"]
    schedulers = [
        name for (kind, name) in manifests if kind == "Deployment"
        if container_of(manifests, name)["args"] == ["scheduler"]
    ]  # fmt: skip
    assert schedulers == ["scheduler"]
    for name in ("postgres", "redis"):  # the names the URLs use
        assert manifests["Service", name]["spec"]["type"] == "ExternalName"


def test_k8s_pods_share_the_stores_compose_names(
    manifests: dict[tuple[str, str], dict[str, Any]], services: dict[str, dict[str, Any]]
) -> None:
    variables = ("TASTEBUD_DATABASE_URL", "TASTEBUD_ONLINE_URL", "TASTEBUD_ARTIFACTS_URL")
    api = pod_environment(manifests, container_of(manifests, "api"))
    scheduler = pod_environment(manifests, container_of(manifests, "scheduler"))
    assert [api[v] for v in variables] == [scheduler[v] for v in variables]
    for variable in variables[:2]:  # the same PostgreSQL and Redis URLs as compose
        assert api[variable] == services["api-1"]["environment"][variable], variable
    assert api["TASTEBUD_ARTIFACTS_URL"].startswith("s3://")  # pods share no volume
    for name, value in services["api-1"]["environment"].items():
        if name not in variables:  # the node settings compose gives every API node
            assert api.get(name) == value, name
    tastebud = {v for env in (api, scheduler) for v in env if v.startswith("TASTEBUD_")}
    assert all(is_setting(v) for v in tastebud), sorted(v for v in tastebud if not is_setting(v))


def test_k8s_scheduler_can_drive_spark_executors(
    manifests: dict[tuple[str, str], dict[str, Any]],
) -> None:
    scheduler = manifests["Deployment", "scheduler"]
    container = container_of(manifests, "scheduler")
    environment = pod_environment(manifests, container)
    assert environment["TASTEBUD_SPARK_MASTER"].startswith("k8s://https://")
    # spark-defaults.conf from a ConfigMap mounted at SPARK_CONF_DIR
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/etc/spark")
    volume = next(
        v for v in scheduler["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]
    )
    assert environment["SPARK_CONF_DIR"] == mount["mountPath"]
    files = manifests["ConfigMap", volume["configMap"]["name"]]["data"]
    conf = dict(line.split(None, 1) for line in files["spark-defaults.conf"].splitlines())
    assert conf["spark.kubernetes.container.image"] == container["image"]
    # executors reach the driver through the headless Service on the declared ports
    driver = manifests["Service", conf["spark.driver.host"]]
    assert driver["spec"]["clusterIP"] == "None" and selects(driver, scheduler)
    ports = {p["containerPort"] for p in container["ports"]}
    assert {int(conf["spark.driver.port"]), int(conf["spark.blockManager.port"])} <= ports
    template = conf["spark.kubernetes.executor.podTemplateFile"]
    assert template.startswith(mount["mountPath"] + "/")
    executor = yaml.safe_load(files[template.rsplit("/", 1)[1]])
    assert executor["spec"]["containers"][0]["envFrom"] == container["envFrom"]
    # the driver's service account may start and stop executor pods
    account = scheduler["spec"]["template"]["spec"]["serviceAccountName"]
    assert account == conf["spark.kubernetes.authenticate.driver.serviceAccountName"]
    assert ("ServiceAccount", account) in manifests
    binding = next(
        doc for (kind, _), doc in manifests.items()
        if kind == "RoleBinding" and doc["subjects"][0]["name"] == account
    )  # fmt: skip
    rules = manifests["Role", binding["roleRef"]["name"]]["rules"]
    assert any("pods" in r["resources"] and {"create", "delete"} <= set(r["verbs"]) for r in rules)
