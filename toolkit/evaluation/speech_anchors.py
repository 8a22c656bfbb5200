"""Classical speech codecs as anchors: Codec2 (3200/2400/1200 bit/s) and Opus at 6 kbit/s, run on the
same 8 kHz 16-bit signals as BPGAN through their Debian command-line tools (codec2, opus-tools).

Bit rate is 8 * (real file size) / seconds: Codec2 writes headerless frames (.bit), Opus its Ogg
container with headers and tags, as a user would store them (our bitstreams count their header too).
Codec2 delays its output (about 100 samples at 8 kHz); STOI is not delay-invariant (PESQ is), so
each decoded signal is shifted back by the lag that maximises its cross-correlation with the input.
A tool that is not installed is reported by `available()` and skipped with a notice by the caller.
"""
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from ..audio.wav import SAMPLE_RATE, read_audio, to_pcm16, write_wav

CODEC2_MODES = (3200, 2400, 1200)
OPUS_KBPS = 6
ANCHORS = {f"Codec2 {m}": ("c2enc", "c2dec") for m in CODEC2_MODES}
ANCHORS[f"Opus {OPUS_KBPS} kbps"] = ("opusenc", "opusdec")


def available() -> Tuple[List[str], List[str]]:
    """(anchor names whose tools are on PATH, notices for the missing ones)."""
    have, notices = [], []
    for name, tools in ANCHORS.items():
        missing = [t for t in tools if shutil.which(t) is None]
        if missing:
            notices.append(f"{name} skipped: {', '.join(missing)} not installed (apt-get install "
                           f"{'codec2' if 'c2enc' in tools else 'opus-tools'})")
        else:
            have.append(name)
    return have, notices


def _run(cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _codec2(samples: np.ndarray, mode: int, tmp: Path) -> Tuple[np.ndarray, int]:
    raw, bits, out = tmp / "in.raw", tmp / f"c2_{mode}.bit", tmp / "out.raw"
    to_pcm16(samples).astype("<i2").tofile(raw)
    _run(["c2enc", str(mode), str(raw), str(bits)])
    _run(["c2dec", str(mode), str(bits), str(out)])
    decoded = np.fromfile(out, dtype="<i2").astype(np.float32) / 32768
    return decoded[:len(samples)], bits.stat().st_size


def _opus(samples: np.ndarray, tmp: Path) -> Tuple[np.ndarray, int]:
    wav, coded, out = tmp / "in.wav", tmp / "out.opus", tmp / "out.wav"
    write_wav(wav, samples)
    _run(["opusenc", "--quiet", "--bitrate", str(OPUS_KBPS), "--speech", str(wav), str(coded)])
    _run(["opusdec", "--quiet", "--rate", str(SAMPLE_RATE), str(coded), str(out)])
    return read_audio(out).samples[:len(samples)], coded.stat().st_size


def remove_delay(reference: np.ndarray, decoded: np.ndarray, max_lag: int = 800) -> Tuple[np.ndarray, int]:
    """decoded shifted earlier by its lag (0..max_lag samples) against reference, zero-filled at the end."""
    n = min(len(reference), len(decoded))
    spectrum = np.fft.rfft(decoded[:n], 2 * n) * np.conj(np.fft.rfft(reference[:n], 2 * n))
    lag = int(np.argmax(np.fft.irfft(spectrum, 2 * n)[:max_lag + 1]))
    return np.concatenate([decoded[lag:], np.zeros(lag, np.float32)]), lag


def run_anchor(name: str, samples: np.ndarray) -> Dict[str, object]:
    """-> {"samples": decoded float32 at 8 kHz (length of the input), "bytes": coded file size}."""
    with tempfile.TemporaryDirectory(prefix="bpgan-anchor-") as d:
        tmp = Path(d)
        if name.startswith("Codec2"):
            decoded, size = _codec2(samples, int(name.split()[1]), tmp)
        else:
            decoded, size = _opus(samples, tmp)
    if len(decoded) < len(samples):  # codecs drop a partial last frame: pad with silence
        decoded = np.pad(decoded, (0, len(samples) - len(decoded)))
    decoded, lag = remove_delay(samples, decoded[:len(samples)])
    return {"samples": decoded, "bytes": size, "delay_samples": lag}
