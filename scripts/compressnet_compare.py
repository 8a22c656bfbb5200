"""SAE vs SWWAE vs SAE-SPN (CompressNet's comparison) on a folder of images, at one training budget.

python scripts/compressnet_compare.py runs/compressnet ../shared/data/kodak [--only NAME ...] [--out runs/compressnet/compare.md]
Each of RUNS/{sae,swwae,sae-spn,sae-spn-coarse} is a bpgan-quantize run of recipes/compressnet/<name>.yaml; --only
re-evaluates those runs and keeps the others' rows from the previous compare.json. Every image is
coded from the encoder's own latent (no latent search, the same for all three): the latent's rate is the size
of its real bitstream (bpgan's .bpg, header included); SWWAE's switches are coded with the same ANS coder
and a per-channel prior over the 4 cells estimated from training crops (never the evaluated images), and
their bytes are added. Decoding is the QAT model's fake-quant decoder in PyTorch, which for SAE and SAE-SPN
equals the integer reference decoder exactly (tests/test_sae_spn.py); SWWAE needs the sent switches and has no
one-input integer program. Also reported: how often the SPN's predicted switch is the encoder's true one.
"""
import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

warnings.simplefilter("ignore")
from bpgan.toolkit.codec.codec import encode_image  # noqa: E402
from bpgan.toolkit.codec.entropy import encode_symbols  # noqa: E402
from bpgan.toolkit.codec.fingerprint import model_hash  # noqa: E402
from bpgan.toolkit.codec.image_io import int8_to_pixels, output_to_int8, read_image  # noqa: E402
from bpgan.toolkit.codec.prior import estimate_prior, load_prior  # noqa: E402
from bpgan.toolkit.datasets import image_paths  # noqa: E402
from bpgan.toolkit.datasets.images import ImageCrops  # noqa: E402
from bpgan.toolkit.evaluation.compare import pixel_msssim, pixel_psnr  # noqa: E402
from bpgan.toolkit.models.sae_spn import STAGES  # noqa: E402
from bpgan.toolkit.recipes.schema import load_recipe  # noqa: E402
from bpgan.toolkit.training.checkpoint import final_model_path, load_model  # noqa: E402

NAMES = ("sae", "swwae", "sae-spn", "sae-spn-coarse")
REPO = Path(__file__).resolve().parents[1]


@torch.no_grad()
def switch_prior(model, recipe, crops: int = 128):
    """Per-channel frequencies of the sent switches (coarsest pooling) over training crops."""
    data = ImageCrops(recipe.data.train, recipe.data.crop)
    gen = torch.Generator().manual_seed(recipe.seed)
    batches = (model.encoder.features(data.random_batch(8, gen))[1][-1] for _ in range(crops // 8))
    return estimate_prior(batches, model.cfg.encoder_widths[-1], 4)


@torch.no_grad()
def code_image(model, prior, mhash, spn_prior, path):
    image = read_image(path, model.stride)
    enc = encode_image(model, prior, image, None, mhash)
    z, switches = model.encoder.features(image.x)
    z_hat = model.quantizer.dequantize(torch.from_numpy(enc.symbols)[None])
    y, logits = model.generator.decode(z_hat, switches)
    pixels = int8_to_pixels(output_to_int8(y)[0], image.original_size)
    side = encode_symbols(switches[-1][0].numpy(), spn_prior) if model.cfg.switches == "sent" else b""
    hits = [(lg.reshape(1, -1, 4, *lg.shape[2:]).argmax(2) == switches[STAGES - 1 - s]).float().mean().item()
            for s, lg in enumerate(logits)]
    h, w = image.original_size
    return {"image": path.name, "latent_bytes": len(enc.data), "switch_bytes": len(side),
            "bpp": 8 * (len(enc.data) + len(side)) / (h * w), "switch_bpp": 8 * len(side) / (h * w),
            "psnr": pixel_psnr(image.pixels, pixels), "msssim": pixel_msssim(image.pixels, pixels),
            "switch_hit_rate": hits}


def evaluate(run: Path, recipe_path: Path, images):
    model, blob = load_model(final_model_path(run))
    model.eval()
    prior = load_prior(final_model_path(run).parent / "prior.npy")
    recipe = load_recipe(recipe_path)
    spn_prior = switch_prior(model, recipe) if model.cfg.switches == "sent" else None
    rows = [code_image(model, prior, model_hash(model, prior), spn_prior, p) for p in images]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("bpp", "switch_bpp", "psnr", "msssim")}
    hit = [float(np.mean([r["switch_hit_rate"][s] for r in rows])) for s in range(len(rows[0]["switch_hit_rate"]))]
    return {"stage": blob["stage"], "config": blob["config"], "mean": mean, "switch_hit_rate": hit, "images": rows}


def markdown(results, count) -> str:
    lines = [f"| model | switches | bpp (of which switches) | PSNR dB | MS-SSIM | SPN hit rate per stage, coarse to fine |",
             "|---|---|---|---|---|---|"]
    for name, r in results.items():
        m, cfg = r["mean"], r["config"]
        hits = ", ".join(f"{h:.2f}" for h in r["switch_hit_rate"]) or "-"
        lines.append(f"| {name} (C={cfg['latent_channels']}) | {cfg['switches']} | {m['bpp']:.4f} ({m['switch_bpp']:.4f}) "
                     f"| {m['psnr']:.2f} | {m['msssim']:.4f} | {hits} |")
    return "\n".join(lines) + f"\n\nMeans over {count} images, each run at its `{r['stage']}` stage.\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", type=Path, help="folder holding the runs sae/, swwae/, sae-spn/")
    p.add_argument("images", help="folder of evaluation images (e.g. ../shared/data/kodak)")
    p.add_argument("--out", type=Path, default=None, help="markdown table (default RUNS/compare.md, + .json)")
    p.add_argument("--only", nargs="+", choices=NAMES, default=list(NAMES), help="runs to (re-)evaluate")
    args = p.parse_args(argv)
    images = image_paths(args.images)
    out = args.out or args.runs / "compare.md"
    kept = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").is_file() else {}
    fresh = {n: evaluate(args.runs / n, REPO / "recipes" / "compressnet" / f"{n}.yaml", images) for n in args.only}
    results = {n: fresh.get(n, kept.get(n)) for n in NAMES if n in fresh or n in kept}
    table = markdown(results, len(images))
    out.write_text(table)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
