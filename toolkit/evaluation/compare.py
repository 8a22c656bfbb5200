"""Float vs fixed point, side by side, on the same inputs and the same latents.

Every variant decodes the same symbols: those of the run's final model (its encoder, optionally refined by
the latent search), entropy coded with the run's prior, so all variants share one bitstream and one bpp.
Variants, where the run has what they need:
  float          the float stage's generator (its own centers for the same symbol indices)
  float_weights  the final model's weights with float arithmetic (no activation quantization)
  qat, admm_prune, admm_quant, finetune   each stage's Brevitas fake-quant generator
  reference      the integer program on the NumPy reference decoder (firmware_ref)
  tvm            the integer program's TVM library (decoder-llvm.so)
The two integer variants decode the bitstream itself (firmware_ref.decode_bitstream, the deployed path),
so their decode time includes entropy decoding; the torch variants take the symbols.
"""
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from bpgan.firmware_ref.bitstream import offset_output

from ..codec.codec import bits_per_pixel, encode_image
from ..codec.fingerprint import model_hash
from ..codec.image_io import int8_to_pixels, output_to_int8, pixels_to_tensor, read_image, write_png
from ..codec.search import SearchConfig
from ..models import build_model
from ..training.checkpoint import STAGE_ORDER, load_model
from ..training.report import model_summary
from ..metrics import msssim

Decoder = Callable[[np.ndarray], np.ndarray]  # symbols (1, C, h, w) -> (1, 3, H, W) int8 at 2^-7


class CompareError(ValueError):
    """The run lacks what the comparison needs; one line."""


@dataclass
class Variant:
    name: str
    decode: Decoder
    info: dict = field(default_factory=dict)     # size, sparsity, MACs
    from_stream: bool = False                    # decode takes the bitstream bytes (the deployed path)


def pixel_psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def mean_colour_error(a: np.ndarray, b: np.ndarray) -> List[float]:
    """|mean(b) - mean(a)| per colour channel in levels (0-255): a colour cast, which PSNR hardly sees."""
    diff = b.reshape(-1, b.shape[-1]).astype(np.float64).mean(0) - a.reshape(-1, a.shape[-1]).astype(np.float64).mean(0)
    return [float(v) for v in np.abs(diff)]


def pixel_msssim(a: np.ndarray, b: np.ndarray) -> Optional[float]:
    try:
        return msssim(pixels_to_tensor(a), pixels_to_tensor(b))
    except ValueError:  # smaller than MS-SSIM's 5 scales allow
        return None


def torch_decoder(model) -> Decoder:
    def run(symbols):
        with torch.no_grad():
            z = model.quantizer.dequantize(torch.from_numpy(symbols.astype(np.int64)))
            return output_to_int8(model.generator(z))
    return run


def float_arithmetic_model(model, name: str):
    """The same weights with float activations: a quant-free build loaded with the QAT model's float weights."""
    cfg = model.cfg.model_copy(update={"batchnorm": False})
    flt = build_model(name, cfg, None)
    flt.load_state_dict({k: v for k, v in model.state_dict().items() if k in flt.state_dict()}, strict=True)
    return flt.eval()


def float_decoder(model) -> Decoder:
    """Float output y in [-1, 1] -> nearest int8 at 2^-7, so every variant maps to pixels the same way."""
    def run(symbols):
        with torch.no_grad():
            z = model.quantizer.dequantize(torch.from_numpy(symbols.astype(np.int64)))
            y = model.generator(z)
        return output_to_int8(y)
    return run


def stage_info(model, blob) -> dict:
    s = model_summary(model, blob)
    sizes = {k: v for k, v in s["sizes_bytes"].items() if v is not None}
    weights = sum(v["weights"] for v in s["sparsity"].values())
    zeros = sum(v["int8_zeros"] * v["weights"] for v in s["sparsity"].values())
    return {"size_bytes": min(sizes.values()), "size_format": min(sizes, key=sizes.get),
            "sparsity": zeros / weights if weights else 0.0,
            "macs_per_pixel": s["generator_macs_per_pixel"]}


