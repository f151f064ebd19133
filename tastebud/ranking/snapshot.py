"""What one server worker ranks with, built off the request path and swapped in whole.

A ``Snapshot`` lines up everything per item on one index (the *item space*, the union of
the model's, the embeddings' and the catalog's items), so a request does array lookups,
never joins: the model column, the content row, a unit vector for MMR and explanations,
creator and category codes, age and the active flag. Snapshots are immutable; a request
reads ``service.snapshot`` once and keeps that one, so a swap never changes a list halfway.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from tastebud.content.cold_items import ColdItemScorer
from tastebud.content.similarity import ContentSimilarity
from tastebud.data.vocabulary import Vocabulary
from tastebud.models.base import Recommender
from tastebud.models.factors import FactorRecommender
from tastebud.ranking.retrieval import Retriever, build_retriever
from tastebud.schemas import Item

POPULAR_FALLBACK = 1_000


@dataclass(frozen=True)
class ServingModel:
    """A loaded model version and what serving derives from it once."""

    model: Recommender
    version: str
    retriever: Retriever | None = None  # factor models only
    trained_until: float | None = None  # epoch seconds of the newest training event

    @classmethod
    def prepare(
        cls,
        model: Recommender,
        version: str,
        *,
        exact_threshold: int,
        index: object = None,
        trained_until: float | None = None,
        screen: bool = False,
    ) -> ServingModel:
        retriever = None
        if isinstance(model, FactorRecommender):
            retriever = build_retriever(
                model.item_factors_, exact_threshold=exact_threshold, index=index, screen=screen
            )
            if hasattr(model, "_item_gram"):
                model._item_gram()  # paid at load, not by the first request
        return cls(model, version, retriever, trained_until)

    @property
    def factors(self) -> FactorRecommender | None:
        return self.model if isinstance(self.model, FactorRecommender) else None


@dataclass(frozen=True)
class CatalogView:
    """Catalog attributes on the item space (items the catalog lacks: active, no metadata)."""

    titles: np.ndarray  # object, None when unknown
    creators: np.ndarray  # int32 codes, -1 none
    primary_category: np.ndarray  # int32 codes, -1 none
    categories: list[tuple[str, ...]]
    category_names: list[str]
    members: dict[str, np.ndarray]  # category -> item-space positions
    created_at: np.ndarray  # float64 epoch seconds, NaN unknown
    active: np.ndarray  # bool
    creator_names: list[str] = field(default_factory=list)  # creator code -> name

    @classmethod
    def build(cls, space: Vocabulary, items: Iterable[Item]) -> CatalogView:
        n = len(space)
        titles = np.full(n, None, dtype=object)
        creators = np.full(n, -1, dtype=np.int32)
        primary = np.full(n, -1, dtype=np.int32)
        categories: list[tuple[str, ...]] = [()] * n
        created = np.full(n, np.nan, dtype=np.float64)
        active = np.ones(n, dtype=bool)
        creator_codes: dict[str, int] = {}
        category_codes: dict[str, int] = {}
        members: dict[str, list[int]] = {}
        items = list(items)
        positions = space.index([item.item_id for item in items])
        for item, position in zip(items, positions, strict=True):
            if position < 0:
                continue
            titles[position] = item.title
            if item.creator:
                creators[position] = creator_codes.setdefault(item.creator, len(creator_codes))
            if item.categories:
                categories[position] = tuple(item.categories)
                primary[position] = category_codes.setdefault(
                    item.categories[0], len(category_codes)
                )
                for category in item.categories:
                    category_codes.setdefault(category, len(category_codes))
                    members.setdefault(category, []).append(int(position))
            if item.created_at is not None:
                created[position] = item.created_at.timestamp()
            active[position] = item.active
        names = sorted(category_codes, key=category_codes.__getitem__)
        return cls(
            titles=titles,
            creators=creators,
            primary_category=primary,
            categories=categories,
            category_names=names,
            members={name: np.asarray(rows, dtype=np.int64) for name, rows in members.items()},
            created_at=created,
            active=active,
            creator_names=sorted(creator_codes, key=creator_codes.__getitem__),
        )

    def describe(self, positions: Sequence[int]) -> list[tuple[str | None, str | None]]:
        """(title, creator) of items by position (-1: an item nobody knows)."""
        described: list[tuple[str | None, str | None]] = []
        for position in positions:
            if position < 0:
                described.append((None, None))
                continue
            code = int(self.creators[position])
            title = self.titles[position]
            described.append((title, self.creator_names[code] if code >= 0 else None))
        return described


@dataclass(frozen=True)
class Snapshot:
    items: Vocabulary
    item_ids: np.ndarray  # object array, position -> id
    catalog: CatalogView
    model: ServingModel | None = None
    model_column: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    model_to_space: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    content: ContentSimilarity | None = None
    content_version: str | None = None
    content_row: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    vectors: np.ndarray | None = None  # unit rows on the item space (zero: none)
    vector_source: str | None = None  # "content" | "cf"
    cold_row: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    cold_factors: np.ndarray | None = None  # CF vectors mapped from content, cold items only
    fresh: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    popular: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    built_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    catalog_loaded: bool = False
    inactive_ids: frozenset[str] = frozenset()  # checked against stored lists per request
    # (id of a tuple of ids, n) -> (the tuple, positions of its first n): see head_positions
    _heads: dict[tuple[int, int], tuple[tuple[str, ...], np.ndarray]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def model_version(self) -> str | None:
        return None if self.model is None else self.model.version

    def positions(self, item_ids: Sequence[str]) -> np.ndarray:
        return self.items.index(list(item_ids))

    def head_positions(self, ids: Sequence[str], n: int) -> np.ndarray:
        """Positions of ``ids[:n]`` (-1: unknown). A tuple's answer is remembered: the
        published and popular lists are the same tuples for every request for seconds, so
        a request does not look the same hundred ids up again. Read-only."""
        if not isinstance(ids, tuple):
            return self.positions(list(ids[:n]))
        key = (id(ids), n)
        hit = self._heads.get(key)
        if hit is not None and hit[0] is ids:
            return hit[1]
        positions = self.positions(list(ids[:n]))
        positions.flags.writeable = False
        if len(self._heads) >= 256:
            self._heads.clear()
        self._heads[key] = (ids, positions)
        return positions

    def category_known(self, category: str) -> bool:
        return category in self.catalog.members

    def filled_popular(
        self, published: Sequence[str] | None, category: str | None, n: int
    ) -> list[str]:
        """The published popular ids, filled while fewer than ``n`` of them are active:
        with the model's all-time popularity, then the newest active catalog items, then
        the rest of the active catalog (in ``category`` when given). So a popular list (and
        the cold-start list built on it) holds ``n`` items whenever the catalog has ``n``
        active ones, whatever one thin window published."""
        ids = list(published or ())
        positions = self.positions(ids) if ids else np.zeros(0, np.int64)
        active = self.catalog.active
        have = int(np.sum(active[positions[positions >= 0]])) + int(np.sum(positions < 0))
        if have >= n:
            return ids
        member = np.ones(len(self.item_ids), dtype=bool)
        if category is not None:
            member[:] = False
            member[self.catalog.members.get(category, np.zeros(0, np.int64))] = True
        taken = np.zeros(len(self.item_ids), dtype=bool)
        taken[positions[positions >= 0]] = True
        for source in (self.popular, self.fresh, np.flatnonzero(active)):
            wanted = source[member[source] & active[source] & ~taken[source]][: n - have]
            ids.extend(self.item_ids[wanted].tolist())
            taken[wanted] = True
            have += len(wanted)
            if have >= n:
                break
        return ids

    @classmethod
    def build(
        cls,
        model: ServingModel | None,
        content: ContentSimilarity | None,
        catalog_items: Sequence[Item],
        *,
        content_version: str | None = None,
        catalog_loaded: bool = True,
        now: datetime | None = None,
    ) -> Snapshot:
        parts: list[pa.Array] = []
        if model is not None:
            parts.append(model.model.items_.ids)
        if content is not None:
            parts.append(content.items.ids)
        parts.append(pa.array([item.item_id for item in catalog_items], pa.string()))
        space = Vocabulary.from_ids(pa.concat_arrays([p.cast(pa.string()) for p in parts]))
        ids = np.asarray(space.ids.to_pylist(), dtype=object)
        catalog = CatalogView.build(space, catalog_items)
        model_column, model_to_space, popular = _model_positions(space, model)
        content_row, vectors, vector_source = _vectors(space, model, content, model_to_space)
        cold_row = np.full(len(space), -1, dtype=np.int64)
        cold_factors = None
        if model is not None and model.factors is not None and content is not None:
            cold = np.flatnonzero((model_column < 0) & (content_row >= 0))
            if len(cold):
                cold_factors = _cold_factors(model.factors, content, ids[cold].tolist())
                cold_row[cold] = np.arange(len(cold))
        created = catalog.created_at
        dated = np.flatnonzero(np.isfinite(created) & catalog.active)
        fresh = dated[np.argsort(-created[dated], kind="stable")]
        return cls(
            items=space,
            item_ids=ids,
            catalog=catalog,
            model=model,
            model_column=model_column,
            model_to_space=model_to_space,
            content=content,
            content_version=content_version,
            content_row=content_row,
            vectors=vectors,
            vector_source=vector_source,
            cold_row=cold_row,
            cold_factors=cold_factors,
            fresh=fresh,
            popular=popular,
            built_at=now or datetime.now(UTC),
            catalog_loaded=catalog_loaded,
            inactive_ids=frozenset(ids[~catalog.active].tolist()),
        )


def _model_positions(
    space: Vocabulary, model: ServingModel | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(model column per position, position per model column, the model's most popular
    positions, best first)."""
    model_column = np.full(len(space), -1, dtype=np.int64)
    if model is None:
        return model_column, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    items = model.model.items_
    model_to_space = space.index(items.ids)
    model_column[model_to_space] = np.arange(len(items))
    order = np.argsort(-model.model.popularity_, kind="stable")[:POPULAR_FALLBACK]
    order = order[model.model.popularity_[order] > 0]
    return model_column, model_to_space, model_to_space[order]


