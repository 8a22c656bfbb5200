"""report.json and report.md of a run: losses and validation per stage, sparsity, sizes, MACs."""
import json
from pathlib import Path

import numpy as np
import torch

from ..compression.storage import model_sizes
from ..models import count_macs, count_params
from ..quant.extract import input_exponents, integer_weights, quant_conv_layers


def layer_tensors(generator, codebooks=None) -> dict:
    """Per conv layer: int8 weights, int32 biases (accumulator scale), exponents, float tensors."""
    out, in_exps = {}, input_exponents(generator)
    for name, conv in quant_conv_layers(generator).items():
        qw = conv.quant_weight()
        exps = (-torch.log2(qw.scale.detach().reshape(-1))).round().to(torch.int64).numpy()
        acc_scale = 2.0 ** -(in_exps[name] + exps.astype(np.float64))
        bias = conv.bias.detach().double().numpy()
        out[name] = {"weight": integer_weights(conv), "exponents": exps,
                     "bias": np.floor(bias / acc_scale + 0.5).astype(np.int64),
                     "float_weight": conv.weight.detach().numpy(), "float_bias": conv.bias.detach().numpy()}
    return out


def codebooks_in_layer_units(layers, codebooks) -> dict:
    """Codebook integers per layer; ADMMCodebook keeps the layer's scale, so they are its int8 units."""
    out = {}
    for name, cb in (codebooks or {}).items():
        if float(cb["scale"].reshape(-1)[0]) != 2.0 ** -float(layers[name]["exponents"][0]):
            raise ValueError(f"{name}: codebook scale {float(cb['scale'].reshape(-1)[0])} is not the layer's")
        out[name] = cb["values"].numpy().astype(np.int64)
    return out


def model_summary(model, blob) -> dict:
    if getattr(model, "modality", None) == "lossless":   # no latent: the flow states its own size and cost
        return model.summary()
    gen = model.generator
    layers = layer_tensors(gen)
    masks = blob.get("masks") or {}
    sparsity = {}
    for name, l in layers.items():
        m = masks.get(name)
        sparsity[name] = {
            "target": None, "pruned": None if m is None else float(1 - m.float().mean()),
            "int8_zeros": float(np.mean(l["weight"] == 0)), "weights": int(l["weight"].size)}
    s, dims = model.stride, model.cfg.signal_dims
    example = torch.zeros(1, model.cfg.latent_channels, *(4,) * dims)
    macs = count_macs(gen, example)
    pixels = (4 * s) ** dims  # output positions: pixels (image) or mel frames (audio)
    if layers:
        sizes = model_sizes(layers, codebooks_in_layer_units(layers, blob.get("codebooks")))
    else:  # a float model: only the float32 size exists
        floats = [p.detach().numpy().astype("<f4").tobytes() for p in gen.parameters()]
        sizes = {"float32_dense": len(b"".join(floats)), "int8_dense": None, "int8_sparse": None,
                 "codebook_sparse": None}
    return {"sizes_bytes": sizes,
            "sparsity": sparsity, "generator_params": count_params(gen),
            "generator_macs_per_pixel": macs["total"] / pixels,
            "output_unit": "frame" if dims == 1 else "pixel",
            "macs_per_pixel_by_layer": {k: v / pixels for k, v in macs["per_layer"].items()}}


def write_report(out_dir: Path, recipe, results: dict, summary: dict, targets: dict) -> dict:
    for name, t in (targets or {}).items():
        summary["sparsity"][name]["target"] = t
    report = {"recipe": recipe.name, "model": recipe.model, "stages": results, **summary}
    out_dir = Path(out_dir)
    (out_dir / "report.json").write_text(json.dumps(report, indent=1, default=float))
    (out_dir / "report.md").write_text(render_markdown(report))
    from ..evaluation.plots import training_curves_plot
    training_curves_plot(out_dir / "curves.png", results)
    return report


VAL_TITLES = {"bits_per_sample": "val bits/sample (estimate)", "ratio": "val ratio (estimate)",
              "psnr": "val PSNR dB", "msssim": "val MS-SSIM", "mel_lsd_db": "val mel LSD dB",
              "mel_psnr": "val mel PSNR dB"}


def _fmt(v, spec=".4f"):
    return "-" if v is None else format(v, spec)


def render_markdown(rep: dict) -> str:
    val_keys = list(next(iter(rep["stages"].values()))["val"]) if rep["stages"] else []
    lines = [f"# Report: {rep['recipe']}", "", "## Stages", "",
             "| stage | steps | final loss | " + " | ".join(VAL_TITLES.get(k, k) for k in val_keys) + " |",
             "|---|---|---|" + "---|" * len(val_keys)]
    for st, m in rep["stages"].items():
        hist = m.get("history") or []
        last = hist[-1] if hist else {}
        vals = " | ".join(_fmt(m["val"].get(k), ".4f" if k == "msssim" else ".2f") for k in val_keys)
        lines.append(f"| {st} | {last.get('step', 0)} | {_fmt(last.get('loss'))} | {vals} |")
    z = rep["sizes_bytes"]
    lines += ["", "## Generator", "",
              f"- parameters: {rep['generator_params']:,}",
              f"- MACs per output {rep.get('output_unit', 'pixel')}: {rep['generator_macs_per_pixel']:,.0f}", "",
              "| storage | bytes | vs float32 |", "|---|---|---|"]
    for k in ("float32_dense", "int8_dense", "int8_sparse", "codebook_sparse"):
        if z[k] is None and k != "int8_dense":   # a stage the run did not have (no pruning, no codebooks)
            continue
        ratio = None if z[k] is None else z["float32_dense"] / z[k]
        lines.append(f"| {k} | {'-' if z[k] is None else f'{z[k]:,}'} | {_fmt(ratio, '.1f')}x |")
    if not rep["sparsity"]:   # a model without prunable generator layers (the lossless flow)
        return "\n".join(lines) + "\n"
    lines += ["", "## Per-layer sparsity", "",
              f"| layer | weights | target | pruned | int8 zeros | kMAC/{rep.get('output_unit', 'pixel')} |",
              "|---|---|---|---|---|---|"]
    for name, s in rep["sparsity"].items():
        lines.append(f"| {name} | {s['weights']} | {_fmt(s['target'], '.3f')} | {_fmt(s['pruned'], '.3f')} | "
                     f"{s['int8_zeros']:.3f} | {rep['macs_per_pixel_by_layer'].get(name, 0) / 1000:.2f} |")
    return "\n".join(lines) + "\n"
