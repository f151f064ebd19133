"""The bulk validator (``validation.validate_event_table``) on rows whose ``context`` is JSON
text, as a CSV file brings it, in two checkouts side by side: since a context is parsed as a
body's JSON is (``schemas.loads_json``: a key named twice is refused), each context costs an
``object_pairs_hook`` call that plain ``json.loads`` did not.

Each checkout runs in a child process of its own (its code on ``PYTHONPATH``), the two
alternating, ``--rounds`` times; a child times ``--repeats`` validations and reports the
median. What is printed, and written with ``--out``, is the median over rounds.

Run:  .venv/bin/python benchmarks/bench_context_validation.py --before OLD_CHECKOUT
          [--after .] [--rows 200000] [--rounds 3] [--repeats 5] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe

CHILD = """
import json, statistics, sys, time
import pyarrow as pa
from tastebud.config import EventRules
from tastebud.validation import validate_event_table
rows, repeats = int(sys.argv[1]), int(sys.argv[2])
table = pa.table({
    "user_id": [f"u{i % 5000}" for i in range(rows)],
    "item_id": [f"i{i % 900}" for i in range(rows)],
    "event_type": ["play"] * rows,
    "timestamp": ["2026-12-01T00:00:00Z"] * rows,
    "context": ['{"page": "home", "position": %d, "list_id": "l-%d"}' % (i % 20, i)
                for i in range(rows)],
})
times = []
for _ in range(repeats):
    began = time.perf_counter()
    result = validate_event_table(table, EventRules())
    times.append(time.perf_counter() - began)
assert result.table.num_rows == rows, result.rejections[:3]
print(json.dumps({"median_seconds": statistics.median(times)}))
"""


def run(checkout: Path, rows: int, repeats: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(checkout.resolve())}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(rows), str(repeats)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(done.stdout.strip().splitlines()[-1])["median_seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, default=Path("."))
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    seconds: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(args.rounds):
        for name in ("before", "after"):
            seconds[name].append(run(getattr(args, name), args.rows, args.repeats))
    before, after = (statistics.median(seconds[name]) for name in ("before", "after"))
    result = {
        "machine": describe(),
        "rows": args.rows,
        "rounds": seconds,
        "before_seconds": round(before, 3),
        "after_seconds": round(after, 3),
        "ratio": round(after / before, 3),
        "us_per_row_added": round((after - before) / args.rows * 1e6, 2),
    }
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
