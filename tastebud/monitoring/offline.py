"""The offline side of monitoring: the production model, its lists judged on the most recent
days (the evaluation package's metrics) and its training-time baseline.

The baseline is measured the same way as the live figure, so the two compare: the version's
recipe (its manifest's ``params``) is refitted on its training data up to ``eval_days``
before the data's end and judged on those last days, i.e. on days it had not seen, as the
live evaluation judges days after the training data. It is computed once per version and
kept in the history (check ``baseline``); the live evaluation judges only events after the
training data's end, never ones the model was fitted on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tastebud.config import Settings
from tastebud.data.interactions import read_event_store
from tastebud.evaluation import evaluate_rankings
from tastebud.evaluation.metrics.accuracy import judge, ndcg
from tastebud.quality.reference import NoReference, production_manifest
from tastebud.stores import EventQuery
from tastebud.training.holdout import Holdout

if TYPE_CHECKING:
    from tastebud.models.base import Recommender
    from tastebud.registry import ModelVersion
    from tastebud.stores import Stores

LIST_KS = (10, 20)
SCORE_BINS = 10  # deciles of the training-time scores


class CannotJudge(Exception):
    """Too little data to judge (the message says what is missing)."""


class Waiting(CannotJudge):
    """Too little time since the training data ended to judge a full window yet."""


@dataclass(frozen=True)
class Production:
    manifest: ModelVersion
    model: Recommender
    start: datetime | None  # the training data's first event
    end: datetime  # just after its last event

    @property
    def version(self) -> str:
        return self.manifest.model_version


def load_production(stores: Stores, settings: Settings) -> Production:
    """The production version, loaded and verified, or ``NoReference`` saying why not."""
    from tastebud.models import load_model
    from tastebud.registry import open_registry

    manifest = production_manifest(stores, settings)
    if manifest.time_range is None or manifest.time_range.end is None:
        raise NoReference(f"production version {manifest.model_version} records no time range")
    registry = open_registry(settings, stores.artifacts)
    model = registry.load(manifest.model_version, lambda path: load_model(str(path)))
    end = manifest.time_range.end + timedelta(microseconds=1)  # the range's end is inclusive
    return Production(manifest, model, manifest.time_range.start, end)


def read_window(stores: Stores, start: datetime | None, end: datetime) -> pa.Table:
    return read_event_store(stores.events, EventQuery(start=start, end=end)).table


def judge_lists(model: Recommender, held_out: pa.Table, settings: Settings) -> dict[str, float]:
    """NDCG@10, Recall@20 and the lists' coverage, diversity, personalization and Gini of
    ``model`` on ``held_out`` (users it knows, at most ``max_users`` of them, seeded)."""
    monitoring = settings.monitoring
    holdout = Holdout.build(model, held_out, settings.events.types).sample(monitoring.max_users)
    if len(holdout) < monitoring.min_users:
        raise CannotJudge(
            f"{len(holdout)} users with a relevant event the model can rank "
            f"(at least [monitoring] min_users = {monitoring.min_users})"
        )
    ranked = holdout.rank(model, max(LIST_KS))
    found = evaluate_rankings(ranked, holdout.relevant, ks=LIST_KS, train_matrix=holdout.train)
    names = ("ndcg@10", "recall@20", "coverage@10", "ild@10", "personalization@10", "gini@10")
    per_user = ndcg(judge(ranked, holdout.relevant), 10)
    per_user = per_user[np.isfinite(per_user)]
    spread = float(per_user.std(ddof=1) / np.sqrt(len(per_user))) if len(per_user) > 1 else 0.0
    return {
        **{name: float(found[name]) for name in names},
        "ndcg@10.se": spread,  # its standard error over users: how much is chance
        "users": float(len(holdout)),
    }


def score_sample(model: Recommender, table: pa.Table, settings: Settings) -> np.ndarray:
    """The top-10 scores the model gives the (sampled) users of ``table`` it knows."""
    users = pc.unique(table.column("user_id"))
    rows = model.users_.index(users)
    rows = np.unique(rows[rows >= 0])
    if len(rows) > settings.monitoring.max_users:
        rng = np.random.default_rng(0)
        rows = np.sort(rng.choice(rows, settings.monitoring.max_users, replace=False))
    if len(rows) == 0:
        return np.empty(0)
    _, scores = model.recommend_indices(rows, 10, exclude_seen=True)
    values = np.asarray(scores, dtype=np.float64).ravel()
    return values[np.isfinite(values)]


def score_bins(reference: np.ndarray) -> list[float]:
    """Inner edges of the reference's deciles (duplicates merged: tied scores)."""
    edges = np.quantile(reference, np.linspace(0, 1, SCORE_BINS + 1)[1:-1])
    return sorted({float(edge) for edge in edges})


def histogram(values: np.ndarray, edges: list[float]) -> list[float]:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return [float(count) for count in counts]


def training_baseline(
    stores: Stores, settings: Settings, production: Production
) -> tuple[dict[str, float], dict[str, Any]]:
    """The version's metrics at training time (the module docstring) and its reference
    score distribution (deciles of its scores for the users of its last days)."""
    from tastebud.data.interactions import InteractionsError
    from tastebud.training.configuration import Configuration, fit_configuration

    params = production.manifest.params
    if not isinstance(params, dict) or "model" not in params:
        raise CannotJudge(f"version {production.version} records no recipe to refit")
    cut = production.end - timedelta(days=settings.monitoring.eval_days)
    if production.start is not None and cut <= production.start:
        raise CannotJudge(
            f"version {production.version} was trained on less than "
            f"{settings.monitoring.eval_days} days ([monitoring] eval_days)"
        )
    earlier = read_event_store(stores.events, EventQuery(start=production.start, end=cut))
    last_days = read_window(stores, cut, production.end)
    try:
        refit, _ = fit_configuration(earlier, Configuration(**params), settings.events.types)
    except InteractionsError as error:
        raise CannotJudge(
            f"the recipe cannot be refitted before {cut.isoformat()}: {error}"
        ) from None
    metrics = judge_lists(refit, last_days, settings)
    scores = score_sample(production.model, last_days, settings)
    if len(scores) == 0:
        raise CannotJudge("no user of the training data's last days has a score")
    edges = score_bins(scores)
    details = {
        "refit_before": cut.isoformat(),
        "judged": [cut.isoformat(), production.end.isoformat()],
        "score_edges": edges,
        "score_counts": histogram(scores, edges),
        "score_mean": float(scores.mean()),
    }
    return metrics, details


def new_data(stores: Stores, production: Production, as_of: datetime) -> tuple[int, int]:
    """Events since the training data's end, and the distinct items among them the model
    does not know (read in bounded batches)."""
    query = EventQuery(start=production.end, end=as_of)
    known = production.model.items_.ids
    unknown: set[str] = set()
    events = 0
    for batch in stores.events.iter_batches(query):
        events += batch.num_rows
        items = pc.unique(batch.column("item_id"))
        unknown.update(pc.filter(items, pc.invert(pc.is_in(items, value_set=known))).to_pylist())
    return events, len(unknown)
