"""Audio features from synthesized audio: tempo of click tracks, key of chords, formats, and
every kind of bad file failing with its reason before (or instead of) a decode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from content_samples import RATE, chord, click_track, write

from tastebud.content.audio import (
    AUDIO_FIELDS,
    AudioError,
    analyse,
    estimate_key,
    extract_features,
    key_name,
    probe,
    sniff_format,
)


@pytest.mark.parametrize("bpm", [90, 120, 140])
def test_tempo_of_click_tracks(tmp_path: Path, bpm: int) -> None:
    features = extract_features(write(tmp_path / "clicks.wav", click_track(bpm)))
    assert features["tempo"] == pytest.approx(bpm, rel=0.04)
    assert features["duration_sec"] == pytest.approx(30.0, abs=0.01)
    assert list(features) == list(AUDIO_FIELDS)
    assert all(np.isfinite(value) for value in features.values())


@pytest.mark.parametrize(
    ("notes", "expected"),
    [
        ([60, 64, 67], "C major"),
        ([57, 60, 64], "A minor"),
        ([55, 59, 62], "G major"),
        ([52, 55, 59], "E minor"),
        ([63, 67, 70], "D# major"),
    ],
)
def test_key_of_chords(tmp_path: Path, notes: list[int], expected: str) -> None:
    features = extract_features(write(tmp_path / "chord.wav", chord(notes)))
    assert key_name(features["key"], features["mode"]) == expected
    assert features["key_strength"] > 0.5


def test_key_profiles_on_an_ideal_chroma() -> None:
    # The C major profile itself, rotated to F#: the estimate must find F# major exactly.
    from tastebud.content.audio import MAJOR_PROFILE

    chroma = np.roll(MAJOR_PROFILE, 6)[:, None] * np.ones((1, 10))
    assert estimate_key(chroma)[:2] == (6, 1)
    assert estimate_key(np.zeros((12, 5))) == (0, 1, 0.0)


def test_spectral_features_follow_the_signal(tmp_path: Path) -> None:
    low = extract_features(write(tmp_path / "low.wav", chord([45, 52])))
    high = extract_features(write(tmp_path / "high.wav", chord([84, 91])))
    assert high["spectral_centroid"] > 4 * low["spectral_centroid"]
    assert high["zero_crossing_rate"] > low["zero_crossing_rate"]
    loud = extract_features(write(tmp_path / "loud.wav", chord([60]) * 4))
    quiet = extract_features(write(tmp_path / "quiet.wav", chord([60])))
    assert loud["rms"] == pytest.approx(4 * quiet["rms"], rel=0.05)


@pytest.mark.parametrize(("fmt", "suffix"), [("FLAC", "flac"), ("OGG", "ogg"), ("MP3", "mp3")])
def test_other_formats_and_sample_rates(tmp_path: Path, fmt: str, suffix: str) -> None:
    signal = click_track(120, seconds=12, rate=44_100)
    path = write(tmp_path / f"track.{suffix}", signal, 44_100, fmt)
    assert probe(path).format == suffix
    features = extract_features(path)
    assert features["tempo"] == pytest.approx(120, rel=0.04)
    assert features["duration_sec"] == pytest.approx(12.0, abs=0.1)


def test_sniffing() -> None:
    assert sniff_format(b"RIFF\x00\x00\x00\x00WAVEfmt ") == "wav"
    assert sniff_format(b"fLaC\x00") == "flac"
    assert sniff_format(b"OggS\x00") == "ogg"
    assert sniff_format(b"ID3\x04") == "mp3"
    assert sniff_format(b"\xff\xfb\x90") == "mp3"
    assert sniff_format(b"\x89PNG\r\n") is None
    assert sniff_format(b"") is None


def _reason(path: Path) -> str:
    with pytest.raises(AudioError) as caught:
        extract_features(path)
    return caught.value.reason


def test_bad_files_fail_with_a_reason(tmp_path: Path) -> None:
    assert _reason(tmp_path / "absent.wav") == "missing_file"
    (tmp_path / "image.wav").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(2000))
    assert _reason(tmp_path / "image.wav") == "unsupported_format"
    (tmp_path / "notes.mp3").write_text("not audio at all, just text")
    assert _reason(tmp_path / "notes.mp3") == "unsupported_format"
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunk" + bytes(100))
    assert _reason(tmp_path / "broken.wav") == "corrupt"
    assert _reason(write(tmp_path / "short.wav", chord([60], seconds=0.5))) == "too_short"
    silent = np.zeros(RATE * 5, dtype=np.float32)
    assert _reason(write(tmp_path / "silent.wav", silent)) == "silent"


def test_truncated_file_is_corrupt_or_short(tmp_path: Path) -> None:
    path = write(tmp_path / "full.flac", click_track(100, seconds=10), fmt="FLAC")
    data = path.read_bytes()
    (tmp_path / "cut.flac").write_bytes(data[: len(data) // 20])
    result = analyse(tmp_path / "cut.flac")
    assert result.features is None
    assert result.reason in {"corrupt", "too_short"}


def test_analyse_never_raises(tmp_path: Path) -> None:
    result = analyse(tmp_path / "nothing.ogg")
    assert result.features is None and result.reason == "missing_file"
    good = analyse(write(tmp_path / "ok.wav", click_track(120, seconds=5)))
    assert good.reason is None and good.features is not None and good.seconds > 0
