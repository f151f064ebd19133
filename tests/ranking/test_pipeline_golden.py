"""The lists the ranking pipeline serves stay identical across refactors: sampled requests
over fixed worlds, compared with lists recorded before the pipeline was split into stages
(issue 17, recorded from main at ba44745).

The worlds are fixed: models saved under ``data/golden/`` (so a different BLAS cannot move
a factor), a catalog dated against a fixed clock, seeded content vectors. The requests cover
every stage: known, unknown and anonymous users; recent activity before and after training
(fold-in), dislikes, session items; categories, exclusions, published trending and popular
lists, category affinity; MMR, caps and balance on and off; factor and dense models,
content alone, a bare catalog.

Re-record (only when a change to the lists is intended, and say so in CHANGELOG)::

    .venv/bin/python tests/ranking/test_pipeline_golden.py --record
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tastebud.config import load_settings
from tastebud.content.similarity import ContentSimilarity
from tastebud.models.base import Recommender
from tastebud.ranking.pipeline import Activity, RankRequest, UserContext, rank
from tastebud.ranking.snapshot import ServingModel, Snapshot
from tastebud.schemas import Item

DATA = Path(__file__).resolve().parent / "data" / "golden"
RECORDED = DATA / "lists.json"
NOW = datetime(2024, 6, 1, tzinfo=UTC)
TRAINED_UNTIL = datetime(2023, 12, 31, tzinfo=UTC).timestamp()
CATEGORIES = ("rock", "jazz", "pop")


def catalog() -> list[Item]:
    items = [
        Item(
            item_id=f"i{n}",
            title=f"Song {n}",
            creator=f"artist{n % 12}",
            categories=[CATEGORIES[n % 3], CATEGORIES[(n + 1) % 3]]
            if n % 5 == 0
            else [CATEGORIES[n % 3]],
            created_at=NOW - timedelta(days=3 + 2 * n),
            active=n % 17 != 4,
        )
        for n in range(60)
    ]
    items += [
        Item(
            item_id=f"new{n}",
            title=f"New {n}",
            creator=f"newcomer{n % 3}",
            categories=[CATEGORIES[n % 3]],
            created_at=NOW - timedelta(days=1 + n / 4),
        )
        for n in range(8)
    ]
    return items


def content() -> ContentSimilarity:
    """Vectors for most catalog items (some model items and one new item have none)."""
    ids = [f"i{n}" for n in range(60) if n % 7 != 3] + [f"new{n}" for n in range(7)]
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(3, 24))
    rows = []
    for item_id in ids:
        n = int(item_id.removeprefix("new").removeprefix("i"))
        rows.append(centres[n % 3] + 0.8 * rng.normal(size=24))
    vectors = np.asarray(rows, dtype=np.float32)
    return ContentSimilarity(ids, vectors / np.linalg.norm(vectors, axis=1, keepdims=True))


def model(name: str) -> Recommender:
    return Recommender.load(DATA / name)


def fit_models() -> None:
    """Fit and save the worlds' models (``--record`` only)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from interaction_data import clustered_log

    from tastebud.data.matrix import MatrixOptions, build_matrix
    from tastebud.models import make_model

    matrix = build_matrix(clustered_log(), MatrixOptions())
    make_model("als", factors=16, iterations=15, use_gpu=False, random_state=0).fit(matrix).save(
        DATA / "als"
    )
    make_model("ease", l2=10.0).fit(matrix).save(DATA / "ease")


def worlds() -> dict[str, Snapshot]:
    items = catalog()
    als = ServingModel.prepare(
        model("als"), "als-v1", exact_threshold=10_000, trained_until=TRAINED_UNTIL
    )
    ease = ServingModel.prepare(
        model("ease"), "ease-v1", exact_threshold=10_000, trained_until=TRAINED_UNTIL
    )
    similarity = content()
    return {
        "als": Snapshot.build(als, None, items, now=NOW),
        "als+content": Snapshot.build(als, similarity, items, content_version="c1", now=NOW),
        "ease+content": Snapshot.build(ease, similarity, items, content_version="c1", now=NOW),
        "content": Snapshot.build(None, similarity, items, content_version="c1", now=NOW),
        "catalog": Snapshot.build(None, None, items, now=NOW),
    }


def settings_variants() -> dict[str, Any]:
    base = load_settings().ranking
    return {
        "default": base,
        "no-mmr": base.with_overrides({"mmr": {"enabled": False}}),
        "diverse": base.with_overrides(
            {"mmr": {"diversity": 0.7}, "category_balance": {"enabled": True, "max_share": 0.4}}
        ),
        "no-caps": base.with_overrides(
            {"creator_cap": {"enabled": False}, "filters": {"consumed": False, "negative": False}}
        ),
        "narrow": base.with_overrides(
            {
                "candidates": {"cf": 15, "content": 10, "fresh": 0, "max_total": 25, "popular": 5},
                "blend": {"alpha": 0.4},
                "cold_start": {"min_interactions": 1},
                "recency": {"weight": 0.5, "cap": 0.3, "half_life_days": 3},
            }
        ),
    }


def at(days_after_training: float) -> float:
    return TRAINED_UNTIL + days_after_training * 86_400


