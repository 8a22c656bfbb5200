"""The integer speech back end against the float one: PESQ-NB / STOI on held-out clips, and its cost.

python scripts/speech_backend_eval.py [--iters 32] [--nnls-iters 16] [--clean-mel] [--clips DIR NAME ...] [--cost-only]
Each clip (default: the 4 held-out LJ Speech clips LJ001-0029..0032 in ../shared/data/ljspeech) is
encoded by zoo/bpgan-audio-light (bpgan.encode), decoded to its int8 mel (bpgan.decode_integers, the
bit-exact part), then turned into PCM16 twice: float (toolkit/audio/mel.py mel_to_wav, librosa NNLS +
Griffin-Lim, rounded to PCM16 as a written WAV is) and integer (firmware_ref/speech.py mel_to_pcm16),
both at the same iteration count. --clean-mel skips the codec: the clip's own mel, rounded half up to int8
(the "mel + Griffin-Lim" ceiling). The cost is counted analytically from the integer code, per mel frame.
"""
import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

warnings.simplefilter("ignore")
import bpgan  # noqa: E402
from bpgan.firmware_ref import speech  # noqa: E402

HELD_OUT = ["LJ001-0029.wav", "LJ001-0030.wav", "LJ001-0031.wav", "LJ001-0032.wav"]
GENERATOR_MAC_PER_FRAME = 82_000    # docs/audio.md: bpgan-audio-light, ~82 kMAC per mel frame


def cost_per_frame(iters: int, nnls_iters: int = speech.NNLS_ITERS) -> dict:
    """Integer [multiplies, adds (add / sub / negate / compare / clip), shifts, divides] per mel frame, as implemented.

    A rounding shift counts one add and one shift; sparse matrices count their non-zeros. Per 256-point
    radix-2 FFT: 8 x 128 butterflies, each a complex twiddle product (4 mul, 2 add, 2 rounding shifts)
    and 4 adds; the inverse adds 4 rounding >> 1. The CORDIC per bin: 2 fold negations, 5 normalisation
    steps (2 abs, max, compare, 2 shifts), 16 vectoring steps (1 compare, 2 rounding shifts, 2 adds), 1 gain
    product, 16 rotations (2 rounding shifts, 2 adds), 2 unfold negations, 2 zero tests. NNLS per update:
    M x and M^T y on the basis's non-zeros, each output rounded, then per bin 1 mul, 1 divide, 2 adds
    (half-divisor rounding), 2 compares (zero, cap); the integer sqrt 21 steps of 3 adds / compares and 2
    shifts per bin. Table look-ups and loads / stores are not counted."""
    op = lambda mul=0, add=0, shift=0, div=0: np.array([mul, add, shift, div])
    bins, hop, n = speech.N_BINS, speech.HOP, speech.N_FFT
    fly = speech.FFT_STAGES * n // 2
    fft_fwd = op(4, 2 + 2 + 4, 2) * fly
    fft_inv = fft_fwd + op(0, 4, 4) * fly
    window = op(1, 1, 1) * n
    istft = fft_inv + window + op(add=bins - 2 + n) + op(1, 1 + 2, 1) * hop   # Hermitian, overlap-add, 1/envelope
    stft = fft_fwd + window
    momentum = op(1, 2, 1) * 2 * bins
    steps = speech.CORDIC_STEPS
    cordic = op(1, 2 + 5 * 4 + steps * 5 + 1 + steps * 4 + 4, 5 * 2 + steps * 2 + 1 + steps * 2) * bins
    inverse_nz, basis_nz = int((speech.mel_inverse_q12() > 0).sum()), int((speech.mel_basis_q20() > 0).sum())
    inverse = op(inverse_nz, inverse_nz + 2 * bins, bins)                    # MACs, rounding, clip
    mels = speech.N_MELS
    nnls_once = op(mels + bins + basis_nz, 10 + mels + 2 * bins + basis_nz, mels + 2 * bins) \
        + op(0, 21 * 3, 21 * 2) * bins + op(0, 2 * bins, 2 * bins)          # powers, exponent, M^T p; sqrt; rescale
    nnls_update = op(2 * basis_nz + bins, 2 * basis_nz + mels + bins + 4 * bins, mels + bins, bins)
    start = op(4, 6, 5) * bins                                               # hash + magnitude x (cos, sin)
    per_iter = istft + stft + momentum + cordic
    magnitude = inverse + nnls_once + nnls_iters * nnls_update
    total = magnitude + start + iters * per_iter + istft + op(0, 3, 1) * hop
    return {"fft": fft_fwd, "ifft": fft_inv, "cordic": cordic, "nnls_update": nnls_update,
            "magnitude_stage": magnitude, "per_iteration": per_iter, "total": total}


