"""The feature registry: feature views declared in YAML manifests, validated on load.

A manifest is one view (a mapping) or several (``views: [...]``). Loading fails with a
message naming the file and the field (a type error, an unknown dependency, a cycle, a view
declared twice), so a bad definition never reaches a job or a server. A view's
``fingerprint`` covers everything that changes its values; the offline store refuses to
store a changed definition under an old version (see ``OfflineStore.check_version``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

BUILTIN_MANIFESTS = Path(__file__).resolve().parent / "manifests"
NAME = r"^[a-z][a-z0-9_]{0,62}$"
SEMVER = r"^\d+\.\d+\.\d+$"

Dtype = Literal["int64", "float64", "string", "bool", "timestamp", "float_list", "string_list"]
ARROW_TYPES: dict[str, pa.DataType] = {
    "int64": pa.int64(),
    "float64": pa.float64(),
    "string": pa.string(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "float_list": pa.list_(pa.float32()),
    "string_list": pa.list_(pa.string()),
}
# The entities features describe, and the key column each is joined on in training data.
ENTITY_KEYS = {"user": "user_id", "item": "item_id"}


class ManifestError(ValueError):
    """A manifest that cannot be loaded; the message names the file and the field."""


class FeatureSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME)
    dtype: Dtype
    description: str = Field(min_length=1)


class SqlSource(BaseModel):
    """SQL (DuckDB dialect) over ``events`` (the last ``window_days`` before ``$as_of``),
    ``items`` and ``users``; returns ``entity_id`` plus one column per feature."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["sql"]
    query: str = Field(min_length=1)
    window_days: float = Field(default=90.0, gt=0)


class PythonSource(BaseModel):
    """``module:function`` taking a ``TransformContext`` and returning an Arrow table (or
    None when there is nothing to compute yet)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["python"]
    transform: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class EntityPythonSource(BaseModel):
    """``module:function(events, as_of)`` over the events of the last ``window_days`` before
    ``as_of``, grouped by the view's entity: it receives every event of each entity it is
    given (an Arrow table in ``EVENT_SCHEMA``) and returns rows for those entities only. So
    any split of the entities gives the same rows, and Spark runs it partition by partition
    on the executors (the local engine calls it once, on the whole window)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["entity_python"]
    transform: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    window_days: float = Field(default=30.0, gt=0)


Source = Annotated[SqlSource | PythonSource | EntityPythonSource, Field(discriminator="kind")]


