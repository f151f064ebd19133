"""Fixtures for the evaluation tests."""

from __future__ import annotations

import pyarrow as pa
import pytest
from evaluation_tables import interactions


@pytest.fixture
def small() -> pa.Table:
    """u1: 5 rows (two tied at t=3), u2: 2 rows, u3: 1 row."""
    return interactions(
        [
            ("u1", "a", 5),
            ("u2", "a", 1),
            ("u1", "b", 1),
            ("u1", "c", 3),
            ("u3", "z", 9),
            ("u1", "d", 3),
            ("u2", "b", 0),
            ("u1", "e", 2),
        ]
    )
