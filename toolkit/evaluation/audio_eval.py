"""python -m bpgan.toolkit.evaluation.audio_eval RUN_DIR --recipe RECIPE [--clips WAV ...]: speech codec table.

Rows, on the held-out clips (the recipe's data.holdout unless --clips), each clip at 8 kHz mono:
  mel + Griffin-Lim     the ceiling: the front end's mel, unquantized, inverted (no codec at all)
  BPGAN float           the float stage's model: its latent symbols (bit rate from their bitstream),
                        float generator output inverted
  BPGAN fixed-point     the last stage's model through the real codec: bitstream -> integer decoder
                        (the run's export/program.json; torch fake-quant if not exported) -> WAV
  ... + latent search    the same with --search-iters N of ADMM latent search (mel MSE) before coding
  Codec2 / Opus         anchors through their command-line tools (skipped with a notice if absent)
Columns: bit/s from real file sizes; PESQ-NB and STOI of the waveform; the mel log-spectral
distance of the waveform's mel and, for BPGAN, of the decoded mel itself (before Griffin-Lim).
Each BPGAN model's prior is its run's prior.npy, else estimated from the training clips (data.train
minus the held-out ones); never from the clips being coded.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from ..audio.codec import bits_per_second, decode_audio, encode_audio, prior_from_clips, samples_per_step
from ..audio.mel import GRIFFIN_LIM_ITERS, int8_to_unit, mel_to_wav, num_frames, wav_to_mel
from ..audio.wav import read_audio
from ..codec.codec import torch_engine
from ..codec.fingerprint import model_hash
from ..codec.prior import load_prior
from ..training.checkpoint import final_model_path, load_model
from . import speech_anchors
from .audio_metrics import mel_lsd, waveform_scores

COLUMNS = ("bps", "pesq_nb", "stoi", "mel_lsd_db", "codec_mel_lsd_db")


def parse(argv):
    p = argparse.ArgumentParser(prog="audio_eval", description=__doc__.splitlines()[0])
    p.add_argument("run_dir", help="bpgan-quantize run folder of an audio recipe")
    p.add_argument("--recipe", required=True, help="the run's recipe (training data and held-out clips)")
    p.add_argument("--clips", nargs="*", default=None, help="audio files (default: the recipe's held-out clips)")
    p.add_argument("--gl-iters", type=int, default=GRIFFIN_LIM_ITERS, help="Griffin-Lim iterations")
    p.add_argument("--search-iters", type=int, default=0, help="also a fixed-point row with this much latent search")
    p.add_argument("--no-anchors", action="store_true", help="skip Codec2 and Opus")
    p.add_argument("--out", default=None, help="JSON results (default RUN_DIR/audio_eval.json)")
    return p.parse_args(argv)


def integer_engine(run_dir: Path):
    if (run_dir / "export" / "program.json").is_file():
        from bpgan.firmware_ref.decoder import decode_latent
        from bpgan.firmware_ref.program import load_program
        prog = load_program(run_dir / "export")
        return (lambda s: decode_latent(prog, s)), "integer reference decoder"
    return None


class BPGANRow:
    def __init__(self, model_file: Path, train_source: str, holdout, engine=None, search=None):
        self.model, _ = load_model(model_file)
        self.search = search
        saved = model_file.parent / "prior.npy"  # the deployed prior (bpgan-quantize writes it), else estimated
        self.prior = load_prior(saved) if saved.is_file() else \
            prior_from_clips(self.model, train_source, exclude=holdout)
        self.hash = model_hash(self.model, self.prior)
        self.engine = engine

    def __call__(self, audio, gl_iters):
        enc, prep = encode_audio(self.model, self.prior, audio, self.search, self.hash)
        if self.engine is not None:  # the deployed path: the bitstream through an integer engine
            _, codes, wav = decode_audio(enc.data, self.prior, self.hash, self.engine, samples_per_step(self.model),
                                         gl_iters)
            mel = int8_to_unit(codes)
        else:  # float generator on the same symbols, no output rounding
            with torch.no_grad():
                y = self.model.generator(self.model.quantizer.dequantize(torch.from_numpy(enc.symbols[None])))
            mel = y[0, :, :num_frames(prep.num_samples)].numpy()
            wav = mel_to_wav(mel, prep.num_samples, gl_iters)
        scores = waveform_scores(audio.samples, wav)
        scores.update(bps=bits_per_second(len(enc.data), prep.num_samples), codec_mel_lsd_db=mel_lsd(prep.mel, mel))
        return scores


def evaluate(args) -> dict:
    from ..recipes import load_recipe
    recipe = load_recipe(args.recipe)
    run_dir = Path(args.run_dir)
    clips = [Path(c) for c in args.clips] if args.clips else [Path(recipe.data.train) / n for n in recipe.data.holdout]
    if not clips:
        raise ValueError("no clips: pass --clips or use a recipe with data.holdout")
    fixed_engine = integer_engine(run_dir)
    notes = [] if fixed_engine else \
        ["no export in the run folder: fixed-point row decoded by the torch fake-quant generator"]
    final = load_model(final_model_path(run_dir))[0]
    systems = {"mel + Griffin-Lim (ceiling)": None}
    if (run_dir / "float" / "model.pt").is_file():
        systems["BPGAN float"] = BPGANRow(run_dir / "float" / "model.pt", recipe.data.train, recipe.data.holdout)
    systems["BPGAN fixed-point"] = BPGANRow(final_model_path(run_dir), recipe.data.train, recipe.data.holdout,
                                            (fixed_engine or (torch_engine(final), ""))[0])
    if args.search_iters > 0:
        from ..codec.search import SearchConfig
        systems[f"BPGAN fixed-point + latent search ({args.search_iters} it.)"] = BPGANRow(
            final_model_path(run_dir), recipe.data.train, recipe.data.holdout, systems["BPGAN fixed-point"].engine,
            SearchConfig(args.search_iters))
    anchors, missing = speech_anchors.available() if not args.no_anchors else ([], [])
    notes += missing
    per_clip = {name: [] for name in list(systems) + anchors}
    for clip in clips:
        audio = read_audio(clip)
        for name, row in systems.items():
            if row is None:
                wav = mel_to_wav(wav_to_mel(audio.samples), len(audio.samples), args.gl_iters)
                per_clip[name].append(dict(waveform_scores(audio.samples, wav), bps=None, codec_mel_lsd_db=0.0))
            else:
                per_clip[name].append(row(audio, args.gl_iters))
        for name in anchors:
            out = speech_anchors.run_anchor(name, audio.samples)
            per_clip[name].append(dict(waveform_scores(audio.samples, out["samples"]), codec_mel_lsd_db=None,
                                       bps=8.0 * out["bytes"] / audio.seconds))
    table = {name: {c: _mean([r[c] for r in rows]) for c in COLUMNS} for name, rows in per_clip.items()}
    return {"clips": [str(c) for c in clips], "gl_iters": args.gl_iters, "notes": notes, "table": table,
            "per_clip": per_clip}


def _mean(values):
    vals = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def _f(v, spec):
    return "-" if v is None else format(v, spec)


def markdown(result: dict) -> str:
    lines = ["| system | bit/s | PESQ-NB | STOI | mel LSD dB (waveform) | mel LSD dB (decoded mel) |",
             "|---|---|---|---|---|---|"]
    for name, m in result["table"].items():
        lines.append(f"| {name} | {_f(m['bps'], ',.0f')} | {_f(m['pesq_nb'], '.2f')} | {_f(m['stoi'], '.3f')} | "
                     f"{_f(m['mel_lsd_db'], '.2f')} | {_f(m['codec_mel_lsd_db'], '.2f')} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse(argv)
    try:
        result = evaluate(args)
    except (ValueError, OSError) as e:
        print(f"audio_eval: error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path(args.run_dir) / "audio_eval.json"
    out.write_text(json.dumps(result, indent=1))
    for note in result["notes"]:
        print(f"audio_eval: note: {note}")
    print(f"audio_eval: {len(result['clips'])} clip(s), Griffin-Lim {result['gl_iters']} iterations; {out}")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
