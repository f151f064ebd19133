"""relevance_matrix: known items only, rating threshold, counts of what was dropped."""

from __future__ import annotations

import pyarrow as pa
import pytest
from evaluation_tables import interactions

from tastebud.data.vocabulary import Vocabulary
from tastebud.evaluation import relevance_matrix


@pytest.fixture
def test_table() -> pa.Table:
    return interactions(
        [
            ("u1", "a", 0),
            ("u1", "b", 1),
            ("u1", "new", 2),  # item unseen in training
            ("u2", "c", 3),
            ("u2", "c", 4),  # duplicate counts once
            ("u9", "a", 5),  # user not evaluated
            ("u2", "a", 6),
        ],
        rating=[5.0, 3.0, 5.0, 4.0, 4.0, 5.0, None],  # type: ignore[list-item]
    )


@pytest.mark.parametrize("index", [Vocabulary(["a", "b", "c"]), {"a": 0, "b": 1, "c": 2}])
def test_known_items_only(test_table: pa.Table, index: Vocabulary | dict[str, int]) -> None:
    built = relevance_matrix(test_table, ["u1", "u2", "u3"], index)
    assert built.matrix.shape == (3, 3)
    assert built.matrix.toarray().tolist() == [[1, 1, 0], [1, 0, 1], [0, 0, 0]]
    assert built.dropped_unknown_items == 1 and built.dropped_unknown_users == 1
    assert built.dropped_below_rating == 0 and built.rows_used == 5


def test_min_rating(test_table: pa.Table) -> None:
    built = relevance_matrix(
        test_table, ["u1", "u2"], {"c": 0, "a": 2, "b": 1}, n_items=4, min_rating=4
    )
    assert built.matrix.shape == (2, 4)
    assert built.matrix.toarray().tolist() == [[0, 0, 1, 0], [1, 0, 0, 0]]
    assert built.dropped_below_rating == 2  # the 3.0 and the null rating
    assert built.dropped_unknown_items == 1 and built.dropped_unknown_users == 1


def test_bad_input(test_table: pa.Table) -> None:
    with pytest.raises(ValueError, match="no score column"):
        relevance_matrix(test_table, ["u1"], {"a": 0}, min_rating=1, rating_column="score")
    with pytest.raises(ValueError, match="distinct"):
        relevance_matrix(test_table, ["u1", "u1"], {"a": 0})
    with pytest.raises(ValueError, match="outside"):
        relevance_matrix(test_table, ["u1"], {"a": 5}, n_items=3)
    with pytest.raises(ValueError, match="missing column item_id"):
        relevance_matrix(test_table.drop_columns(["item_id"]), ["u1"], {"a": 0})
