"""Explicit-rating accuracy: RMSE and MAE, and the seeded random split they are judged on.

The ``ratings`` protocol of ``tastebud evaluate``: a random ``fraction`` of all rating rows
(not per user) is the test part, as in scikit-surprise's ``train_test_split``, so figures
compare with the published ones. Test pairs whose user or item is absent from training
stay in (the model answers them with the global mean or a bias); how many is reported.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa


def rating_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """RMSE and MAE of predicted against actual ratings (same length, finite)."""
    actual = np.asarray(actual, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    if actual.shape != predicted.shape or actual.size == 0:
        raise ValueError(f"need as many predictions as ratings; got {predicted.size}/{actual.size}")
    if not np.isfinite(predicted).all():
        raise ValueError("predicted ratings must be finite")
    error = predicted - actual
    return {"rmse": float(np.sqrt(np.mean(error**2))), "mae": float(np.mean(np.abs(error)))}


@dataclass(frozen=True)
class RatingSplit:
    train: pa.Table
    test: pa.Table
    fraction: float
    random_state: int

    @property
    def cold_pairs(self) -> int:
        """Test rows whose user or item never appears in training."""
        users = set(self.train.column("user_id").to_pylist())
        items = set(self.train.column("item_id").to_pylist())
        return sum(
            u not in users or i not in items
            for u, i in zip(
                self.test.column("user_id").to_pylist(),
                self.test.column("item_id").to_pylist(),
                strict=True,
            )
        )


def random_rating_split(
    table: pa.Table, fraction: float = 0.2, random_state: int = 42
) -> RatingSplit:
    """Exactly ``round(fraction * rows)`` random rows test, the rest train (seeded)."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be between 0 and 1; got {fraction}")
    rows = table.num_rows
    n_test = round(fraction * rows)
    if n_test < 1 or n_test >= rows:
        raise ValueError(f"{rows} ratings are too few to hold out {fraction:.0%}")
    order = np.random.default_rng(random_state).permutation(rows)
    test = np.zeros(rows, dtype=bool)
    test[order[:n_test]] = True
    return RatingSplit(
        table.filter(pa.array(~test)), table.filter(pa.array(test)), fraction, random_state
    )


@dataclass
class RatingReport:
    """Test RMSE/MAE per model on one split, with what each was tuned to."""

    snapshot: str
    ratings: int
    train: int
    test: int
    cold_test_pairs: int
    fraction: float
    random_state: int
    models: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, name: str, metrics: dict[str, float], **details: Any) -> None:
        self.models[name] = {**metrics, **details}

    def to_dict(self) -> dict[str, Any]:
        return {"protocol": "ratings", **asdict(self)}

    def to_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2, default=str))

    def to_markdown(self, path: Path) -> None:
        lines = [
            "# Rating prediction",
            "",
            f"- data: {self.ratings:,} ratings (snapshot {self.snapshot}); random "
            f"{1 - self.fraction:.0%}/{self.fraction:.0%} split, seed {self.random_state}: "
            f"{self.train:,} train, {self.test:,} test ({self.cold_test_pairs:,} test pairs "
            "with a user or item unseen in training)",
            "- each model tuned on a 10% validation carve of the train part, never the test",
            "",
            "| model | RMSE | MAE | parameters | fit s |",
            "|---|---:|---:|---|---:|",
        ]
        for name, row in self.models.items():
            lines.append(
                f"| {name} | {row['rmse']:.4f} | {row['mae']:.4f} | "
                f"{json.dumps(row.get('params', {}))} | {row.get('fit_seconds', 0):.1f} |"
            )
        path.write_text("\n".join(lines) + "\n")
