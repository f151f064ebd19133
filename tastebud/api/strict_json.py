"""Bodies FastAPI parses itself (``POST /v1/recommendations``, ``/v1/features``, push
subscriptions) held to the rules of the bodies tastebud reads (``deps.read_json``): NaN and
Infinity are not JSON, an object that names a key twice is refused rather than read for
its last value, and an integer with too many digits to read is named as such. FastAPI calls
``Request.json()`` and passes an ``HTTPException`` from it through, so a route class that
hands endpoints a stricter request is all it takes."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute

from tastebud.api.deps import decode_json
from tastebud.api.errors import ApiError
from tastebud.schemas import (
    UNSTORABLE_CODES,
    UNSTORABLE_MESSAGES,
    DuplicateKeys,
    TooManyDigits,
)


class JsonBodyError(HTTPException):
    """A 400 with the stable ``code`` of ``read_json``'s errors (``errors.install``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(status_code=400, detail=message)
        self.code = code


def marked_value(value: Any, where: str = "") -> tuple[str, str] | None:
    """(path, reason) of the first key some object in ``value`` names twice
    (``duplicate_key``) or of the first integer with too many digits to read
    (``too_many_digits``), or None."""
    if isinstance(value, DuplicateKeys):
        return (f"{where}.{value.duplicate}" if where else value.duplicate), "duplicate_key"
    if isinstance(value, TooManyDigits):
        return where or "value", "too_many_digits"
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, inner in items:
        path = f"{where}[{key}]" if isinstance(key, int) else (f"{where}.{key}" if where else key)
        found = marked_value(inner, path)
        if found is not None:
            return found
    return None


class StrictJsonRequest(Request):
    """A request whose ``json()`` applies ``decode_json`` and refuses duplicate keys and
    integers with too many digits, naming them."""

    _strict_json: Any

    async def json(self) -> Any:
        if not hasattr(self, "_strict_json"):
            try:
                parsed = decode_json(await self.body())
            except ApiError as error:
                raise JsonBodyError(error.code, error.message) from None
            marked = marked_value(parsed)
            if marked is not None:
                where, reason = marked
                message = UNSTORABLE_MESSAGES[reason].format(field=where[:80])
                raise JsonBodyError(UNSTORABLE_CODES.get(reason, reason), message)
            self._strict_json = parsed
        return self._strict_json


class StrictJsonRoute(APIRoute):
    """An ``APIRoute`` whose endpoint reads its JSON body through ``StrictJsonRequest``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict
