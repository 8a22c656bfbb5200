"""The light speech front end: 8 kHz samples <-> a (64, T) log-mel image in [-1, 1], and its inversion.

Forward: STFT n_fft 256 (32 ms) hop 64 (8 ms), Hann window, centred; power mel over 64 Slaney bands
(librosa defaults, 0..4 kHz); dB = 10 log10(power) with ref 1.0; clipped to [-80, +20] dB and mapped
linearly to [-1, 1]. The floor is the -80 dB of the original recipe; the ceiling is +20 dB because
with ref 1.0 and Slaney-normalised bands, loud LJ Speech vowels reach +17 dB (0 dB would clip them).
Frame t is centred on sample t * hop; a clip of n samples keeps T = ceil(n / hop) frames, so T * hop
samples (n padded to the hop) cover it exactly.

Backward (float post-processing, not part of the bit-exact contract): mel power -> linear STFT
magnitude by librosa's non-negative least squares mel inversion, then Griffin-Lim with a fixed seed.
The integer decoder's int8 mel (value y / 128) is the contract; the waveform is derived from it.
"""
import math

import numpy as np

from bpgan.firmware_ref.bitstream import AUDIO_HOP as HOP  # the bitstream's samples-per-frame rule

from .wav import SAMPLE_RATE

N_FFT, N_MELS = 256, 64
DB_FLOOR, DB_CEIL = -80.0, 20.0
from bpgan.firmware_ref.speech import GRIFFIN_LIM_ITERS  # noqa: E402,F401  (one constant for both back ends)


def num_frames(num_samples: int) -> int:
    return math.ceil(num_samples / HOP)


def db_to_unit(db: np.ndarray) -> np.ndarray:
    return (2 * (np.clip(db, DB_FLOOR, DB_CEIL) - DB_FLOOR) / (DB_CEIL - DB_FLOOR) - 1).astype(np.float32)


def unit_to_db(x: np.ndarray) -> np.ndarray:
    return (np.asarray(x, np.float64) + 1) / 2 * (DB_CEIL - DB_FLOOR) + DB_FLOOR


def mel_db(samples: np.ndarray) -> np.ndarray:
    """(n,) samples at 8 kHz -> (N_MELS, ceil(n / HOP)) mel power in dB (ref 1.0, not clipped)."""
    import librosa

    s = librosa.feature.melspectrogram(y=np.asarray(samples, np.float32), sr=SAMPLE_RATE, n_fft=N_FFT,
                                       hop_length=HOP, n_mels=N_MELS, power=2.0)
    return librosa.power_to_db(s, ref=1.0, amin=1e-10, top_db=None)[:, :num_frames(len(samples))]


def wav_to_mel(samples: np.ndarray) -> np.ndarray:
    """(n,) samples -> (N_MELS, T) float32 in [-1, 1], the model's input."""
    return db_to_unit(mel_db(samples))


def pad_frames(mel: np.ndarray, multiple: int) -> np.ndarray:
    """(..., T) -> (..., T + pad) with T + pad a multiple of `multiple`, repeating the last frame."""
    pad = (-mel.shape[-1]) % multiple
    return np.pad(mel, [(0, 0)] * (mel.ndim - 1) + [(0, pad)], mode="edge") if pad else mel


def int8_to_unit(y: np.ndarray, frac_bits: int = 7) -> np.ndarray:
    """The generator's int8 output codes -> the mel in [-1, 1) (value y * 2**-frac_bits)."""
    return np.asarray(y, np.float64) * 2.0 ** -frac_bits


def mel_to_wav(mel_unit: np.ndarray, num_samples: int, iters: int = GRIFFIN_LIM_ITERS, seed: int = 0) -> np.ndarray:
    """(N_MELS, T) mel in [-1, 1] -> (num_samples,) float32 waveform (NNLS mel inversion + Griffin-Lim)."""
    import librosa

    power = 10.0 ** (unit_to_db(mel_unit) / 10.0)
    magnitude = librosa.feature.inverse.mel_to_stft(power, sr=SAMPLE_RATE, n_fft=N_FFT, power=2.0)
    # Griffin-Lim re-analyses its estimate each iteration: the length must give back exactly T centred
    # frames (1 + L // HOP == T), so run at T * HOP - 1 samples and pad the one missing sample, if any.
    frames = magnitude.shape[1]
    y = librosa.griffinlim(magnitude, n_iter=max(int(iters), 1), hop_length=HOP, n_fft=N_FFT,
                           length=frames * HOP - 1, random_state=seed)
    y = np.asarray(y[:num_samples], np.float32)
    return np.pad(y, (0, num_samples - len(y))) if len(y) < num_samples else y
