"""``tastebud recommend``: top-K lists per user to CSV, in one of two ways.

``--alias NAME`` ranks through the serving pipeline, with the state the HTTP API uses: the
model the alias points to, each user's recent activity from the online store, the filters,
the CF/content blend and the re-rank, the published popular and trending lists, and the
``recommendations`` job's stored lists while they hold. Its list is the one
``GET /v1/users/{id}/recommendations`` answers, with the same 0-1 scores.

``--model DIR|VERSION|ALIAS`` writes the model's own ranking and raw scores, from its
training data alone: what offline evaluation compares, part of the batch contract.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tastebud.cli.common import console, fail, settings_from_context, stores_for
from tastebud.registry.names import ALIASES

if TYPE_CHECKING:
    from tastebud.config import Settings
    from tastebud.models.base import Recommender
    from tastebud.stores import Stores

HEADER = ["user_id", "item_id", "rank", "score"]


def recommend_command(
    ctx: typer.Context,
    users: Annotated[Path, typer.Option(help="One user id per line (a user_id header is ok).")],
    alias: Annotated[
        str | None,
        typer.Option(
            help=f"Rank as the server does ({', '.join(ALIASES)}): the serving pipeline with "
            "each user's recent activity, filters, blend and re-rank; scores 0-1, the same "
            "list as GET /v1/users/{id}/recommendations."
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="A model folder (from train --out), or a registry version or alias: the "
            "model's raw scores and ranking from its training data only (no recent "
            "activity, filters or blend), for offline evaluation."
        ),
    ] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=10_000, help="Items per user.")] = 10,
    out_path: Annotated[
        Path, typer.Option("--out", help="CSV user_id,item_id,rank,score[,explanation].")
    ] = Path("recommendations.csv"),
    explain: Annotated[
        bool, typer.Option("--explain", help="With --alias: add each item's explanation.")
    ] = False,
    batch_size: Annotated[int, typer.Option(min=1)] = 2048,
) -> None:
    """Top-K items per user to CSV: as the server ranks them (--alias), or the model's raw
    ranking (--model). Unknown users get the cold-start (popular) list either way."""
    if (alias is None) == (model is None):
        raise fail("give either --alias (as the server ranks) or --model (the raw model)")
    if explain and alias is None:
        raise fail("--explain needs --alias (the raw model has no explanations)")
    user_ids = _read_users(users, settings_from_context(ctx))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(out_path.name + ".partial")
    if alias is not None:
        if alias not in ALIASES:
            raise fail(f"unknown alias {alias!r}: use one of {', '.join(ALIASES)}")
        rows = _served_rows(ctx, alias, user_ids, k, explain)
    else:
        assert model is not None
        rows = _model_rows(ctx, model, user_ids, k, batch_size)
    try:
        with partial.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(HEADER + (["explanation"] if explain else []))
            writer.writerows(rows)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(out_path)


def _served_rows(
    ctx: typer.Context, alias: str, user_ids: list[str], k: int, explain: bool
) -> Iterator[list[object]]:
    """Rows ranked by ``RecommendationService``, the server's pipeline, on the same stores."""
    # Imported here, not at the top: the ranking pipeline brings numpy, scipy, implicit.
    from tastebud.ranking.pipeline import RankRequest  # lazy: CLI start-up
    from tastebud.ranking.recommender import RecommendationService  # lazy: CLI start-up

    configured = settings_from_context(ctx)
    settings = configured.model_copy(
        update={"serving": configured.serving.model_copy(update={"model_alias": alias})}
    )
    with stores_for(settings) as stores:
        features = _feature_store(settings, stores)
        service = RecommendationService(
            settings, stores, features=lambda: features.service if features else None
        )
        try:
            service.start(watch=False)
            if service.snapshot.model is None:
                raise fail(
                    f"no model behind alias {alias!r}: train one (tastebud train) or promote "
                    f"a version (tastebud models promote VERSION --alias {alias})",
                    1,
                )
            segments: Counter[str] = Counter()
            degraded: Counter[str] = Counter()
            request = RankRequest(k=k, explain=explain)
            for user_id in user_ids:
                served = service.recommend(user_id, request)
                segments[served.ranked.segment] += 1
                degraded.update(set(served.degraded))
                for rank, item in enumerate(served.ranked.items, 1):
                    row: list[object] = [user_id, item.item_id, rank, f"{item.score:.6g}"]
                    if explain:
                        row.append(item.explanation or "")
                    yield row
        finally:
            service.stop()
            if features is not None:
                features.close()
    console.print(
        f"ranked {len(user_ids):,} users x {k} as {alias} "
        f"({service.snapshot.model_version}) serves them: "
        + ", ".join(f"{count:,} {segment}" for segment, count in sorted(segments.items()))
    )
    for reason, count in sorted(degraded.items()):
        console.print(f"[yellow]degraded:[/] {count:,} lists without {reason} (a store failed)")


