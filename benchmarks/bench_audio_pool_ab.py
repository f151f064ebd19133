"""The audio pool of this checkout against the one of another commit, side by side: the same
files through each, in alternating rounds, so both see the same machine load.

Short tracks make the pool's own cost (hand-off between processes, result delivery) a
larger share of the wall time than the 30-second tracks of ``bench_content_audio.py``.
The old pool's module is taken from git (``--old-ref``) into a temporary folder and run
from there; workers are warmed up off the clock in each round.

Run:  flock /work/wt/bench.lock .venv/bin/python benchmarks/bench_audio_pool_ab.py \\
          --old-ref main --tracks 200 --seconds 3 --rounds 3
"""

from __future__ import annotations

import argparse
import importlib
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

import soundfile as sf
from bench_content_audio import RATE, synth
from machine import describe

from tastebud.content import audio_pool as new_pool

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-ref", default="main", help="git ref of the pool to compare")
    parser.add_argument("--tracks", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each track")
    parser.add_argument("--distinct", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    return parser.parse_args(argv)


def old_module(ref: str, folder: Path) -> Any:
    """``tastebud/content/audio_pool.py`` at ``ref``, importable as ``audio_pool_old`` (also
    by spawned workers: the folder goes on PYTHONPATH through sys.path of the children)."""
    source = subprocess.run(
        ["git", "show", f"{ref}:tastebud/content/audio_pool.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (folder / "audio_pool_old.py").write_text(source)
    sys.path.insert(0, str(folder))
    return importlib.import_module("audio_pool_old")


def one_round(module: Any, jobs: dict[str, Path], workers: int, cache: Path) -> float:
    with module.AudioPool(workers=workers, timeout=120, cache_dir=cache) as pool:
        first = next(iter(jobs.values()))
        list(pool.run({f"warm{i}": first for i in range(workers)}))
        started = time.perf_counter()
        results = dict(pool.run(jobs))
        wall = time.perf_counter() - started
    assert all(result.features is not None for result in results.values()), "a track failed"
    return wall


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tastebud-pool-ab-") as scratch:
        folder = Path(scratch)
        old = old_module(args.old_ref, folder)
        # Spawned workers import the old module by name: they need its folder on their path.
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [str(folder), str(ROOT), os.environ.get("PYTHONPATH", "")]
        )
        files = []
        for i in range(args.distinct):
            path = folder / f"t{i}.wav"
            sf.write(path, synth(args.seconds, i), RATE, subtype="PCM_16")
            files.append(path)
        jobs = {f"track{i}": files[i % len(files)] for i in range(args.tracks)}
        cache = folder / "numba"
        walls: dict[str, list[float]] = {"old": [], "new": []}
        for _ in range(args.rounds):
            for name, module in (("old", old), ("new", new_pool)):
                walls[name].append(one_round(module, jobs, args.workers, cache))
                print(f"{name}: {walls[name][-1]:.2f} s", flush=True)
    medians = {name: statistics.median(values) for name, values in walls.items()}
    document = {
        "benchmark": "audio-pool-ab",
        "old_ref": args.old_ref,
        "tracks": args.tracks,
        "track_seconds": args.seconds,
        "workers": args.workers,
        "wall_seconds": walls,
        "median_wall_seconds": medians,
        "tracks_per_second": {name: args.tracks / wall for name, wall in medians.items()},
        "new_over_old_throughput": medians["old"] / medians["new"],
        "machine": describe(),
    }
    print(json.dumps(document, indent=2))
    if args.out:
        args.out.write_text(json.dumps(document, indent=2) + "\n")
    return document


if __name__ == "__main__":
    main()