def print_cost(iters: int) -> None:
    c = cost_per_frame(iters)
    frames_per_s = speech.SAMPLE_RATE / speech.HOP
    fmt = lambda v: f"{v[0]:,} mul + {v[1]:,} add + {v[2]:,} shift + {v[3]:,} div = {int(v.sum()):,} ops"
    print(f"cost per mel frame (hop {speech.HOP}, {frames_per_s:.0f} frames/s), integer back end:")
    for key in ("fft", "ifft", "cordic", "per_iteration", "nnls_update", "magnitude_stage"):
        print(f"  {key:16s} {fmt(c[key])}")
    total = c["total"]
    print(f"  total ({iters} it.)  {fmt(total)}\n  = {total.sum() * frames_per_s / 1e6:.1f} Mops/s of speech, "
          f"{total[0] * frames_per_s / 1e6:.2f} M multiplies/s")
    print(f"  generator        {GENERATOR_MAC_PER_FRAME:,} MAC per frame = "
          f"{GENERATOR_MAC_PER_FRAME * frames_per_s / 1e6:.2f} MMAC/s; back end / generator = "
          f"{total.sum() / GENERATOR_MAC_PER_FRAME:.1f}x in ops, "
          f"{total[0] / GENERATOR_MAC_PER_FRAME:.1f}x in multiplies")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iters", type=int, default=speech.GRIFFIN_LIM_ITERS)
    p.add_argument("--clips", nargs="+", default=None, help="DIR then file names (default: the 4 held-out clips)")
    p.add_argument("--nnls-iters", type=int, default=speech.NNLS_ITERS, help="0: the pseudo-inverse alone")
    p.add_argument("--clean-mel", action="store_true", help="the clip's own int8 mel instead of the decoded one")
    p.add_argument("--model", default="bpgan-audio-light")
    p.add_argument("--cost-only", action="store_true")
    args = p.parse_args(argv)
    print_cost(args.iters)
    if args.cost_only:
        return 0
    from bpgan.toolkit.audio.mel import int8_to_unit, mel_to_wav, wav_to_mel
    from bpgan.toolkit.audio.wav import read_audio, to_pcm16
    from bpgan.toolkit.evaluation.audio_metrics import pesq_nb, stoi

    folder = Path(args.clips[0]) if args.clips else Path(__file__).resolve().parents[2] / "shared/data/ljspeech"
    names = args.clips[1:] if args.clips else HELD_OUT
    model = bpgan.load_model(args.model)
    rows = []
    print(f"\n{'clean int8 mel' if args.clean_mel else args.model + ' decoded mel'}, Griffin-Lim {args.iters} "
          f"iterations, integer NNLS {args.nnls_iters} updates")
    print("\n| clip | s | PESQ-NB float | PESQ-NB integer | diff | STOI float | STOI integer | time float s "
          "| time integer s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in names:
        ref = read_audio(folder / name).samples
        if args.clean_mel:
            n, y = len(ref), np.clip(np.floor(wav_to_mel(ref).astype(np.float64) * 128 + 0.5), -128, 127)[None]
            y = y.astype(np.int8)
        else:
            header, y = bpgan.decode_integers(bpgan.encode(model, ref), model)
            n = header.original_size[0]
        t0 = time.perf_counter()
        float_pcm = to_pcm16(mel_to_wav(int8_to_unit(y[0]), n, args.iters))
        t1 = time.perf_counter()
        int_pcm = speech.mel_to_pcm16(y[0], n, args.iters, args.nnls_iters)
        t2 = time.perf_counter()
        f, i = (x.astype(np.float32) / 32768 for x in (float_pcm, int_pcm))
        row = [pesq_nb(ref, f), pesq_nb(ref, i), stoi(ref, f), stoi(ref, i), t1 - t0, t2 - t1]
        rows.append(row)
        print(f"| {name} | {n / 8000:.2f} | {row[0]:.3f} | {row[1]:.3f} | {row[1] - row[0]:+.3f} | {row[2]:.3f} | "
              f"{row[3]:.3f} | {row[4]:.1f} | {row[5]:.1f} |")
    m = np.mean(rows, axis=0)
    print(f"| mean | | {m[0]:.3f} | {m[1]:.3f} | {m[1] - m[0]:+.3f} | {m[2]:.3f} | {m[3]:.3f} | {m[4]:.1f} | "
          f"{m[5]:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
