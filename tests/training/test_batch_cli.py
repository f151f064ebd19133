"""The batch contract: `train`, `recommend` and `evaluate`, their files and their errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from interaction_data import clustered_table
from typer.testing import CliRunner

from tastebud.cli.main import app

runner = CliRunner()


@pytest.fixture
def interactions(home: Path, tmp_path: Path) -> Path:
    path = tmp_path / "interactions.csv"
    table = clustered_table(n_users=90, n_items=45, per_user=12, seed=7)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "item_id", "rating", "timestamp"])
        for row in table.to_pylist():
            writer.writerow(
                [row["user_id"], row["item_id"], row["rating"], row["timestamp"].isoformat()]
            )
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("command", ["train", "recommend", "evaluate"])
def test_batch_commands_have_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_train_then_recommend_writes_k_new_items_per_user(
    interactions: Path, tmp_path: Path, home: Path
) -> None:
    result = runner.invoke(app, ["train", "--interactions", str(interactions), "--out", "m"])
    assert result.exit_code == 0, result.output
    training = json.loads((tmp_path / "m" / "training.json").read_text())
    assert training["data"]["rows"] == 90 * 12 and training["model"] == "ease"
    # The matrix was cached under TASTEBUD_HOME; a second run on the same file reuses it.
    cached = list((home / "cache" / "matrices").iterdir())
    assert len(cached) == 1
    again = runner.invoke(app, ["train", "--interactions", str(interactions), "--out", "m2"])
    assert again.exit_code == 0, again.output
    assert list((home / "cache" / "matrices").iterdir()) == cached
    assert training["coverage"]["factor_coverage_users"] == 1.0

    (tmp_path / "users.txt").write_text("user_id\nu1\nu2\nstranger\n\nu3\n")
    args = ["recommend", "--model", "m", "--users", "users.txt", "--k", "5", "--out", "r.csv"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = read_csv(tmp_path / "r.csv")
    assert list(rows[0]) == ["user_id", "item_id", "rank", "score"]
    by_user: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_user.setdefault(row["user_id"], []).append(row)
    assert sorted(by_user) == ["stranger", "u1", "u2", "u3"]
    trained = read_csv(interactions)
    for user, items in by_user.items():
        assert [int(r["rank"]) for r in items] == [1, 2, 3, 4, 5]
        scores = [float(r["score"]) for r in items]
        assert scores == sorted(scores, reverse=True)
        seen = {r["item_id"] for r in trained if r["user_id"] == user}
        assert not seen & {r["item_id"] for r in items}, "recommended a training item"


def test_train_auto_reports_its_search(interactions: Path, tmp_path: Path) -> None:
    args = ["train", "--interactions", str(interactions), "--out", "auto", "--auto",
            "--budget", "6s"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "trial" in result.output
    training = json.loads((tmp_path / "auto" / "training.json").read_text())
    assert training["search"]["trials"] and training["search"]["validation"]["protocol"]
    # 6 s is too short for the neural families (or PyTorch is absent): named, not an error
    assert "AutoML skipped mult-vae, ncf, two-tower:" in result.output
    assert set(training["search"]["skipped_families"]) == {"mult-vae", "ncf", "two-tower"}
    assert (tmp_path / "auto" / "search.md").read_text().startswith("# AutoML search")
    assert (tmp_path / "auto" / "search.png").read_bytes()[:4] == b"\x89PNG"


def test_train_without_out_registers_a_version_that_recommend_can_serve(
    interactions: Path, tmp_path: Path
) -> None:
    result = runner.invoke(
        app, ["train", "--interactions", str(interactions), "--promote", "production"]
    )
    assert result.exit_code == 0, result.output
    version = result.stdout.strip().splitlines()[-1]
    shown = runner.invoke(app, ["models", "show", "production"])
    assert shown.exit_code == 0 and version in shown.output
    (tmp_path / "users.txt").write_text("u1\n")
    args = ["recommend", "--model", "production", "--users", "users.txt", "--out", "r.csv"]
    assert runner.invoke(app, args).exit_code == 0
    assert len(read_csv(tmp_path / "r.csv")) == 10


def test_evaluate_writes_json_markdown_and_png(interactions: Path, tmp_path: Path) -> None:
    args = ["evaluate", "--interactions", str(interactions), "--protocol", "user-temporal",
            "--model", "popularity", "--model", "tastebud", "--out", "report"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    text = json.dumps(report)
    assert "cf.offline.ndcg@10" in text
    assert (tmp_path / "report" / "report.md").exists()
    assert (tmp_path / "report" / "report.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_strong_generalization_folds_in_held_out_users(
    interactions: Path, tmp_path: Path
) -> None:
    args = ["evaluate", "--interactions", str(interactions), "--protocol",
            "strong-generalization", "--model", "ease", "--model", "popularity",
            "--out", "sg"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "ndcg@10" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "Empty CSV"),
        ("user_id,item_id\n", "no usable interactions"),
        ("user_id,item_id\nonly,x\nonly,y\n", "at least 2 users"),
        ("customer,product\n1,2\n", "no user_id and no item_id"),
        ("user_id,item_id,weight\na,x,nan\nb,y,nan\n", "no usable interactions"),
        ("user_id,item_id,event_type\na,x,dislike\nb,y,dislike\n", "no positive signal"),
    ],
    ids=["empty", "header-only", "one-user", "unknown-columns", "nan-weights", "all-negative"],
)
def test_bad_interactions_give_a_clear_error_and_no_model(
    home: Path, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    result = runner.invoke(app, ["train", "--interactions", str(path), "--out", "m"])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output
    assert not (tmp_path / "m").exists()


def test_failed_training_leaves_the_registry_untouched(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("user_id,item_id\nonly,x\n")
    assert runner.invoke(app, ["train", "--interactions", str(path)]).exit_code == 2
    listed = runner.invoke(app, ["models", "list", "--json"])
    assert json.loads(listed.stdout) == []


def test_recommend_errors_are_clear(interactions: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["recommend", "--model", "nowhere", "--users", "u.txt"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert (
        runner.invoke(app, ["train", "--interactions", str(interactions), "--out", "m"]).exit_code
        == 0
    )
    result = runner.invoke(app, ["recommend", "--model", "m", "--users", "missing.txt"])
    assert result.exit_code == 2 and "does not exist" in result.output
    result = runner.invoke(app, ["train", "--interactions", str(interactions), "--out", "m"])
    assert result.exit_code == 2 and "not empty" in result.output


def test_recommend_reports_ids_that_break_the_id_rule_and_ranks_the_others(
    interactions: Path, tmp_path: Path
) -> None:
    """A users file's NUL-holding or over-long id was ranked and written to the CSV like any
    other (the bad-input audit); a BOM hid the header, which became a user."""
    assert (
        runner.invoke(app, ["train", "--interactions", str(interactions), "--out", "m"]).exit_code
        == 0
    )
    users = tmp_path / "users.txt"
    users.write_text("\ufeffuser_id\nu1\nbad\x00id\n" + "u" * 129 + "\nu2\n")
    args = ["recommend", "--model", "m", "--users", "users.txt", "--k", "3", "--out", "r.csv"]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "line 3: user_id must be 1+ of" in result.output
    assert "line 4: user_id is longer than 128 characters" in result.output
    assert {row["user_id"] for row in read_csv(tmp_path / "r.csv")} == {"u1", "u2"}
    users.write_text("bad id\n")
    refused = runner.invoke(app, args, terminal_width=200)
    assert refused.exit_code == 2 and "no valid user id" in refused.output


def test_train_reads_the_event_store_when_given_no_file(home: Path) -> None:
    args = ["quickstart", "--users", "80", "--items", "60", "--days", "5", "--no-serve"]
    assert runner.invoke(app, args).exit_code == 0
    result = runner.invoke(app, ["train", "--promote", "production"])
    assert result.exit_code == 0, result.output
    listed = json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)
    assert len(listed) == 2  # quickstart registered one; train, on the same events, another
    entry = listed[0]
    assert entry["model_version"] == result.stdout.strip().splitlines()[-1]
    assert entry["user_count"] > 0 and entry["item_count"] > 0
    assert entry["time_range"]["start"] and entry["snapshot"]


def test_evaluate_refuses_unknown_models_before_fitting_any(interactions: Path) -> None:
    args = ["evaluate", "--interactions", str(interactions), "--model", "ease",
            "--model", "wizard", "--out", "r"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "wizard" in result.output
    assert "ease " not in result.output  # nothing was fitted first


@pytest.mark.parametrize("columns", [("user_id", "item_id"), ("user_id", "item_id", "weight")])
def test_train_auto_searches_pairs_and_play_counts_without_timestamps(
    columns: tuple[str, ...], home: Path, tmp_path: Path
) -> None:
    """The files that never searched: plain pairs and play counts, no time, no type."""
    path = tmp_path / "shape.csv"
    table = clustered_table(n_users=90, n_items=45, per_user=12, seed=7, ratings=False)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for n, row in enumerate(table.to_pylist()):
            writer.writerow([row["user_id"], row["item_id"], 1 + n % 7][: len(columns)])
    result = runner.invoke(
        app, ["train", "--interactions", str(path), "--out", "m", "--auto", "--budget", "5s"]
    )
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr and "Traceback" not in result.stderr
    training = json.loads((tmp_path / "m" / "training.json").read_text())
    assert training["fallback"] is None
    validation = training["search"]["validation"]
    assert validation["protocol"] == "random-holdout" and validation["timestamps"] == "absent"
    assert validation["reason"] == "the data has no timestamps"


def test_train_auto_fallback_is_a_warning_with_its_true_cause(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "one-each.csv"
    path.write_text("user_id,item_id\n" + "".join(f"u{n},i{n % 4}\n" for n in range(12)))
    result = runner.invoke(
        app, ["train", "--interactions", str(path), "--out", "m", "--auto", "--budget", "5s"]
    )
    assert result.exit_code == 0, result.output
    assert "warning:" in result.stderr and "Traceback" not in result.stderr
    assert "none of the 12 users has 2 or more interactions" in " ".join(result.stderr.split())
    training = json.loads((tmp_path / "m" / "training.json").read_text())
    assert "none of the 12 users" in training["fallback"] and training["search"] is None
