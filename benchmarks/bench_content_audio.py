"""Audio feature extraction throughput: synthetic 30-second tracks through the worker pool
(tracks/s, p50/p95 per track) and 3-minute tracks (p95 per track; target < 5 s).

Tracks are 44.1 kHz stereo 16-bit WAV, like ripped audio, so decoding, down-mixing and
resampling to 22.05 kHz are part of the cost. Each mixes a click track (random tempo), a
chord (random key) and noise. ``--distinct`` files are written and cycled through to make
``--tracks`` jobs (1,000 distinct 30-s files would take 5 GB of disk); every job is a full
decode and analysis, the page cache only saves the disk read.

Per-track latency is measured inside the worker (check + decode + features); the wall
clock gives tracks/s. Workers warm up (imports, numba) before the clock starts.

Run:  .venv/bin/python benchmarks/bench_content_audio.py [--tracks 1000] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe

from tastebud.content.audio_pool import AudioPool

RATE = 44_100


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=1000)
    parser.add_argument("--distinct", type=int, default=50)
    parser.add_argument("--long-tracks", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path)
    return parser.parse_args(argv)


def synth(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    root = 48 + int(rng.integers(0, 24))
    signal = np.zeros_like(t)
    for step in (0, 4, 7):
        signal += 0.1 * np.sin(2 * np.pi * 440 * 2 ** ((root + step - 69) / 12) * t)
    bpm = rng.uniform(70, 180)
    burst = np.hanning(800)[400:]
    for start in np.arange(0, seconds, 60 / bpm):
        i = int(start * RATE)
        n = min(len(burst), len(t) - i)
        signal[i : i + n] += 0.6 * burst[:n] * rng.standard_normal(n)
    signal += 0.01 * rng.standard_normal(len(t))
    stereo = np.stack([signal, np.roll(signal, 50)], axis=1)
    return (stereo / np.abs(stereo).max() * 0.8).astype(np.float32)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def run(paths: dict[str, Path], workers: int) -> tuple[float, list[float], int]:
    with AudioPool(workers=workers, timeout=120) as pool:
        # Warm up every worker on one file each, off the clock.
        list(pool.run({f"warm{i}": next(iter(paths.values())) for i in range(workers)}))
        started = time.perf_counter()
        latencies, failures = [], 0
        for _, result in pool.run(paths):
            latencies.append(result.seconds)
            failures += result.features is None
        return time.perf_counter() - started, latencies, failures


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tastebud-audio-") as scratch:
        folder = Path(scratch)
        files = []
        for i in range(args.distinct):
            path = folder / f"t{i}.wav"
            sf.write(path, synth(30, i), RATE, subtype="PCM_16")
            files.append(path)
        jobs = {f"track{i}": files[i % len(files)] for i in range(args.tracks)}
        wall, latencies, failures = run(jobs, args.workers)
        short = {
            "tracks": args.tracks,
            "workers": args.workers,
            "wall_seconds": round(wall, 2),
            "tracks_per_second": round(args.tracks / wall, 2),
            "p50_seconds": round(percentile(latencies, 50), 3),
            "p95_seconds": round(percentile(latencies, 95), 3),
            "failures": failures,
        }
        print(f"30 s tracks: {json.dumps(short)}")
        for path in files:
            path.unlink()
        long_files = {}
        for i in range(args.long_tracks):
            path = folder / f"long{i}.wav"
            sf.write(path, synth(180, 1000 + i), RATE, subtype="PCM_16")
            long_files[f"long{i}"] = path
        wall, latencies, failures = run(long_files, args.workers)
        long = {
            "tracks": args.long_tracks,
            "workers": args.workers,
            "wall_seconds": round(wall, 2),
            "p50_seconds": round(percentile(latencies, 50), 3),
            "p95_seconds": round(percentile(latencies, 95), 3),
            "max_seconds": round(max(latencies), 3),
            "failures": failures,
        }
        print(f"3 min tracks: {json.dumps(long)}")
    document = {
        "benchmark": "content-audio",
        "format": "WAV 44.1 kHz stereo 16-bit",
        "short_30s": short,
        "long_180s": long,
        "machine": describe(),
    }
    print(json.dumps(document, indent=2))
    if args.out:
        args.out.write_text(json.dumps(document, indent=2) + "\n")
    return document


if __name__ == "__main__":
    main()
