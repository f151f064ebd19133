"""``GET /v1/dlq/summary``: how big the dead-letter queue is and why its entries are there
(``read`` scope: counts by kind and reason, never the payloads, which ``tastebud dlq inspect``
shows to an operator). The dashboard's operations page reads it."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from tastebud.api.errors import ApiError
from tastebud.stores import StoreUnavailable

router = APIRouter(tags=["dead letters"])


class DlqSummary(BaseModel):
    size: dict[str, int] = Field(description="Entries by kind (invalid, transient).")
    reasons: dict[str, int] = Field(description="Reason codes among the entries read.")
    read: int = Field(description="Entries the reasons were counted over (the oldest first).")


@router.get("/v1/dlq/summary", response_model=DlqSummary, summary="Dead-letter queue by reason")
async def summary(request: Request, limit: Annotated[int, Query(ge=1, le=10_000)] = 2_000) -> Any:
    store = request.app.state.tastebud.stores.database.gateway.dead_letters

    def read() -> DlqSummary:
        entries = store.list_entries(limit=limit)
        reasons = Counter(reason for entry in entries for reason in entry.reasons)
        return DlqSummary(
            size={kind: store.count(kind=kind) for kind in ("invalid", "transient")},
            reasons=dict(reasons.most_common()),
            read=len(entries),
        )

    try:
        return await run_in_threadpool(read)
    except StoreUnavailable as error:
        raise ApiError(503, "store_unavailable", f"dead-letter queue: {error}") from None
