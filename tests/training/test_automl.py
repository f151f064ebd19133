"""AutoML: searches only the training data, within its budget, and reports the search."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from interaction_data import clustered_log, clustered_table

from tastebud.data.interactions import InteractionsError, from_table
from tastebud.data.matrix import build_matrix
from tastebud.training.automl import AutoML, BudgetTooSmall, SearchFailed
from tastebud.training.holdout import Holdout
from tastebud.training.pipeline import manifest_for, train


def test_search_finds_a_configuration_that_beats_popularity() -> None:
    log = clustered_log(n_users=150, n_items=60, per_user=14, seed=1)
    automl = AutoML(budget_seconds=8, families=("ease", "itemknn", "popularity"))
    result = automl.search(log)
    assert result.trials and result.validation_ndcg > 0
    popularity = [t["value"] for t in result.trials if t["family"] == "popularity" and t["value"]]
    assert result.validation_ndcg > max(popularity)
    summary = result.to_dict()
    assert (
        summary["curve_best_so_far"][-1]
        == pytest.approx(
            max(t["value"] for t in result.trials if t["state"] == "complete"), abs=1e-9
        )
        or summary["best"]["model"] == "hybrid"
    )
    assert result.elapsed_seconds < 8 + 10  # a trial in flight may finish after the budget


def test_validation_is_carved_from_training_rows_only() -> None:
    log = clustered_log(n_users=60, n_items=30, per_user=10, seed=2)
    automl = AutoML(budget_seconds=1, families=("popularity",))
    train_part, validation, described = automl._validation_split(log)
    assert described["protocol"] == "user-temporal" and described["timestamps"] == "usable"
    assert train_part.table.num_rows + validation.num_rows == log.table.num_rows
    # every validation row of a user is later than that user's training rows
    for user in ["u0", "u7", "u33"]:
        last_train = pc.max(
            train_part.table.filter(pc.equal(train_part.table["user_id"], user))["timestamp"]
        )
        first_valid = pc.min(validation.filter(pc.equal(validation["user_id"], user))["timestamp"])
        assert last_train.as_py() <= first_valid.as_py()


def test_auto_training_never_sees_the_test_part() -> None:
    """The search is given the train part; the held-out test part judges the result."""
    full = clustered_log(n_users=90, n_items=45, per_user=12, seed=3)
    table = full.table
    is_test = np.zeros(table.num_rows, dtype=bool)
    is_test[::5] = True
    train_log = full.slice_rows(~is_test, "train")
    result = train(train_log, auto=True, budget_seconds=4)
    seen_pairs = set(
        zip(
            train_log.table["user_id"].to_pylist(),
            train_log.table["item_id"].to_pylist(),
            strict=True,
        )
    )
    model_pairs = set()
    coo = result.model.user_items_.tocoo()
    users, items = result.model.users_.id_of(coo.row), result.model.items_.id_of(coo.col)
    model_pairs = set(zip(users, items, strict=True))
    assert model_pairs <= seen_pairs
    holdout = Holdout.build(result.model, table.filter(is_test))
    assert len(holdout) > 0 and holdout.ndcg(result.model) > 0


def test_too_little_data_for_validation_is_a_clear_error_or_fallback() -> None:
    one_each = from_table(clustered_log(n_users=10, n_items=9, per_user=1).table)
    with pytest.raises(InteractionsError, match="validation split"):
        AutoML(budget_seconds=1).search(one_each)
    result = train(one_each, auto=True, budget_seconds=1)
    assert result.fallback and "default configuration" in result.fallback
    assert result.model.recommend(["u1"], 3)[0].shape == (1, 3)


def test_a_search_with_no_finished_trial_raises_budget_too_small() -> None:
    log = clustered_log(n_users=40, n_items=30, per_user=8, seed=4)

    class Failing(AutoML):
        def _check_holdout(self) -> None:
            pass

        def _matrix(self, options):  # every trial fails as if out of time
            import optuna

            raise optuna.TrialPruned("budget exhausted")

    with pytest.raises(BudgetTooSmall, match="no trial finished"):
        Failing(budget_seconds=0.5, families=("popularity",)).search(log)


def test_holdout_ignores_items_unknown_at_training_time() -> None:
    log = clustered_log(n_users=30, n_items=30, per_user=6, seed=5)
    matrix = build_matrix(log)
    held_out = from_table(
        log.table.slice(0, 3).set_column(1, "item_id", pa_array(["new1", "new2", "i0"]))
    ).table
    holdout = Holdout.build(matrix, held_out)
    assert holdout.dropped_unknown_items == 2


def pa_array(values: list[str]):
    import pyarrow as pa

    return pa.array(values)


def shaped_log(shape: str, seed: int = 7):
    """The odd shapes that broke AutoML: plain pairs, play counts (no rating, no event type),
    with times absent, partial or all equal."""
    table = clustered_table(n_users=120, n_items=60, per_user=12, seed=seed, ratings=False)
    rng = np.random.default_rng(seed)
    if shape in ("counts", "counts-partial-time", "counts-constant-time"):
        plays = np.floor(rng.pareto(1.0, table.num_rows) * 3 + 1)  # heavy-tailed play counts
        table = table.append_column("weight", pa.array(plays))
    if shape in ("pairs", "counts"):
        table = table.drop_columns(["timestamp"])
    elif shape == "counts-partial-time":
        stamps = table.column("timestamp").to_pylist()
        stamps[::3] = [None] * len(stamps[::3])
        table = table.set_column(2, "timestamp", pa.array(stamps, table.schema.field(2).type))
    elif shape == "counts-constant-time":
        same = [table.column("timestamp")[0].as_py()] * table.num_rows
        table = table.set_column(2, "timestamp", pa.array(same, table.schema.field(2).type))
    return from_table(table)


@pytest.mark.parametrize(
    ("shape", "timestamps"),
    [
        ("pairs", "absent"),
        ("counts", "absent"),
        ("counts-partial-time", "partial"),
        ("counts-constant-time", "constant"),
    ],
)
def test_automl_searches_pairs_and_counts_without_usable_time(shape: str, timestamps: str) -> None:
    """Plain pairs and counts are relevant when held out; without usable times the
    validation part is a seeded random share of each user's rows, and says why."""
    log = shaped_log(shape)
    result = train(log, auto=True, budget_seconds=12)
    assert result.fallback is None and result.search is not None
    validation = result.search.validation
    assert validation["protocol"] == "random-holdout"
    assert validation["timestamps"] == timestamps and validation["reason"]
    assert validation["random_state"] == 42 and validation["users"] > 100
    complete = [t for t in result.search.trials if t["state"] == "complete"]
    # Two trials at least, on a loaded machine too (the model phase gets 80% of the budget):
    # the search ran, and it found the planted clusters.
    assert len(complete) >= 2 and result.search.validation_ndcg > 0.2
    summary = result.summary(log)
    assert summary["search"]["validation"]["timestamps"] == timestamps
    metrics = manifest_for(result, log)["metrics"]  # what `models list` shows
    assert metrics["cf.validation.ndcg@10"] == result.search.validation_ndcg
    assert 0 < metrics["cf.validation.recall@10"] <= 1 and "cf.validation.hitrate@10" in metrics
    # seeded: the same split again
    again = AutoML(budget_seconds=1, families=("popularity",))._validation_split(log)[1]
    first = AutoML(budget_seconds=1, families=("popularity",))._validation_split(log)[1]
    assert again.equals(first)


