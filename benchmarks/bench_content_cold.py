"""Cold items on MovieLens latest-small: can content embeddings place a new film for warm
users? (issue 6, "cold items").

Protocol, per seed:
1. The dataset is ingested with ``tastebud ingest``'s loader (titles, genres, the top tags
   per film, the release year as ``created_at``) into a private embedded store.
2. 15% of the films with at least 5 ratings are held out as **new**: every rating of them is
   removed from training. ALS (tastebud's ``als``: 64 factors, default matrix options) is
   trained on the rest.
3. Content embeddings are built for the whole catalog (content only: a new film's title,
   genres and tags are known when it arrives; no held-out rating is read). A ridge map
   content -> ALS item factors is fitted on the warm films (``ColdItemScorer``).
4. Test users: training users who rated a held-out film; relevant = their held-out ratings
   >= 4. Each ranks the held-out films only; NDCG@10 averaged over users.

Scorers of the held-out films:
* ``random``: uniform order (mean of 10 shuffles);
* ``genre-popularity``: a film scores the mean training popularity of its genres, the
  popularity a cold film can have (it has no interactions of its own);
* ``content-knn``: cosine of the film's content vector to the mean of the user's liked
  training films (content alone, no CF);
* ``content->cf (ridge)``: ``user_factors @ ridge(content)``, the deliverable;
* ``two-tower content tower``: the two-tower model (issue 23) fitted on the training events
  with the content embeddings; a held-out film is scored by its item tower from content
  alone (with and without the log-Q correction);
* ``oracle-popularity``: held-out films by their number of held-out ratings: NOT attainable
  (it reads the test set), printed as the ceiling a popularity ranking could reach.

Run:  .venv/bin/python benchmarks/bench_content_cold.py [--seeds 3] [--holdout 0.15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe

from tastebud.config import load_settings
from tastebud.content import build
from tastebud.content.cold_items import ColdItemScorer
from tastebud.content.metadata import item_event_counts
from tastebud.content.similarity import ContentSimilarity
from tastebud.data.bulk_load import ingest_sources
from tastebud.data.interactions import from_table
from tastebud.data.loaders import open_sources
from tastebud.data.matrix import MatrixOptions, build_matrix
from tastebud.evaluation.metrics.accuracy import judge, ndcg
from tastebud.models.factors import ALSRecommender
from tastebud.models.neural import TwoTowerRecommender, torch_available
from tastebud.stores import open_stores

DATASETS = Path(
    os.environ.get("TASTEBUD_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets")
)
K = 10


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATASETS / "ml-latest-small")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--holdout", type=float, default=0.15)
    parser.add_argument("--min-ratings", type=int, default=5)
    parser.add_argument("--liked", type=float, default=4.0)
    parser.add_argument(
        "--tower-epochs", type=int, default=5, help="two-tower epochs (0 leaves it out)"
    )
    parser.add_argument("--out", type=Path, help="write the JSON document here too")
    return parser.parse_args(argv)


def load(folder: Path, home: Path) -> tuple[list[Any], pa.Table]:
    os.environ["TASTEBUD_HOME"] = str(home)
    settings = load_settings()
    with open_stores(settings) as stores:
        ingest_sources(open_sources(folder), stores, settings)
        items = list(stores.catalog.iter_items())
        events = stores.events.read_arrow()
    return items, events


def ndcg_of(scores: np.ndarray, relevant: sp.csr_matrix) -> float:
    top = np.argsort(-scores, axis=1, kind="stable")[:, :K]
    return float(np.nanmean(ndcg(judge(top, relevant), K)))


def run_seed(items: list[Any], events: pa.Table, args: argparse.Namespace, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    counts = pc.value_counts(events.column("item_id")).to_pylist()
    eligible = sorted(c["values"] for c in counts if c["counts"] >= args.min_ratings)
    held = sorted(rng.choice(eligible, int(len(eligible) * args.holdout), replace=False))
    is_held = pc.is_in(events.column("item_id"), pa.array(held))
    train = events.filter(pc.invert(is_held))
    test = events.filter(is_held)

    started = time.perf_counter()
    log = from_table(train.select(["user_id", "item_id", "event_type", "value", "timestamp"]))
    matrix = build_matrix(log, MatrixOptions())
    model = ALSRecommender(factors=64, iterations=15, use_gpu=False).fit(matrix)
    fit_seconds = time.perf_counter() - started

    started = time.perf_counter()
    train_counts = item_event_counts(_Events(train))
    artifact = build(items, train_counts, audio_runner=lambda paths, stop_at: iter(())).artifact
    assert artifact is not None
    embed_seconds = time.perf_counter() - started
    content = ContentSimilarity.from_artifact(artifact)
    scorer = ColdItemScorer(model, content).fit()

    # Test users: known to the model, with at least one liked held-out film.
    liked = test.filter(pc.greater_equal(test.column("value"), args.liked))
    users = sorted(set(liked.column("user_id").to_pylist()) & set(model.users_.ids.to_pylist()))
    column = {item_id: i for i, item_id in enumerate(held)}
    row = {user: i for i, user in enumerate(users)}
    pairs = [
        (row[u], column[i])
        for u, i in zip(
            liked.column("user_id").to_pylist(), liked.column("item_id").to_pylist(), strict=True
        )
        if u in row
    ]
    rows_, cols_ = zip(*pairs, strict=True)
    relevant = sp.csr_matrix((np.ones(len(pairs)), (rows_, cols_)), shape=(len(users), len(held)))
    relevant.data[:] = 1.0

    results: dict[str, float] = {}
    results["random"] = statistics.mean(
        ndcg_of(rng.random((len(users), len(held))), relevant) for _ in range(10)
    )
    by_id = {item.item_id: item for item in items}
    popularity = defaultdict(list)
    for item_id, count in train_counts.items():
        for genre in by_id[item_id].categories if item_id in by_id else ():
            popularity[genre].append(count)
    genre_score = np.array(
        [
            np.mean([np.mean(popularity[g]) for g in by_id[i].categories if popularity[g]] or [0])
            for i in held
        ]
    )
    results["genre-popularity"] = ndcg_of(np.tile(genre_score, (len(users), 1)), relevant)

    liked_train = train.filter(pc.greater_equal(train.column("value"), args.liked))
    history: dict[str, list[str]] = defaultdict(list)
    for user, item in zip(
        liked_train.column("user_id").to_pylist(),
        liked_train.column("item_id").to_pylist(),
        strict=True,
    ):
        if user in row:
            history[user].append(item)
    held_vectors, _ = content.vectors_for(held)
    profile = np.zeros((len(users), held_vectors.shape[1]), dtype=np.float32)
    for user, index in row.items():
        vectors, _ = content.vectors_for(history.get(user, []))
        if len(vectors):
            profile[index] = vectors.mean(axis=0)
    results["content-knn"] = ndcg_of(profile @ held_vectors.T, relevant)
    results["content->cf (ridge)"] = ndcg_of(scorer.score(users, held), relevant)
    tower_seconds = {}
    if args.tower_epochs and torch_available():
        # The two-tower model (issue 23): its item tower places a held-out film from its
        # content alone (the id part it never learned is left out, as in id dropout).
        for logq in (True, False):
            started = time.perf_counter()
            tower = TwoTowerRecommender(
                epochs=args.tower_epochs, logq_correction=logq, random_state=seed
            ).fit(matrix, content=(content.items.ids.to_pylist(), content.vectors))
            label = f"two-tower content tower ({'log-Q' if logq else 'no log-Q'})"
            tower_seconds[label] = round(time.perf_counter() - started, 2)
            user_vectors = tower.user_factors_[tower.users_.index(users)]
            cold = tower.content_item_factors(held_vectors)
            results[label] = ndcg_of(user_vectors @ cold.T, relevant)
    oracle = pc.value_counts(test.column("item_id")).to_pylist()
    oracle_count = {c["values"]: c["counts"] for c in oracle}
    oracle_score = np.array([oracle_count.get(i, 0) for i in held], dtype=float)
    results["oracle-popularity (reads the test set)"] = ndcg_of(
        np.tile(oracle_score, (len(users), 1)), relevant
    )
    return {
        "seed": seed,
        "held_out_items": len(held),
        "test_users": len(users),
        "train_events": train.num_rows,
        "ridge_alpha": scorer.mapping_.alpha_,
        "als_fit_seconds": round(fit_seconds, 2),
        "two_tower_fit_seconds": tower_seconds,
        "embed_seconds": round(embed_seconds, 2),
        "coverage": artifact.report["coverage"]["coverage_ratio"],
        "ndcg@10": results,
    }


class _Events:
    """Enough of an EventStore for ``item_event_counts``: the training events only."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table

    def iter_batches(self) -> Any:
        return iter(self.table.to_batches())


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if not (args.data / "movies.csv").is_file():
        print(f"MovieLens latest-small not found at {args.data}; skipped")
        return {}
    with tempfile.TemporaryDirectory(prefix="tastebud-cold-") as scratch:
        items, events = load(args.data, Path(scratch) / "home")
    runs = []
    for seed in range(args.seeds):
        run = run_seed(items, events, args, seed)
        runs.append(run)
        line = ", ".join(f"{name} {value:.4f}" for name, value in run["ndcg@10"].items())
        print(
            f"seed {seed}: {run['held_out_items']} held-out films, "
            f"{run['test_users']} users: {line}"
        )
    medians = {
        name: round(statistics.median(run["ndcg@10"][name] for run in runs), 4)
        for name in runs[0]["ndcg@10"]
    }
    document = {
        "benchmark": "content-cold-items",
        "dataset": "ml-latest-small",
        "items": len(items),
        "events": events.num_rows,
        "protocol": {"holdout": args.holdout, "min_ratings": args.min_ratings, "k": K},
        "median_ndcg@10": medians,
        "runs": runs,
        "machine": describe(),
    }
    print(json.dumps(document, indent=2))
    if args.out:
        args.out.write_text(json.dumps(document, indent=2) + "\n")
    return document


if __name__ == "__main__":
    main()