def contexts() -> dict[str, UserContext]:
    popular = [f"i{n}" for n in (0, 3, 6, 9, 12, 1, 4, 7, 2, 5)] + ["gone1"]
    trending = ["new2", "i10", "i11", "unknown-item", "i44"]
    return {
        "known": UserContext(user_id="u0"),
        "known-jazz": UserContext(user_id="u4", popular=popular, trending=trending),
        "known-recent": UserContext(
            user_id="u2",
            recent=[
                Activity("i5", "play", at(-3), 1.0),  # before training: not folded in
                Activity("i8", "play", at(10), 1.0),
                Activity("i11", "like", at(11), 4.0),
                Activity("i14", "skip", at(12), -1.0),
                Activity("i8", "skip", at(13), -1.0),  # the newest event on i8 is a dislike
                Activity("new1", "play", at(14), 1.0),
            ],
            trending=trending,
        ),
        "unknown": UserContext(user_id="stranger", popular=popular, trending=trending),
        "unknown-affinity": UserContext(
            user_id="stranger",
            popular=popular,
            trending=trending,
            category_affinity={"jazz": 0.8, "pop": 0.1},
        ),
        "new-user-two-plays": UserContext(
            user_id="fresh",
            recent=[
                Activity("i0", "play", at(20), 1.0),
                Activity("i3", "like", at(21), 4.0),
                Activity("unknown-item", "play", at(22), 1.0),
            ],
            popular=popular,
        ),
        "session": UserContext(user_id=None, session_items=["i1", "i4", "new0"], trending=trending),
        "anonymous": UserContext(user_id=None),
    }


def requests() -> dict[str, RankRequest]:
    now = NOW.timestamp()
    return {
        "k20": RankRequest(k=20, now=now),
        "k5-quiet": RankRequest(k=5, explain=False, now=now),
        "jazz": RankRequest(k=8, category="jazz", now=now),
        "exclude": RankRequest(
            k=10, exclude=frozenset({"i0", "i3", "i6", "new2", "nope"}), now=now
        ),
        "k60": RankRequest(k=60, now=now),
    }


def cases() -> list[tuple[str, str, str, str]]:
    """(world, settings, context, request) names: every context and request on the richest
    world with default settings, and a spread of the rest."""
    chosen: list[tuple[str, str, str, str]] = []
    for context in contexts():
        for request in requests():
            chosen.append(("als+content", "default", context, request))
    for world in ("als", "ease+content", "content", "catalog"):
        for context in ("known", "known-recent", "unknown", "session", "new-user-two-plays"):
            for request in ("k20", "jazz", "exclude"):
                chosen.append((world, "default", context, request))
    for settings in ("no-mmr", "diverse", "no-caps", "narrow"):
        for world in ("als+content", "ease+content", "als"):
            for context in ("known", "known-recent", "unknown-affinity", "session"):
                chosen.append((world, settings, context, "k20"))
    return chosen


def run_all() -> dict[str, Any]:
    snapshots, variants = worlds(), settings_variants()
    known_contexts, known_requests = contexts(), requests()
    out: dict[str, Any] = {}
    for world, settings, context, request in cases():
        ranked = rank(
            snapshots[world], known_contexts[context], known_requests[request], variants[settings]
        )
        out["/".join((world, settings, context, request))] = {
            "items": [
                [item.item_id, item.score, item.sources, item.explanation, item.title, item.creator]
                for item in ranked.items
            ],
            "model_version": ranked.model_version,
            "segment": ranked.segment,
            "blend_ratio": ranked.blend_ratio,
            "diversity": ranked.diversity,
            "recency_weight": ranked.recency_weight,
            "candidates": ranked.candidates,
            "relaxed_caps": ranked.relaxed_caps,
        }
    return out


@pytest.fixture(scope="module")
def recorded() -> dict[str, Any]:
    return json.loads(RECORDED.read_text())


@pytest.fixture(scope="module")
def now_ranked() -> dict[str, Any]:
    return run_all()


def test_every_recorded_case_is_ranked(
    recorded: dict[str, Any], now_ranked: dict[str, Any]
) -> None:
    assert sorted(now_ranked) == sorted(recorded)
    assert len(recorded) > 100


@pytest.mark.parametrize("case", ["/".join(c) for c in cases()])
def test_lists_are_identical_to_the_recorded_ones(
    case: str, recorded: dict[str, Any], now_ranked: dict[str, Any]
) -> None:
    expected, got = recorded[case], now_ranked[case]
    assert [row[0] for row in got["items"]] == [row[0] for row in expected["items"]]
    for mine, theirs in zip(got["items"], expected["items"], strict=True):
        assert mine[2:] == theirs[2:]  # sources, explanation, title, creator
        assert mine[1] == pytest.approx(theirs[1], abs=2e-6)
    for key in ("model_version", "segment", "candidates", "relaxed_caps"):
        assert got[key] == expected[key], key
    for key in ("blend_ratio", "diversity", "recency_weight"):
        assert got[key] == pytest.approx(expected[key], abs=1e-5), key


if __name__ == "__main__":
    if "--record" not in sys.argv:
        sys.exit("usage: test_pipeline_golden.py --record")
    DATA.mkdir(parents=True, exist_ok=True)
    if "--refit" in sys.argv or not (DATA / "als").exists():
        fit_models()
    recorded_lists = run_all()
    RECORDED.write_text(json.dumps(recorded_lists, indent=1, sort_keys=True) + "\n")
    print(f"recorded {len(recorded_lists)} lists in {RECORDED}")