def _feature_store(settings: Settings, stores: Stores) -> Any:
    """The feature store for cold users' category affinity, as the server has it; None
    when it is not set up (those users are then ranked without it, as the server would)."""
    from tastebud.features.store import open_feature_store  # lazy: pyarrow, DuckDB

    try:
        return open_feature_store(settings, stores.online)
    except Exception as error:  # the server carries on without it too
        console.print(f"[yellow]note:[/] no feature store ({type(error).__name__}: {error})")
        return None


def _model_rows(
    ctx: typer.Context, model: str, user_ids: list[str], k: int, batch_size: int
) -> Iterator[list[object]]:
    fitted = _load(ctx, model)
    unknown = int(sum(fitted.users_.index_of(user) < 0 for user in user_ids))
    for start in range(0, len(user_ids), batch_size):
        batch = user_ids[start : start + batch_size]
        ids, scores = fitted.recommend(batch, k, exclude_seen=True)
        for user, row_ids, row_scores in zip(batch, ids, scores, strict=True):
            for rank, (item, score) in enumerate(zip(row_ids, row_scores, strict=True), 1):
                if item is None:
                    break
                yield [user, item, rank, f"{float(score):.6g}"]
    console.print(
        f"wrote {len(user_ids):,} users x {k} ({unknown:,} unknown users got the cold-start list)"
    )


def smoke_recommendation(model: Recommender) -> None:
    """A loaded model must answer one real request before it is used."""
    from tastebud.models.base import ModelError  # lazy: numpy (CLI start-up)

    user = model.users_.id_of([0]) if len(model.users_) else ["unknown"]
    ids, _ = model.recommend(user, 1)
    if ids.shape != (1, 1):
        raise ModelError("the model answered a smoke request with the wrong shape")


def _load(ctx: typer.Context, model: str) -> Recommender:
    """A model folder, or a registry version or alias (production, canary, shadow)."""
    # Imported here, not at the top: numpy, implicit (CLI start-up).
    from tastebud.models.base import ModelError, Recommender  # lazy: CLI start-up
    from tastebud.registry import RegistryError, open_registry  # lazy: CLI start-up

    path = Path(model)
    try:
        if path.is_dir():
            return Recommender.load(path)
    except ModelError as error:
        raise fail(str(error)) from None
    settings = settings_from_context(ctx)
    with stores_for(settings) as stores:
        registry = open_registry(settings, stores.artifacts)
        try:
            return registry.load(model, Recommender.load, smoke=smoke_recommendation)
        except RegistryError as error:
            raise fail(
                f"{model} is neither a model folder nor a registered model: {error}"
            ) from None


def _read_users(path: Path, settings: Settings) -> list[str]:
    """The file's user ids; one that breaks the id rule (``[events]`` id pattern and
    length) is reported by line and skipped, the others ranked."""
    from pydantic_core import PydanticCustomError  # lazy: CLI start-up

    from tastebud.schemas import check_id  # lazy: CLI start-up

    if not path.is_file():
        raise fail(f"users file {path} does not exist")
    try:
        lines = path.read_text("utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise fail(f"users file {path} is not UTF-8 text") from None
    users: list[str] = []
    for number, line in enumerate(lines, start=1):
        user = line.strip()
        if not user or (number == 1 and user == "user_id"):
            continue
        try:
            users.append(check_id(user, "user_id", settings.events))
        except PydanticCustomError as error:
            console.print(f"[yellow]skipped[/] line {number}: {error.message()}", highlight=False)
    if not users:
        raise fail(f"users file {path} holds no valid user id")
    return users
