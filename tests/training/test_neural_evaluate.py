"""`tastebud evaluate --model mult-vae --model two-tower --model ncf`: the neural models in
one report with the others, and a clear refusal where PyTorch is missing."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
from interaction_data import clustered_table
from typer.testing import CliRunner

from tastebud.cli.main import app
from tastebud.models.neural import torch_available

runner = CliRunner()
pytestmark = pytest.mark.skipif(not torch_available(), reason="needs tastebud[neural]")


@pytest.fixture
def interactions(home: Path, tmp_path: Path) -> Path:
    path = tmp_path / "interactions.csv"
    table = clustered_table(n_users=90, n_items=45, per_user=12, seed=7)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "item_id", "rating", "timestamp"])
        for row in table.to_pylist():
            writer.writerow([row["user_id"], row["item_id"], row["rating"], row["timestamp"]])
    return path


def test_evaluate_compares_the_neural_models_with_the_others(interactions: Path) -> None:
    args = ["evaluate", "--interactions", str(interactions), "--model", "popularity",
            "--model", "mult-vae", "--model", "two-tower", "--model", "ncf",
            "--out", "report"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((interactions.parent / "report" / "report.json").read_text())
    text = json.dumps(report)
    for name in ("popularity", "mult-vae", "two-tower", "ncf"):
        assert f'"{name}"' in text and name in result.output


def test_evaluate_without_pytorch_names_the_install_command(
    interactions: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    args = ["evaluate", "--interactions", str(interactions), "--model", "mult-vae"]
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert "tastebud[neural]" in result.output and "Traceback" not in result.output
