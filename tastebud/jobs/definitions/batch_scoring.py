"""The ``recommendations`` job on Spark: every known user's default list ranked on the
executors, partition by partition, with the same ``RecommendationService`` (and so the same
ranking pipeline) the server and the local job run, each partition writing its lists to the
online store ``WRITE_BATCH`` at a time.

The driver pins the production version it loaded and broadcasts the model's files (checked
against the registry's checksums) with the settings; each executor serves that version from
the broadcast copy (``BroadcastRegistry``), so a promotion during the run cannot mix two
models in one run, and executors never fetch the model themselves. Everything else a list
depends on (recent activity, published lists, features, the catalog) the executors read
from the shared stores, so they must be reachable from them: PostgreSQL or the embedded
store on a shared disk, and an online store every process sees (Redis; not ``memory://``).
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa

from tastebud.config import Settings
from tastebud.engines import EngineError
from tastebud.jobs.base import JobContext
from tastebud.jobs.definitions.common import engine
from tastebud.jobs.definitions.precompute import Tally, features_for, rank_users
from tastebud.ranking.recommender import RecommendationService
from tastebud.registry import open_registry
from tastebud.stores import open_stores

if TYPE_CHECKING:
    from tastebud.registry.registry import ModelRegistry

T = TypeVar("T")
TALLY_SCHEMA = pa.schema(
    [("written", pa.int64()), ("degraded", pa.int64()), ("segments", pa.string())]
)


class BroadcastRegistry:
    """The registry as an executor sees it: ``alias`` points at the pinned version, whose
    files come from the broadcast copy; everything else is the real registry's."""

    def __init__(
        self, registry: ModelRegistry, alias: str, version: str, files: dict[str, bytes]
    ) -> None:
        self._registry = registry
        self._alias = alias
        self._version = version
        self._files = files
        self._folder: tempfile.TemporaryDirectory[str] | None = None

    def aliases(self) -> dict[str, str]:
        return {**self._registry.aliases(), self._alias: self._version}

    def load(
        self, ref: str, loader: Callable[[Path], T], smoke: Callable[[T], object] | None = None
    ) -> T:
        if ref != self._version:
            return self._registry.load(ref, loader, smoke)
        if self._folder is None:
            self._folder = tempfile.TemporaryDirectory(prefix="tastebud-model-")
            for name, data in self._files.items():
                target = Path(self._folder.name, name)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        model = loader(Path(self._folder.name))
        if smoke is not None and smoke(model) is False:
            raise EngineError(f"the broadcast model {ref} failed its smoke check")
        return model

    def close(self) -> None:
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._registry, name)


def model_files(folder: Path) -> dict[str, bytes]:
    """Every file of a fetched (checksum-verified) model version, by relative path."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def rank_on_spark(context: JobContext, service: RecommendationService, users: list[str]) -> Tally:
    """Rank ``users`` on the Spark executors; the summed tally of every partition."""
    settings = context.settings
    if settings.resolved_online_url.startswith("memory:"):
        raise EngineError(
            "the recommendations job on Spark writes from the executors: it needs an online "
            "store every process sees (redis://, or sqlite:// on one machine), not memory://"
        )
    version = service.snapshot.model_version
    assert version is not None
    shared = {
        "settings": settings.model_dump(mode="json"),
        "version": version,
        "files": service.registry.load(version, model_files),
    }
    rows = engine(context).map_ids(users, rank_partition, shared, TALLY_SCHEMA)
    context.check()
    tally = Tally()
    for row in rows.to_pylist():
        tally.add(Tally(row["written"], row["degraded"], json.loads(row["segments"])))
    return tally


def rank_partition(
    batches: Iterator[pa.RecordBatch], shared: dict[str, Any]
) -> Iterator[pa.RecordBatch]:
    """On an executor: rank the users of one partition and store their lists; one tally
    row out. Opens its own stores and service (pinned to the broadcast model)."""
    settings = Settings.model_validate(shared["settings"])
    stores = open_stores(settings)
    registry = BroadcastRegistry(
        open_registry(settings, stores.artifacts),
        settings.serving.model_alias,
        shared["version"],
        shared["files"],
    )
    features = features_for(settings, stores)
    service = RecommendationService(
        settings,
        stores,
        registry=registry,  # type: ignore[arg-type]  (the registry's interface, pinned)
        features=lambda: features.service if features else None,
    )
    tally = Tally(segments=Counter())
    try:
        service.start(watch=False)
        if service.snapshot.model_version != shared["version"]:
            raise EngineError(f"executor could not load the broadcast model {shared['version']}")
        for batch in batches:
            users = [str(user) for user in batch.column("id").to_pylist()]
            tally.add(rank_users(service, users, stores.online, settings.serving, _no_check))
    finally:
        service.stop()
        if features is not None:
            features.close()
        registry.close()
        stores.close()
    yield pa.RecordBatch.from_pydict(
        {
            "written": [tally.written],
            "degraded": [tally.degraded],
            "segments": [json.dumps(dict(tally.segments))],
        },
        schema=TALLY_SCHEMA,
    )


def _no_check() -> None:
    """Executors have no job context; the driver checks for cancellation around the map."""
