"""Factor coverage: shares of active users and items with usable factors."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from tastebud.data.vocabulary import Vocabulary
from tastebud.evaluation import factor_coverage


def test_shares_and_targets() -> None:
    users = Vocabulary([f"u{n}" for n in range(9)])
    items = Vocabulary(["a", "b", "c"])
    active_users = [f"u{n}" for n in range(10)] + ["u0"]  # u9 has no factors; dupes ignored
    coverage = factor_coverage(active_users, pa.array(["a", "b"]), users, items)
    assert (coverage.covered_users, coverage.active_users) == (9, 10)
    assert coverage.users == pytest.approx(0.9) and coverage.items == pytest.approx(1.0)
    assert coverage.meets()
    assert not coverage.meets(users=0.95)
    assert coverage.as_metrics() == {"factor_coverage_users": 0.9, "factor_coverage_items": 1.0}


def test_zero_or_nan_factor_rows_do_not_count() -> None:
    factors = np.array([[0.1, 0.2], [0.0, 0.0], [np.nan, 1.0]])
    coverage = factor_coverage(
        ["x"], ["a", "b", "c", "d"], ["x"], ["a", "b", "c"], item_factors=factors
    )
    assert (coverage.covered_items, coverage.active_items) == (1, 4)
    with pytest.raises(ValueError, match="one row per vocabulary id"):
        factor_coverage(["x"], ["a"], ["x"], ["a", "b"], item_factors=np.ones((3, 2)))


def test_no_active_ids_is_undefined() -> None:
    coverage = factor_coverage([], [], ["x"], ["a"])
    assert math.isnan(coverage.users) and not coverage.meets()
