"""A/B tests through the whole stack at laptop size: how close the analysis comes to the
simulator's truth, and what one costs in time.

One quickstart home (``--world-users`` x ``--world-items``), one gateway served in the
process; for each seed an A/A and a popularity-only variant (examples/experiments) run one
after the other over HTTP (``--users`` simulated users for ``--days`` days), each stopped
and analyzed from the stores. Prints one JSON line per run (measured lift on click-through
with its interval and p, the truth's lift, the sample ratio p, seconds) and a summary.

    flock /work/wt/bench.lock .venv/bin/python benchmarks/bench_simulated_ab.py --seeds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from machine import describe

from tastebud.cli.simulate import local_home, serve_local
from tastebud.config import load_settings
from tastebud.simulation import ab
from tastebud.simulation.loop import ClosedLoop, LoopConfig

EXAMPLES = Path(__file__).parents[1] / "examples" / "experiments"


def one(local: Any, url: str, admin: httpx.Client, name: str, seed: int, args: Any) -> dict:
    definition = ab.read_definition(EXAMPLES / f"{name}.yaml")
    definition["key"] = key = f"{definition['key']}-{seed}"
    began = time.monotonic()
    ab.start_experiment(admin, definition, settle_seconds=1.0)
    config = LoopConfig(users=args.users, days=args.days, seed=seed)
    with httpx.Client(base_url=url, headers={"X-API-Key": local.key}, timeout=30) as http:
        summary = ClosedLoop(local.model, http, config).run()
    ab.stop_experiment(admin, key)
    return {"key": key, "summary": summary, "seconds": time.monotonic() - began}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--days", type=float, default=7)
    parser.add_argument("--world-users", type=int, default=300)
    parser.add_argument("--world-items", type=int, default=400)
    args = parser.parse_args()
    print(json.dumps({"machine": describe()}))
    began = time.monotonic()
    base = load_settings(home=Path("/tmp/unused-bench-home"), database_url=None)
    with local_home(base, args.world_users, args.world_items, 14, args.days) as local:
        world_seconds = time.monotonic() - began
        runs = []
        with (
            serve_local(local.settings) as url,
            httpx.Client(base_url=url, headers={"X-API-Key": local.admin_key}) as admin,
        ):
            for seed in range(args.seeds):
                for name in ("aa", "popularity"):
                    runs.append((name, one(local, url, admin, name, seed, args)))
        rows = []
        for name, run in runs:
            analysis = ab.analyze_database(local.settings, run["key"], now=datetime.now(UTC))
            truth = ab.truth_by_variant(run["summary"], run["key"], analysis.control)
            (result,) = [r for r in analysis.results if r.metric == "click_through"]
            lift = result.comparison.relative if result.comparison else None
            (treatment,) = [v for v in truth if v != analysis.control]
            row = {
                "experiment": name,
                "key": run["key"],
                "users": analysis.exposed_users,
                "lists": run["summary"].requests,
                "lift": lift.estimate if lift else None,
                "low": lift.low if lift else None,
                "high": lift.high if lift else None,
                "p": result.comparison.p_value if result.comparison else None,
                "true_lift": truth[treatment]["true_lift"],
                "srm_p": analysis.srm.p_value,
                "decision": analysis.decision.line,
                "loop_seconds": round(run["seconds"], 1),
            }
            rows.append(row)
            print(json.dumps(row))
    worse = [r for r in rows if r["experiment"] == "popularity"]
    print(
        json.dumps(
            {
                "world_seconds": round(world_seconds, 1),
                "median_loop_seconds": statistics.median(r["loop_seconds"] for r in rows),
                "popularity_median_lift": statistics.median(r["lift"] for r in worse),
                "popularity_median_true_lift": statistics.median(r["true_lift"] for r in worse),
                "popularity_truth_inside_interval": sum(
                    r["low"] <= r["true_lift"] <= r["high"] for r in worse
                ),
                "aa_significant": sum(
                    r["p"] is not None and r["p"] < 0.05 for r in rows if r["experiment"] == "aa"
                ),
                "srm_flagged": sum(r["srm_p"] < 0.001 for r in rows),
                "runs": len(rows),
            }
        )
    )


if __name__ == "__main__":
    main()
