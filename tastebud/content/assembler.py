"""Feature blocks into one fixed-width, unit-length item embedding.

1. **Standardize each block**: centre every column on its mean over the items that have the
   value, and scale it to unit variance, column by column for mixed units (audio,
   attributes, metadata) or as a whole (text, categories) to keep the block's own variance
   ordering. A missing value becomes the mean (0 after standardizing), so an item without
   audio sits at the centre of the audio space instead of at "silence".
2. **Weight the blocks** so each block's total variance is ``weight**2`` however wide it is
   (64 text columns do not drown 4 key columns by numbers alone): column-scaled blocks are
   multiplied by ``weight / sqrt(columns)``, whole-scaled ones by ``weight``.
3. **Reduce** the concatenation with PCA fitted on the catalog and saved.
4. **L2-normalize**, so a dot product is the cosine similarity.

Why the dimension is stable: the output is always ``dim`` (default 128) wide. PCA keeps
``min(dim, columns, items)`` components; when that is fewer than ``dim`` (a small catalog, a
catalog without audio) the remaining columns are zero. The fitted means, scales and PCA
components are part of the artifact and reused by incremental updates, so a vector never
changes unless its item does; a rebuild (new fit) makes a new artifact version whose vectors
are not comparable with the old one's (``fit_id`` in the schema says which fit made them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

EMBEDDING_DIM = 128
# Blocks whose columns share one unit (SVD components, multi-hot flags) are scaled as a whole:
# per-column scaling would blow the SVD's minor, noisy components up to the size of its main
# topics. The others (tempo in BPM next to centroid in Hz) are scaled column by column.
WHOLE_BLOCKS = frozenset({"text", "categories"})
DEFAULT_WEIGHTS: dict[str, float] = {
    "audio": 1.0,
    "attributes": 0.75,
    "categories": 1.0,
    "metadata": 0.5,
    "text": 1.0,
}


class Assembler:
    """Fitted standardization, block weights and PCA (scikit-learn conventions)."""

    def __init__(self, dim: int = EMBEDDING_DIM, weights: Mapping[str, float] | None = None):
        self.dim = dim
        self.weights = dict(DEFAULT_WEIGHTS if weights is None else weights)

    def fit(self, blocks: Mapping[str, np.ndarray]) -> Assembler:
        # lazy: scikit-learn loads on first use, not when the API app is imported
        from sklearn.decomposition import PCA

        self.blocks_ = [name for name in self.weights if name in blocks]
        self.means_: dict[str, np.ndarray] = {}
        self.scales_: dict[str, np.ndarray] = {}
        self.factors_: dict[str, float] = {}
        for name in self.blocks_:
            values = np.asarray(blocks[name], dtype=np.float64)
            present = np.isfinite(values)
            counts = present.sum(axis=0)
            filled = np.where(present, values, 0.0)
            mean = np.divide(
                filled.sum(axis=0), counts, out=np.zeros(values.shape[1]), where=counts > 0
            )
            centred = np.where(present, values - mean, 0.0)
            var = np.divide(
                (centred**2).sum(axis=0), counts, out=np.zeros(values.shape[1]), where=counts > 0
            )
            self.means_[name] = mean
            if name in WHOLE_BLOCKS:
                total = float(np.sqrt(var.sum()))
                self.scales_[name] = np.full(values.shape[1], total if total > 1e-12 else 1.0)
                self.factors_[name] = float(self.weights[name])
                continue
            std = np.sqrt(var)
            informative = std > 1e-12
            self.scales_[name] = np.where(informative, std, 1.0)
            columns = max(int(informative.sum()), 1)
            self.factors_[name] = float(self.weights[name]) / np.sqrt(columns)
        joined = self._join(blocks)
        rank = min(self.dim, joined.shape[1], max(joined.shape[0] - 1, 1))
        self.pca_mean_ = joined.mean(axis=0)
        if rank >= 1 and joined.shape[0] >= 2:
            pca = PCA(n_components=rank, svd_solver="full", random_state=0).fit(joined)
            self.components_ = pca.components_.astype(np.float64)
            self.pca_mean_ = pca.mean_
        else:
            self.components_ = np.zeros((0, joined.shape[1]))
        return self

    def _join(self, blocks: Mapping[str, np.ndarray]) -> np.ndarray:
        parts = []
        for name in self.blocks_:
            values = np.asarray(blocks[name], dtype=np.float64)
            standard = (values - self.means_[name]) / self.scales_[name]
            standard[~np.isfinite(standard)] = 0.0
            parts.append(standard * self.factors_[name])
        return np.hstack(parts) if parts else np.zeros((0, 0))

    def transform(self, blocks: Mapping[str, np.ndarray]) -> np.ndarray:
        """(n x dim) float32, unit length (rows with nothing to say stay zero)."""
        joined = self._join(blocks)
        reduced = (joined - self.pca_mean_) @ self.components_.T
        out = np.zeros((joined.shape[0], self.dim), dtype=np.float64)
        out[:, : reduced.shape[1]] = reduced
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 1e-12)
        return out.astype(np.float32)

    @property
    def explained_dims(self) -> int:
        return int(self.components_.shape[0])

    def save(self, folder: Path) -> list[str]:
        meta = {"dim": self.dim, "weights": self.weights, "blocks": self.blocks_}
        (folder / "assembler.json").write_text(json.dumps(meta))
        arrays = {"pca_mean": self.pca_mean_, "components": self.components_}
        for name in self.blocks_:
            arrays[f"mean__{name}"] = self.means_[name]
            arrays[f"scale__{name}"] = self.scales_[name]
            arrays[f"factor__{name}"] = np.array(self.factors_[name])
        np.savez(folder / "assembler.npz", **arrays)
        return ["assembler.json", "assembler.npz"]

    @classmethod
    def load(cls, folder: Path) -> Assembler:
        meta = json.loads((folder / "assembler.json").read_text())
        assembler = cls(int(meta["dim"]), meta["weights"])
        assembler.blocks_ = list(meta["blocks"])
        with np.load(folder / "assembler.npz", allow_pickle=False) as arrays:
            assembler.pca_mean_ = arrays["pca_mean"]
            assembler.components_ = arrays["components"]
            assembler.means_ = {n: arrays[f"mean__{n}"] for n in assembler.blocks_}
            assembler.scales_ = {n: arrays[f"scale__{n}"] for n in assembler.blocks_}
            assembler.factors_ = {n: float(arrays[f"factor__{n}"]) for n in assembler.blocks_}
        return assembler
