"""The audio side of bpgan-encode / bpgan-decode: the CLIs read the model's modality and call these.

Encode prints the stream size, bit/s (real file size, header included, over the clip's duration),
the mel LSD of the decoded mel (the integer contract) and, after Griffin-Lim, PESQ-NB and STOI.
Decode writes a 16-bit 8 kHz WAV (or .npz with the int8 mel codes, the bit-exact part). The WAV comes
from the integer back end (firmware_ref/speech.py: NNLS mel inversion + Griffin-Lim on integers, the
same bytes on every machine); float_backend=True keeps the librosa one (mel.py mel_to_wav).
"""
import time
from pathlib import Path

import numpy as np

from ..quant.quantizers import OUTPUT_FRAC_BITS
from .codec import bits_per_second, decode_audio, encode_audio, samples_per_step
from .mel import GRIFFIN_LIM_ITERS, int8_to_unit
from .wav import SAMPLE_RATE, read_audio, write_wav


def encode_wav(prog: str, args, model, prior, mhash, search, engine, engine_name) -> None:
    """WAV -> bitstream at args.output; measure the decoded result with `engine`. Raises ValueError/OSError."""
    from ..evaluation.audio_metrics import mel_lsd, pesq_nb, stoi

    audio = read_audio(args.image)
    for note in audio.notes:
        print(f"{prog}: note: {note}")
    t0 = time.perf_counter()
    enc, prep = encode_audio(model, prior, audio, search, mhash)
    seconds = time.perf_counter() - t0
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(enc.data)
    size = out.stat().st_size
    _, codes, wav = decode_audio(out.read_bytes(), prior, mhash, engine, samples_per_step(model),
                                 getattr(args, "gl_iters", GRIFFIN_LIM_ITERS))
    print(f"{prog}: {out}: {size} bytes, {bits_per_second(size, prep.num_samples):.1f} bit/s "
          f"({prep.num_samples / SAMPLE_RATE:.2f} s at {SAMPLE_RATE} Hz, encode {seconds:.2f} s)")
    print(f"{prog}: decoded by the {engine_name}: mel LSD {mel_lsd(prep.mel, int8_to_unit(codes)):.2f} dB; "
          f"after Griffin-Lim: PESQ-NB {pesq_nb(audio.samples, wav):.2f}, STOI {stoi(audio.samples, wav):.3f}")
    if enc.search is not None:
        print(f"{prog}: latent search: best at iteration {enc.search.best_iteration}/{search.iters}, "
              f"mel MSE {enc.search.encoder_loss:.5f} -> {enc.search.best_loss:.5f}")


def write_decoded(path: Path, codes: np.ndarray, num_samples: int, iters: int = GRIFFIN_LIM_ITERS,
                  float_backend: bool = False) -> str:
    """int8 mel codes (64, T) -> .wav (integer Griffin-Lim, or librosa's in float) or .npz (the codes themselves)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".wav":
        from .backend import codes_to_samples
        write_wav(path, codes_to_samples(codes, num_samples, iters, float_backend))  # PCM16 / 32768: exact
        return (f"{num_samples / SAMPLE_RATE:.2f} s of 16-bit {SAMPLE_RATE} Hz audio, "
                f"{'float' if float_backend else 'integer'} Griffin-Lim {iters} iterations")
    if path.suffix.lower() == ".npz":
        np.savez(path, mel=codes, frac_bits=np.int64(OUTPUT_FRAC_BITS), num_samples=np.int64(num_samples))
        return f"int8 mel codes {codes.shape}"
    raise ValueError(f"output {path.name}: an audio stream decodes to .wav or .npz")


def decode_stream(data: bytes, prog, engine, output: Path, iters: int = GRIFFIN_LIM_ITERS,
                  float_backend: bool = False) -> str:
    """An audio bitstream -> output file through an integer engine, with the prior and hash the program carries."""
    from .codec import decode_mel
    from .mel import HOP

    stride = int(prog.meta.get("config", {}).get("downsample", 8)) * HOP
    header, codes = decode_mel(data, prog.prior(), prog.model_hash(), engine, stride)
    return write_decoded(output, codes, header.original_size[0], iters, float_backend)
