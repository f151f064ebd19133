"""CF candidate retrieval: exact scoring vs the HNSW index (issue 5, serving).

For each catalog size (default 50,000 and 500,000 items x 64 factors), random clustered
factors stand in for a trained model: items and users around shared taste centres, item
norms log-normal (popular items have larger factors, as ALS learns them). Per size:

* build time of the HNSW index (M=32, efConstruction=200, every core, as the index job runs);
* single-query latency, median and p95 over ``--queries`` user vectors, top ``--n``, one
  thread (serving: one request = one thread, see ``retrieval.limit_threads``), for exact
  scoring and for HNSW at each ``--ef`` (the search explores max(efSearch, n) candidates,
  so efSearch 128 means 500 for n=500);
* HNSW recall@n against exact scoring over the same queries, per efSearch.

Run:  .venv/bin/python benchmarks/bench_retrieval.py [--items 50000 500000] [--json out.json]
Prints a markdown table, then one JSON document with the machine description.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe

from tastebud.ranking import retrieval
from tastebud.ranking.retrieval import ExactRetriever, HnswRetriever, Retriever


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, nargs="+", default=[50_000, 500_000])
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--ef", type=int, nargs="+", default=[128, 1000, 2000])
    parser.add_argument("--clusters", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


def clustered(
    n_items: int, dim: int, n_queries: int, clusters: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Item and user factors around shared centres; item norms log-normal."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    items = centres[rng.integers(0, clusters, n_items)]
    items += 0.5 * rng.standard_normal((n_items, dim), dtype=np.float32)
    items *= rng.lognormal(0.0, 0.3, (n_items, 1)).astype(np.float32)
    users = centres[rng.integers(0, clusters, n_queries)]
    users += 0.5 * rng.standard_normal((n_queries, dim), dtype=np.float32)
    return items, users


def latencies(retriever: Retriever, users: np.ndarray, n: int) -> tuple[np.ndarray, list[float]]:
    """Top-n per user, one query at a time; returns the results and seconds per query."""
    retriever.search(users[:10], n)  # warm caches and faiss' lazy state
    found = np.empty((len(users), n), dtype=np.int64)
    seconds = []
    for row, user in enumerate(users):
        started = time.perf_counter()
        indices, _ = retriever.search(user[None, :], n)
        seconds.append(time.perf_counter() - started)
        found[row] = indices[0]
    return found, seconds


def recall(expected: np.ndarray, found: np.ndarray) -> float:
    hits = sum(len(np.intersect1d(a, b[b >= 0])) for a, b in zip(expected, found, strict=True))
    return hits / expected.size


def ms(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)) * 1e3, 3)


def run_size(args: argparse.Namespace, n_items: int) -> list[dict[str, Any]]:
    """One row for exact scoring, one per efSearch of the HNSW index."""
    items, users = clustered(n_items, args.dim, args.queries, args.clusters, args.seed)
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    started = time.perf_counter()
    index = HnswRetriever.build(items)
    build_seconds = round(time.perf_counter() - started, 1)
    index_mb = round(len(index.to_bytes()) / 2**20, 1)
    base = {"items": n_items, "dim": args.dim, "n": args.n, "queries": args.queries}

    limiter = retrieval.limit_threads(1)
    try:
        exact, seconds = latencies(ExactRetriever(items), users, args.n)
        rows = [
            {
                **base,
                "method": "exact",
                "ms_p50": ms(seconds, 50),
                "ms_p95": ms(seconds, 95),
                "recall": 1.0,
                "build_s": None,
                "index_mb": None,
            }
        ]
        for ef in args.ef:
            index.ef_search = ef
            found, seconds = latencies(index, users, args.n)
            rows.append(
                {
                    **base,
                    "method": f"hnsw efSearch={ef}",
                    "ms_p50": ms(seconds, 50),
                    "ms_p95": ms(seconds, 95),
                    "recall": round(recall(exact, found), 4),
                    "build_s": build_seconds,
                    "index_mb": index_mb,
                    "params": index.params,
                }
            )
    finally:
        limiter.restore_original_limits()
    return rows


def table(rows: list[dict[str, Any]], n: int) -> str:
    lines = [
        f"| items x dim | method | p50 (ms) | p95 (ms) | recall@{n} | build (s) | index (MB) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        build = "-" if row["build_s"] is None else f"{row['build_s']:.1f}"
        size = "-" if row["index_mb"] is None else f"{row['index_mb']:.1f}"
        lines.append(
            f"| {row['items']:,} x {row['dim']} | {row['method']} | {row['ms_p50']:.3f} "
            f"| {row['ms_p95']:.3f} | {row['recall']:.4f} | {build} | {size} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rows = []
    for n_items in args.items:
        rows.extend(run_size(args, n_items))
        print(f"{n_items:,} items done", file=sys.stderr, flush=True)
    print(table(rows, args.n))
    print()
    document = {"benchmark": "retrieval", "results": rows, "machine": describe()}
    text = json.dumps(document, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
