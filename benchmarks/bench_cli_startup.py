"""Start-up of the command line: `tastebud --help` and the light commands (`stats`, `keys
list`, `models list`, `jobs list`) as whole processes, against a quickstart world, with the
interpreter alone as the floor and, side by side, an older source tree (`--baseline-ref`).

Each command runs `--runs` times, interleaved with the baseline so that both see the same
load; we quote the median wall time (and the median CPU time of the process), each also as a
ratio to the floor (`python -c pass` measured in the same run), and the load average before
and after. On a shared machine wall times grow with the load while CPU times and ratios to
the floor move much less, so those are what compare across runs. Target: every light
command under 0.5 s wall.

Run:  flock /work/wt/bench.lock .venv/bin/python benchmarks/bench_cli_startup.py --runs 15 \
          --baseline-ref <older commit>
(the quickstart world is built once in --work and reused; `--markdown` prints the table that
docs/benchmarks.md quotes).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "cli-startup.json"
TARGET_SECONDS = 0.5
COMMANDS: dict[str, list[str]] = {
    "python -c pass": [],
    "tastebud --help": ["--help"],
    "tastebud stats": ["stats"],
    "tastebud keys list": ["keys", "list"],
    "tastebud models list": ["models", "list"],
    "tastebud jobs list": ["jobs", "list"],
}


def run_once(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one process (CPU: user + system of the child)."""
    command = [sys.executable, "-m", "tastebud", *args] if args else [sys.executable, "-c", ""]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, cwd=env["HOME_DIR"])
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def baseline_tree(ref: str, work: Path) -> Path:
    """The ``tastebud`` package as of ``ref``, exported beside the work folder."""
    folder = work / f"baseline-{ref}"
    if not (folder / "tastebud").is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", ref, "tastebud"],
            check=True,
            capture_output=True,
        ).stdout
        archive_path = folder / "tastebud.tar"
        archive_path.write_bytes(archive)
        with tarfile.open(archive_path) as tar:
            tar.extractall(folder, filter="data")
        archive_path.unlink()
    return folder


def markdown_table(trees: dict[str, dict[str, dict[str, float]]]) -> str:
    """Wall / CPU seconds and their ratios to the floor, one column per tree."""
    names = list(trees)
    lines = [
        "| command | " + " | ".join(f"{name}: wall / CPU (s), x floor" for name in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for label in trees[names[0]]:
        cells = []
        for name in names:
            row = trees[name][label]
            cells.append(
                f"{row['wall_median']:.3f} / {row['cpu_median']:.3f}, "
                f"{row['wall_floors']:.1f}x / {row['cpu_floors']:.1f}x"
            )
        lines.append(f"| `{label}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "bench-cli-startup"
    )
    parser.add_argument(
        "--baseline-ref", default=None, help="A git ref to compare with (e.g. main)."
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--markdown", action="store_true", help="Also print the table for docs/benchmarks.md."
    )
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    home = args.work / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASTEBUD_", "PYTHONPATH"))}
    env.update({"TASTEBUD_HOME": str(home), "HOME_DIR": str(args.work)})
    if not (home / "artifacts").exists():
        print("setting up a quickstart world (once)...", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "tastebud", "quickstart", "--no-serve"],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
            cwd=args.work,
        )
        subprocess.run(
            [sys.executable, "-m", "tastebud", "keys", "create", "--scope", "read"],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
            cwd=args.work,
        )
    trees: dict[str, dict[str, str]] = {"current": env}
    if args.baseline_ref:
        tree = baseline_tree(args.baseline_ref, args.work)
        trees[args.baseline_ref] = {**env, "PYTHONPATH": str(tree)}

    load_before = os.getloadavg()
    samples: dict[str, dict[str, list[tuple[float, float]]]] = {
        name: {label: [] for label in COMMANDS} for name in trees
    }
    for label, command in COMMANDS.items():
        for tree_env in trees.values():
            run_once(command, tree_env)  # warm the page cache
        for _ in range(args.runs):
            for name, tree_env in trees.items():
                samples[name][label].append(run_once(command, tree_env))

    result: dict[str, object] = {
        "machine": describe(),
        "runs": args.runs,
        "load_average_before": load_before,
        "load_average": os.getloadavg(),
        "target_seconds": TARGET_SECONDS,
        "trees": {},
    }
    for name, by_label in samples.items():
        rows = {}
        for label, pairs in by_label.items():
            walls = [wall for wall, _ in pairs]
            cpus = [cpu for _, cpu in pairs]
            rows[label] = {
                "wall_median": round(statistics.median(walls), 3),
                "wall_min": round(min(walls), 3),
                "cpu_median": round(statistics.median(cpus), 3),
            }
        floor = rows["python -c pass"]
        for row in rows.values():
            row["wall_floors"] = round(row["wall_median"] / floor["wall_median"], 1)
            row["cpu_floors"] = round(row["cpu_median"] / max(floor["cpu_median"], 1e-3), 1)
        result["trees"][name] = rows  # type: ignore[index]
    current = result["trees"]["current"]  # type: ignore[index]
    result["met"] = all(
        row["wall_median"] < TARGET_SECONDS
        for label, row in current.items()
        if label != "python -c pass"
    )
    trees_out: dict[str, dict[str, dict[str, float]]] = result["trees"]  # type: ignore[assignment]
    for name, rows in trees_out.items():
        print(f"\n{name}: median of {args.runs} (wall / cpu seconds; x the floor)")
        for label, row in rows.items():
            print(
                f"  {label:<22} {row['wall_median']:6.3f} / {row['cpu_median']:6.3f}"
                f"   ({row['wall_floors']:4.1f}x / {row['cpu_floors']:4.1f}x)"
            )
    print(
        f"\nload average {load_before} before, {os.getloadavg()} after; "
        f"target < {TARGET_SECONDS} s wall met: {result['met']}"
    )
    if args.markdown:
        print(markdown_table(trees_out))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
