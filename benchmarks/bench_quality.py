"""Recommendation quality: tastebud against the usual libraries tuned by hand, one protocol.

Protocol (the models issue's quality bar): per-user temporal 80/20 split (each user's last
20% of interactions by time are the test set); for data without usable time (pairs, play
counts) a seeded random 80/20 per user instead. Relevant = test ratings >= 4 on items seen in
training (explicit data), any held-out interaction otherwise; full ranking over the training
catalog; training items excluded; K = 10.

Peers, called directly (implicit, numpy), as an engineer would wire them:
* implicit ALS, BPR and BM25 item-kNN at their defaults; popularity; EASE at its default
  lambda (200) on binary data, the floor for tastebud's default configuration;
* EASE at its best lambda ON THE TEST SET; implicit ALS at its best grid point ON THE TEST SET
  (factors 32/64/128 x regularization 0.01/0.1/1 x alpha 1/10/40; on play counts the grid is
  also run on BM25-weighted counts, implicit's own last.fm recipe, and the best is kept).
  Tuned on the test set, these are an upper bound for a hand-tuned peer.
tastebud: the default configuration (`tastebud train`) and `tastebud train --auto` with the
given budget, which only ever sees the training part.

Datasets: MovieLens 100K and latest-small from ../shared/datasets (skipped when absent);
``ml-100k-binary`` (MovieLens 100K without timestamps, ratings >= 4 as plain pairs); a
synthetic world (implicit feedback of several event types) and ``playcounts`` (a heavy-tailed
play-count world from the generator: user_id,item_id,weight; no time, no event type). No
default was tuned on the synthetic ones.

Run:  .venv/bin/python benchmarks/bench_quality.py [--budget 300] [--datasets ml-100k,...]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import scipy.sparse as sp
from implicit.als import AlternatingLeastSquares
from implicit.bpr import BayesianPersonalizedRanking
from implicit.nearest_neighbours import BM25Recommender, bm25_weight
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe

from tastebud.data.interactions import from_table
from tastebud.data.synthetic import WorldSpec, generate_world
from tastebud.data.vocabulary import Vocabulary
from tastebud.evaluation import evaluate_rankings, make_splitter, relevance_matrix, time_status
from tastebud.training.holdout import positive_rows
from tastebud.training.pipeline import train

# ../shared/datasets from the main checkout, ../../shared/datasets from a worktree under wt/.
DATASETS = Path(
    os.environ.get("TASTEBUD_DATASETS")
    or next(
        (
            str(parent / "shared" / "datasets")
            for parent in Path(__file__).resolve().parents[1:4]
            if (parent / "shared" / "datasets").is_dir()
        ),
        str(Path(__file__).resolve().parents[2] / "shared" / "datasets"),
    )
)
RESULTS = Path(__file__).resolve().parent / "results" / "quality.json"
K = 10


def movielens(name: str) -> pa.Table:
    """Ratings as user_id, item_id, rating, timestamp (read directly; not redistributed)."""
    folder = DATASETS / name
    if name == "ml-100k":
        table = pacsv.read_csv(
            folder / "u.data",
            read_options=pacsv.ReadOptions(column_names=["u", "i", "r", "t"]),
            parse_options=pacsv.ParseOptions(delimiter="\t"),
        )
    else:
        table = pacsv.read_csv(folder / "ratings.csv").rename_columns(["u", "i", "r", "t"])
    return pa.table(
        {
            "user_id": table.column("u").cast(pa.string()),
            "item_id": table.column("i").cast(pa.string()),
            "event_type": pa.array(["rating"] * table.num_rows),
            "rating": table.column("r").cast(pa.float64()),
            "timestamp": pc.multiply(table.column("t").cast(pa.int64()), 1_000_000).cast(
                pa.timestamp("us", tz="UTC")
            ),
        }
    )


def synthetic(cache: Path) -> pa.Table:
    folder = cache / "synthetic-quality"
    if not (folder / "events.parquet").exists():
        generate_world(WorldSpec(users=3000, items=3000, days=30, seed=11), folder)
    table = pq.read_table(folder / "events.parquet")
    return pa.table(
        {
            "user_id": table.column("user_id"),
            "item_id": table.column("item_id"),
            "event_type": table.column("event_type"),
            "rating": table.column("value"),
            "timestamp": table.column("timestamp"),
        }
    )


def movielens_binary(name: str) -> pa.Table:
    """MovieLens as an implicit-feedback export: ratings >= 4 as plain pairs, no time."""
    table = movielens(name)
    liked = table.filter(pc.greater_equal(table.column("rating"), 4.0))
    return liked.select(["user_id", "item_id"])


def playcounts(cache: Path) -> pa.Table:
    """A heavy-tailed play-count world from the generator, as a last.fm-style export:
    user_id,item_id,weight (plays per pair); no timestamp, no event type."""
    folder = cache / "playcounts"
    if not (folder / "events.parquet").exists():
        spec = WorldSpec(users=1500, items=4000, days=60, seed=5, play_share=0.95,
                         rating_share=0.0, popularity_exponent=0.8, taste_concentration=0.08,
                         activity_sigma=1.2)  # fmt: skip
        generate_world(spec, folder)
    table = pq.read_table(folder / "events.parquet", columns=["user_id", "item_id", "event_type"])
    plays = table.filter(pc.equal(table.column("event_type"), "play"))
    counts = plays.group_by(["user_id", "item_id"]).aggregate([("event_type", "count")])
    return pa.table(
        {
            "user_id": counts.column("user_id"),
            "item_id": counts.column("item_id"),
            "weight": counts.column("event_type_count").cast(pa.float64()),
        }
    )


class Judge:
    """The protocol, fixed once per dataset: split, binary train matrix, relevance."""

    def __init__(self, table: pa.Table, explicit: bool) -> None:
        table = from_table(table).table  # the package's reading of the columns
        self.time = time_status(table)
        if self.time == "usable":
            split = make_splitter("user-temporal", fraction=0.2)(table)
        else:
            split = make_splitter("random-holdout", fraction=0.2, random_state=0)(table)
        self.train_table = split.train
        positive_train = split.train
        self.users = Vocabulary.from_ids(positive_train.column("user_id"))
        self.items = Vocabulary.from_ids(positive_train.column("item_id"))
        rows = self.users.index(positive_train.column("user_id"))
        cols = self.items.index(positive_train.column("item_id"))
        self.binary = sp.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(self.users), len(self.items))
        )
        self.binary.data[:] = 1.0
        # Summed weights (play counts) where the data has them, for the count-aware peers.
        weights = split.train.column("weight").to_numpy(zero_copy_only=False)
        self.counts = None
        if not np.isnan(weights).all():
            self.counts = sp.csr_matrix(
                (np.nan_to_num(weights, nan=1.0).astype(np.float32), (rows, cols)),
                shape=self.binary.shape,
            )
        liked = positive_rows(split.test, min_rating=4.0 if explicit else None)
        relevance = relevance_matrix(liked, self.users, self.items)
        self.eval_users = np.flatnonzero(np.diff(relevance.matrix.indptr) > 0)
        self.relevant = relevance.matrix[self.eval_users]
        self.popularity = np.asarray(self.binary.sum(axis=0)).ravel()
        self.summary = {
            "split": split.protocol,
            "timestamps": self.time,
            "train_rows": split.train.num_rows,
            "test_rows": split.test.num_rows,
            "users": len(self.users),
            "items": len(self.items),
            "evaluated_users": len(self.eval_users),
        }

    def metrics(self, ranked: np.ndarray) -> dict[str, float]:
        return evaluate_rankings(
            ranked,
            self.relevant,
            ks=(K,),
            item_popularity=self.popularity,
            n_train_users=len(self.users),
            train_matrix=self.binary,
        )

    def top_from_scores(self, scores: np.ndarray) -> np.ndarray:
        scores = np.array(scores, dtype=np.float32, copy=True)
        seen = self.binary[self.eval_users].tocoo()
        scores[seen.row, seen.col] = -np.inf
        part = np.argpartition(-scores, K - 1, axis=1)[:, :K]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
        return np.take_along_axis(part, order, axis=1)

    def implicit_top(self, model: Any) -> np.ndarray:
        ids, _ = model.recommend(
            self.eval_users, self.binary[self.eval_users], N=K, filter_already_liked_items=True
        )
        return np.asarray(ids, dtype=np.int64)

    def tastebud_top(self, model: Any) -> np.ndarray:
        user_ids = self.users.id_of(self.eval_users)
        ids, _ = model.recommend(user_ids, K, exclude_seen=True)
        columns = np.full(ids.shape, -1, dtype=np.int64)
        valid = ids != None  # noqa: E711
        columns[valid] = self.items.index(list(ids[valid]))
        return columns


def ease_scores(binary: sp.csr_matrix, l2: float, users: np.ndarray) -> np.ndarray:
    gram = np.asarray((binary.T @ binary).toarray(), dtype=np.float64)
    gram[np.diag_indices_from(gram)] += l2
    inverse = np.linalg.inv(gram)
    weights = -inverse / np.diag(inverse)
    np.fill_diagonal(weights, 0.0)
    return np.asarray(binary[users] @ weights, dtype=np.float32)


def run_dataset(name: str, table: pa.Table, explicit: bool, budget: float) -> dict[str, Any]:
    judge = Judge(table, explicit)
    results: dict[str, Any] = {"dataset": name, "protocol": judge.summary, "models": {}}

    def record(model: str, ranked: np.ndarray, seconds: float, **extra: Any) -> None:
        metrics = judge.metrics(ranked)
        results["models"][model] = {"metrics": metrics, "seconds": round(seconds, 2), **extra}
        print(
            f"{name:<18} {model:<28} ndcg@10 {metrics['ndcg@10']:.4f}  "
            f"coverage {metrics['coverage@10']:.3f}  ({seconds:.1f}s)",
            flush=True,
        )

    with threadpool_limits(1, "blas"):
        for label, factory in (
            ("implicit ALS (defaults)", lambda: AlternatingLeastSquares(random_state=42)),
            ("implicit BPR (defaults)", lambda: BayesianPersonalizedRanking(random_state=42)),
            ("implicit BM25 item-kNN", lambda: BM25Recommender()),
        ):
            started = time.monotonic()
            model = factory()
            model.fit(judge.binary, show_progress=False)
            record(label, judge.implicit_top(model), time.monotonic() - started)

        started = time.monotonic()
        best_als: tuple[float, dict[str, Any], np.ndarray] | None = None
        inputs = {"binary": judge.binary}
        if judge.counts is not None:
            inputs["bm25(counts)"] = bm25_weight(judge.counts, K1=100, B=0.8).tocsr()
        for (kind, matrix), factors, regularization, alpha in itertools.product(
            inputs.items(), (32, 64, 128), (0.01, 0.1, 1.0), (1.0, 10.0, 40.0)
        ):
            model = AlternatingLeastSquares(
                factors=factors, regularization=regularization, alpha=alpha, random_state=42
            )
            model.fit(matrix, show_progress=False)
            ranked = judge.implicit_top(model)
            value = judge.metrics(ranked)["ndcg@10"]
            if best_als is None or value > best_als[0]:
                params = {"input": kind, "factors": factors, "regularization": regularization,
                          "alpha": alpha}  # fmt: skip
                best_als = (value, params, ranked)
        assert best_als is not None
        record("implicit ALS (best on test)", best_als[2], time.monotonic() - started,
               params=best_als[1])  # fmt: skip

    started = time.monotonic()
    ranked = judge.top_from_scores(
        np.broadcast_to(judge.popularity, (len(judge.eval_users), len(judge.popularity)))
    )
    record("popularity", ranked, time.monotonic() - started)

    started = time.monotonic()
    ranked = judge.top_from_scores(ease_scores(judge.binary, 200.0, judge.eval_users))
    record("EASE (default lambda 200)", ranked, time.monotonic() - started, params={"l2": 200.0})

    started = time.monotonic()
    best_ease: tuple[float, float, np.ndarray] | None = None
    for l2 in (1, 10, 50, 100, 200, 300, 500, 1000, 2000, 5000):
        ranked = judge.top_from_scores(ease_scores(judge.binary, l2, judge.eval_users))
        value = judge.metrics(ranked)["ndcg@10"]
        if best_ease is None or value > best_ease[0]:
            best_ease = (value, l2, ranked)
    assert best_ease is not None
    record("EASE (best lambda on test)", best_ease[2], time.monotonic() - started,
           params={"l2": best_ease[1]})  # fmt: skip

    train_log = from_table(judge.train_table)
    started = time.monotonic()
    default = train(train_log)
    seconds = time.monotonic() - started
    record("tastebud train (default)", judge.tastebud_top(default.model), seconds,
           configuration=default.configuration.to_dict())  # fmt: skip

    started = time.monotonic()
    auto = train(train_log, auto=True, budget_seconds=budget)
    search = auto.search.to_dict() if auto.search else None
    record("tastebud train --auto", judge.tastebud_top(auto.model), time.monotonic() - started,
           configuration=auto.configuration.to_dict(),
           trials=len(search["trials"]) if search else 0,
           validation_ndcg=search["validation_ndcg@10"] if search else None)  # fmt: skip

    default_value = results["models"]["tastebud train (default)"]["metrics"]["ndcg@10"]
    plain = results["models"]["EASE (default lambda 200)"]["metrics"]["ndcg@10"]
    results["default_over_plain_ease"] = default_value / plain - 1
    print(f"{name}: default {default_value:.4f} vs plain EASE {plain:.4f} "
          f"({results['default_over_plain_ease']:+.1%})", flush=True)  # fmt: skip
    peers = [
        (label, entry["metrics"]["ndcg@10"])
        for label, entry in results["models"].items()
        if not label.startswith("tastebud")
    ]
    best_label, best_value = max(peers, key=lambda pair: pair[1])
    auto_value = results["models"]["tastebud train --auto"]["metrics"]["ndcg@10"]
    results["best_peer"] = {"model": best_label, "ndcg@10": best_value}
    results["auto_over_best_peer"] = auto_value / best_value - 1
    print(f"{name}: --auto {auto_value:.4f} vs best peer {best_label} {best_value:.4f} "
          f"({results['auto_over_best_peer']:+.1%})", flush=True)  # fmt: skip
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=300.0, help="AutoML budget, seconds")
    parser.add_argument(
        "--datasets", default="ml-100k,ml-latest-small,synthetic,ml-100k-binary,playcounts"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    run: dict[str, Any] = {"machine": describe(), "budget_seconds": args.budget, "datasets": []}
    if args.out.exists():  # keep earlier results of datasets not rerun this time
        run["datasets"] = json.loads(args.out.read_text())["datasets"]
    with tempfile.TemporaryDirectory() as cache:
        for name in args.datasets.split(","):
            if name.startswith("ml-"):
                base = name.removesuffix("-binary")
                if not (DATASETS / base).exists():
                    print(f"skipping {name}: {DATASETS / base} is absent")
                    continue
                if name.endswith("-binary"):
                    table, explicit = movielens_binary(base), False
                else:
                    table, explicit = movielens(name), True
            elif name == "playcounts":
                table, explicit = playcounts(Path(cache)), False
            elif name == "synthetic":
                table, explicit = synthetic(Path(cache)), False
            else:
                parser.error(f"unknown dataset {name!r}")
            result = run_dataset(name, table, explicit, args.budget)
            result["machine"] = describe()
            result["budget_seconds"] = args.budget  # datasets kept from earlier runs keep theirs
            run["datasets"] = [d for d in run["datasets"] if d["dataset"] != name] + [result]
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(run, indent=2, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
