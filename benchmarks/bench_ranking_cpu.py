"""CPU per on-demand ranked request in process, old source tree against new, and whether
both rank the same lists.

``RecommendationService.recommend`` on the world ``bench_serving.py`` caches under ``--home``
(100k users x 50k items x 64 factors), as a serving worker runs it: precomputed lists off,
k = 20, MMR on, 500 CF candidates, explanations on, BLAS and faiss on one thread. Users are
drawn as ``bench_serving.py`` draws them (Zipf over the 100k, ~5% unknown ids); every request
ranks as of one fixed moment, so two trees must return the very same lists.

Each pass starts one process per tree, alternating, so both see the same machine: each warms
up, measures ``time.process_time`` over ``--requests`` requests, and writes the lists it
ranked. The lists of every tree are compared item by item (ids, scores, sources,
explanations). ``--callgrind`` also counts instructions per request under valgrind's
callgrind (one process per tree over ``--callgrind-requests`` requests): a count that the
other processes on a shared machine cannot move. ``--profile`` prints a pyinstrument profile
of the current tree instead.

The exact int8 screen (``[ranking.candidates] exact_screen``) is off by default; the driver
passes only ``SERVER_ENV`` to its workers, so add the setting there to measure it.

Run:  .venv/bin/python benchmarks/bench_ranking_cpu.py --home /tmp/bench-serving \
          --baseline-ref main --passes 3 --callgrind
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cli_startup import baseline_tree
from bench_serving import user_ids
from machine import describe

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "ranking-cpu.json"
SERVER_ENV = {
    "TASTEBUD_SERVING__PRECOMPUTED": "false",
    "TASTEBUD_RANKING__CANDIDATES__CF": "500",
    "TASTEBUD_LOG_LEVEL": "WARNING",
}


# --- one process: rank and measure -----------------------------------------------------------


def open_service(home: Path) -> tuple[Any, Any, Any]:
    """The service a serving worker would run over ``home`` (and what to close after)."""
    from tastebud.config import load_settings
    from tastebud.features.store import open_feature_store
    from tastebud.ranking.retrieval import limit_threads
    from tastebud.stores import open_stores

    try:  # renamed from ranking/service.py (issue 17); the old tree of a side by side has that
        from tastebud.ranking.recommender import RecommendationService
    except ImportError:
        from tastebud.ranking.service import RecommendationService  # type: ignore[no-redef]

    settings = load_settings(home=home)
    stores = open_stores(settings)
    features = open_feature_store(settings, stores.online)
    service = RecommendationService(settings, stores, features=lambda: features.service)
    service.start(watch=False)
    limit_threads(1)
    return service, stores, features


def rank_all(service: Any, users: list[str], now: float) -> list[Any]:
    from tastebud.ranking.pipeline import RankRequest

    request = RankRequest(k=20, explain=True, now=now)
    return [service.recommend(user, request) for user in users]


def worker(args: argparse.Namespace) -> None:
    """Rank ``--requests`` users after ``--warmup`` others; write CPU time and the lists."""
    setup = json.loads((args.home / "bench-serving.json").read_text())
    now = time.mktime(time.strptime(setup["created"][:19], "%Y-%m-%dT%H:%M:%S")) + 3_600
    service, stores, features = open_service(args.home)
    try:
        warm = user_ids(args.warmup, seed=args.seed + 1)
        users = user_ids(args.requests, seed=args.seed)
        rank_all(service, warm, now)
        if args.profile:
            from pyinstrument import Profiler

            with Profiler(interval=0.0002) as profiler:
                rank_all(service, users, now)
            print(profiler.output_text(unicode=False, color=False, show_all=False))
            return
        os.getppid()  # callgrind: counters zeroed here (--zero-before=getppid)
        cpu, wall = time.process_time(), time.perf_counter()
        served = rank_all(service, users, now)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        os.getpgrp()  # callgrind: counters dumped here (--dump-before=getpgrp)
        stages: dict[str, list[float]] = {}
        for one in served:
            for stage, ms in one.ranked.timings_ms.items():
                stages.setdefault(stage, []).append(ms)
        document = {
            "requests": len(users),
            "cpu_ms_per_request": 1000 * cpu / len(users),
            "wall_ms_per_request": 1000 * wall / len(users),
            "stage_mean_ms": {s: statistics.fmean(v) for s, v in stages.items()},
            "lists": [
                [
                    user,
                    [
                        [i.item_id, i.score, i.sources, i.explanation, i.title, i.creator]
                        for i in one.ranked.items
                    ],
                    one.ranked.segment,
                ]
                for user, one in zip(users, served, strict=True)
            ],
        }
        Path(args.worker).write_text(json.dumps(document))
    finally:
        service.stop()
        features.close()
        stores.close()


# --- the driver: trees side by side ----------------------------------------------------------


def run_worker(
    tree: Path | None,
    args: argparse.Namespace,
    out: Path,
    requests: int,
    prefix: list[str],
    extra: dict[str, str] | None = None,
) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASTEBUD_", "PYTHONPATH"))}
    env.update(SERVER_ENV)
    env.update(extra or {})
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    command = [*prefix, sys.executable, __file__, "--home", str(args.home), "--worker", str(out)]
    command += ["--requests", str(requests), "--warmup", str(args.warmup)]
    command += ["--seed", str(args.seed)]
    subprocess.run(command, check=True, env=env, cwd=out.parent)
    return json.loads(out.read_text())


def callgrind_count(tree: Path | None, args: argparse.Namespace, work: Path, name: str) -> int:
    """Instructions per request (Ir between the two marks, over the requests).

    numba's kernels are compiled first, outside valgrind (where compiling takes many
    minutes), into a cache of this run, for an AVX2 CPU that valgrind can run."""
    folder = work / f"callgrind-{name}"
    folder.mkdir(exist_ok=True)
    numba = {"NUMBA_CACHE_DIR": str(folder / "numba"), "NUMBA_CPU_NAME": "haswell"}
    run_worker(tree, args, folder / "compile.json", 5, [], numba)
    prefix = [
        "valgrind",
        "--tool=callgrind",
        "--zero-before=getppid",
        "--dump-before=getpgrp",
        f"--callgrind-out-file={folder}/callgrind.out.%p",
    ]
    run_worker(tree, args, folder / "lists.json", args.callgrind_requests, prefix, numba)
    dumps = sorted(folder.glob("callgrind.out.*.1"))
    total = None
    for line in dumps[-1].read_text().splitlines():
        if line.startswith("summary:") or line.startswith("totals:"):
            total = int(line.split()[1])
    assert total is not None, f"no total in {dumps[-1]}"
    return total // args.callgrind_requests


def compare(reference: list[Any], other: list[Any]) -> dict[str, int]:
    """How many lists differ, by what (the first difference of each list counts)."""
    differ = {"lists": len(reference), "identical": 0, "items": 0, "scores": 0, "other": 0}
    for (user, ref_items, ref_segment), (user2, items, segment) in zip(
        reference, other, strict=True
    ):
        assert user == user2
        if ref_items == items and ref_segment == segment:
            differ["identical"] += 1
        elif [i[0] for i in ref_items] != [i[0] for i in items]:
            differ["items"] += 1
        elif [i[1] for i in ref_items] != [i[1] for i in items]:
            differ["scores"] += 1
        else:
            differ["other"] += 1
    return differ


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="bench_serving.py's setup.")
    parser.add_argument("--baseline-ref", default=None, help="A git ref to compare with.")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--requests", type=int, default=3_000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--callgrind-requests", type=int, default=200)
    parser.add_argument("--profile", action="store_true", help="pyinstrument, this tree only.")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.worker or args.profile:
        worker(args)
        return 0
    trees: dict[str, Path | None] = {"new": None}
    with tempfile.TemporaryDirectory(prefix="bench-ranking-cpu-") as scratch:
        work = Path(scratch)
        if args.baseline_ref:
            trees = {"old": baseline_tree(args.baseline_ref, work), "new": None}
        cpu: dict[str, list[float]] = {name: [] for name in trees}
        stages: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        lists: dict[str, list[Any]] = {}
        for number in range(args.passes):
            names = list(trees) if number % 2 == 0 else list(reversed(trees))
            for name in names:
                found = run_worker(trees[name], args, work / f"{name}.json", args.requests, [])
                cpu[name].append(round(found["cpu_ms_per_request"], 3))
                stages[name].append(found["stage_mean_ms"])
                lists.setdefault(name, found["lists"])
                print(name, number, found["cpu_ms_per_request"], flush=True)
        instructions = (
            {name: callgrind_count(tree, args, work, name) for name, tree in trees.items()}
            if args.callgrind
            else {}
        )
    reference = lists[next(iter(trees))]
    document = {
        "benchmark": "ranking-cpu",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": describe(),
        "settings": {k: str(v) for k, v in vars(args).items()},
        "cpu_ms_per_request": cpu,
        "cpu_ms_median": {name: statistics.median(v) for name, v in cpu.items()},
        "stage_mean_ms_median": {
            name: {stage: round(statistics.median(s[stage] for s in runs), 3) for stage in runs[0]}
            for name, runs in stages.items()
        },
        "instructions_per_request": instructions,
        "lists_against_first_tree": {
            name: compare(reference, found) for name, found in lists.items()
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1) + "\n")
    print(json.dumps({k: v for k, v in document.items() if k not in ("settings",)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
