"""Content to CF: a ridge regression from content embeddings to a factor model's item
factors, learned on warm items, so a cold item (no interactions) gets a CF-space vector and
can be scored for warm users as ``user_factors @ mapped_item``.

Ridge is the standard first mapping (as in DropoutNet's and "content-to-CF" baselines): a
linear map cannot invent collaborative structure, but it moves a new item to where items
with similar content sit in CF space. The penalty is chosen by efficient leave-one-out
cross-validation over a small grid (``RidgeCV``), so nothing needs tuning by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tastebud.content.similarity import ContentSimilarity
from tastebud.models.factors import FactorRecommender

ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0)


class ContentToCF:
    """``fit(content, factors)`` on warm items; ``transform(content)`` gives CF vectors."""

    def __init__(self, alphas: Sequence[float] = ALPHAS) -> None:
        self.alphas = tuple(alphas)

    def fit(self, content: np.ndarray, factors: np.ndarray) -> ContentToCF:
        # lazy: scikit-learn loads on first use, not when the API app is imported
        from sklearn.linear_model import RidgeCV

        if len(content) != len(factors) or len(content) < 2:
            raise ValueError("need at least two warm items with both content and factors")
        ridge = RidgeCV(alphas=self.alphas, fit_intercept=True).fit(
            np.asarray(content, np.float64), np.asarray(factors, np.float64)
        )
        self.coef_ = np.asarray(ridge.coef_, np.float32)  # (factors x content)
        self.intercept_ = np.asarray(ridge.intercept_, np.float32)
        self.alpha_ = float(ridge.alpha_)
        return self

    def transform(self, content: np.ndarray) -> np.ndarray:
        return np.asarray(content, np.float32) @ self.coef_.T + self.intercept_

    def save(self, path: Path) -> None:
        np.savez(path, coef=self.coef_, intercept=self.intercept_, alpha=self.alpha_)

    @classmethod
    def load(cls, path: Path) -> ContentToCF:
        mapping = cls()
        with np.load(path, allow_pickle=False) as arrays:
            mapping.coef_ = arrays["coef"]
            mapping.intercept_ = arrays["intercept"]
            mapping.alpha_ = float(arrays["alpha"])
        return mapping


class ColdItemScorer:
    """A factor model plus the content mapping: scores any embedded item for known users."""

    def __init__(self, model: FactorRecommender, content: ContentSimilarity) -> None:
        self.model = model
        self.content = content

    def fit(self, alphas: Sequence[float] = ALPHAS) -> ColdItemScorer:
        """Learn the mapping on items both the model and the embeddings know."""
        ids = self.model.items_.ids.to_pylist()
        vectors, rows = self.content.vectors_for(ids)
        warm = (rows >= 0) & (np.linalg.norm(vectors, axis=1) > 0)
        self.mapping_ = ContentToCF(alphas).fit(
            vectors[warm], self.model.item_factors_[np.flatnonzero(warm)]
        )
        return self

    def item_factors(self, item_ids: Sequence[str]) -> np.ndarray:
        """CF vectors: learned factors for warm items, mapped content for the others
        (zeros for items with neither, so they score 0)."""
        columns = self.model.items_.index(list(item_ids))
        vectors, _ = self.content.vectors_for(item_ids)
        out = self.mapping_.transform(vectors)
        out[np.linalg.norm(vectors, axis=1) == 0] = 0.0
        warm = columns >= 0
        out[warm] = self.model.item_factors_[columns[warm]]
        return out

    def score(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        """(users x items) scores; NaN rows for users the model does not know."""
        rows = self.model.users_.index(list(user_ids))
        factors = self.item_factors(item_ids)
        scores = np.full((len(rows), len(item_ids)), np.nan, dtype=np.float32)
        known = rows >= 0
        scores[known] = self.model.user_factors_[rows[known]] @ factors.T
        return scores
