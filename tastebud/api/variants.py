"""Experiments at the HTTP edge: the ``X-Tastebud-Variant`` header that forces a variant for
QA, and the plan of a recommendation request (``tastebud.ranking.experiment_serving``).

The header is ``<experiment>:<variant>`` and is honoured only for a key with the ``admin``
scope (or with ``gateway.auth = false``); a key without it is refused with 403 rather than
silently served its own variant, so a QA run with the wrong key cannot be mistaken for a
forced one. A malformed value is 422 ``invalid_variant_header``; a well-formed pair that no
running experiment has is 404 ``unknown_variant`` (as an unknown category is: the name is
fine, there is just none such). A forced list is served and reported under its
variant, never counted in the analysis.
"""

from __future__ import annotations

import re

from fastapi import Request

from tastebud.api.errors import ApiError
from tastebud.ranking.experiment_serving import Plan, UnknownVariant
from tastebud.ranking.recommender import RecommendationService

HEADER = "X-Tastebud-Variant"
# In the routes' descriptions, not declared as a header parameter: schema fuzzers send
# header values that break a declared pattern as if they were valid (schemathesis 4.32).
HEADER_DESCRIPTION = (
    "QA: the header `X-Tastebud-Variant: <experiment>:<variant>` serves that variant (never "
    "counted in the experiment's analysis); it needs a key with the `admin` scope (403 "
    "otherwise); malformed, 422 `invalid_variant_header`; no such running variant, 404 "
    "`unknown_variant`."
)
NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
PAIR = re.compile(rf"({NAME}):({NAME})")


def forced_variant(request: Request, value: str | None) -> tuple[str, str] | None:
    """The ``(experiment, variant)`` the header forces, or None without the header."""
    if value is None:
        return None
    state = request.app.state.tastebud
    if state.settings.gateway.auth:
        scopes = getattr(request.state, "key_scopes", ())
        if "admin" not in scopes:
            raise ApiError(
                403,
                "insufficient_scope",
                f"{HEADER} needs the 'admin' scope; the key has {', '.join(scopes) or 'none'}",
            )
    matched = PAIR.fullmatch(value.strip())
    if matched is None:
        raise ApiError(
            422,
            "invalid_variant_header",
            f"{HEADER} must be <experiment>:<variant> (letters, digits, '_', '.', '-'; "
            f"up to 64 each); got {value[:140]!r}",
        )
    return matched.group(1), matched.group(2)


def plan_of(
    service: RecommendationService, unit_id: str | None, forced: tuple[str, str] | None
) -> Plan:
    """The request's plan; 404 for a forced variant that no running experiment has."""
    try:
        return service.experiments.plan(unit_id, service.snapshot, forced)
    except UnknownVariant as error:
        experiment, variant = error.args
        raise ApiError(
            404,
            "unknown_variant",
            f"{HEADER}: no running experiment {experiment!r} has a variant {variant!r}",
        ) from None
