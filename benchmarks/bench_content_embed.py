"""Building content embeddings for a 50,000-item catalog from metadata and text (no audio):
a full build (fit + embed), registering the artifact, and an incremental update of 1% of the
items, each ``--runs`` times; medians are quoted.

The catalog is synthetic and seeded: titles and descriptions drawn from a 5,000-word
Zipfian vocabulary, 1-3 of 300 genres (Zipfian, so the capped vocabulary and "other" both
matter), 5,000 creators, 0-6 tags, release dates over 30 years, and Spotify-style audio
attributes on half of the items. Creator popularity comes from 1M synthetic event counts.

Run:  .venv/bin/python benchmarks/bench_content_embed.py [--items 50000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe

from tastebud.content import build, embedding_registry, latest_artifact, register_artifact
from tastebud.schemas import Item
from tastebud.stores.artifacts import ArtifactStore

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--out", type=Path)
    return parser.parse_args(argv)


def zipf_choice(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1)
    return rng.choice(n, size=size, p=weights / weights.sum())


def make_catalog(n: int, seed: int = 0) -> tuple[list[Item], dict[str, float]]:
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(5000)]
    genres = [f"genre{i}" for i in range(300)]
    items = []
    for i in range(n):
        title = " ".join(words[j] for j in zipf_choice(rng, 5000, int(rng.integers(1, 5))))
        description = " ".join(words[j] for j in zipf_choice(rng, 5000, int(rng.integers(5, 30))))
        attributes: dict[str, object] = {
            "description": description,
            "tags": [words[j] for j in zipf_choice(rng, 500, int(rng.integers(0, 7)))],
        }
        if i % 2 == 0:
            attributes.update(
                danceability=float(rng.random()),
                energy=float(rng.random()),
                tempo=float(rng.uniform(60, 200)),
                loudness=float(rng.uniform(-30, 0)),
            )
        items.append(
            Item(
                item_id=f"item{i:06d}",
                title=title,
                creator=f"creator{int(rng.integers(0, 5000))}",
                categories=sorted(
                    {genres[j] for j in zipf_choice(rng, 300, int(rng.integers(1, 4)))}
                ),
                created_at=NOW - timedelta(days=float(rng.uniform(0, 30 * 365))),
                attributes=attributes,
            )
        )
    counts = np.bincount(zipf_choice(rng, n, 1_000_000), minlength=n)
    events = {f"item{i:06d}": float(c) for i, c in enumerate(counts) if c}
    return items, events


def no_audio(paths: object, stop_at: object = None) -> Iterator[Any]:
    return iter(())


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    started = time.perf_counter()
    items, events = make_catalog(args.items)
    print(f"catalog of {len(items)} items generated in {time.perf_counter() - started:.1f} s")
    full, register, update = [], [], []
    coverage = None
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="tastebud-embed-") as scratch:
            registry = embedding_registry(ArtifactStore(scratch), Path(scratch) / ".cache")
            started = time.perf_counter()
            result = build(items, events, audio_runner=no_audio, now=NOW)
            full.append(time.perf_counter() - started)
            assert result.artifact is not None
            coverage = result.artifact.report["coverage"]
            started = time.perf_counter()
            register_artifact(registry, result.artifact)
            register.append(time.perf_counter() - started)
            previous = latest_artifact(registry)
            rng = np.random.default_rng(run)
            changed = list(items)
            for index in rng.choice(len(items), int(len(items) * args.changed), replace=False):
                changed[index] = changed[index].model_copy(update={"title": f"retitled {index}"})
            started = time.perf_counter()
            updated = build(changed, events, previous, audio_runner=no_audio)
            update.append(time.perf_counter() - started)
            assert updated.processed == int(len(items) * args.changed)
        print(
            f"run {run}: full build {full[-1]:.1f} s, register {register[-1]:.1f} s, "
            f"update of {args.changed:.0%} {update[-1]:.1f} s"
        )
    document = {
        "benchmark": "content-embed-metadata-text",
        "items": args.items,
        "median_seconds": {
            "full_build": round(statistics.median(full), 2),
            "register": round(statistics.median(register), 2),
            "incremental_update": round(statistics.median(update), 2),
        },
        "items_per_second_full": round(args.items / statistics.median(full)),
        "runs": {"full": full, "register": register, "update": update},
        "coverage": coverage,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "machine": describe(),
    }
    print(json.dumps(document, indent=2))
    if args.out:
        args.out.write_text(json.dumps(document, indent=2) + "\n")
    return document


if __name__ == "__main__":
    main()
