"""Extraction in worker processes: results for every file, bad files with their reason,
a file past the timeout killed and reported while the rest go on."""

from __future__ import annotations

from pathlib import Path

import pytest
from content_samples import chord, click_track, write

from tastebud.content.audio_pool import AudioPool


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
    # Stands in for a crash inside a C decoder: the worker process dies mid-file.
    import threading
    import time

    long = write(tmp_path / "long.wav", click_track(120, seconds=240))
    short = write(tmp_path / "short.wav", click_track(120, seconds=3))
    with AudioPool(workers=1, timeout=120) as pool:

        def kill_when_busy() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                workers = list(pool._pool)
                if workers and workers[0].task is not None:
                    workers[0].process.kill()
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
