"""The manifest of a model version: what was trained, on which data, by which code, and the
sha256 of every file. It is written last, so its presence is what makes a version exist."""

from __future__ import annotations

import functools
import hashlib
import math
import re
import secrets
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
VERSION_PATTERN = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")
VERSION_TIME_FORMAT = "%Y%m%dT%H%M%SZ"
# Set by the registry; a caller passing them would be overruled, so it is told instead.
RESERVED_FIELDS = frozenset({"model_version", "registered_at", "files", "manifest_format"})


def new_version_id(now: datetime | None = None) -> str:
    """``20261122T013000Z-3f9a1c``: sorts by registration time (to the second); the random
    suffix keeps two registrations in the same second apart."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment.strftime(VERSION_TIME_FORMAT)}-{secrets.token_hex(3)}"


def version_time(version: str) -> datetime | None:
    """When a version's registration started, read from its id (None if not a version id)."""
    if not VERSION_PATTERN.match(version):
        return None
    try:
        return datetime.strptime(version[:16], VERSION_TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def jsonable(value: Any, where: str = "manifest") -> Any:
    """Plain JSON types from what training code naturally has at hand (numpy scalars and
    arrays, tuples, paths, datetimes), so a manifest always serializes."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): jsonable(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [jsonable(item, where) for item in items]
    if isinstance(value, datetime):
        return _utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return jsonable(value.tolist(), where)
    if hasattr(value, "item"):
        return jsonable(value.item(), where)
    raise ValueError(f"{where}: {type(value).__name__} is not JSON-serializable")


class FileEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)


class TimeRange(BaseModel):
    """The span of event timestamps the model was trained on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: datetime | None = None
    end: datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_pair(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            if len(value) != 2:
                raise ValueError("time_range must be {start, end} or a [start, end] pair")
            return {"start": value[0], "end": value[1]}
        return value

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return _utc(value) if value is not None else None

    @model_validator(mode="after")
    def _ordered(self) -> TimeRange:
        if self.start and self.end and self.end < self.start:
            raise ValueError("time_range ends before it starts")
        return self


class CodeVersion(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    package: str
    git_commit: str | None = None


class ModelVersion(BaseModel):
    """One registered version's manifest. Fields beyond these are kept as given."""

    model_config = ConfigDict(frozen=True, extra="allow", protected_namespaces=())

    manifest_format: Literal[1] = MANIFEST_FORMAT
    model_version: str = Field(pattern=VERSION_PATTERN.pattern)
    created_at: datetime
    registered_at: datetime
    model: str = Field(min_length=1)
    user_count: int = Field(ge=0)
    item_count: int = Field(ge=0)
    embedding_dim: int | None = Field(default=None, ge=1)
    params: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float | None] = Field(default_factory=dict)
    snapshot: str | dict[str, Any] | None = None
    time_range: TimeRange | None = None
    code_version: CodeVersion
    files: dict[str, FileEntry] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _plain_json(cls, value: Any) -> Any:
        return jsonable(value) if isinstance(value, dict) else value

    @field_validator("created_at", "registered_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return _utc(value)

    @field_validator("files")
    @classmethod
    def _no_manifest_inside(cls, value: dict[str, FileEntry]) -> dict[str, FileEntry]:
        if MANIFEST_NAME in value:
            raise ValueError(f"{MANIFEST_NAME} is the registry's own file name")
        return value

    def to_json(self) -> bytes:
        return (self.model_dump_json(indent=2) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes | str) -> ModelVersion:
        return cls.model_validate_json(data)

    @classmethod
    def from_dir(cls, path: Path) -> ModelVersion:
        """The manifest of a fetched version, so a loader can check shapes against it."""
        return cls.from_json((Path(path) / MANIFEST_NAME).read_bytes())


def validation_message(error: ValidationError) -> str:
    """One line per problem, naming the field: readable in a CLI error."""
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "manifest"
        problems.append(f"{field}: {item['msg'].removeprefix('Value error, ')}")
    return "; ".join(problems)


def hash_file(path: Path) -> FileEntry:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return FileEntry(sha256=digest.hexdigest(), bytes=size)


@functools.cache
def code_version() -> CodeVersion:
    """The tastebud version and, when running from a git checkout, its commit. Read from files
    (no ``git`` process), cached, and never failing: a missing commit is just None."""
    try:
        package = metadata.version("tastebud")
    except metadata.PackageNotFoundError:
        package = "unknown"
    return CodeVersion(package=package, git_commit=git_commit(Path(__file__).resolve().parents[2]))


def git_commit(root: Path) -> str | None:
    try:
        git_dir = root / ".git"
        if git_dir.is_file():  # a worktree or submodule: "gitdir: <path>"
            pointer = git_dir.read_text("utf-8").strip()
            if not pointer.startswith("gitdir:"):
                return None
            git_dir = (root / pointer.removeprefix("gitdir:").strip()).resolve()
        if not git_dir.is_dir():
            return None
        head = (git_dir / "HEAD").read_text("utf-8").strip()
        if not head.startswith("ref:"):
            return head if re.fullmatch(r"[0-9a-f]{40,64}", head) else None
        ref = head.removeprefix("ref:").strip()
        common = git_dir
        if (git_dir / "commondir").is_file():
            common = (git_dir / (git_dir / "commondir").read_text("utf-8").strip()).resolve()
        for base in (git_dir, common):
            if (base / ref).is_file():
                value = (base / ref).read_text("utf-8").strip()
                return value if re.fullmatch(r"[0-9a-f]{40,64}", value) else None
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text("utf-8").splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[1] == ref:
                    return parts[0]
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return None
