"""Synthetic audio and catalog items for the content tests (imported, not a conftest: a
conftest.py here would clash with other folders')."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from tastebud.schemas import Item

RATE = 22_050


def midi_hz(note: int) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def chord(notes: list[int], seconds: float = 8.0, rate: int = RATE) -> np.ndarray:
    """A sustained chord, the root louder: what a key estimate should call the root's key."""
    t = np.arange(int(seconds * rate)) / rate
    weights = [1.0] + [0.8] * (len(notes) - 1)
    signal = sum(
        w * np.sin(2 * np.pi * midi_hz(n) * t) for n, w in zip(notes, weights, strict=True)
    )
    return (0.2 * signal).astype(np.float32)


def click_track(bpm: float, seconds: float = 30.0, rate: int = RATE, seed: int = 0) -> np.ndarray:
    """Noise bursts on every beat over a quiet tone: a tempo with nothing else to find."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    signal = 0.05 * np.sin(2 * np.pi * 261.63 * t)
    burst = np.hanning(600)[300:] * 0.9
    for start in np.arange(0.0, seconds, 60.0 / bpm):
        index = int(start * rate)
        length = min(len(burst), len(signal) - index)
        signal[index : index + length] += burst[:length] * rng.standard_normal(length)
    return signal.astype(np.float32)


def write(path: Path, signal: np.ndarray, rate: int = RATE, fmt: str | None = None) -> Path:
    sf.write(str(path), signal, rate, format=fmt)
    return path


def catalog(n: int = 40, audio: dict[int, Path] | None = None) -> list[Item]:
    """Items in two clear styles (rock / jazz) with titles, tags, creators and attributes."""
    items = []
    for i in range(n):
        rock = i % 2 == 0
        attributes: dict[str, object] = {
            "tags": ["guitar", "loud", "riff"] if rock else ["saxophone", "smooth", "swing"],
            "energy": 0.8 + i / 1000 if rock else 0.3 + i / 1000,
            "danceability": 0.5,
        }
        if audio and i in audio:
            attributes["audio_path"] = str(audio[i])
        items.append(
            Item(
                item_id=f"item{i:03d}",
                title=f"{'Thunder' if rock else 'Blue'} {'anthem' if rock else 'ballad'} {i}",
                creator=f"{'rock' if rock else 'jazz'}-artist-{i % 4}",
                categories=["rock"] if rock else ["jazz"],
                created_at="2024-01-01T00:00:00Z",
                attributes=attributes,
            )
        )
    return items
