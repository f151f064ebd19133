"""Audio features with librosa: tempo, key and mode, spectral shape, energy and MFCCs.

A file is checked before it is decoded (it exists, its first bytes name a supported
container, libsndfile can read its header, it is long enough), so a renamed JPEG or a
truncated upload fails fast with a reason instead of inside a decoder. Decoding is
libsndfile's (WAV, FLAC, OGG/Vorbis and, from libsndfile 1.1, MP3): librosa's audioread
fallback is deprecated and slow. Running many files in worker processes with a per-file
timeout lives in ``audio_pool.py``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 22_050
HOP = 512
N_FFT = 2048
N_MFCC = 20
MIN_SECONDS = 2.0  # below this, tempo and key are noise
MAX_SECONDS = 600.0  # longer files are analysed on their first ten minutes
SILENCE_RMS = 1e-4  # -80 dBFS over the whole (analysed) signal
SUPPORTED_FORMATS = ("wav", "flac", "ogg", "mp3")

# Krumhansl-Kessler key profiles (probe-tone ratings), tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")

SPECTRAL_FIELDS = (
    "spectral_centroid",
    "spectral_bandwidth",
    "spectral_rolloff",
    "zero_crossing_rate",
    "rms",
)
MFCC_FIELDS = tuple(f"mfcc_{i}_mean" for i in range(1, N_MFCC + 1)) + tuple(
    f"mfcc_{i}_std" for i in range(1, N_MFCC + 1)
)
# What extract_features returns, in this order; key/mode are also given as names.
AUDIO_FIELDS = (
    "tempo",
    "key",
    "mode",
    "key_strength",
    *SPECTRAL_FIELDS,
    *MFCC_FIELDS,
    "duration_sec",
)


class AudioError(Exception):
    """An audio file that cannot give features; ``reason`` is a stable code for reports."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class AudioInfo:
    format: str
    duration_sec: float
    sample_rate: int
    channels: int


def sniff_format(head: bytes) -> str | None:
    """The container named by a file's first bytes (None when not one we decode)."""
    if len(head) >= 12 and head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    return None


def probe(path: str | Path) -> AudioInfo:
    """Check a file before decoding it; raises ``AudioError`` with the reason."""
    path = Path(path)
    if not path.is_file():
        raise AudioError("missing_file", str(path))
    with path.open("rb") as handle:
        head = handle.read(16)
    kind = sniff_format(head)
    if kind is None:
        raise AudioError("unsupported_format", f"{path.name}: not WAV, FLAC, OGG or MP3")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as error:
        raise AudioError("corrupt", f"{path.name}: {error}") from None
    duration = float(info.frames) / info.samplerate if info.samplerate else 0.0
    if not math.isfinite(duration) or duration < MIN_SECONDS:
        raise AudioError("too_short", f"{path.name}: {duration:.2f} s < {MIN_SECONDS} s")
    return AudioInfo(kind, duration, int(info.samplerate), int(info.channels))


