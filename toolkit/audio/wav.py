"""Audio files <-> 8 kHz mono float32 samples in [-1, 1].

Any sample rate and channel count soundfile reads is accepted: channels are averaged (with a note)
and the signal is resampled to 8 kHz with soxr (librosa's default high-quality resampler).
Conversions are listed in `notes` for the CLI to print; every failure is one AudioError line.
Output: 16-bit PCM WAV, samples rounded half up after clipping to [-1, 32767/32768].
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Tuple

import numpy as np

SAMPLE_RATE = 8000
MIN_SAMPLES = 256  # one STFT window (32 ms at 8 kHz): anything shorter has no spectrum to code


class AudioError(ValueError):
    """An audio input that cannot be read or converted."""


@dataclass(frozen=True)
class LoadedAudio:
    samples: np.ndarray          # (n,) float32 at SAMPLE_RATE
    source_rate: int
    source_channels: int
    notes: Tuple[str, ...]

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def to_mono_8k(data: np.ndarray, rate: int, where: str = "audio") -> LoadedAudio:
    """(n,) or (n, channels) float samples at `rate` -> LoadedAudio at 8 kHz."""
    import librosa

    data = np.asarray(data, dtype=np.float32)
    notes = []
    channels = 1 if data.ndim == 1 else data.shape[1]
    if data.ndim == 2:
        if channels > 1:
            notes.append(f"{channels} channels downmixed to mono (mean)")
        data = data.mean(axis=1)
    if data.size == 0:
        raise AudioError(f"{where} is empty (no samples)")
    if not np.all(np.isfinite(data)):
        raise AudioError(f"{where} holds NaN or infinite samples")
    if rate != SAMPLE_RATE:
        notes.append(f"resampled from {rate} Hz to {SAMPLE_RATE} Hz")
        data = librosa.resample(data, orig_sr=rate, target_sr=SAMPLE_RATE).astype(np.float32)
    if len(data) < MIN_SAMPLES:
        raise AudioError(f"{where} is too short: {len(data)} samples at {SAMPLE_RATE} Hz, "
                         f"at least {MIN_SAMPLES} ({1000 * MIN_SAMPLES / SAMPLE_RATE:.0f} ms) needed")
    return LoadedAudio(data, rate, channels, tuple(notes))


def read_audio(path) -> LoadedAudio:
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"no audio file at {path}")
    if path.stat().st_size == 0:
        raise AudioError(f"{path} is empty (0 bytes)")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, TypeError, ValueError) as e:
        raise AudioError(f"{path} is not a readable audio file ({type(e).__name__})") from None
    return to_mono_8k(data, rate, str(path))


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """float samples -> int16, floor(x * 32768 + 0.5) after clipping (round half up, as everywhere)."""
    x = np.clip(np.asarray(samples, dtype=np.float64), -1.0, 32767 / 32768)
    return np.floor(x * 32768 + 0.5).astype(np.int16)


def write_wav(path, samples: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), to_pcm16(samples), rate, subtype="PCM_16", format="WAV")
