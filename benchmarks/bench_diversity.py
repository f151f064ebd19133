"""Diversity against accuracy: MMR re-ranking over lambda on MovieLens 100K.

Requirement: intra-list diversity gained over plain CF ranking for at most 5% NDCG@10 lost;
the trade-off over lambda charted in docs/diversity_tradeoff.png.

Protocol (one fixed seed, ALS's ``random_state``):
1. MovieLens 100K is ingested with tastebud's loader (titles with the year, genres, release
   date as ``created_at``) into a private embedded store in a temporary folder; the data is
   read where it lies (its license forbids copying it into the repository).
2. Per-user temporal 80/20 split (``user-temporal``, as ``bench_quality.py``); relevant =
   test ratings >= 4 on films seen in training; evaluated users = those with one.
3. ALS (64 factors, regularization 0.05, alpha 2, 15 iterations, default matrix options) is
   fitted on train; content embeddings of the whole catalog are built from metadata only
   (``tastebud.content.build``, no audio; creator popularity from the training events).
4. Every evaluated user is ranked through the serving pipeline, ``ranking.pipeline.rank``,
   k = 10, on a ``Snapshot`` holding the model and the content similarity, with CF
   candidates only (top 200), no creator cap, no recency, and ``blend.alpha = 1`` so the
   relevance MMR trades against is the CF score alone (with the default alpha 0.8 the
   snapshot's content embeddings would enter the relevance too). MMR's similarity is the
   content cosine; lambda = 0 is plain CF ranking.
5. Per lambda: mean NDCG@10 (``evaluation.metrics.accuracy``) and mean intra-list diversity
   (``evaluation.metrics.beyond.intra_list_diversity``) over the content vectors (the space
   MMR optimises) and over binary genre vectors (cosine distance), so the gain is not only
   measured in the space it was bought in. The pipeline's own ``RankedList.diversity`` is
   recorded as a cross-check of the content ILD.

Run:  .venv/bin/python benchmarks/bench_diversity.py [--dataset-dir /work/shared/datasets]
"""

from __future__ import annotations

import argparse
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
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe

from tastebud.config import load_settings
from tastebud.content import build
from tastebud.content.similarity import ContentSimilarity
from tastebud.data.bulk_load import ingest_sources
from tastebud.data.interactions import from_table
from tastebud.data.loaders import open_sources
from tastebud.data.matrix import MatrixOptions, build_matrix
from tastebud.evaluation import make_splitter, relevance_matrix
from tastebud.evaluation.metrics.accuracy import judge, ndcg
from tastebud.evaluation.metrics.beyond import intra_list_diversity
from tastebud.models import ALSRecommender
from tastebud.ranking.pipeline import RankRequest, UserContext, rank
from tastebud.ranking.snapshot import ServingModel, Snapshot
from tastebud.ranking_config import RankingSettings
from tastebud.schemas import Item
from tastebud.stores import open_stores

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path("/work/shared/datasets")
RESULTS = ROOT / "benchmarks" / "results" / "diversity.json"
CHART = ROOT / "docs" / "diversity_tradeoff.png"
LAMBDAS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7)
K = 10
MAX_LOSS = 0.05
SEED = 42
ALS_PARAMS = {"factors": 64, "regularization": 0.05, "alpha": 2.0, "iterations": 15}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset-dir", type=Path, default=DATASETS, help="folder holding ml-100k/"
    )
    parser.add_argument("--lambdas", default=",".join(str(v) for v in LAMBDAS))
    parser.add_argument("--cf-candidates", type=int, default=200)
    parser.add_argument(
        "--blend-alpha",
        type=float,
        default=1.0,
        help="CF weight of the relevance (1: plain CF; serving's default is 0.8)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--chart", type=Path, default=CHART)
    return parser.parse_args(argv)


def load(folder: Path, home: Path) -> tuple[list[Item], pa.Table]:
    """Catalog and events through tastebud's own ingest, into a throwaway store."""
    os.environ["TASTEBUD_HOME"] = str(home)
    settings = load_settings()
    with open_stores(settings) as stores:
        ingest_sources(open_sources(folder), stores, settings)
        items = list(stores.catalog.iter_items())
        events = stores.events.read_arrow()
    return items, events


def item_counts(table: pa.Table) -> dict[str, float]:
    """Training events per item: the content embedder's creator popularity input."""
    counts = pc.value_counts(table.column("item_id")).to_pylist()
    return {c["values"]: float(c["counts"]) for c in counts}


def genre_matrix(items: list[Item], item_ids: list[str]) -> tuple[np.ndarray, list[str]]:
    """Binary (items x genres) rows in ``item_ids`` order; films without a genre are zero."""
    genres = sorted({g for item in items for g in item.categories})
    column = {g: i for i, g in enumerate(genres)}
    by_id = {item.item_id: item for item in items}
    matrix = np.zeros((len(item_ids), len(genres)), dtype=np.float64)
    for row, item_id in enumerate(item_ids):
        item = by_id.get(item_id)
        for genre in item.categories if item is not None else ():
            matrix[row, column[genre]] = 1.0
    return matrix, genres


