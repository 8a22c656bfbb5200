"""bpgan-compare RUN_DIR --data DIR [--out DIR] [--limit N]: float vs fixed point vs classical codecs.

Writes compare.md (tables), compare.json (every number), rd.png (rate-distortion curves), crops.png
(side-by-side crops) and the decoded images of every variant under outputs/<variant>/.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..codec.search import SearchConfig
from ..datasets import image_paths
from ..evaluation import anchors as A
from ..evaluation.compare import CompareError, collect_variants, evaluate_image, pixel_msssim, pixel_psnr, prepare
from ..evaluation.plots import crops_plot, rd_plot


def parse(argv):
    p = argparse.ArgumentParser(prog="bpgan-compare", description=__doc__.splitlines()[0])
    p.add_argument("run", help="run folder written by bpgan-quantize (with prior.npy; export/ for the integer engines)")
    p.add_argument("--data", required=True, help="folder of evaluation images (e.g. Kodak)")
    p.add_argument("--out", default=None, help="output folder (default RUN/compare)")
    p.add_argument("--limit", type=int, default=None, help="only the first N images")
    p.add_argument("--iters", type=int, default=0, help="latent search iterations (0: encoder latent)")
    p.add_argument("--no-anchors", action="store_true", help="skip JPEG/WebP/AVIF")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def summarize(rows, variants, missing, anchor_points):
    names = [v.name for v in variants]
    table = {}
    for v in variants:
        ms = [r["variants"][v.name] for r in rows]
        table[v.name] = {"bpp": mean([r["bpp"] for r in rows]), "psnr": mean([m["psnr"] for m in ms]),
                         "msssim": mean([m["msssim"] for m in ms]),
                         "psnr_vs_float_weights": mean([m["psnr_vs_float_weights"] for m in ms
                                                        if np.isfinite(m["psnr_vs_float_weights"] or 0)]),
                         "decode_ms": 1000 * mean([m["decode_s"] for m in ms]), **v.info}
    per_image = [{k: v for k, v in r.items() if k not in ("variants", "original")} |
                 {"variants": {n: {k: x for k, x in r["variants"][n].items() if k != "pixels"} for n in names}}
                 for r in rows]
    lsb = [r["ref_vs_tvm_max_lsb"] for r in rows if "ref_vs_tvm_max_lsb" in r]
    return {"images": len(rows), "variants": table, "missing": missing, "anchors": anchor_points,
            "ref_vs_tvm_max_lsb": max(lsb) if lsb else None, "encode_s": mean([r["encode_s"] for r in rows]),
            "per_image": per_image}


def anchor_sweep(rows, codecs, progress):
    points = {c: [] for c in codecs}
    jobs = [(c, q) for c in codecs for q in A.QUALITIES[c]]
    for codec, q in tqdm(jobs, desc="anchors", disable=not progress, leave=False):
        res = []
        for r in rows:
            out, nbytes, sec = A.encode_decode(r["original"], codec, q)
            res.append({"bpp": 8 * nbytes / r["original"][..., 0].size, "psnr": pixel_psnr(r["original"], out),
                        "msssim": pixel_msssim(r["original"], out), "decode_s": sec})
        points[codec].append({"quality": q, **{k: mean([x[k] for x in res]) for k in res[0]}})
    return points


def _f(v, spec):
    return "-" if v is None else format(v, spec)


def render(summary, run) -> str:
    t = summary["variants"]
    lines = [f"# bpgan-compare: {run}", "", f"{summary['images']} images; every variant decodes the same "
             f"bitstream (final model's latent, {_f(summary['encode_s'], '.2f')} s encode per image).", "",
             "| variant | bpp | PSNR dB | MS-SSIM | PSNR vs float weights | size bytes (format) | sparsity | "
             "MAC/pixel | decode ms |", "|---|---|---|---|---|---|---|---|---|"]
    for name, m in t.items():
        size = "-" if m.get("size_bytes") is None else f"{m['size_bytes']:,} ({m['size_format']})"
        lines.append(f"| {name} | {_f(m['bpp'], '.4f')} | {_f(m['psnr'], '.2f')} | {_f(m['msssim'], '.4f')} | "
                     f"{_f(m['psnr_vs_float_weights'], '.2f')} | {size} | {_f(m.get('sparsity'), '.3f')} | "
                     f"{_f(m.get('macs_per_pixel'), ',.0f')} | {_f(m['decode_ms'], '.1f')} |")
    lines += ["", f"Reference vs TVM, max difference: {_f(summary['ref_vs_tvm_max_lsb'], 'd')} LSB."]
    for name, why in summary["missing"].items():
        lines.append(f"- not compared: {name}: {why}")
    if summary["anchors"]:
        bpp = next(iter(t.values()))["bpp"]
        lines += ["", f"## Anchors bracketing {bpp:.4f} bpp", "", "| codec | quality | bpp | PSNR dB | MS-SSIM |",
                  "|---|---|---|---|---|"]
        for codec, pts in summary["anchors"].items():
            for p in A.bracket(pts, bpp):
                lines.append(f"| {codec} | {p['quality']} | {p['bpp']:.4f} | {p['psnr']:.2f} | {_f(p['msssim'], '.4f')} |")
    lines += ["", "![rate-distortion](rd.png)", "", "![crops](crops.png)"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse(argv)
    run = Path(args.run)
    out = Path(args.out) if args.out else run / "compare"
    try:
        model, blob, prior, mhash = prepare(run)
        paths = image_paths(args.data)[: args.limit]
        variants, missing = collect_variants(run, model, blob)
        search = SearchConfig(iters=args.iters) if args.iters > 0 else None
        rows = [evaluate_image(p, model, prior, mhash, variants, search, out / "outputs")
                for p in tqdm(paths, desc="images", disable=args.quiet, leave=False)]
    except (CompareError, ValueError, OSError) as e:
        print(f"bpgan-compare: error: {e}", file=sys.stderr)
        return 2
    codecs = [] if args.no_anchors else A.available_codecs()
    anchor_points = anchor_sweep(rows, codecs, not args.quiet) if codecs else {}
    summary = summarize(rows, variants, missing, anchor_points)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(summary, indent=1, default=float))
    (out / "compare.md").write_text(render(summary, run))
    rd_plot(out / "rd.png", summary["variants"], anchor_points, f"{run.name}: {len(rows)} images")
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
    print((out / "compare.md").read_text().split("\n\n## Anchors")[0])
    print(f"bpgan-compare: wrote {out / 'compare.md'}, compare.json, rd.png, crops.png")
    return 0


def entry():
    sys.exit(main())


if __name__ == "__main__":
    entry()
