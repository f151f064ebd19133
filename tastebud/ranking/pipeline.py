"""The ranking pipeline in named stages, as LensKit composes one: history → candidate
sources → filters → blend and boosts → rerankers → explanations.

Each stage is a small frozen component holding its own typed settings (a section of
``RankingSettings``); ``Pipeline.from_settings`` assembles them, so a request with other
settings (overrides, an experiment variant) runs another pipeline without a code change.
The stages exchange one ``Work`` (``tastebud.ranking.work``) per request.

Pure computation over a ``Snapshot`` and a ``UserContext``: every read of a store (recent
activity, published lists, features) happens before, in ``tastebud.ranking.context``, so
the pipeline is testable without stores and a store that fails only thins the context.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from tastebud.ranking.blend import Blend, RecencyBoost
from tastebud.ranking.candidates import CandidateSource, candidate_sources
from tastebud.ranking.explain import Explainer
from tastebud.ranking.filters import Filter, candidate_filters, category_mask, keep_mask
from tastebud.ranking.history import read_history, user_scores
from tastebud.ranking.rerank import Reranker, intra_list_diversity, rerank, rerankers
from tastebud.ranking.snapshot import Snapshot
from tastebud.ranking.types import (
    SOURCE_NAMES,
    Activity,
    RankedItem,
    RankedList,
    RankRequest,
    UserContext,
)
from tastebud.ranking.work import Work
from tastebud.ranking_config import RankingSettings

__all__ = ["Activity", "Pipeline", "RankRequest", "RankedItem", "RankedList", "UserContext"]
__all__ += ["pipeline_for", "rank"]


@dataclass(frozen=True)
class Pipeline:
    """The stages of one ranking configuration, in the order they run."""

    recent_items: int  # history items the content source starts from
    sources: Sequence[CandidateSource]
    max_total: int  # candidates kept after filtering
    filters: Sequence[Filter]
    blend: Blend
    boosts: Sequence[RecencyBoost]
    rerankers: Sequence[Reranker]
    explainer: Explainer | None

    @classmethod
    def from_settings(cls, settings: RankingSettings) -> Pipeline:
        recency = settings.recency
        return cls(
            recent_items=settings.candidates.recent_items,
            sources=candidate_sources(settings.candidates),
            max_total=settings.candidates.max_total,
            filters=candidate_filters(settings.filters),
            blend=Blend(settings.blend.alpha, settings.cold_start.min_interactions),
            boosts=(RecencyBoost(recency.weight, recency.half_life_days, recency.cap),),
            rerankers=rerankers(settings),
            explainer=Explainer(),
        )

    def run(self, snapshot: Snapshot, context: UserContext, request: RankRequest) -> RankedList:
        """A ranked list of up to ``request.k`` items for the user in ``context``."""
        started = time.perf_counter()
        category = request.category
        history = read_history(snapshot, context, self.recent_items)
        work = Work(
            snapshot=snapshot,
            context=context,
            request=request,
            now=time.time() if request.now is None else request.now,
            in_category=None if category is None else category_mask(snapshot, category),
            history=history,
            _last=started,
        )
        work.user_vector, work.dense = user_scores(snapshot, history)
        work.mark("history")
        for source in self.sources:
            source.propose(work)
        work.positions, work.bits = work.found.merged()
        work.mark("candidates")
        keep = keep_mask(self.filters, work)
        work.positions = work.positions[keep][: self.max_total]
        work.bits = work.bits[keep][: self.max_total]
        work.mark("filter")
        self.blend.score(work)
        for boost in self.boosts:
            boost.boost(work)
        work.mark("score")
        rerank(self.rerankers, work)
        work.mark("rerank")
        if self.explainer is not None:
            self.explainer.explain(work)
        ranked = _ranked_list(work)
        work.mark("explain")
        ranked.timings_ms = work.timings_ms
        return ranked


def _ranked_list(work: Work) -> RankedList:
    snapshot, order, blended = work.snapshot, work.order, work.blended
    assert blended is not None
    picked = work.positions[order]
    explanations = work.explanations or [None] * len(order)
    # Python scalars, not numpy ones: indexing and ``&`` on numpy scalars cost ~10x more.
    items = [
        RankedItem(
            item_id=str(item_id),
            score=round(score, 6),
            sources=list(SOURCE_NAMES[picked_bits]),
            explanation=explanation,
            title=title,
            creator=creator,
        )
        for item_id, score, picked_bits, explanation, (title, creator) in zip(
            snapshot.item_ids[picked].tolist(),
            work.relevance[order].tolist(),
            work.bits[order].tolist(),
            explanations,
            snapshot.catalog.describe(picked.tolist()),
            strict=True,
        )
    ]
    vectors = work.vectors()
    diversity = intra_list_diversity(vectors[order]) if vectors is not None and len(order) else 0.0
    ramp = blended.ramp
    segment = "warm" if ramp >= 1.0 else ("cold" if blended.personal_signal else "unknown")
    return RankedList(
        items=items,
        model_version=snapshot.model_version,
        segment=segment,
        blend_ratio=ramp * blended.cf_weight,
        diversity=diversity,
        recency_weight=float(work.recency[order].mean()) if len(order) else 0.0,
        candidates=len(work.positions),
        relaxed_caps=work.relaxed,
    )


@lru_cache(maxsize=64)
def pipeline_for(settings: RankingSettings) -> Pipeline:
    """The pipeline of a settings object (settings are frozen: built once per value)."""
    return Pipeline.from_settings(settings)


def rank(
    snapshot: Snapshot, context: UserContext, request: RankRequest, settings: RankingSettings
) -> RankedList:
    """A ranked list of up to ``request.k`` items for the user in ``context``."""
    return pipeline_for(settings).run(snapshot, context, request)