class FeatureView(BaseModel):
    """Features of one entity computed together by one source, versioned as a unit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME)
    version: str = Field(pattern=SEMVER)
    entity: Literal["user", "item"]
    description: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    ttl_seconds: float = Field(gt=0, description="How long a value stays valid after its time.")
    source: Source
    features: list[FeatureSpec] = Field(min_length=1)
    lineage: list[str] = Field(default_factory=list, description="Upstream tables and models.")
    depends_on: list[str] = Field(default_factory=list, description="Views this one reads.")
    tags: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_features(self) -> FeatureView:
        seen: set[str] = set()
        for index, spec in enumerate(self.features):
            if spec.name in seen:
                raise ValueError(f"features.{index}.name: {spec.name!r} is declared twice")
            seen.add(spec.name)
        return self

    @property
    def feature_names(self) -> list[str]:
        return [spec.name for spec in self.features]

    def dtype(self, feature: str) -> str:
        return next(spec.dtype for spec in self.features if spec.name == feature)

    def arrow_schema(self) -> pa.Schema:
        """entity_id, event_timestamp and the features, as the offline store keeps them."""
        return pa.schema(
            [
                pa.field("entity_id", pa.string(), nullable=False),
                pa.field("event_timestamp", ARROW_TYPES["timestamp"], nullable=False),
                *(pa.field(spec.name, ARROW_TYPES[spec.dtype]) for spec in self.features),
            ]
        )

    @property
    def fingerprint(self) -> str:
        """What decides the values: a change here needs a new version (docs do not)."""
        content = self.model_dump(exclude={"description", "owner", "tags", "version"})
        for spec in content["features"]:
            spec.pop("description")
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class FeatureRef:
    """``view:feature``, or ``view:*`` for every feature of the view."""

    view: str
    feature: str

    @classmethod
    def parse(cls, text: str) -> FeatureRef:
        view, sep, feature = text.partition(":")
        if not sep or not view or not feature:
            raise ValueError(f"feature reference {text!r} is not of the form view:feature")
        return cls(view, feature)

    def __str__(self) -> str:
        return f"{self.view}:{self.feature}"


class FeatureRegistry:
    """The views a deployment knows, by name (built-in manifests plus configured ones)."""

    def __init__(self, views: Iterable[FeatureView], sources: dict[str, str] | None = None):
        self.views: dict[str, FeatureView] = {view.name: view for view in views}
        self.sources = sources or {}

    @classmethod
    def load(cls, paths: Sequence[Path | str] = (), *, builtin: bool = True) -> FeatureRegistry:
        """Views from the built-in manifests and ``paths`` (files or folders of *.yaml)."""
        files: list[Path] = sorted(BUILTIN_MANIFESTS.glob("*.yaml")) if builtin else []
        for path in map(Path, paths):
            if path.is_dir():
                files.extend(sorted([*path.glob("*.yaml"), *path.glob("*.yml")]))
            elif path.is_file():
                files.append(path)
            else:
                raise ManifestError(f"{path}: no such manifest file or folder")
        views: list[FeatureView] = []
        sources: dict[str, str] = {}
        for file in files:
            for view in _read_manifest(file):
                if view.name in sources:
                    raise ManifestError(
                        f"{file}: field name: view {view.name!r} is already declared in "
                        f"{sources[view.name]}"
                    )
                sources[view.name] = str(file)
                views.append(view)
        registry = cls(views, sources)
        registry.check_graph()
        return registry

    def check_graph(self) -> None:
        """Every dependency is a known view and there is no cycle."""
        for view in self.views.values():
            for index, name in enumerate(view.depends_on):
                if name not in self.views:
                    raise ManifestError(
                        f"{self.sources.get(view.name, view.name)}: field depends_on.{index}: "
                        f"unknown view {name!r}"
                    )
        state: dict[str, int] = {}

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                cycle = " -> ".join([*path[path.index(name) :], name])
                raise ManifestError(
                    f"{self.sources.get(name, name)}: field depends_on: cycle {cycle}"
                )
            state[name] = 1
            for dependency in self.views[name].depends_on:
                visit(dependency, [*path, name])
            state[name] = 2

        for name in self.views:
            visit(name, [])

    def view(self, name: str) -> FeatureView:
        try:
            return self.views[name]
        except KeyError:
            raise KeyError(f"unknown feature view {name!r}") from None

    def resolve(self, refs: Iterable[str]) -> tuple[dict[str, list[str]], list[str]]:
        """Group references by view (``view:*`` expands); unknown or malformed ones are
        returned separately so callers can report them as missing rather than fail."""
        grouped: dict[str, list[str]] = {}
        unknown: list[str] = []
        for text in refs:
            try:
                ref = FeatureRef.parse(text)
            except ValueError:
                unknown.append(text)
                continue
            view = self.views.get(ref.view)
            if view is None or (ref.feature != "*" and ref.feature not in view.feature_names):
                unknown.append(text)
                continue
            chosen = grouped.setdefault(view.name, [])
            for name in view.feature_names if ref.feature == "*" else [ref.feature]:
                if name not in chosen:
                    chosen.append(name)
        return grouped, unknown

    def ordered(self) -> list[FeatureView]:
        """Views with every dependency before its dependents (materialization order)."""
        done: list[str] = []

        def visit(name: str) -> None:
            if name in done:
                return
            for dependency in self.views[name].depends_on:
                visit(dependency)
            done.append(name)

        for name in sorted(self.views):
            visit(name)
        return [self.views[name] for name in done]


def _read_manifest(file: Path) -> list[FeatureView]:
    try:
        document = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ManifestError(f"{file}: not valid YAML: {error}") from None
    if isinstance(document, dict) and "views" in document:
        entries, base = document["views"], "views."
        if not isinstance(entries, list):
            raise ManifestError(f"{file}: field views: must be a list of views")
    elif isinstance(document, dict):
        entries, base = [document], ""
    else:
        raise ManifestError(f"{file}: a manifest is a mapping (one view) or has `views:`")
    views = []
    for index, entry in enumerate(entries):
        prefix = f"{base}{index}." if base else ""
        try:
            views.append(FeatureView.model_validate(entry))
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"] if part not in ("sql", "python"))
            field = f"{prefix}{where}" if where else (prefix.rstrip(".") or "(view)")
            raise ManifestError(
                f"{file}: field {field}: {first['msg']} ({len(error.errors())} error(s))"
            ) from None
    return views


def now_utc() -> datetime:
    return datetime.now(UTC)


def canonical(dtype: str, value: Any) -> Any:
    """A value in the JSON form both stores keep: floats as floats, timestamps as ISO UTC
    strings, lists as lists; parity compares these forms."""
    if value is None:
        return None
    if dtype == "timestamp":
        if isinstance(value, datetime):
            moment = value if value.tzinfo else value.replace(tzinfo=UTC)
            return moment.astimezone(UTC).isoformat()
        return str(value)
    if dtype == "float64":
        return float(value)
    if dtype == "int64":
        return int(value)
    if dtype == "bool":
        return bool(value)
    if dtype == "float_list":
        return [float(x) for x in value]
    if dtype == "string_list":
        return [str(x) for x in value]
    return str(value)


def check_name(text: str) -> bool:
    return re.fullmatch(NAME, text) is not None
