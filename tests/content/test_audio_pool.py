"""Extraction in worker processes: results for every file, bad files with their reason,
a file past the timeout killed and reported while the rest go on."""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from content_samples import catalog, chord, click_track, write

from tastebud.content.audio_pool import AudioPool
from tastebud.content.pipeline import AudioSettings, build, pool_runner


def audio_workers() -> list[psutil.Process]:
    """This process's live audio worker processes (started with spawn)."""
    workers = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(child.cmdline()):
                workers.append(child)
    return workers


def test_pool_extracts_and_reports_failures(tmp_path: Path) -> None:
    paths = {
        f"bpm{bpm}": write(tmp_path / f"{bpm}.wav", click_track(bpm, seconds=10))
        for bpm in (100, 120, 150)
    }
    paths["missing"] = tmp_path / "absent.flac"
    (tmp_path / "text.ogg").write_text("hello")
    paths["text"] = tmp_path / "text.ogg"
    paths["chord"] = write(tmp_path / "chord.wav", chord([57, 60, 64]))
    with AudioPool(workers=2, timeout=60) as pool:
        results = dict(pool.run(paths))
        assert set(results) == set(paths)
        for bpm in (100, 120, 150):
            features = results[f"bpm{bpm}"].features
            assert features is not None
            assert features["tempo"] == pytest.approx(bpm, rel=0.04)
        assert results["missing"].reason == "missing_file"
        assert results["text"].reason == "unsupported_format"
        assert results["chord"].features is not None
        # The pool is reusable: a second batch runs on the same warm workers.
        again = dict(pool.run({"x": paths["bpm120"]}))
        assert again["x"].features is not None
        assert dict(pool.run({})) == {}


def test_timeout_kills_the_file_not_the_batch(tmp_path: Path) -> None:
    slow = write(tmp_path / "long.wav", click_track(120, seconds=120))
    short = write(tmp_path / "short.wav", click_track(120, seconds=3))
    with AudioPool(workers=1, timeout=0.05) as pool:
        results = dict(pool.run({"slow": slow}))
        assert results["slow"].features is None
        assert results["slow"].reason == "timeout"
        assert "long.wav" in results["slow"].detail
    with AudioPool(workers=1, timeout=30) as pool:
        assert dict(pool.run({"short": short}))["short"].features is not None


def test_a_dying_worker_is_replaced(tmp_path: Path) -> None:
    # Stands in for a crash inside a C decoder: the worker process dies mid-file (a second
    # into it: the 240 s file takes longer, and the worker has let go of pebble's channel lock,
    # which it holds for the instant of taking a file; see audio_pool's docstring).
    import threading
    import time

    long = write(tmp_path / "long.wav", click_track(120, seconds=240))
    short = write(tmp_path / "short.wav", click_track(120, seconds=3))
    with AudioPool(workers=1, timeout=120) as pool:

        def kill_when_busy() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if pool.in_progress == ["long"]:
                    time.sleep(1)
                    (worker,) = audio_workers()
                    worker.kill()
                    return
                time.sleep(0.01)

        killer = threading.Thread(target=kill_when_busy, daemon=True)
        killer.start()
        results = dict(pool.run({"long": long, "short": short}))
        killer.join()
        assert results["long"].reason == "worker_crashed"
        assert results["short"].features is not None  # the replacement finished the batch


def test_files_not_started_by_stop_at_are_deferred(tmp_path: Path) -> None:
    import time

    paths = {f"t{i}": write(tmp_path / f"{i}.wav", click_track(120, seconds=3)) for i in range(3)}
    with AudioPool(workers=1, timeout=60) as pool:
        results = dict(pool.run(paths, stop_at=time.monotonic() - 1))
    assert {key: result.reason for key, result in results.items()} == dict.fromkeys(
        paths, "deferred"
    )


# --- the kernel cache: several workers from cold, a corrupt cache, workers that cannot start --