def settings_for(lam: float, args: argparse.Namespace) -> RankingSettings:
    """Plain CF ranking plus MMR at ``lam``: every other source and re-ranker off."""
    return RankingSettings().with_overrides(
        {
            "mmr": {"enabled": True, "diversity": lam},
            "creator_cap": {"enabled": False},
            "category_balance": {"enabled": False},
            "recency": {"weight": 0.0},
            "blend": {"alpha": args.blend_alpha},
            "candidates": {
                "cf": args.cf_candidates,
                "trending": 0,
                "popular": 0,
                "fresh": 0,
                "content": 0,
            },
        }
    )


def largest_within(rows: list[dict[str, Any]], max_loss: float) -> dict[str, Any]:
    """The largest lambda whose NDCG@10 loss against lambda 0 is at most ``max_loss``."""
    within = [row for row in rows if row["ndcg_loss"] <= max_loss]
    return max(within, key=lambda row: row["lambda"])


def chart(rows: list[dict[str, Any]], chosen: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lambdas = [row["lambda"] for row in rows]
    base = rows[0]["ndcg@10"]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 7), sharex=True)
    top.plot(lambdas, [row["ndcg@10"] for row in rows], "o-", color="tab:blue", label="NDCG@10")
    top.axhline(base * (1 - MAX_LOSS), color="tab:red", linestyle="--", label="5% below plain CF")
    top.axvline(chosen["lambda"], color="grey", linestyle=":", label=f"λ = {chosen['lambda']}")
    top.set_ylabel("NDCG@10")
    top.set_title("MMR on MovieLens 100K: accuracy vs intra-list diversity (k = 10)")
    top.legend(loc="lower left")
    top.grid(alpha=0.3)
    bottom.plot(lambdas, [row["ild_content"] for row in rows], "s-", color="tab:green",
                label="ILD, content vectors (MMR's space)")  # fmt: skip
    bottom.plot(lambdas, [row["ild_genre"] for row in rows], "^-", color="tab:orange",
                label="ILD, genre vectors")  # fmt: skip
    bottom.axvline(chosen["lambda"], color="grey", linestyle=":")
    bottom.set_xlabel("MMR lambda (mmr.diversity)")
    bottom.set_ylabel("intra-list diversity (1 - cos)")
    bottom.legend(loc="upper left")
    bottom.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    folder = args.dataset_dir / "ml-100k"
    if not (folder / "u.data").is_file() or not (folder / "u.item").is_file():
        sys.exit(
            f"MovieLens 100K not found: expected {folder}/u.data and u.item "
            "(pass --dataset-dir with the folder that holds ml-100k/)"
        )
    lambdas = [float(v) for v in args.lambdas.split(",")]
    if lambdas[0] != 0.0:
        sys.exit("--lambdas must start with 0 (plain CF ranking, the baseline)")
    machine = describe()
    print(f"machine: {json.dumps(machine)}", flush=True)
    np.random.seed(SEED)
    timings: dict[str, float] = {}

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tastebud-diversity-") as scratch:
        items, events = load(folder, Path(scratch) / "home")
    timings["load_s"] = time.perf_counter() - started
    events = events.select(["user_id", "item_id", "event_type", "value", "timestamp"])
    split = make_splitter("user-temporal", fraction=0.2)(events)

    started = time.perf_counter()
    model = ALSRecommender(**ALS_PARAMS, random_state=SEED, use_gpu=False).fit(
        build_matrix(from_table(split.train), MatrixOptions())
    )
    timings["als_fit_s"] = time.perf_counter() - started

    started = time.perf_counter()
    artifact = build(
        items, item_counts(split.train), audio_runner=lambda paths, stop_at: iter(())
    ).artifact
    assert artifact is not None
    content = ContentSimilarity(artifact.item_ids, artifact.vectors)
    timings["embed_s"] = time.perf_counter() - started

    trained_until = pc.max(split.train.column("timestamp")).value / 1_000_000
    settings = RankingSettings()
    serving = ServingModel.prepare(
        model,
        "als-bench",
        exact_threshold=settings.candidates.exact_threshold,
        trained_until=trained_until,
    )
    snapshot = Snapshot.build(serving, content, items, content_version=artifact.version)
    assert snapshot.vector_source == "content"

    # Relevance on the model's item columns; ranked ids map onto the same columns.
    model_items = model.items_
    relevance = relevance_matrix(
        split.test, model.users_, model_items, min_rating=4.0, rating_column="value"
    ).matrix
    eval_rows = np.flatnonzero(np.diff(relevance.indptr) > 0)
    relevant = relevance[eval_rows]
    user_ids = [str(u) for u in model.users_.id_of(eval_rows)]
    item_ids = [str(i) for i in model_items.ids.to_pylist()]
    content_vectors, _ = content.vectors_for(item_ids)
    genres, genre_names = genre_matrix(items, item_ids)
    print(
        f"ML-100K: {events.num_rows} ratings, {len(items)} films ({len(genre_names)} genres); "
        f"train {split.train.num_rows}, test {split.test.num_rows}; {len(user_ids)} users "
        f"evaluated; ALS {timings['als_fit_s']:.1f}s, embeddings {timings['embed_s']:.1f}s "
        f"({artifact.vectors.shape[1]}-d)",
        flush=True,
    )

    request = RankRequest(k=K, explain=False, now=trained_until)
    rows: list[dict[str, Any]] = []
    per_user: list[np.ndarray] = []  # NDCG@10 per evaluated user, per lambda
    with threadpool_limits(1, "blas"):  # per-request BLAS on tiny arrays: threads only cost
        for lam in lambdas:
            ranking = settings_for(lam, args)
            lists = np.full((len(user_ids), K), -1, dtype=np.int64)
            pipeline_ild = np.zeros(len(user_ids))
            started = time.perf_counter()
            for row, user_id in enumerate(user_ids):
                ranked = rank(snapshot, UserContext(user_id=user_id), request, ranking)
                ids = [item.item_id for item in ranked.items]
                lists[row, : len(ids)] = model_items.index(ids)
                pipeline_ild[row] = ranked.diversity
            seconds = time.perf_counter() - started
            assert (lists >= 0).all(), "a ranked item is not a model item"
            per_user.append(ndcg(judge(lists, relevant), K))
            rows.append(
                {
                    "lambda": lam,
                    "ndcg@10": float(np.nanmean(per_user[-1])),
                    "ild_content": float(np.nanmean(intra_list_diversity(lists, content_vectors))),
                    "ild_genre": float(np.nanmean(intra_list_diversity(lists, genres))),
                    "ild_pipeline": float(pipeline_ild.mean()),
                    "rank_ms_mean": 1000 * seconds / len(user_ids),
                }
            )
            print(
                f"lambda {lam:<4}: ndcg@10 {rows[-1]['ndcg@10']:.4f}  ild content "
                f"{rows[-1]['ild_content']:.4f}  genre {rows[-1]['ild_genre']:.4f}  "
                f"({rows[-1]['rank_ms_mean']:.2f} ms/rank)",
                flush=True,
            )

    base = rows[0]
    for row, values in zip(rows, per_user, strict=True):
        row["ndcg_loss"] = 1 - row["ndcg@10"] / base["ndcg@10"]
        # Paired over the same users: how much of the loss one split's noise could explain.
        difference = (per_user[0] - values) / base["ndcg@10"]
        row["ndcg_loss_se"] = float(np.nanstd(difference, ddof=1) / np.sqrt(len(difference)))
        row["ild_content_gain"] = row["ild_content"] / base["ild_content"] - 1
        row["ild_genre_gain"] = row["ild_genre"] / base["ild_genre"] - 1
    chosen = largest_within(rows, MAX_LOSS)
    chart(rows, chosen, args.chart)

    header = (
        f"{'lambda':>6} | {'NDCG@10':>7} | {'loss (± se)':>14} | {'ILD content':>11} | "
        f"{'gain':>6} | {'ILD genre':>9} | {'gain':>6}"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for row in rows:
        print(
            f"{row['lambda']:>6} | {row['ndcg@10']:.4f} | "
            f"{row['ndcg_loss']:>+6.1%} ± {row['ndcg_loss_se']:.1%} | "
            f"{row['ild_content']:>11.4f} | {row['ild_content_gain']:>+6.1%} | "
            f"{row['ild_genre']:>9.4f} | {row['ild_genre_gain']:>+6.1%}"
        )
    print(
        f"\nlargest lambda within {MAX_LOSS:.0%} NDCG@10 loss: {chosen['lambda']} "
        f"(loss {chosen['ndcg_loss']:.1%}; ILD content {chosen['ild_content_gain']:+.1%}, "
        f"genre {chosen['ild_genre_gain']:+.1%})"
    )
    document = {
        "benchmark": "diversity-mmr",
        "dataset": "ml-100k",
        "protocol": {
            "split": dict(split.options, name=split.protocol),
            "relevant": "test rating >= 4 on training films",
            "k": K,
            "seed": SEED,
            "als": ALS_PARAMS,
            "matrix": MatrixOptions().model_dump(),
            "ranking_overrides": settings_for(lambdas[0], args).model_dump(),
            "mmr_similarity": "content embeddings (cosine)",
            "embedding_dim": int(artifact.vectors.shape[1]),
            "genres": genre_names,
            "evaluated_users": len(user_ids),
            "train_rows": split.train.num_rows,
            "test_rows": split.test.num_rows,
        },
        "rows": rows,
        "max_ndcg_loss": MAX_LOSS,
        "recommended_lambda": chosen["lambda"],
        "timings_s": {name: round(value, 2) for name, value in timings.items()},
        "machine": machine,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {args.out} and {args.chart}")
    return document


if __name__ == "__main__":
    main()
