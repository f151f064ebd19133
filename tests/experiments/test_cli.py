"""``tastebud experiments``: a definition from YAML through its whole life, and every bad
input refused with exit 2 naming the field, nothing stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml
from typer.testing import CliRunner

from experiments.factories import definition
from tastebud.cli.main import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    before = structlog.get_config()
    yield
    structlog.configure(**before)


def write(tmp_path: Path, data: dict[str, Any], name: str = "exp.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return str(path)


def run(*args: str) -> Any:
    return runner.invoke(app, ["experiments", *args], terminal_width=200)


def listing() -> list[dict[str, Any]]:
    result = run("list", "--json")
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def test_an_experiment_from_yaml_through_its_life(home: Path, tmp_path: Path) -> None:
    created = run("create", write(tmp_path, definition()), "--actor", "ana", "--note", "v1")
    assert created.exit_code == 0, created.output
    assert "created blend (draft, version 1)" in created.stdout
    assert [row["key"] for row in listing()] == ["blend"]
    table = run("list")
    assert "blend" in table.stdout and "diverse 0.5" in table.stdout
    assert run("start", "blend", "--actor", "ana").exit_code == 0
    paused = run("pause", "blend", "--variant", "diverse", "--note", "skips up", "--actor", "bo")
    assert paused.exit_code == 0, paused.output
    unreviewed = run("resume", "blend", "--variant", "diverse", "--note", "fine")
    assert unreviewed.exit_code == 2 and "--reviewed-by is required" in unreviewed.output
    resumed = run(
        "resume", "blend", "--variant", "diverse", "--reviewed-by", "cy", "--note", "a bug"
    )
    assert resumed.exit_code == 0, resumed.output
    assert run("stop", "blend", "--actor", "ana").exit_code == 0
    again = run("start", "blend")
    assert again.exit_code == 1 and "stopped experiment cannot run again" in again.output
    shown = run("show", "blend", "--json")
    document = json.loads(shown.stdout)
    assert document["status"] == "stopped" and document["paused_variants"] == {}
    trail = [(entry["actor"], entry["action"], entry["note"]) for entry in document["audit"]]
    assert trail == [
        ("ana", "create", "v1"),
        ("ana", "start", ""),
        ("bo", "pause_variant:diverse", "skips up"),
        ("cy", "resume_variant:diverse", "a bug"),
        ("ana", "stop", ""),
    ]
    human = run("show", "blend")
    assert human.exit_code == 0 and "audit trail" in human.stdout and "cy" in human.stdout


def test_a_running_experiment_refuses_new_weights(home: Path, tmp_path: Path) -> None:
    assert run("create", write(tmp_path, definition())).exit_code == 0
    assert run("start", "blend").exit_code == 0
    variants = [{"name": "control", "weight": 0.8}, {"name": "diverse", "weight": 0.2}]
    refused = run("create", write(tmp_path, definition(variants=variants)))
    assert refused.exit_code == 1 and "cannot change mid-run" in refused.output
    assert listing()[0]["variants"][0]["weight"] == 0.5


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (
            {"variants": [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.6}]},
            "variants: variant weights must sum to 1",
        ),
        (
            {
                "variants": [
                    {"name": "a", "weight": 0.5},
                    {"name": "b", "weight": 0.5, "ranking": {"blend": {"wieght": 1}}},
                ]
            },
            "variants.1.ranking.blend.wieght",
        ),
        ({"goals": ["revenue"]}, "goals.0: unknown metric 'revenue'"),
        (
            {
                "variants": [
                    {"name": "a", "weight": 0.5},
                    {"name": "b", "weight": 0.5, "model": "canary"},
                ]
            },
            "variants.1.model: alias canary points to no version yet",
        ),
        ({"traffic": "lots"}, "traffic"),
    ],
)
def test_an_invalid_definition_exits_2_naming_the_field(
    home: Path, tmp_path: Path, changes: dict[str, Any], field: str
) -> None:
    refused = run("create", write(tmp_path, definition(**changes)))
    assert refused.exit_code == 2, refused.output
    assert field in " ".join(refused.output.split()) and "Traceback" not in refused.output
    assert listing() == []


def test_overlapping_namespaces_exit_2_and_store_nothing(home: Path, tmp_path: Path) -> None:
    first = definition("a", namespace={"name": "home", "start": 0, "end": 0.5})
    assert run("create", write(tmp_path, first)).exit_code == 0
    second = definition("b", namespace={"name": "home", "start": 0.25, "end": 0.75})
    refused = run("create", write(tmp_path, second, "b.yaml"))
    assert refused.exit_code == 2 and "namespace: range [0.25, 0.75)" in refused.output
    assert [row["key"] for row in listing()] == ["a"]


def test_bad_files_and_keys(home: Path, tmp_path: Path) -> None:
    missing = run("create", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 2 and "cannot read" in missing.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("key: [unclosed\n", encoding="utf-8")
    assert run("create", str(broken)).exit_code == 2
    listed = tmp_path / "list.yaml"
    listed.write_text("- key: a\n", encoding="utf-8")
    assert "must hold one experiment" in " ".join(run("create", str(listed)).output.split())
    unsafe = tmp_path / "unsafe.yaml"
    unsafe.write_text("key: !!python/object/apply:os.system ['true']\n", encoding="utf-8")
    assert run("create", str(unsafe)).exit_code == 2
    unknown = run("show", "ghost")
    assert unknown.exit_code == 2 and "no experiment 'ghost'" in unknown.output
    assert run("list", "--status", "sleeping").exit_code == 2
    assert run("resume", "ghost", "--reviewed-by", "cy").exit_code == 2  # no --note