@pytest.fixture(scope="module")
def compiled_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A numba kernel cache compiled from cold by a pool of three workers at once: the race
    that corrupted librosa's cache. Each worker warms up under the cache lock, so the first
    compiles and the others load what it wrote; every file then gets its features."""
    folder = tmp_path_factory.mktemp("audio")
    cache = folder / "numba"
    paths = {
        f"t{i}": write(folder / f"{i}.wav", click_track(100 + 10 * i, seconds=4)) for i in range(4)
    }
    with AudioPool(workers=3, timeout=120, cache_dir=cache) as pool:
        results = dict(pool.run(paths))
        assert len(audio_workers()) == 3 and pool.unavailable is None
    assert {key: result.reason for key, result in results.items()} == dict.fromkeys(paths)
    assert all(result.features is not None for result in results.values())
    assert list(cache.rglob("*.nbi")), "the workers did not write numba's cache"
    return cache


def test_a_cold_cache_with_several_workers_gives_every_file(compiled_cache: Path) -> None:
    indexes = sorted(compiled_cache.rglob("*.nbi"))
    assert indexes and all(index.stat().st_size > 0 for index in indexes)


def test_a_corrupt_cache_is_cleared_and_rebuilt(compiled_cache: Path, tmp_path: Path) -> None:
    """What the race left behind: every later start crashed loading the cache."""
    cache = tmp_path / "numba"
    shutil.copytree(compiled_cache, cache)
    for index in cache.rglob("*.nbi"):
        index.write_bytes(b"\xff" * 64)
    short = write(tmp_path / "short.wav", click_track(120, seconds=3))
    with AudioPool(workers=2, timeout=120, cache_dir=cache) as pool:
        results = dict(pool.run({"a": short, "b": short}))
        assert pool.unavailable is None
    assert all(result.features is not None for result in results.values())
    assert all(not index.read_bytes().startswith(b"\xff" * 8) for index in cache.rglob("*.nbi"))


def kill_starting_workers(stop: threading.Event) -> None:
    """Kill this process's audio workers as they start: a crash on start-up, every time."""
    me = psutil.Process()
    while not stop.is_set():
        for child in me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if "spawn_main" in " ".join(child.cmdline()):
                    child.kill()
        time.sleep(0.02)


def test_workers_that_cannot_start_leave_audio_out_and_the_build_goes_on(
    tmp_path: Path,
) -> None:
    audio = {i: write(tmp_path / f"{i}.wav", click_track(120, seconds=3)) for i in range(3)}
    items = catalog(8, audio)
    stop = threading.Event()
    killer = threading.Thread(target=kill_starting_workers, args=(stop,), daemon=True)
    killer.start()
    try:
        runner = pool_runner(AudioSettings(workers=2, timeout=60, cache_dir=tmp_path / "numba"))
        result = build(items, {}, audio_runner=runner)
    finally:
        stop.set()
        killer.join()
    artifact = result.artifact
    assert artifact is not None and result.processed == 8
    assert sorted(artifact.item_ids) == sorted(item.item_id for item in items)
    assert np.allclose(np.linalg.norm(artifact.vectors, axis=1), 1.0, atol=1e-5)
    failures = {(f.item_id, f.stage, f.reason) for f in result.failures}
    assert failures == {(items[i].item_id, "audio", "audio_unavailable") for i in audio}
    assert all("could not start" in f.detail for f in result.failures)


def suspend_starting_workers(stop: threading.Event) -> None:
    """Freeze this process's audio workers as they start: a warm-up that hangs, every time."""
    me = psutil.Process()
    while not stop.is_set():
        for child in me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if child.status() != psutil.STATUS_STOPPED and "spawn_main" in " ".join(
                    child.cmdline()
                ):
                    child.suspend()
        time.sleep(0.02)


def test_workers_that_hang_while_starting_leave_audio_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tastebud.content import audio_pool

    monkeypatch.setattr(audio_pool, "STARTUP_TIMEOUT", 2.0)
    short = write(tmp_path / "short.wav", click_track(120, seconds=3))
    stop = threading.Event()
    freezer = threading.Thread(target=suspend_starting_workers, args=(stop,), daemon=True)
    freezer.start()
    try:
        with AudioPool(workers=2, timeout=60, cache_dir=tmp_path / "numba") as pool:
            results = dict(pool.run({"a": short, "b": short}))
            assert pool.unavailable is not None and "no file started in 2 s" in pool.unavailable
    finally:
        stop.set()
        freezer.join()
    assert {key: result.reason for key, result in results.items()} == {
        "a": "audio_unavailable",
        "b": "audio_unavailable",
    }
    assert audio_workers() == []
