"""An older commit against this tree, benchmark by benchmark, in one run on one machine.

Issue 17's proof: serving p95 and capacity ratio (``bench_serving.py``), gateway events/s
(``bench_gateway.py``), feature lookups (``feature_store_latency.py``) and the training
pipeline's ratio to implicit called directly (``bench_train_speed.py``), old against new,
none worse by more than 5% in the median of ``--runs``. Each side runs its own tree's
benchmark script (the old tree is a git worktree of ``--old-ref``, imported through
``PYTHONPATH`` with this tree's virtualenv), one process per benchmark, side and run, and the
order alternates (old first, then new first) so that a drift in the machine's load falls on
both sides alike. A shared, noisy machine still moves single runs: compare medians, and
read the spread.

    flock /work/wt/bench.lock .venv/bin/python benchmarks/side_by_side.py --old-ref ba44745 \\
        --runs 3 --serving-home /tmp/bench-serving-home

The serving world (100k users x 50k items) is built once per ``--serving-home`` by the
first run that needs it and reused by both sides; ``--benches`` picks a subset.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "side-by-side.json"

# name -> (script, extra arguments, metrics: label -> (path into its JSON, higher is better))
Metric = tuple[Callable[[dict[str, Any]], float], bool]


def _serving(mode: str) -> dict[str, Metric]:
    return {
        f"serving {mode} p95 ms": (
            lambda d: d["modes"][mode]["medians"]["open_loop"]["p95_ms"],
            False,
        ),
        f"serving {mode} capacity ratio": (
            lambda d: d["modes"][mode]["medians"]["capacity"]["ratio"],
            True,
        ),
    }


def _gateway(backend: str) -> dict[str, Metric]:
    def events(d: dict[str, Any]) -> float:
        (row,) = [s for s in d["summary"] if s["backend"] == backend]
        return float(row["median_batch_events_per_second"])

    return {f"gateway {backend} events/s": (events, True)}


BENCHES: dict[str, tuple[str, list[str], dict[str, Metric]]] = {
    "serving": (
        "bench_serving.py",
        ["--runs", "1", "--seconds", "15", "--capacity-seconds", "8", "--trials", "20"],
        {**_serving("precomputed"), **_serving("on-demand")},
    ),
    "gateway": (
        "bench_gateway.py",
        ["--runs", "1", "--seconds", "10", "--single-seconds", "5"],
        {**_gateway("embedded"), **_gateway("postgres")},
    ),
    "features": (
        "feature_store_latency.py",
        ["--runs", "1", "--requests", "3000", "--warmup", "500"],
        {
            "features in-process p95 ms (c1)": (
                lambda d: d["medians"]["ranking.inprocess.c1"]["p95_ms"],
                False,
            ),
            "features HTTP p95 ms (500/s)": (
                lambda d: d["medians"]["ranking.http.c25.r500"]["p95_ms"],
                False,
            ),
        },
    ),
    "training": (
        "bench_train_speed.py",
        ["--runs", "1"],
        {
            "training total s": (lambda d: d["median"]["total"], False),
            "training ratio to implicit": (lambda d: d["median"]["ratio"], False),
        },
    ),
}


def old_tree(ref: str, work: Path) -> Path:
    """A worktree of ``ref`` (created once, reused)."""
    tree = work / f"old-{ref}"
    if not tree.exists():
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), ref],
            check=True,
            capture_output=True,
        )
    return tree


def run_one(
    bench: str, tree: Path, out: Path, serving_home: Path | None, log: Path, events: int
) -> dict[str, Any]:
    script, extra, _ = BENCHES[bench]
    command = [sys.executable, str(tree / "benchmarks" / script), *extra, "--out", str(out)]
    if bench == "serving" and serving_home is not None:
        command += ["--home", str(serving_home)]
    if bench == "training":
        command += ["--work", str(out.parent / f"train-{tree.name}"), "--events", str(events)]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    started = time.monotonic()
    with log.open("a") as sink:
        sink.write(f"\n$ PYTHONPATH={tree} {' '.join(command)}\n")
        sink.flush()
        done = subprocess.run(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    # A benchmark exits 1 when it misses its own targets, after writing its results: only a
    # run that wrote nothing has failed.
    if not out.exists() or out.stat().st_mtime < time.time() - (time.monotonic() - started):
        raise RuntimeError(f"{script} ({tree}) exited {done.returncode}, no results: see {log}")
    document = json.loads(out.read_text())
    document["_seconds"] = time.monotonic() - started
    document["_load_after"] = os.getloadavg()[0]
    return document


def summarise(runs: dict[str, dict[str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    rows = []
    for bench, sides in runs.items():
        for label, (read, higher_better) in BENCHES[bench][2].items():
            values = {}
            for side in ("old", "new"):
                values[side] = [read(document) for document in sides[side]]
            old, new = statistics.median(values["old"]), statistics.median(values["new"])
            change = (new - old) / old if old else 0.0
            worse = -change if higher_better else change
            rows.append(
                {
                    "metric": label,
                    "old": values["old"],
                    "new": values["new"],
                    "old_median": old,
                    "new_median": new,
                    "change": round(change, 4),
                    "higher_is_better": higher_better,
                    "within_5_percent": worse <= 0.05,
                }
            )
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| metric | old (runs) | new (runs) | old median | new median | change | worse by > 5%? |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        runs_old = ", ".join(f"{v:.4g}" for v in row["old"])
        runs_new = ", ".join(f"{v:.4g}" for v in row["new"])
        verdict = "no" if row["within_5_percent"] else "**yes**"
        lines.append(
            f"| {row['metric']} | {runs_old} | {runs_new} | {row['old_median']:.4g} | "
            f"{row['new_median']:.4g} | {row['change']:+.1%} | {verdict} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old-ref", required=True, help="The commit to compare against.")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--benches", default=",".join(BENCHES))
    parser.add_argument("--work", type=Path, default=Path("/tmp/side-by-side"))
    parser.add_argument("--serving-home", type=Path, default=None)
    parser.add_argument("--train-events", type=int, default=2_000_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    benches = [name.strip() for name in args.benches.split(",") if name.strip()]
    unknown = sorted(set(benches) - set(BENCHES))
    if unknown:
        parser.error(f"unknown --benches {unknown}; choose from {', '.join(BENCHES)}")
    args.work.mkdir(parents=True, exist_ok=True)
    trees = {"old": old_tree(args.old_ref, args.work), "new": ROOT}
    log = args.work / "side-by-side.log"
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {b: {"old": [], "new": []} for b in benches}
    for run in range(args.runs):
        order = ("old", "new") if run % 2 == 0 else ("new", "old")
        for bench in benches:
            for side in order:
                out = args.work / f"{bench}-{side}-{run}.json"
                print(f"run {run + 1}/{args.runs}: {bench} {side}", flush=True)
                runs[bench][side].append(
                    run_one(bench, trees[side], out, args.serving_home, log, args.train_events)
                )
    rows = summarise(runs)
    document = {
        "benchmark": "side_by_side",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "machine": describe(),
        "old_ref": args.old_ref,
        "new_ref": subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip(),
        "runs": args.runs,
        "rows": rows,
        "load_after_each": {
            bench: {side: [d["_load_after"] for d in docs] for side, docs in sides.items()}
            for bench, sides in runs.items()
        },
    }
    args.out.write_text(json.dumps(document, indent=2))
    print(markdown(rows))
    return 0 if all(row["within_5_percent"] for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