def decode(path: str | Path, info: AudioInfo, max_seconds: float = MAX_SECONDS) -> np.ndarray:
    """Mono float32 at ``SAMPLE_RATE``, at most ``max_seconds`` long."""
    frames = int(min(info.duration_sec, max_seconds) * info.sample_rate)
    try:
        data, rate = sf.read(str(path), frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as error:
        raise AudioError("corrupt", f"{Path(path).name}: {error}") from None
    signal = data.mean(axis=1)
    if len(signal) < MIN_SECONDS * rate:
        raise AudioError("too_short", f"{Path(path).name}: decoded {len(signal) / rate:.2f} s")
    if rate != SAMPLE_RATE:
        import librosa  # lazy: librosa (numba, scipy) loads in the audio workers only

        signal = librosa.resample(signal, orig_sr=rate, target_sr=SAMPLE_RATE, res_type="soxr_hq")
    return np.ascontiguousarray(signal, dtype=np.float32)


def estimate_key(chroma: np.ndarray) -> tuple[int, int, float]:
    """(pitch class 0-11, mode 1 major / 0 minor, strength): the Krumhansl-Schmuckler
    estimate, the correlation of the mean chroma with the 24 rotated key profiles."""
    profile = chroma.mean(axis=1)
    if not np.any(profile > 0) or np.ptp(profile) == 0:
        return 0, 1, 0.0
    best = (-2.0, 0, 1)
    for tonic in range(12):
        rotated = np.roll(profile, -tonic)
        for mode, reference in ((1, MAJOR_PROFILE), (0, MINOR_PROFILE)):
            score = float(np.corrcoef(rotated, reference)[0, 1])
            if score > best[0]:
                best = (score, tonic, mode)
    return best[1], best[2], best[0]


def features_from_signal(signal: np.ndarray, duration_sec: float) -> dict[str, float]:
    """Every field of ``AUDIO_FIELDS`` from a mono signal at ``SAMPLE_RATE``."""
    import librosa  # lazy: librosa (numba, scipy) loads in the audio workers only

    rms_total = float(np.sqrt(np.mean(np.square(signal, dtype=np.float64))))
    if not math.isfinite(rms_total):
        raise AudioError("corrupt", "non-finite samples")
    if rms_total < SILENCE_RMS:
        raise AudioError("silent", f"RMS {rms_total:.2e} below {SILENCE_RMS:.0e}")
    # One STFT feeds every spectral feature (the costly part, computed once).
    magnitude = np.abs(librosa.stft(signal, n_fft=N_FFT, hop_length=HOP))
    power = magnitude**2
    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=SAMPLE_RATE))
    onset = librosa.onset.onset_strength(S=mel_db, sr=SAMPLE_RATE, hop_length=HOP)
    tempo = float(librosa.feature.tempo(onset_envelope=onset, sr=SAMPLE_RATE, hop_length=HOP)[0])
    chroma = librosa.feature.chroma_stft(S=power, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP)
    key, mode, strength = estimate_key(chroma)
    mfcc = librosa.feature.mfcc(S=mel_db, n_mfcc=N_MFCC)
    spectral = {
        "spectral_centroid": librosa.feature.spectral_centroid(S=magnitude, sr=SAMPLE_RATE),
        "spectral_bandwidth": librosa.feature.spectral_bandwidth(S=magnitude, sr=SAMPLE_RATE),
        "spectral_rolloff": librosa.feature.spectral_rolloff(S=magnitude, sr=SAMPLE_RATE),
        "zero_crossing_rate": librosa.feature.zero_crossing_rate(
            signal, frame_length=N_FFT, hop_length=HOP
        ),
        "rms": librosa.feature.rms(S=magnitude, frame_length=N_FFT),
    }
    result: dict[str, float] = {
        "tempo": tempo,
        "key": float(key),
        "mode": float(mode),
        "key_strength": strength,
    }
    result.update({name: float(np.mean(values)) for name, values in spectral.items()})
    means, stds = mfcc.mean(axis=1), mfcc.std(axis=1)
    for i in range(N_MFCC):
        result[f"mfcc_{i + 1}_mean"] = float(means[i])
    for i in range(N_MFCC):
        result[f"mfcc_{i + 1}_std"] = float(stds[i])
    result["duration_sec"] = float(duration_sec)
    bad = [name for name, value in result.items() if not math.isfinite(value)]
    if bad:
        raise AudioError("nan_features", ", ".join(bad))
    return result


def extract_features(path: str | Path, max_seconds: float = MAX_SECONDS) -> dict[str, float]:
    """Check, decode and analyse one file (``AudioError`` with a reason on failure)."""
    info = probe(path)
    return features_from_signal(decode(path, info, max_seconds), info.duration_sec)


def key_name(key: float, mode: float) -> str:
    """``"A minor"`` from the numeric key and mode fields."""
    return f"{PITCH_CLASSES[int(key) % 12]} {'major' if mode >= 0.5 else 'minor'}"


@dataclass
class AudioResult:
    """One file's outcome: features, or the reason it has none; ``seconds`` of work."""

    features: dict[str, float] | None
    reason: str | None = None
    detail: str = ""
    seconds: float = 0.0


def analyse(path: str | Path, max_seconds: float = MAX_SECONDS) -> AudioResult:
    """``extract_features`` that never raises: what a worker process runs per file."""
    started = time.perf_counter()
    try:
        features = extract_features(path, max_seconds)
    except AudioError as error:
        return AudioResult(None, error.reason, error.detail, time.perf_counter() - started)
    except Exception as error:  # a decoder bug on one file must not stop the catalog
        detail = f"{type(error).__name__}: {error}"
        return AudioResult(None, "extract_error", detail, time.perf_counter() - started)
    return AudioResult(features, seconds=time.perf_counter() - started)
