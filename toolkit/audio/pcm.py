"""PCM files for the lossless codec: the file's own samples, rate and channels, nothing converted.

read_pcm accepts 8- and 16-bit PCM WAV and FLAC (8-bit samples come back as int16 multiples of 256,
exactly soundfile's mapping, which the codec's wasted-bits field then codes for free); float and
24/32-bit PCM are refused in one line (16-bit output could not hold them). write_pcm writes 16-bit PCM.
"""
from pathlib import Path
from typing import Tuple

import numpy as np

from .wav import AudioError

LOSSLESS_SUBTYPES = ("PCM_16", "PCM_S8", "PCM_U8")


def read_pcm(path) -> Tuple[np.ndarray, int]:
    """-> (int16 samples (channels, n), sample rate). AudioError (one line) for anything not 8/16-bit PCM."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    try:
        info = sf.info(str(path))
    except Exception as e:  # noqa: BLE001 - libsndfile's messages vary; one line for all
        raise AudioError(f"{path}: not a readable audio file ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if info.subtype not in LOSSLESS_SUBTYPES:
        raise AudioError(f"{path}: {info.subtype_info or info.subtype} samples; the lossless codec takes 8- or "
                         f"16-bit PCM (WAV, FLAC) and writes 16-bit")
    data, rate = sf.read(str(path), dtype="int16", always_2d=True)
    return np.ascontiguousarray(data.T), int(rate)


def write_pcm(path, samples: np.ndarray, rate: int) -> None:
    """int16 (channels, n) -> 16-bit PCM (WAV or FLAC by the suffix)."""
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "FLAC" if path.suffix.lower() == ".flac" else "WAV"
    sf.write(str(path), np.asarray(samples, dtype=np.int16).T, int(rate), subtype="PCM_16", format=fmt)
