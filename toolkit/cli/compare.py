"""bpgan-compare RUN_DIR --data DIR [--out DIR] [--limit N] [--per-folder N]: float vs fixed point vs classical codecs.

Images (JPEG/WebP/AVIF anchors) or speech (Codec2/Opus anchors), by the run's model. Writes compare.md
(tables), compare.json (every number), rd.png (rate-distortion), crops.png or spectrograms.png, and the
decoded outputs of every variant under outputs/<variant>/.
"""
import argparse
import json
import sys
from dataclasses import asdict
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..codec.search import SearchConfig
from ..datasets import image_paths
from ..evaluation import anchors as A
from ..evaluation.compare import (CompareError, collect_variants, evaluate_image, mean_colour_error, pixel_msssim,
                                  pixel_psnr, prepare)
from ..evaluation.plots import crops_plot, rd_plot, spectrogram_plot

# per modality: rate unit, metric columns (key, label, format), the float-vs-fixed column
IMAGE = {"rate": "bpp", "macs": "MAC/pixel", "metrics": [("psnr", "PSNR dB", ".2f"), ("msssim", "MS-SSIM", ".4f")],
         "diff": ("psnr_vs_float_weights", "PSNR vs float weights", ".2f")}
AUDIO = {"rate": "bps", "macs": "MAC/mel frame", "metrics": [("pesq_nb", "PESQ-NB", ".2f"), ("stoi", "STOI", ".3f"),
                                    ("mel_lsd_db", "mel LSD dB", ".2f"), ("decoded_mel_lsd_db", "decoded mel LSD dB", ".2f")],
         "diff": ("mel_lsd_vs_float_weights", "mel LSD vs float weights", ".2f")}


