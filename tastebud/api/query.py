"""One value per single-valued query parameter: Starlette keeps the last of ``?k=5&k=500``
and drops the rest without a word, so the app refuses a repeated one (422
``repeated_parameter``, naming it) before the route reads it. A parameter declared as a list
may repeat."""

from __future__ import annotations

import types
import typing
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Annotated, Any, get_args, get_origin

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from tastebud.api.errors import ApiError

_SEQUENCES = (list, tuple, set, frozenset, Sequence)


def _is_sequence(annotation: Any) -> bool:
    """list[str], tuple[int, ...], Optional[list[str]], Annotated[list[str], ...]: a
    parameter FastAPI fills from every repetition."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _is_sequence(get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return any(_is_sequence(arg) for arg in get_args(annotation) if arg is not type(None))
    target = origin or annotation
    return isinstance(target, type) and issubclass(target, _SEQUENCES) and target is not str


def _query_fields(dependant: Dependant) -> Iterator[Any]:
    yield from dependant.query_params
    for inner in dependant.dependencies:
        yield from _query_fields(inner)


def _single_valued(route: APIRoute) -> frozenset[str]:
    """The query parameters of ``route`` (its dependencies' included) that take one value,
    worked out once per route and kept on it (routes compare by path, so are not hashable)."""
    names: frozenset[str] | None = getattr(route, "_single_valued_query", None)
    if names is None:
        names = frozenset(
            field.alias
            for field in _query_fields(route.dependant)
            if not _is_sequence(field.field_info.annotation)
        )
        route._single_valued_query = names  # type: ignore[attr-defined]
    return names


async def single_query_values(request: Request) -> None:
    """Refuse a single-valued query parameter given more than once (the module docstring).
    Async: a plain ``def`` would cost a thread-pool hop on every request."""
    pairs = request.query_params.multi_items()
    if len(pairs) < 2:
        return
    counts = Counter(name for name, _ in pairs)
    repeated = [name for name, count in counts.items() if count > 1]
    route = request.scope.get("route")
    if not repeated or not isinstance(route, APIRoute):
        return
    refused = [name for name in repeated if name in _single_valued(route)]
    if refused:
        name = refused[0]
        raise ApiError(
            422,
            "repeated_parameter",
            f"`{name}` was given {counts[name]} times; give it once",
            details=[
                {"loc": ["query", n], "type": "repeated_parameter", "count": counts[n]}
                for n in refused
            ],
        )