def _vectors(
    space: Vocabulary,
    model: ServingModel | None,
    content: ContentSimilarity | None,
    model_to_space: np.ndarray,
) -> tuple[np.ndarray, np.ndarray | None, str | None]:
    """(content row per position, a unit vector per position, where the vectors come from):
    content embeddings when there are any, else the model's normalised item factors."""
    n = len(space)
    content_row = np.full(n, -1, dtype=np.int64)
    if content is not None and len(content):
        positions = space.index(content.items.ids)
        content_row[positions] = np.arange(len(positions))
        vectors = np.zeros((n, content.vectors.shape[1]), dtype=np.float32)
        vectors[positions] = content.vectors
        return content_row, vectors, "content"
    if model is not None and model.factors is not None:
        factors = model.factors.item_factors_
        unit = factors / (np.linalg.norm(factors, axis=1, keepdims=True) + 1e-9)
        vectors = np.zeros((n, factors.shape[1]), dtype=np.float32)
        vectors[model_to_space] = unit
        return content_row, vectors, "cf"
    return content_row, None, None


def _cold_factors(
    model: FactorRecommender, content: ContentSimilarity, item_ids: list[str]
) -> np.ndarray | None:
    """CF vectors for items the model has never seen, mapped from their content embeddings
    by a ridge regression learned on the items both know (issue 6's ``ColdItemScorer``), so
    a new item competes on the CF score rather than on content alone. A model with a
    content tower of its own (the two-tower model) places them itself."""
    own = getattr(model, "content_item_factors", None)
    if own is not None and getattr(model, "content_dim_", 0) == content.vectors.shape[1]:
        vectors, _ = content.vectors_for(item_ids)
        return own(vectors)
    try:
        scorer = ColdItemScorer(model, content).fit()
    except ValueError:  # fewer than two items have both: no mapping to learn
        return None
    return scorer.item_factors(item_ids)