def parse(argv):
    p = argparse.ArgumentParser(prog="bpgan-compare", description=__doc__.splitlines()[0])
    p.add_argument("run", help="run folder written by bpgan-quantize (with prior.npy; export/ for the integer engines)")
    p.add_argument("--data", required=True, help="folder of evaluation images (e.g. Kodak) or speech clips")
    p.add_argument("--out", default=None, help="output folder (default RUN/compare)")
    p.add_argument("--limit", type=int, default=None, help="only the first N inputs")
    p.add_argument("--per-folder", type=int, default=None, metavar="N",
                   help="speech in speaker subfolders (LibriSpeech): only the first N clips of each")
    p.add_argument("--iters", type=int, default=0, help="latent search iterations (0: encoder latent)")
    p.add_argument("--msssim", type=float, default=0.0, help="search: (1 - MS-SSIM) weight beside MSE (images)")
    p.add_argument("--colour", type=float, default=0.0, help="search: per-channel mean colour weight (images)")
    p.add_argument("--colour-offsets", action="store_true",
                   help="images: the streams carry colour offsets (the decoded mean colour matched to the original's)")
    p.add_argument("--no-anchors", action="store_true", help="skip the classical codecs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def mean(values):
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if values else None


def colour_summary(errors):
    """Per-image [R, G, B] colour errors -> {"mean": per channel, "worst": per channel} (None without images)."""
    if not errors or errors[0] is None:
        return None
    e = np.asarray(errors, np.float64)
    return {"mean": [float(v) for v in e.mean(0)], "worst": [float(v) for v in e.max(0)]}


def _colour(c) -> str:
    if c is None:
        return "-"
    return "/".join(f"{v:.1f}" for v in c["mean"]) + f" ({max(c['worst']):.0f})"


def summarize(rows, variants, missing, anchor_points, spec):
    keys = [k for k, _, _ in spec["metrics"]] + [spec["diff"][0]]
    table = {}
    for v in variants:
        ms = [r["variants"][v.name] for r in rows]
        table[v.name] = {spec["rate"]: mean([r[spec["rate"]] for r in rows]),
                         **{k: mean([m[k] for m in ms]) for k in keys},
                         "decode_ms": 1000 * mean([m["decode_s"] for m in ms]), **v.info}
        if spec["rate"] == "bpp":
            table[v.name]["colour_error"] = colour_summary([m.get("colour_error") for m in ms])
    bulky = ("pixels", "mel")
    per_image = [{k: v for k, v in r.items() if k not in ("variants", "original", "original_mel")} |
                 {"variants": {n: {k: x for k, x in m.items() if k not in bulky} for n, m in r["variants"].items()}}
                 for r in rows]
    lsb = [r["ref_vs_tvm_max_lsb"] for r in rows if "ref_vs_tvm_max_lsb" in r]
    return {"images": len(rows), "rate_unit": spec["rate"], "variants": table, "missing": missing,
            "anchors": anchor_points, "ref_vs_tvm_max_lsb": max(lsb) if lsb else None,
            "encode_s": mean([r["encode_s"] for r in rows]), "per_image": per_image}


def image_anchor_sweep(rows, codecs, progress):
    points = {c: [] for c in codecs}
    jobs = [(c, q) for c in codecs for q in A.QUALITIES[c]]
    for codec, q in tqdm(jobs, desc="anchors", disable=not progress, leave=False):
        res = []
        for r in rows:
            out, nbytes, sec = A.encode_decode(r["original"], codec, q)
            res.append({"bpp": 8 * nbytes / r["original"][..., 0].size, "psnr": pixel_psnr(r["original"], out),
                        "msssim": pixel_msssim(r["original"], out), "decode_s": sec,
                        "colour_error": mean_colour_error(r["original"], out)})
        points[codec].append({"quality": q, **{k: mean([x[k] for x in res]) for k in res[0] if k != "colour_error"},
                              "colour_error": colour_summary([x["colour_error"] for x in res])})
    return points


def _f(v, spec):
    return "-" if v is None else format(v, spec)


def render(summary, run, spec) -> str:
    t, rate = summary["variants"], spec["rate"]
    cols = spec["metrics"] + [spec["diff"]]
    colour_head = " | colour error R/G/B (worst)" if rate == "bpp" else ""
    lines = [f"# bpgan-compare: {run}", "", f"{summary['images']} inputs; every variant decodes the same "
             f"bitstream (final model's latent, {_f(summary['encode_s'], '.2f')} s encode per input).", "",
             f"| variant | {rate} | " + " | ".join(label for _, label, _ in cols) + colour_head +
             f" | size bytes (format) | sparsity | {spec['macs']} | decode ms |",
             "|---|---|" + "---|" * (len(cols) + bool(colour_head)) + "---|---|---|---|"]
    for name, m in t.items():
        size = "-" if m.get("size_bytes") is None else f"{m['size_bytes']:,} ({m['size_format']})"
        lines.append(f"| {name} | {_f(m[rate], '.4f' if rate == 'bpp' else ',.0f')} | " +
                     " | ".join(_f(m[k], fmt) for k, _, fmt in cols) +
                     (f" | {_colour(m.get('colour_error'))}" if colour_head else "") +
                     f" | {size} | {_f(m.get('sparsity'), '.3f')} | {_f(m.get('macs_per_pixel'), ',.0f')} | "
                     f"{_f(m['decode_ms'], '.1f')} |")
    lines += ["", f"Reference vs TVM, max difference: {_f(summary['ref_vs_tvm_max_lsb'], 'd')} LSB."]
    for name, why in summary["missing"].items():
        lines.append(f"- not compared: {name}: {why}")
    if summary["anchors"]:
        value = next(iter(t.values()))[rate]
        lines += ["", f"## Anchors nearest {_f(value, '.4f' if rate == 'bpp' else ',.0f')} {rate}", "",
                  f"| codec | quality | {rate} | " + " | ".join(label for _, label, _ in spec["metrics"][:3]) +
                  colour_head + " |", "|---|---|---|" + "---|" * (len(spec["metrics"][:3]) + bool(colour_head))]
        for codec, pts in summary["anchors"].items():
            for p in (A.bracket(pts, value) if rate == "bpp" else pts):
                lines.append(f"| {codec} | {p['quality']} | {_f(p[rate], '.4f' if rate == 'bpp' else ',.0f')} | " +
                             " | ".join(_f(p.get(k), fmt) for k, _, fmt in spec["metrics"][:3]) +
                             (f" | {_colour(p.get('colour_error'))}" if colour_head else "") + " |")
    figure = "crops.png" if rate == "bpp" else "spectrograms.png"
    lines += ["", "![rate-distortion](rd.png)", "", f"![side by side]({figure})"]
    return "\n".join(lines) + "\n"


def image_figures(out, rows, anchor_points, codecs):
    first = rows[0]
    panels = {"original": first["original"]}
    for name in ("float", "float_weights", "reference", "finetune"):
        if name in first["variants"]:
            panels[name] = first["variants"][name]["pixels"]
    if "AVIF" in codecs:
        q = min(anchor_points["AVIF"], key=lambda p: abs(p["bpp"] - first["bpp"]))["quality"]
        img, nbytes, _ = A.encode_decode(first["original"], "AVIF", q)
        panels[f"AVIF q={q} ({8 * nbytes / img[..., 0].size:.3f} bpp)"] = img
    crops_plot(out / "crops.png", panels)


def audio_figures(out, rows):
    from ..audio.mel import int8_to_unit

    first = rows[0]
    panels = {"original": first["original_mel"]}
    for name in ("float", "float_weights", "reference"):
        if name in first["variants"]:
            panels[name] = int8_to_unit(first["variants"][name]["mel"])
    spectrogram_plot(out / "spectrograms.png", panels)


def main(argv=None) -> int:
    args = parse(argv)
    run = Path(args.run)
    out = Path(args.out) if args.out else run / "compare"
    try:
        model, blob, prior, mhash = prepare(run)
        audio = getattr(model, "modality", "image") == "audio"
        if audio:
            from ..evaluation.compare_audio import audio_paths, evaluate_clip as evaluate
        else:
            audio_paths, evaluate = image_paths, partial(evaluate_image, colour_offsets=args.colour_offsets)
        paths = audio_paths(args.data)
        if args.per_folder is not None:
            from ..evaluation.compare_audio import first_per_folder
            paths = first_per_folder(paths, args.per_folder)
        paths = paths[: args.limit]
        variants, missing = collect_variants(run, model, blob)
        search = SearchConfig(iters=args.iters, msssim=args.msssim, colour=args.colour) if args.iters > 0 else None
        rows = [evaluate(p, model, prior, mhash, variants, search, out / "outputs")
                for p in tqdm(paths, desc="inputs", disable=args.quiet, leave=False)]
    except (CompareError, ValueError, OSError) as e:
        print(f"bpgan-compare: error: {e}", file=sys.stderr)
        return 2
    spec = AUDIO if audio else IMAGE
    if args.no_anchors:
        anchor_points, codecs = {}, []
    elif audio:
        from ..evaluation.compare_audio import anchor_rows
        (anchor_points, notices), codecs = anchor_rows(rows), []
        missing.update({n.split(" skipped")[0]: n for n in notices})
    else:
        codecs = A.available_codecs()
        anchor_points = image_anchor_sweep(rows, codecs, not args.quiet)
    summary = summarize(rows, variants, missing, anchor_points, spec)
    summary["search"] = asdict(search) if search else None
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(summary, indent=1, default=float))
    (out / "compare.md").write_text(render(summary, run, spec))
    metric_pair = [(k, label) for k, label, _ in spec["metrics"][:2]]
    rd_plot(out / "rd.png", summary["variants"], anchor_points, f"{run.name}: {len(rows)} inputs",
            rate=spec["rate"], metrics=metric_pair)
    if audio:
        audio_figures(out, rows)
    else:
        image_figures(out, rows, anchor_points, codecs)
    print((out / "compare.md").read_text().split("\n\n## Anchors")[0])
    print(f"bpgan-compare: wrote {out / 'compare.md'}, compare.json and the figures")
    return 0


def entry():
    sys.exit(main())


if __name__ == "__main__":
    entry()
