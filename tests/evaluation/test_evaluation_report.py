"""EvaluationReport: JSON, Markdown and PNG are written, parse, and carry the numbers."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from pathlib import Path

import matplotlib.image
import pytest
from evaluation_tables import T0, interactions

from tastebud.evaluation import EvaluationReport
from tastebud.evaluation.report import summarize_interactions


@pytest.fixture
def report() -> EvaluationReport:
    report = EvaluationReport(
        protocol="user-temporal",
        options={"fraction": 0.2, "min_user_interactions": 2},
        dataset={"rows": 1000, "users": 50, "items": 80},
    )
    report.add_model(
        "ease",
        {
            "ndcg@10": 0.162,
            "recall@10": 0.2,
            "precision@10": 0.12,
            "map@10": 0.08,
            "mrr@10": 0.3,
            "hitrate@10": 0.6,
            "coverage@10": 0.25,
            "ild@10": 0.7,
            "novelty@10": 9.5,
            "gini@10": 0.8,
            "personalization@10": 0.9,
            "ndcg@5": 0.15,
            "users_evaluated": 50,
        },
        {"fit": 1.5, "recommend": 0.25},
    )
    report.add_model(
        "popularity",
        {"ndcg@10": 0.05, "coverage@10": 0.05, "gini@10": 0.99, "ild@10": float("nan")},
        {"fit": 0.01},
    )
    return report


def test_json_is_namespaced_and_round_trips(report: EvaluationReport, tmp_path: Path) -> None:
    path = report.to_json(tmp_path / "out" / "report.json")
    data = json.loads(path.read_text())
    assert data["protocol"] == "user-temporal" and data["options"]["fraction"] == 0.2
    metrics = data["models"]["ease"]["metrics"]
    assert metrics["cf.offline.ndcg@10"] == 0.162 and metrics["cf.offline.novelty@10"] == 9.5
    assert data["models"]["popularity"]["metrics"]["cf.offline.ild@10"] is None  # NaN
    assert data["models"]["ease"]["timings"] == {"fit": 1.5, "recommend": 0.25}
    assert data["main_k"] == 10
    loaded = EvaluationReport.from_json(path)
    assert loaded.models["ease"] == report.models["ease"]
    assert math.isnan(loaded.models["popularity"]["ild@10"])

    report.namespace = "bench."
    other = json.loads(report.to_json(tmp_path / "b.json").read_text())
    assert other["models"]["ease"]["metrics"]["bench.recall@10"] == 0.2


def test_markdown_tables_and_trade_offs(report: EvaluationReport, tmp_path: Path) -> None:
    text = report.to_markdown(tmp_path / "report.md").read_text()
    assert "# Offline evaluation: user-temporal" in text
    assert "| model | ndcg@10 | recall@10 | precision@10 | map@10 | mrr@10 | hitrate@10 |" in text
    assert "| ease | 0.1620 | 0.2000 | 0.1200 | 0.0800 | 0.3000 | 0.6000 |" in text
    assert "| popularity | 0.0500 | - | - | - | - | - |" in text
    assert "## Trade-offs" in text
    assert "**gini@10**" in text and "lowest: ease (0.8000)" in text  # lower gini is better
    assert "**coverage@10**" in text and "highest: ease (0.2500)" in text
    assert "most accurate by ndcg@10: ease (0.1620)" in text
    assert "| ease | 1.500 | 0.250 |" in text  # timings: fit, recommend


def test_png_chart_has_the_bars(report: EvaluationReport, tmp_path: Path) -> None:
    path = report.to_png(tmp_path / "chart.png", dpi=50)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 300
    accuracy, trade_offs = report.figure().axes
    heights = [bar.get_height() for bar in accuracy.patches]
    assert heights[:6] == pytest.approx([0.162, 0.2, 0.12, 0.08, 0.3, 0.6])  # ease
    assert heights[6:] == pytest.approx([0.05, 0, 0, 0, 0, 0])  # popularity, missing = 0
    assert [bar.get_height() for bar in trade_offs.patches][:4] == pytest.approx(
        [0.25, 0.7, 0.8, 0.9]
    )


def test_dataset_summary() -> None:
    table = interactions([("u1", "a", 0), ("u2", "a", 5), ("u1", "b", 2)])
    summary = summarize_interactions(table)
    assert summary == {
        "rows": 3,
        "users": 2,
        "items": 2,
        "first": T0.isoformat(),
        "last": (T0 + timedelta(minutes=5)).isoformat(),
    }


def test_empty_report_still_writes(tmp_path: Path) -> None:
    report = EvaluationReport(protocol="leave-last-one", main_k=5)
    assert "No model results." in report.to_markdown(tmp_path / "r.md").read_text()
    assert report.to_png(tmp_path / "r.png").stat().st_size > 0
    assert json.loads(report.to_json(tmp_path / "r.json").read_text())["models"] == {}
    with pytest.raises(ValueError, match="name"):
        report.add_model("", {})
