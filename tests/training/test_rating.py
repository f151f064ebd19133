"""Explicit ratings: the rating predictors, ``train --objective rating``, ``evaluate
--protocol ratings`` and their bad input, on generated ratings (MovieLens when present)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from tastebud.cli.main import app
from tastebud.data.interactions import (
    InteractionLog,
    InteractionsError,
    from_table,
    read_interactions_file,
)
from tastebud.evaluation.ratings import random_rating_split, rating_metrics
from tastebud.models import Recommender, make_model
from tastebud.models.rating import RatingRecommender, TrainingDiverged
from tastebud.training.rating import ratings_matrix, train_rating
from tastebud.training.rating_evaluation import evaluate_ratings

runner = CliRunner()
DATASETS = Path(
    os.environ.get("TASTEBUD_DATASETS", Path(__file__).resolve().parents[3] / "shared/datasets")
)


def rating_table(n_users: int = 150, n_items: int = 80, per_user: int = 30, seed: int = 0):
    """Ratings 1..5 from planted biases and rank-3 tastes plus noise (what MF can learn)."""
    rng = np.random.default_rng(seed)
    tastes_u, tastes_i = rng.normal(size=(n_users, 3)), rng.normal(size=(n_items, 3))
    bias_u, bias_i = rng.normal(0, 0.4, n_users), rng.normal(0, 0.6, n_items)
    users, items, ratings = [], [], []
    for user in range(n_users):
        for item in rng.choice(n_items, per_user, replace=False):
            value = 3.4 + bias_u[user] + bias_i[item] + 0.5 * tastes_u[user] @ tastes_i[item]
            users.append(f"u{user}")
            items.append(f"i{item}")
            ratings.append(float(np.clip(np.round(value + rng.normal(0, 0.3)), 1, 5)))
    return pa.table({"user_id": users, "item_id": items, "rating": ratings})


@pytest.fixture(scope="module")
def split():
    return random_rating_split(from_table(rating_table()).table, 0.2, 42)


def test_rating_metrics_are_rmse_and_mae() -> None:
    metrics = rating_metrics(np.array([1.0, 3.0, 5.0]), np.array([2.0, 3.0, 3.0]))
    assert metrics == pytest.approx({"rmse": np.sqrt(5 / 3), "mae": 1.0})
    with pytest.raises(ValueError, match="finite"):
        rating_metrics(np.array([1.0]), np.array([np.nan]))


def test_random_split_is_seeded_and_exact() -> None:
    table = from_table(rating_table(n_users=20, per_user=10)).table
    first, again = random_rating_split(table, 0.2, 3), random_rating_split(table, 0.2, 3)
    assert first.test.num_rows == 40 and first.train.num_rows == 160
    assert first.test.equals(again.test)
    assert not first.test.equals(random_rating_split(table, 0.2, 4).test)


def test_knn_baseline_and_the_ensemble_beat_their_parts(split) -> None:
    train = ratings_matrix(InteractionLog(split.train, "train"))
    actual = split.test.column("value").to_numpy()
    pairs = split.test.column("user_id").to_pylist(), split.test.column("item_id").to_pylist()
    members = [("svdpp", {"factors": 10, "learning_rate": 0.02}), ("knn-baseline", {})]
    rmse = {}
    for name, params in [*members, ("rating-ensemble", {"members": members, "seeds": 2})]:
        model = make_model(name, **params).fit(train)
        assert isinstance(model, RatingRecommender)
        rmse[name] = rating_metrics(actual, model.predict_pairs(*pairs))["rmse"]
    mean = rating_metrics(actual, np.full(len(actual), model.global_mean_))["rmse"]
    assert rmse["knn-baseline"] < 0.9 * mean, rmse
    assert rmse["rating-ensemble"] < min(rmse["svdpp"], rmse["knn-baseline"]), rmse
    assert len(model.members_) == 3 and len(model.weights_) == 4  # kNN is fitted once


@pytest.mark.parametrize("name", ["biased-mf", "svdpp"])
def test_rating_models_beat_the_global_mean_and_the_biases(name: str, split) -> None:
    model = make_model(name, factors=10, epochs=40, learning_rate=0.02).fit(
        ratings_matrix(InteractionLog(split.train, "train"))
    )
    assert isinstance(model, RatingRecommender)
    actual = split.test.column("value").to_numpy()
    users, items = (
        split.test.column("user_id").to_pylist(),
        split.test.column("item_id").to_pylist(),
    )
    predicted = model.predict_pairs(users, items)
    mean = rating_metrics(actual, np.full(len(actual), model.global_mean_))["rmse"]
    biases_only = make_model(name, factors=1, epochs=40, learning_rate=0.02, init_std=0.0).fit(
        ratings_matrix(InteractionLog(split.train, "train"))
    )
    bias_rmse = rating_metrics(actual, biases_only.predict_pairs(users, items))["rmse"]
    rmse = rating_metrics(actual, predicted)["rmse"]
    assert rmse < 0.6 * mean and rmse < 0.7 * bias_rmse, (rmse, bias_rmse, mean)
    assert predicted.min() >= 1.0 and predicted.max() <= 5.0
    assert model.losses_[-1] < model.losses_[0]


def test_unknown_users_and_items_get_the_mean_and_a_bias(tmp_path: Path) -> None:
    model = make_model("biased-mf", factors=4, epochs=10).fit(
        ratings_matrix(from_table(rating_table(n_users=30, per_user=10)))
    )
    assert isinstance(model, RatingRecommender)
    known = model.predict("u1", ["i2", "nope"])
    assert known.known_user[0] and list(known.known_item) == [True, False]
    assert known.ratings[1] == pytest.approx(
        np.clip(model.global_mean_ + model.user_bias_[model.users_.index_of("u1")], 1, 5)
    )
    stranger = model.predict("stranger", ["i2", "nope"])
    column = model.items_.index_of("i2")
    assert stranger.ratings[0] == pytest.approx(model.global_mean_ + model.item_bias_[column])
    assert stranger.ratings[1] == pytest.approx(model.global_mean_)
    loaded = Recommender.load(model.save(tmp_path / "m"))
    assert isinstance(loaded, RatingRecommender)
    np.testing.assert_array_equal(loaded.predict("u1", ["i2", "i3"]).ratings,
                                  model.predict("u1", ["i2", "i3"]).ratings)  # fmt: skip


def test_a_diverging_fit_stops_with_a_clear_message() -> None:
    matrix = ratings_matrix(from_table(rating_table(n_users=30, per_user=10)))
    with pytest.raises(TrainingDiverged, match=r"diverged at epoch .*learning_rate"):
        make_model("biased-mf", learning_rate=50.0, epochs=20).fit(matrix)


def test_a_log_without_ratings_is_refused() -> None:
    plain = from_table(pa.table({"user_id": ["a", "b"], "item_id": ["x", "y"]}))
    with pytest.raises(InteractionsError, match="needs explicit ratings"):
        train_rating(plain)


def test_a_log_with_no_rows_is_refused_as_empty(tmp_path: Path) -> None:
    """``evaluate --protocol ratings`` refused a header-only ratings file with "--objective
    rating needs explicit ratings: the data has no `rating` column", though the column was
    there (the bad-input audit)."""
    header = tmp_path / "ratings.csv"
    header.write_text("user_id,item_id,rating,timestamp\n")
    empty = read_interactions_file(header)
    with pytest.raises(InteractionsError, match=r"^the data has no rows"):
        evaluate_ratings(empty)
    with pytest.raises(InteractionsError, match="no usable interactions"):
        train_rating(empty)


def test_train_rating_reports_validation_metrics() -> None:
    training = train_rating(from_table(rating_table()), params={"factors": 10, "epochs": 30})
    assert set(training.metrics) == {"rmse", "mae"} and training.metrics["rmse"] < 0.9
    manifest = training.manifest(from_table(rating_table()))
    assert manifest["objective"] == "rating" and manifest["rating_scale"] == [1.0, 5.0]
    assert "rating.validation.rmse" in manifest["metrics"]


def test_evaluate_ratings_tunes_on_validation_and_reports(tmp_path: Path) -> None:
    report = evaluate_ratings(from_table(rating_table()), ["global-mean", "biased-mf"])
    rows = report.models
    assert rows["biased-mf"]["rmse"] < rows["global-mean"]["rmse"]
    assert len(rows["biased-mf"]["validation"]) > 1 and rows["biased-mf"]["params"]
    report.to_markdown(tmp_path / "r.md")
    assert "| biased-mf |" in (tmp_path / "r.md").read_text()
    with pytest.raises(InteractionsError, match="not one"):
        evaluate_ratings(from_table(rating_table()), ["ease"])


def write_csv(path: Path, table: pa.Table, rating: bool = True) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "item_id", "rating"] if rating else ["user_id", "item_id"])
        for row in table.to_pylist():
            writer.writerow([row["user_id"], row["item_id"]] + ([row["rating"]] if rating else []))
    return path


def test_cli_trains_registers_and_evaluates_ratings(home: Path, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "ratings.csv", rating_table(n_users=60, per_user=20))
    result = runner.invoke(app, ["train", "--interactions", str(path), "--objective", "rating"])
    assert result.exit_code == 0, result.output
    assert "validation RMSE" in result.output
    listed = runner.invoke(app, ["models", "list", "--json"])
    assert listed.exit_code == 0 and '"model": "svdpp"' in listed.output

    plain = write_csv(tmp_path / "plain.csv", rating_table(n_users=10, per_user=5), False)
    refused = runner.invoke(app, ["train", "--interactions", str(plain), "--objective", "rating"])
    assert refused.exit_code != 0 and "needs explicit ratings" in refused.output

    args = ["train", "--interactions", str(path), "--objective", "rating",
            "--rating-model", "knn-baseline", "--out", "x"]  # fmt: skip
    knn = runner.invoke(app, args)
    assert knn.exit_code == 0, knn.output
    assert json.loads((tmp_path / "x" / "training.json").read_text())["model"] == "knn-baseline"

    tiny = write_csv(tmp_path / "tiny.csv", rating_table(n_users=4, n_items=5, per_user=3))
    small = runner.invoke(app, ["train", "--interactions", str(tiny), "--objective", "rating",
                                "--out", "tiny"])  # fmt: skip
    assert small.exit_code == 0 and "too few ratings" in small.output, small.output
    too_few = runner.invoke(app, ["evaluate", "--interactions", str(tiny), "--protocol",
                                  "ratings", "--out", "ev-tiny"])  # fmt: skip
    assert too_few.exit_code == 2 and "too few" in too_few.output, too_few.output

    args = ["evaluate", "--interactions", str(path), "--protocol", "ratings", "--out", "ev",
            "--model", "global-mean", "--model", "biased-mf"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert report["protocol"] == "ratings" and set(report["models"]) == {"global-mean", "biased-mf"}


def test_ratings_outside_the_configured_scale_are_dropped_and_reported(
    home: Path, tmp_path: Path
) -> None:
    """A 99 and a -3 in a 1-5 file are not ratings on the scale ([quality] rating_min and
    rating_max): they are dropped and counted, the good rows trained on and judged."""
    table = rating_table(n_users=60, per_user=20)
    rows = table.to_pylist()
    rows[0]["rating"], rows[1]["rating"] = 99.0, -3.0
    path = write_csv(tmp_path / "ratings.csv", pa.Table.from_pylist(rows))
    args = ["train", "--interactions", str(path), "--objective", "rating", "--out", "m"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "dropped 2 rows: rating_out_of_scale" in result.output
    assert "[0.5, 5]" in result.output, result.output
    summary = json.loads((tmp_path / "m" / "training.json").read_text())
    assert summary["data"]["dropped"]["rating_out_of_scale"] == 2
    assert summary["data"]["rows"] == len(rows) - 2
    model = Recommender.load(tmp_path / "m")
    assert isinstance(model, RatingRecommender)
    assert list(model.rating_range_) == [1.0, 5.0]

    args = ["evaluate", "--interactions", str(path), "--protocol", "ratings", "--out", "ev",
            "--model", "global-mean"]  # fmt: skip
    judged = runner.invoke(app, args)
    assert judged.exit_code == 0, judged.output
    assert "dropped 2 rows: rating_out_of_scale" in judged.output
    assert json.loads((tmp_path / "ev" / "report.json").read_text())["ratings"] == len(rows) - 2

    (tmp_path / "tastebud.toml").write_text("[quality]\nrating_min = -5\nrating_max = 100\n")
    kept = runner.invoke(app, ["train", "--interactions", str(path), "--objective", "rating",
                               "--out", "wide"])  # fmt: skip
    assert kept.exit_code == 0 and "rating_out_of_scale" not in kept.output, kept.output


def test_a_file_on_another_scale_is_refused_not_halved(home: Path, tmp_path: Path) -> None:
    """A 1-10 file against the default 0.5-5 scale: most of its ratings would go, so the
    command refuses it and names the setting, and nothing is trained."""
    table = rating_table(n_users=30, per_user=10)
    rows = [{**row, "rating": row["rating"] * 2} for row in table.to_pylist()]
    path = write_csv(tmp_path / "ten.csv", pa.Table.from_pylist(rows))
    args = ["train", "--interactions", str(path), "--objective", "rating", "--out", "m"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "outside the scale [0.5, 5]" in result.output and "rating_max" in result.output
    assert not (tmp_path / "m").exists()


def test_a_diverged_training_leaves_the_registry_unchanged(home: Path) -> None:
    from tastebud.config import load_settings
    from tastebud.registry import open_registry
    from tastebud.stores import open_stores

    log = from_table(rating_table(n_users=30, per_user=10))
    with pytest.raises(TrainingDiverged):
        train_rating(log, params={"learning_rate": 80.0, "epochs": 10})
    settings = load_settings(home=home)
    with open_stores(settings) as stores:
        assert open_registry(settings, stores.artifacts).list_versions() == []


@pytest.mark.movielens
@pytest.mark.skipif(not (DATASETS / "ml-100k" / "u.data").is_file(), reason="no MovieLens copy")
def test_movielens_100k_biased_mf_beats_surprise_svd_default() -> None:
    raw = np.loadtxt(DATASETS / "ml-100k" / "u.data", dtype=np.int64)
    table = pa.table({"user_id": raw[:, 0].astype(str), "item_id": raw[:, 1].astype(str),
                      "rating": raw[:, 2].astype(float)})  # fmt: skip
    report = evaluate_ratings(from_table(table), ["biased-mf"])
    # scikit-surprise's SVD at its defaults scores 0.9316 on this split (docs/benchmarks.md).
    assert report.models["biased-mf"]["rmse"] < 0.93