def test_a_fallback_names_its_true_cause() -> None:
    """Every held-out row is a rejection: that is what the warning says, not 'too little
    data'."""
    table = clustered_table(n_users=40, n_items=30, per_user=8, seed=3, ratings=False)
    types = ["play"] * table.num_rows
    log = from_table(table.append_column("event_type", pa.array(types)))
    automl = AutoML(budget_seconds=2, families=("popularity",))
    train_part, validation, _ = automl._validation_split(log)
    dislikes = pa.array(["dislike"] * validation.num_rows)
    validation = validation.set_column(2, "event_type", dislikes)

    class AllDisliked(AutoML):
        def _validation_split(self, data):
            return train_part, validation, {"protocol": "user-temporal"}

    with pytest.raises(InteractionsError, match=r"none of the \d+ held-out interactions is a posi"):
        AllDisliked(budget_seconds=2, families=("popularity",)).search(log)


def test_failed_trials_are_recorded_and_named_without_optuna_tracebacks(
    capfd: pytest.CaptureFixture[str],
) -> None:
    log = shaped_log("pairs")

    class Broken(AutoML):
        def _matrix(self, options):
            if getattr(self, "_checked", False):
                from tastebud.models.base import ModelError

                raise ModelError("the matrix is out of order")
            self._checked = True
            return super()._matrix(options)

    with pytest.raises(SearchFailed, match="the matrix is out of order"):
        Broken(budget_seconds=2, families=("popularity",)).search(log)
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err and "Trial" not in captured.err
