"""The app's OpenAPI document: FastAPI's schema, plus what it cannot see. The request-body
models the routes read by hand, the configured event types and batch sizes, the id rules
(length and pattern from the settings), the limits (``openapi_limits``) and the API-key
security of every route that ``require``s a key.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from tastebud.api.deps import SECURITY_SCHEMES
from tastebud.api.openapi_limits import document_limits
from tastebud.api.schemas import (
    EventBatchIn,
    EventIn,
    ItemBatchIn,
    ItemIn,
    UserBatchIn,
    UserIn,
)
from tastebud.config import Settings
from tastebud.schemas import ID_SCHEMA_MARK


def openapi_document(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """FastAPI's schema plus the request-body models the routes read by hand, with the
    configured event types and batch size filled in."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    ref = "#/components/schemas/{model}"
    for model in (EventIn, EventBatchIn, ItemIn, ItemBatchIn, UserIn, UserBatchIn):
        document = model.model_json_schema(ref_template=ref)
        for name, definition in document.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components[model.__name__] = document
    event = components["EventIn"]["properties"]
    event["event_type"]["enum"] = sorted(settings.events.types)
    limit = settings.gateway.max_batch_events
    batches = (("EventBatchIn", "events"), ("ItemBatchIn", "items"), ("UserBatchIn", "users"))
    for batch, field in batches:
        components[batch]["properties"][field]["maxItems"] = limit
    _document_ids(schema, settings)
    _headers_are_strings(schema)
    document_limits(schema, settings)
    _document_security(app, schema)
    app.openapi_schema = schema
    return schema


def _document_ids(node: Any, settings: Settings) -> None:
    """Every ``ExternalId`` (parameters and bodies) with the configured length and pattern."""
    if isinstance(node, dict):
        if node.pop(ID_SCHEMA_MARK, False):
            node["maxLength"] = settings.events.max_id_length
            node["pattern"] = settings.events.id_pattern
        for value in node.values():
            _document_ids(value, settings)
    elif isinstance(node, list):
        for value in node:
            _document_ids(value, settings)


def _headers_are_strings(schema: dict[str, Any]) -> None:
    """An optional header is absent or a string, never ``null``: FastAPI writes ``str |
    None`` as ``anyOf [string, null]``, which tells a client (or a fuzzer) that the text
    ``null`` is a valid value. Keep the string branch only."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                branches = parameter.get("schema", {}).get("anyOf")
                if parameter.get("in") != "header" or not branches:
                    continue
                strings = [branch for branch in branches if branch.get("type") != "null"]
                if len(strings) == 1:
                    rest = {k: v for k, v in parameter["schema"].items() if k != "anyOf"}
                    parameter["schema"] = {**strings[0], **rest}


def _document_security(app: FastAPI, schema: dict[str, Any]) -> None:
    """The API-key schemes, on every operation whose dependencies ``require`` a key (the
    check reads the headers itself, so FastAPI cannot see it: ``deps.api_key_of``)."""
    schema["components"]["securitySchemes"] = {
        name: model.model_dump(mode="json", by_alias=True, exclude_none=True)
        for name, model in SECURITY_SCHEMES.items()
    }
    security = [{name: []} for name in SECURITY_SCHEMES]
    # Route contexts carry the dependencies of the routers a route was included with.
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not _requires_key(route.dependant):
            continue
        for method in route.methods or ():
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is not None:
                operation["security"] = security


def _requires_key(dependant: Dependant) -> bool:
    return any(
        getattr(sub.call, "required_scope", None) is not None or _requires_key(sub)
        for sub in dependant.dependencies
    )
