"""Speech quality metrics on 8 kHz float samples: PESQ narrow-band, STOI, and the mel log-spectral distance.

PESQ (ITU-T P.862, the `pesq` package) and STOI (`pystoi`) compare waveforms, so they include the
Griffin-Lim step; the mel LSD compares log-mel images (dB, clipped to the front end's [-80, +20])
and isolates the codec: sqrt(mean over bands of dB difference^2), averaged over frames.
"""
import numpy as np

from ..audio.mel import unit_to_db, wav_to_mel
from ..audio.wav import SAMPLE_RATE


def pesq_nb(reference: np.ndarray, degraded: np.ndarray) -> float:
    """PESQ narrow-band MOS-LQO (about 1 to 4.5); NaN when PESQ finds no speech."""
    from pesq import PesqError, pesq

    n = min(len(reference), len(degraded))
    try:
        return float(pesq(SAMPLE_RATE, np.asarray(reference[:n], np.float32), np.asarray(degraded[:n], np.float32),
                          "nb"))
    except PesqError:
        return float("nan")


def stoi(reference: np.ndarray, degraded: np.ndarray) -> float:
    from pystoi import stoi as _stoi

    n = min(len(reference), len(degraded))
    return float(_stoi(np.asarray(reference[:n], np.float64), np.asarray(degraded[:n], np.float64), SAMPLE_RATE))


def mel_lsd(mel_a: np.ndarray, mel_b: np.ndarray) -> float:
    """Log-spectral distance in dB between two (bands, T) mels in the front end's [-1, 1] units."""
    t = min(mel_a.shape[-1], mel_b.shape[-1])
    d = unit_to_db(mel_a[..., :t]) - unit_to_db(mel_b[..., :t])
    return float(np.sqrt((d ** 2).mean(axis=-2)).mean())


def waveform_scores(reference: np.ndarray, degraded: np.ndarray) -> dict:
    """PESQ-NB, STOI and the mel LSD of the degraded waveform's own mel."""
    return {"pesq_nb": pesq_nb(reference, degraded), "stoi": stoi(reference, degraded),
            "mel_lsd_db": mel_lsd(wav_to_mel(reference), wav_to_mel(degraded))}
