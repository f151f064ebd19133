"""Model monitoring and retraining triggers on a 30-day simulated stream with a silent decay
(issue 19): world A's tastes until ``--shift-day``, then world B's (same users and items,
other tastes). A production model is trained on the first ``--first-train-day`` days; the
``retrain`` job then runs as of every day's end, as the scheduler would (no daily ``train``
job: the triggers alone keep the model current), and each run's figures are recorded:
offline NDCG@10 and its training-time baseline, the triggers that fired, whether it trained
(and the cooldown held), and the check's wall time. The quality gate is left to the schema
check: two spliced worlds differ in their hourly volumes too, which the volume check would
rightly refuse.

    flock /work/wt/bench.lock .venv/bin/python benchmarks/bench_monitoring.py \
        --out benchmarks/results/monitoring.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from machine import describe

from tastebud.config import load_settings
from tastebud.data.interactions import read_event_store
from tastebud.data.synthetic import WorldSpec, generate_world
from tastebud.jobs import JobRunner, open_run_history
from tastebud.jobs.definitions import build_registry
from tastebud.registry import open_registry
from tastebud.stores import EventQuery, open_stores
from tastebud.training.pipeline import register_training, train

END = datetime(2026, 3, 9, tzinfo=UTC)
DAYS = 30


def spliced(folder: Path, args: argparse.Namespace, start: datetime) -> pa.Table:
    tables = {}
    for name, seed in (("a", args.seed), ("b", args.seed + 5)):
        spec = WorldSpec.ending(
            END, users=args.users, items=args.items, days=DAYS, seed=seed, trending_items=0
        )
        generate_world(spec, folder / name)
        tables[name] = pq.read_table(folder / name / "events.parquet")
    shift = pa.scalar(start + timedelta(days=args.shift_day), pa.timestamp("us", tz="UTC"))
    before = tables["a"].filter(pc.less(tables["a"].column("timestamp"), shift))
    after = tables["b"].filter(pc.greater_equal(tables["b"].column("timestamp"), shift))
    return pa.concat_tables([before, after.cast(before.schema)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--shift-day", type=int, default=15)
    parser.add_argument("--first-train-day", type=int, default=8)
    parser.add_argument("--eval-days", type=float, default=1.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    start = END - timedelta(days=DAYS)
    days: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        settings = load_settings(
            home=folder / "home",
            jobs={"train_auto": False},
            quality={"critical": ["schema"]},
            monitoring={"eval_days": args.eval_days},
        )
        stores = open_stores(settings)
        events = spliced(folder, args, start)
        stores.events.append_arrow(events)
        first = start + timedelta(days=args.first_train_day)
        log = read_event_store(stores.events, EventQuery(end=first))
        registry = open_registry(settings, stores.artifacts)
        register_training(train(log), log, registry, aliases=["production"])
        runner = JobRunner(settings, build_registry(), open_run_history(settings), stores=stores)
        for day in range(args.first_train_day + 1, DAYS + 1):
            as_of = start + timedelta(days=day)
            started = time.perf_counter()
            output = runner.run("retrain", end=as_of).output
            seconds = time.perf_counter() - started
            train_seconds = 0.0
            if output.get("trained"):
                runs = runner.history.list_runs(job_name="train", limit=1)
                train_seconds = float(runs[0].duration_seconds or 0.0)
            with_results = runner.history.list_runs(job_name="retrain", limit=1)[0].output or {}
            days.append(
                {
                    "day": day,
                    "version": output["model_version"],
                    "firing": output["firing"],
                    "trained": output.get("trained"),
                    "held": output.get("held"),
                    "train_status": (output.get("train") or {}).get("status"),
                    "check_seconds": round(seconds - train_seconds, 2),
                    "checks": with_results.get("checks"),
                }
            )
            print(json.dumps(days[-1]), flush=True)
        from tastebud.monitoring.runner import open_results

        with open_results(stores) as results:
            offline = results.history(check="offline", limit=10_000)
        stores.close()
    ndcg = {
        (row.as_of - start).days: {
            "version": row.model_version,
            "ndcg@10": row.metrics.get("offline.ndcg@10"),
            "baseline": row.metrics.get("offline.ndcg@10.baseline"),
            "drop": row.metrics.get("offline.ndcg@10.drop"),
        }
        for row in reversed(offline)
    }
    for entry in days:
        entry["offline"] = ndcg.get(int(entry["day"]))  # type: ignore[arg-type]
    before = [d for d in days if int(d["day"]) <= args.shift_day]  # type: ignore[arg-type]
    document = {
        "benchmark": "monitoring",
        "machine": describe(),
        "events": events.num_rows,
        "args": {k: str(v) for k, v in vars(args).items()},
        "false_ndcg_fires_before_shift": sum("ndcg_drop" in d["firing"] for d in before),  # type: ignore[operator]
        "trainings": sum(bool(d["trained"]) for d in days),
        "check_seconds_median": statistics.median(float(d["check_seconds"]) for d in days),  # type: ignore[arg-type]
        "days": days,
    }
    print(json.dumps({k: v for k, v in document.items() if k != "days"}, indent=2))
    if args.out:
        args.out.write_text(json.dumps(document, indent=2, default=str))


if __name__ == "__main__":
    main()
