"""The one small interface every recommender implements.

scikit-learn conventions: ``__init__`` stores hyperparameters unchanged, ``fit`` returns
``self``, fitted state ends in ``_``, ``get_params``/``set_params`` come for free. Unlike
implicit's models, a tastebud model speaks external ids: it keeps the vocabularies it was
trained with, so callers never hold an index mapping.

A subclass implements ``_fit(matrix)``, ``_score(rows)`` (dense scores for a batch of user
histories) and, when it has learned state, ``_state()``/``_restore(state)`` for saving. The
base class does batching, seen-item exclusion, candidate filters, top-k selection, unknown
users (the popularity list, never an error), saving with checksums and loading.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from tastebud.data.matrix import InteractionMatrix
from tastebud.data.vocabulary import Vocabulary

MODEL_FILE = "model.json"
STATE_FILE = "state.npz"
BATCH_BYTES = 256 * 1024 * 1024


class ModelError(ValueError):
    """A model cannot do what was asked (not fitted, bad parameters, broken files)."""


class NotFittedError(ModelError):
    pass


class Recommender:
    """Base of every model: fit on an InteractionMatrix, recommend by external id."""

    name: ClassVar[str] = "base"
    registry: ClassVar[dict[str, type[Recommender]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name != "base":
            Recommender.registry[cls.name] = cls

    # -- scikit-learn parameter protocol -------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [
            name
            for name, parameter in signature.parameters.items()
            if name != "self" and parameter.kind is parameter.POSITIONAL_OR_KEYWORD
        ]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        valid = set(self._param_names())
        for key, value in params.items():
            if key not in valid:
                raise ModelError(f"{type(self).__name__} has no parameter {key!r}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, data: InteractionMatrix) -> Self:
        if data.matrix.nnz == 0:
            raise ModelError("cannot fit on an empty matrix")
        self.users_: Vocabulary = data.users
        self.items_: Vocabulary = data.items
        self.user_items_: sp.csr_matrix = data.matrix.tocsr().astype(np.float32, copy=False)
        # Without negative feedback "seen" is the preference matrix itself: share it.
        has_negatives = data.negatives.nnz > 0
        seen = data.seen().tocsr().astype(np.float32, copy=False)
        self.seen_: sp.csr_matrix = seen if has_negatives else self.user_items_
        popularity = np.asarray(data.matrix.astype(bool).sum(axis=0), dtype=np.float64).ravel()
        self.popularity_: np.ndarray = popularity
        self._fit(data)
        return self

    def _fit(self, data: InteractionMatrix) -> None:
        raise NotImplementedError

    def _score(self, rows: np.ndarray, histories: sp.csr_matrix) -> np.ndarray:
        """Dense scores (len(rows) x n_items); ``rows`` are user indices, -1 for a history
        that belongs to no known user (fold-in)."""
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not hasattr(self, "items_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() first")

    @property
    def n_items(self) -> int:
        self._check_fitted()
        return len(self.items_)

    # -- scoring ---------------------------------------------------------------------------
    def score_histories(
        self, histories: sp.csr_matrix, rows: np.ndarray | None = None
    ) -> np.ndarray:
        """Scores for user histories given as rows over this model's items (fold-in)."""
        self._check_fitted()
        histories = sp.csr_matrix(histories, dtype=np.float32)
        if rows is None:
            rows = np.full(histories.shape[0], -1, dtype=np.int64)
        return np.asarray(self._score(np.asarray(rows, np.int64), histories), dtype=np.float32)

    def fold_in(self, histories: sp.csr_matrix) -> np.ndarray:
        """User factors for histories (rows over this model's items), for models that have
        them; item-based models (EASE, kNN) score a history directly (``score_histories``)."""
        raise ModelError(
            f"{type(self).__name__} has no user factors to fold in; score_histories scores a "
            "history directly"
        )

    def score_users(self, rows: np.ndarray) -> np.ndarray:
        """Scores for known users by index (len(rows) x n_items)."""
        self._check_fitted()
        rows = np.asarray(rows, dtype=np.int64)
        return self.score_histories(self.user_items_[rows], rows)

    def score(self, user_id: str, item_ids: Sequence[str]) -> np.ndarray:
        """Scores of ``item_ids`` for one user; NaN for items the model does not know."""
        self._check_fitted()
        row = self.users_.index_of(user_id)
        if row < 0:
            scores = self.popularity_.astype(np.float32)[None, :]
        else:
            scores = self.score_users(np.array([row]))
        columns = self.items_.index(list(item_ids))
        result = np.full(len(columns), np.nan, dtype=np.float32)
        known = columns >= 0
        result[known] = scores[0, columns[known]]
        return result

    def recommend(
        self,
        user_ids: Sequence[str],
        k: int = 10,
        *,
        exclude_seen: bool = True,
        items: Sequence[str] | None = None,
        filter_items: Sequence[str] | None = None,
        histories: Sequence[Sequence[str]] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item ids and scores per user, best first (``None``/NaN pad short lists).

        ``items`` restricts the ranking to candidates; ``filter_items`` removes items;
        ``histories`` gives recent item ids per user to fold in (for anonymous sessions and
        users unknown to the model). An unknown user without history gets the popularity
        ranking; ``exclude_seen`` drops what the user interacted with in training.
        """
        self._check_fitted()
        if k < 1:
            raise ModelError("k must be at least 1")
        if histories is not None and len(histories) != len(user_ids):
            raise ModelError(f"{len(user_ids)} users but {len(histories)} histories")
        rows = self.users_.index(list(user_ids))
        indices, scores = self.recommend_indices(
            rows,
            k,
            exclude_seen=exclude_seen,
            candidates=None if items is None else self.items_.index(list(items)),
            excluded=None if filter_items is None else self.items_.index(list(filter_items)),
            histories=None if histories is None else self._history_matrix(histories),
        )
        ids = np.full(indices.shape, None, dtype=object)
        valid = indices >= 0
        if valid.any():
            ids[valid] = self.items_.id_of(indices[valid])
        return ids, scores

    def _history_matrix(self, histories: Sequence[Sequence[str]]) -> sp.csr_matrix:
        indptr, indices = [0], []
        for history in histories:
            columns = self.items_.index(list(history))
            columns = np.unique(columns[columns >= 0])
            indices.extend(columns.tolist())
            indptr.append(len(indices))
        data = np.ones(len(indices), dtype=np.float32)
        return sp.csr_matrix((data, indices, indptr), shape=(len(histories), self.n_items))

    def recommend_indices(
        self,
        rows: np.ndarray,
        k: int,
        *,
        exclude_seen: bool = True,
        candidates: np.ndarray | None = None,
        excluded: np.ndarray | None = None,
        histories: sp.csr_matrix | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Index-level ``recommend``: ``rows`` are user indices (-1 = unknown)."""
        self._check_fitted()
        rows = np.asarray(rows, dtype=np.int64)
        n_items = self.n_items
        k = min(k, n_items)
        mask = np.zeros(n_items, dtype=bool)  # True = never recommend
        if candidates is not None:
            mask[:] = True
            mask[candidates[candidates >= 0]] = False
        if excluded is not None:
            mask[excluded[excluded >= 0]] = True
        batch = max(1, BATCH_BYTES // (4 * max(n_items, 1)))
        out_ids = np.full((len(rows), k), -1, dtype=np.int64)
        out_scores = np.full((len(rows), k), np.nan, dtype=np.float32)
        for start in range(0, len(rows), batch):
            part = rows[start : start + batch]
            known = part >= 0
            user_rows = np.where(known, part, 0)
            known_column = sp.diags(known.astype(np.float32))
            seen = known_column @ self.seen_[user_rows]
            if histories is not None:
                given = histories[start : start + len(part)]
                merged = (known_column @ self.user_items_[user_rows] + given).tocsr()
                has_signal = np.diff(merged.indptr) > 0
                scores = self.score_histories(merged)
                seen = seen + given
            else:
                has_signal = known
                scores = np.empty((len(part), n_items), dtype=np.float32)
                if known.any():
                    scores[known] = self.score_users(part[known])
            if (~has_signal).any():
                scores[~has_signal] = self.popularity_.astype(np.float32)
            scores[:, mask] = -np.inf
            if exclude_seen:
                coo = sp.coo_matrix(seen)
                scores[coo.row, coo.col] = -np.inf
            ids, values = _top_k(scores, k)
            out_ids[start : start + len(part)] = ids
            out_scores[start : start + len(part)] = values
        return out_ids, out_scores

    # -- similar items -------------------------------------------------------------------
    def similar_items(self, item_ids: Sequence[str], k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Most similar items per item (the item itself excluded); unknown items get None."""
        self._check_fitted()
        columns = self.items_.index(list(item_ids))
        k = min(k, max(self.n_items - 1, 1))
        out = np.full((len(columns), k), None, dtype=object)
        out_scores = np.full((len(columns), k), np.nan, dtype=np.float32)
        known = np.flatnonzero(columns >= 0)
        if len(known):
            similarity = np.asarray(self._similar(columns[known]), dtype=np.float32)
            similarity[np.arange(len(known)), columns[known]] = -np.inf
            ids, values = _top_k(similarity, k)
            for row, (id_row, value_row) in zip(known, zip(ids, values, strict=True), strict=True):
                valid = id_row >= 0
                out[row, : valid.sum()] = self.items_.id_of(id_row[valid])
                out_scores[row] = value_row
        return out, out_scores

    def item_similarity(self, columns: np.ndarray, others: np.ndarray) -> np.ndarray:
        """How similar items ``others`` are to items ``columns`` (model columns), as a
        ``len(columns) x len(others)`` array, by the measure ``similar_items`` ranks with
        (row ``i`` holds what ``similar_items`` would score from ``columns[i]``). Ranking
        explains a recommendation by the history item it is most like."""
        self._check_fitted()
        columns = np.asarray(columns, dtype=np.int64)
        others = np.asarray(others, dtype=np.int64)
        if not len(columns) or not len(others):
            return np.zeros((len(columns), len(others)), dtype=np.float32)
        return np.asarray(self._similar(columns), dtype=np.float32)[:, others]

    def _similar(self, columns: np.ndarray) -> np.ndarray:
        """Item-item similarity rows; by default, cosine of the items' user columns."""
        matrix = self.user_items_.T.tocsr()
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel()) + 1e-9
        rows = matrix[columns]
        similarity = (rows @ matrix.T).toarray()
        return similarity / norms[columns][:, None] / norms[None, :]

    # -- persistence -----------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        return {}

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        pass

    def save(self, folder: str | Path) -> Path:
        """Write the model into ``folder`` (npz + JSON, no pickle) with sha256 checksums."""
        self._check_fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.users_.save(folder / "users.parquet")
        self.items_.save(folder / "items.parquet")
        # Uncompressed: zlib over a large sparse matrix costs more time than the disk it saves.
        sp.save_npz(folder / "user_items.npz", self.user_items_, compressed=False)
        files = ["users.parquet", "items.parquet", "user_items.npz", STATE_FILE]
        if self.seen_ is not self.user_items_:
            sp.save_npz(folder / "seen.npz", self.seen_, compressed=False)
            files.append("seen.npz")
        state = {"popularity_": self.popularity_, **self._state()}
        np.savez(folder / STATE_FILE, **state)
        files += self._save_extra(folder)
        meta = {
            "format": 1,
            "model": self.name,
            "params": _jsonable(self.get_params()),
            "users": len(self.users_),
            "items": len(self.items_),
            "checksums": {name: _sha256(folder / name) for name in files},
        }
        (folder / MODEL_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
        return folder

    def _save_extra(self, folder: Path) -> list[str]:
        return []

    def _load_extra(self, folder: Path) -> None:
        pass

    @classmethod
    def _from_params(cls, params: dict[str, Any]) -> Recommender:
        return cls(**params)

    @classmethod
    def load(cls, folder: str | Path) -> Recommender:
        """Load a saved model of any type, verifying every file's checksum and shape."""
        folder = Path(folder)
        try:
            meta = json.loads((folder / MODEL_FILE).read_text())
        except (OSError, ValueError) as error:
            raise ModelError(f"{folder} holds no readable {MODEL_FILE}: {error}") from None
        model_class = Recommender.registry.get(meta.get("model", ""))
        if model_class is None:
            raise ModelError(f"unknown model type {meta.get('model')!r} in {folder}")
        for name, expected in meta.get("checksums", {}).items():
            path = folder / name
            if not path.exists():
                raise ModelError(f"model file {name} is missing from {folder}")
            if _sha256(path) != expected:
                raise ModelError(f"checksum mismatch for {name} in {folder}: the file changed")
        model = model_class._from_params(meta["params"])
        model.users_ = Vocabulary.load(folder / "users.parquet")
        model.items_ = Vocabulary.load(folder / "items.parquet")
        model.user_items_ = sp.load_npz(folder / "user_items.npz").tocsr()
        seen_path = folder / "seen.npz"
        model.seen_ = sp.load_npz(seen_path).tocsr() if seen_path.exists() else model.user_items_
        with np.load(folder / STATE_FILE, allow_pickle=False) as archive:
            state = {key: archive[key] for key in archive.files}
        model.popularity_ = state.pop("popularity_")
        model._restore(state)
        model._load_extra(folder)
        expected_shape = (meta["users"], meta["items"])
        if model.user_items_.shape != expected_shape or len(model.popularity_) != meta["items"]:
            raise ModelError(f"model files in {folder} disagree on the matrix shape")
        return model


def _top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the k highest finite scores per row, best first (-1 pads)."""
    n = scores.shape[1]
    k = min(k, n)
    if k == n:
        top = np.argsort(-scores, axis=1, kind="stable")
    else:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(part, order, axis=1)
    values = np.take_along_axis(scores, top, axis=1)[:, :k]
    top = top[:, :k].copy()
    invalid = ~np.isfinite(values)
    top[invalid] = -1
    values = values.astype(np.float32)
    values[invalid] = np.nan
    return top, values


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