def collect_variants(run_dir: Path, final_model, final_blob) -> Tuple[List[Variant], Dict[str, str]]:
    """The variants this run has, and for each missing one the reason."""
    variants, missing = [], {}
    final_info = stage_info(final_model, final_blob)
    float_path = run_dir / "float" / "model.pt"
    if float_path.is_file():
        m, blob = load_model(float_path)
        variants.append(Variant("float", float_decoder(m), stage_info(m, blob)))
    else:
        missing["float"] = f"no {float_path}"
    variants.append(Variant("float_weights", float_decoder(float_arithmetic_model(final_model, final_blob["model"])),
                            {**final_info, "size_bytes": None, "size_format": None}))
    for stage in STAGE_ORDER[1:]:
        p = run_dir / stage / "model.pt"
        if p.is_file():
            m, blob = load_model(p)
            variants.append(Variant(stage, torch_decoder(m), stage_info(m, blob)))
        else:
            missing[stage] = f"no {p}"
    export = run_dir / "export"
    if (export / "program.json").is_file():  # the integer engines decode the bitstream itself: the one decode path
        from bpgan.firmware_ref.bitstream_decode import decode_bitstream, engine_for
        from bpgan.firmware_ref.program import load_program
        prog = load_program(export)
        ref = engine_for(prog, "ref")
        variants.append(Variant("reference", lambda data: decode_bitstream(prog, data, ref)[1], final_info, True))
        lib = export / "decoder-llvm.so"
        if lib.is_file():
            tvm = engine_for(prog, "tvm")
            variants.append(Variant("tvm", lambda data: decode_bitstream(prog, data, tvm)[1], final_info, True))
        else:
            missing["tvm"] = f"no {lib} (run bpgan-export {run_dir} --target llvm)"
    else:
        missing["reference"] = missing["tvm"] = f"no {export / 'program.json'} (run bpgan-export {run_dir})"
    return variants, missing


def evaluate_image(path: Path, final_model, prior, mhash, variants: List[Variant], search: Optional[SearchConfig],
                   out_dir: Optional[Path], colour_offsets: bool = False) -> dict:
    """One image: encode once, decode with every variant; metrics per variant; outputs saved as PNG.
    colour_offsets: the stream carries them; the torch variants get them added as the decode path adds them."""
    image = read_image(path, final_model.stride)
    t0 = time.perf_counter()
    enc = encode_image(final_model, prior, image, search, mhash, colour_offsets)
    encode_s = time.perf_counter() - t0
    row = {"image": path.name, "bpp": bits_per_pixel(len(enc.data), image.original_size),
           "bytes": len(enc.data), "encode_s": encode_s, "variants": {}}
    outputs = {}
    for v in variants:
        t0 = time.perf_counter()
        y = np.asarray(v.decode(enc.data) if v.from_stream else offset_output(v.decode(enc.symbols[None]), enc.header))
        seconds = time.perf_counter() - t0
        outputs[v.name] = y
        pixels = int8_to_pixels(y, image.original_size)
        if out_dir is not None:
            (out_dir / v.name).mkdir(parents=True, exist_ok=True)
            write_png(out_dir / v.name / f"{path.stem}.png", pixels)
        row["variants"][v.name] = {"psnr": pixel_psnr(image.pixels, pixels),
                                   "msssim": pixel_msssim(image.pixels, pixels), "decode_s": seconds,
                                   "colour_error": mean_colour_error(image.pixels, pixels), "pixels": pixels}
    ref_px = row["variants"].get("float_weights", {}).get("pixels")
    for name, m in row["variants"].items():
        m["psnr_vs_float_weights"] = pixel_psnr(ref_px, m["pixels"]) if ref_px is not None else None
    if "reference" in outputs and "tvm" in outputs:
        row["ref_vs_tvm_max_lsb"] = int(np.abs(outputs["reference"].astype(np.int64)
                                               - outputs["tvm"].astype(np.int64)).max())
    row["original"] = image.pixels
    return row


def prepare(run_dir: Path):
    """-> (final model, blob, prior, model hash); CompareError when the run cannot be compared."""
    from ..codec.learned import load_stream_prior
    from ..training.checkpoint import final_model_path

    try:
        model_file = final_model_path(run_dir)
        model, blob = load_model(model_file)
    except ValueError as e:
        raise CompareError(str(e)) from None
    if blob["quant"] is None:
        raise CompareError(f"{model_file} is a float model; compare needs a quantized stage (qat or later)")
    for p in (model_file.parent / "prior.npy", run_dir / "prior.npy"):
        if p.is_file():
            prior = load_stream_prior(p)
            return model, blob, prior, model_hash(model, prior)
    raise CompareError(f"{run_dir} has no prior.npy; make one with: bpgan-encode {run_dir} IMAGE -o x.bpg "
                       f"--prior-from TRAINING_IMAGES")
