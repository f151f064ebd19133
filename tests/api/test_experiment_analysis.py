"""An experiment analysed from the stores, over the real app: lists served through the API,
clicks posted back naming their list, then ``GET /v1/experiments/{key}/analysis`` and
``tastebud experiments analyze`` (JSON, and a report with charts) on the same data; before
any exposure both say so clearly (409 / exit 2), and an unknown key is a 404 / exit 2."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from api.experiment_lab import Lab, two_arms
from tastebud.cli.main import app

USERS = [f"u{n}" for n in range(40)]
runner = CliRunner()


@pytest.fixture
def lab(home: Path) -> Iterator[Lab]:
    lab = Lab(home)
    yield lab
    lab.close()


def analyze(*args: str) -> Any:
    return runner.invoke(app, ["experiments", "analyze", *args], terminal_width=200)


def test_served_lists_and_clicks_are_analyzed_by_the_api_and_the_cli(
    lab: Lab, tmp_path: Path
) -> None:
    lab.define(two_arms("blend"))
    served = {lab.serve("probe")["variant"]: {"probe"}}
    items = {"control": 0, "treatment": 0}
    clicks = {"control": 0, "treatment": 0}
    for user in USERS:
        body = lab.serve(user)
        assert body["experiment"] == "blend" and len(body["items"]) == 5
        variant = body["variant"]
        clicks[variant] += 2 if variant == "control" else 1
        lab.click(body, positions=2 if variant == "control" else 1)
        served.setdefault(variant, set()).add(user)
    for row in lab.exposures():
        if row["experiment"] == "blend":
            items[row["variant"]] += len(row["items"])
    answer = lab.analysis("blend")
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["experiment"] == "blend" and result["control"] == "control"
    assert result["exposed_users"] == {name: len(users) for name, users in served.items()}
    (ctr,) = [r for r in result["results"] if r["metric"] == "click_through"]
    comparison = ctr["comparison"]
    assert (comparison["control"], comparison["treatment"]) == pytest.approx(
        (clicks["control"] / items["control"], clicks["treatment"] / items["treatment"])
    )
    assert ctr["role"] == "goal" and comparison["relative"]["estimate"] < -0.4
    assert result["decision"]["line"]
    # The CLI reads the same stores (TASTEBUD_HOME): the same numbers, and a report.
    printed = analyze("blend", "--json", "--out", str(tmp_path / "report"))
    assert printed.exit_code == 0, printed.output
    document = json.loads(printed.stdout)
    assert document["exposed_users"] == result["exposed_users"]
    assert {p.name for p in (tmp_path / "report").iterdir()} >= {
        "report.md",
        "analysis.json",
        "lift.png",
    }
    table = analyze("blend")
    assert table.exit_code == 0 and "click_through" in table.stdout
    assert result["decision"]["line"] in table.stdout


def test_no_exposures_and_unknown_keys_are_clear_answers(lab: Lab) -> None:
    lab.define(two_arms("quiet"), start=False)
    answer = lab.analysis("quiet")
    assert answer.status_code == 409, answer.text
    error = answer.json()["error"]
    assert error["code"] == "no_exposures" and "no exposures" in error["message"]
    missing = lab.analysis("nosuch")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_experiment"
    assert lab.http.get("/v1/experiments/quiet/analysis").status_code == 401
    printed = analyze("quiet")
    assert printed.exit_code == 2 and "no exposures" in printed.output
    assert "Traceback" not in printed.output
    unknown = analyze("nosuch")
    assert unknown.exit_code == 2 and "no experiment 'nosuch'" in unknown.output
