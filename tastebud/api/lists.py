"""The answers of the recommendation routes: a served list as JSON with what it was served
under (``experiment``, ``variant``) and its new ``list_id``, each logged as an exposure
(``tastebud.ranking.experiment_serving``). A precomputed list's items go out as the job
encoded them, unparsed."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from fastapi import Response

from tastebud.ranking.experiment_serving import Plan
from tastebud.ranking.precomputed import PrecomputedList, item_document
from tastebud.ranking.recommender import RecommendationService, Served


def document(
    user_id: str | None, served: Served, plan: Plan, list_id: str, *, metadata: bool = True
) -> dict[str, Any]:
    ranked = served.ranked
    return {
        "user_id": user_id,
        "items": [item_document(item, metadata=metadata) for item in ranked.items],
        "model_version": ranked.model_version,
        "degraded": bool(served.degraded),
        "degraded_reasons": sorted(set(served.degraded)),
        "segment": ranked.segment,
        "experiment": plan.experiment,
        "variant": plan.variant,
        "list_id": list_id,
    }


def served_document(
    service: RecommendationService,
    plan: Plan,
    started: float,
    user_id: str | None,
    session_id: str | None,
    served: Served,
    *,
    metadata: bool = True,
) -> dict[str, Any]:
    """A ranked list's answer, logged as an exposure."""
    ranked = served.ranked
    list_id = expose(
        service,
        plan,
        started,
        user_id,
        session_id,
        [item.item_id for item in ranked.items],
        ranked.model_version,
        degraded=bool(served.degraded),
    )
    return document(user_id, served, plan, list_id, metadata=metadata)


def expose(
    service: RecommendationService,
    plan: Plan,
    started: float,
    user_id: str | None,
    session_id: str | None,
    items: Sequence[str],
    model_version: str | None,
    *,
    degraded: bool,
) -> str:
    return service.experiments.expose(
        plan,
        user_id=user_id,
        session_id=session_id,
        items=items,
        model_version=model_version,
        latency_ms=(time.perf_counter() - started) * 1000,
        degraded=degraded,
    )


def stored_response(user_id: str, stored: PrecomputedList, plan: Plan, list_id: str) -> Response:
    """A precomputed list's answer (``_document``'s fields): its items array goes out as
    the job encoded it, unparsed."""
    head = {
        "user_id": user_id,
        "model_version": stored.model_version,
        "degraded": False,
        "degraded_reasons": [],
        "segment": stored.segment,
        "experiment": plan.experiment,
        "variant": plan.variant,
        "list_id": list_id,
    }
    body = json.dumps(head, separators=(",", ":")).encode()[:-1]
    body += b',"items":' + stored.items_json + b"}"
    return Response(body, media_type="application/json")
