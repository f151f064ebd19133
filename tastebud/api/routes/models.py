"""``/v1/models``: the model registry over HTTP, for the dashboard's models page.

Reads (``read`` scope): the registered versions with their metrics and the aliases, and one
version's ``training.json`` (its AutoML search: trials, the best-so-far curve; the training
data's snapshot). Writes (``admin`` scope): promote a version to an alias and roll an alias
back, each validated first by the serving stack's own load (fetched, checksum-verified,
loaded, one recommendation asked), so a version that would not serve is refused (409) and
the alias stays where it was.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from tastebud.api.deps import require
from tastebud.api.errors import ApiError
from tastebud.api.routes.recommendations import service_of
from tastebud.registry import (
    ModelLoadError,
    ModelRegistry,
    RegistryError,
    UnknownAlias,
    VersionNotFound,
)
from tastebud.registry.manifest import VERSION_PATTERN
from tastebud.registry.names import ALIASES, TRAINING_FILE
from tastebud.stores import StoreUnavailable

router = APIRouter(tags=["models"])
Alias = Literal["production", "canary", "shadow"]
# A version id or an alias (what ``ModelRegistry.resolve`` takes), as one pattern.
VERSION_OR_ALIAS = rf"^(?:{'|'.join(ALIASES)}|{VERSION_PATTERN.pattern.strip('^$')})$"
VersionId = Annotated[str, Path(pattern=VERSION_OR_ALIAS, description="A version or alias.")]


class VersionOut(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_version: str
    model: str
    created_at: str
    registered_at: str
    user_count: int
    item_count: int
    params: dict[str, Any]
    metrics: dict[str, float | None] = Field(description="Holdout metrics; empty when none.")
    aliases: list[str] = Field(description="The aliases that point at this version now.")


class ModelsOut(BaseModel):
    versions: list[VersionOut] = Field(description="Newest first.")
    aliases: dict[str, str]


class PromoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    version: str = Field(pattern=VERSION_OR_ALIAS, description="A version, or an alias to copy.")


class AliasChangeOut(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    alias: str
    model_version: str
    previous: str | None


def _registry(request: Request) -> ModelRegistry:
    return service_of(request.app).registry


async def _call(function: Any, *arguments: Any) -> Any:
    """A registry call off the loop, its refusals as the API's errors."""
    try:
        return await run_in_threadpool(function, *arguments)
    except VersionNotFound as error:
        raise ApiError(404, "unknown_model_version", str(error)) from None
    except UnknownAlias as error:
        raise ApiError(422, "invalid_model_version", str(error)) from None
    except ModelLoadError as error:
        raise ApiError(409, "model_refused", f"refused: {error.reason}") from None
    except StoreUnavailable as error:
        raise ApiError(503, "store_unavailable", f"model registry: {error}") from None
    except RegistryError as error:
        raise ApiError(409, "registry_refused", str(error)) from None


def _listing(registry: ModelRegistry) -> ModelsOut:
    aliases = registry.aliases()
    pointing: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        pointing.setdefault(version, []).append(alias)
    return ModelsOut(
        aliases=aliases,
        versions=[
            VersionOut(
                model_version=v.model_version,
                model=v.model,
                created_at=v.created_at.isoformat(),
                registered_at=v.registered_at.isoformat(),
                user_count=v.user_count,
                item_count=v.item_count,
                params=v.params,
                metrics=v.metrics,
                aliases=sorted(pointing.get(v.model_version, [])),
            )
            for v in registry.list_versions()
        ],
    )


@router.get(
    "/v1/models",
    response_model=ModelsOut,
    summary="Registered model versions and aliases",
    dependencies=[Depends(require("read"))],
)
async def list_models(request: Request) -> Any:
    return await _call(_listing, _registry(request))


@router.get(
    "/v1/models/{version}/training",
    summary="A version's training.json: its search (trials, curve) and data snapshot",
    dependencies=[Depends(require("read"))],
)
async def training_of(request: Request, version: VersionId) -> Any:
    registry = _registry(request)
    resolved = await _call(registry.resolve, version)
    try:
        data = await run_in_threadpool(registry.read_file, resolved, TRAINING_FILE)
    except (RegistryError, FileNotFoundError, KeyError):
        raise ApiError(
            404, "no_training_record", f"version {resolved} has no {TRAINING_FILE}"
        ) from None
    return json.loads(data)


def _promote(request: Request, ref: str, alias: str) -> AliasChangeOut:
    service = service_of(request.app)
    registry = service.registry
    before = registry.aliases().get(alias)
    service.load_model(registry.resolve(ref))  # raises ModelLoadError: the alias stays
    manifest = registry.promote(ref, alias)
    return AliasChangeOut(alias=alias, model_version=manifest.model_version, previous=before)


def _rollback(request: Request, alias: str) -> AliasChangeOut:
    service = service_of(request.app)
    registry = service.registry
    before = registry.aliases().get(alias)
    previous = registry.alias_state(alias).previous
    if previous:
        service.load_model(registry.resolve(previous[-1]))
    manifest = registry.rollback(alias)  # refuses an alias with no previous version
    return AliasChangeOut(alias=alias, model_version=manifest.model_version, previous=before)


@router.post(
    "/v1/models/aliases/{alias}/promote",
    response_model=AliasChangeOut,
    summary="Point an alias at a version (validated first)",
    dependencies=[Depends(require("admin"))],
)
async def promote(request: Request, alias: Alias, body: PromoteIn) -> Any:
    return await _call(_promote, request, body.version, alias)


@router.post(
    "/v1/models/aliases/{alias}/rollback",
    response_model=AliasChangeOut,
    summary="Point an alias back at its previous version (validated first)",
    dependencies=[Depends(require("admin"))],
)
async def rollback(request: Request, alias: Alias) -> Any:
    return await _call(_rollback, request, alias)
