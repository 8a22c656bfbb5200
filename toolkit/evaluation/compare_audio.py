"""bpgan-compare for speech models: the same variants on the same symbols, scored as speech.

Each variant's int8 mel goes through the same Griffin-Lim back end (fixed seed) to a WAV; columns are
PESQ-NB, STOI, the waveform's mel LSD and the decoded mel's own LSD (the codec's error without
Griffin-Lim's); anchors are Codec2 and Opus where their tools are installed.
"""
import time
from pathlib import Path
from typing import List, Optional

import numpy as np

from ..audio.codec import bits_per_second, encode_audio
from ..audio.mel import GRIFFIN_LIM_ITERS, int8_to_unit, mel_to_wav
from ..audio.wav import SAMPLE_RATE, read_audio, write_wav
from ..datasets.audio import AUDIO_SUFFIXES
from . import speech_anchors
from .audio_metrics import mel_lsd, waveform_scores
from .compare import Variant



def audio_paths(folder) -> List[Path]:
    """The clips of a folder, then those of its subfolders (one per speaker, as LibriSpeech's), each sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such folder")

    def clips(d):
        return sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)

    paths = clips(folder) + [p for d in sorted(q for q in folder.iterdir() if q.is_dir()) for p in clips(d)]
    if not paths:
        raise ValueError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) in {folder} or its subfolders")
    return paths


def first_per_folder(paths: List[Path], n: int) -> List[Path]:
    """The first n clips of each folder (one speaker each), in the given order."""
    kept, seen = [], {}
    for p in paths:
        seen[p.parent] = seen.get(p.parent, 0) + 1
        if seen[p.parent] <= n:
            kept.append(p)
    return kept


def evaluate_clip(path: Path, final_model, prior, mhash, variants: List[Variant], search, out_dir: Optional[Path],
                  gl_iters: int = GRIFFIN_LIM_ITERS) -> dict:
    """One clip: encode once, decode with every variant, invert each mel the same way, score."""
    audio = read_audio(path)
    t0 = time.perf_counter()
    enc, prep = encode_audio(final_model, prior, audio, search, mhash)
    row = {"image": path.name, "bps": bits_per_second(len(enc.data), prep.num_samples), "bytes": len(enc.data),
           "encode_s": time.perf_counter() - t0, "variants": {}}
    frames = prep.mel.shape[1]
    for v in variants:
        t0 = time.perf_counter()
        codes = np.asarray(v.decode(enc.data if v.from_stream else enc.symbols[None]))[0, :, :frames]
        seconds = time.perf_counter() - t0
        wav = mel_to_wav(int8_to_unit(codes), prep.num_samples, gl_iters)
        if out_dir is not None:
            (out_dir / v.name).mkdir(parents=True, exist_ok=True)
            write_wav(out_dir / v.name / f"{path.stem}.wav", wav)
        row["variants"][v.name] = {**waveform_scores(audio.samples, wav),
                                   "decoded_mel_lsd_db": mel_lsd(prep.mel, int8_to_unit(codes)),
                                   "decode_s": seconds, "mel": codes}
    ref = row["variants"].get("float_weights", {}).get("mel")
    for m in row["variants"].values():
        m["mel_lsd_vs_float_weights"] = mel_lsd(int8_to_unit(ref), int8_to_unit(m["mel"])) if ref is not None else None
    if "reference" in row["variants"] and "tvm" in row["variants"]:
        row["ref_vs_tvm_max_lsb"] = int(np.abs(row["variants"]["reference"]["mel"].astype(np.int64)
                                               - row["variants"]["tvm"]["mel"].astype(np.int64)).max())
    row["original"], row["original_mel"] = audio.samples, prep.mel
    return row


def anchor_rows(rows) -> tuple:
    """(points per anchor: one mean each, notices for anchors whose tools are missing)."""
    names, notices = speech_anchors.available()
    points = {}
    for name in names:
        res = []
        for r in rows:
            out = speech_anchors.run_anchor(name, r["original"])
            res.append({"bps": 8.0 * out["bytes"] * SAMPLE_RATE / len(r["original"]),
                        **waveform_scores(r["original"], out["samples"])})
        points[name] = [{"quality": name, **{k: float(np.nanmean([x[k] for x in res])) for k in res[0]}}]
    return points, notices
