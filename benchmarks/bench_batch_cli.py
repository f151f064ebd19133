"""The batch contract at 1M interactions: `tastebud train --auto` (default budget) and
`tastebud recommend` for every user, timed as a user runs them (separate processes).

Run:  .venv/bin/python benchmarks/bench_batch_cli.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe

from tastebud.data.synthetic import WorldSpec, estimate_events, generate_world

RESULTS = Path(__file__).resolve().parent / "results" / "batch-cli.json"
TASTEBUD = Path(sys.executable).with_name("tastebud")


def interactions(events: int, work: Path) -> Path:
    path = work / "interactions.csv"
    if path.exists():
        return path
    users = 1000
    while estimate_events(WorldSpec(users=users, items=users, days=30)) < events:
        users = int(users * 1.2)
    generate_world(WorldSpec(users=users, items=users, days=30, seed=5), work / "world")
    table = pq.read_table(
        work / "world" / "events.parquet",
        columns=["user_id", "item_id", "event_type", "value", "timestamp"],
    ).slice(0, events)
    table = table.rename_columns(["user_id", "item_id", "event_type", "rating", "timestamp"])
    # Only ratings carry a rating; other values (seconds, prices) are not preferences.
    table = table.set_column(
        3, "rating", pc.if_else(pc.equal(table["event_type"], "rating"), table["rating"], None)
    )
    pacsv.write_csv(table, path)
    users_path = work / "users.txt"
    users_path.write_text("\n".join(pc.unique(table["user_id"]).to_pylist()) + "\n")
    return path


def timed(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([str(TASTEBUD), *args], check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bench-cli")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    path = interactions(args.events, args.work)
    rows = pacsv.read_csv(path).num_rows
    env = {**os.environ, "TASTEBUD_HOME": str(args.work / "home")}
    result: dict[str, object] = {"machine": describe(), "interactions": rows}
    for name, extra in (("default", []), ("auto", ["--auto"])):
        model = args.work / f"model-{name}"
        subprocess.run(["rm", "-rf", str(model)], check=True)
        seconds = timed(["train", "--interactions", str(path), "--out", str(model), *extra], env)
        training = json.loads((model / "training.json").read_text())
        users = sum(1 for _ in (args.work / "users.txt").open())
        recommend = timed(
            ["recommend", "--model", str(model), "--users", str(args.work / "users.txt"),
             "--k", "10", "--out", str(args.work / f"recs-{name}.csv")],
            env,
        )  # fmt: skip
        written = pacsv.read_csv(args.work / f"recs-{name}.csv").num_rows
        result[name] = {
            "train_seconds": round(seconds, 1),
            "model": training["model"],
            "trials": len(training["search"]["trials"]) if training["search"] else 0,
            "matrix": training["data"]["matrix"],
            "recommend_seconds": round(recommend, 1),
            "users": users,
            "rows_written": written,
        }
        print(name, json.dumps(result[name]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
