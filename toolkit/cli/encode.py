"""bpgan-encode [MODEL] IMAGE|WAV -o out.bpg [--iters N]: image or speech -> bitstream; prints size, rate, quality.

MODEL: a run folder (its last stage's model.pt) or a model.pt file; without it the shipped model
(zoo/bpgan-image-light for images, zoo/bpgan-audio-light for audio files) is used. The prior table is read from
--prior, else prior.npy beside the model file or in the run folder; --prior-from DATA estimates it
from training images (a folder, or `embedded`) and saves it as prior.npy beside the model file.
An audio model (modality from the model) takes any audio file (audio/wav.py converts it to 8 kHz
mono with notes) and reports bit/s, the decoded mel's LSD, PESQ-NB and STOI (toolkit/audio/commands.py).
A lossless model (idf-audio, exported) codes 8/16-bit PCM WAV or FLAC exactly at its own rate and channels,
checks the round trip and reports the ratio and bits per sample (toolkit/audio/lossless_commands.py).
The decoded result is measured with the integer reference decoder when the run folder holds an
export (export/program.json), else with the torch fake-quant generator (said in the output).
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

from . import optional_model_and_input
from ..codec.codec import bits_per_pixel, decode_image, encode_image, prior_from_batches, torch_engine
from ..codec.fingerprint import model_hash
from ..codec.image_io import int8_to_pixels, pixels_to_tensor, psnr, read_image
from ..codec.learned import load_stream_prior
from ..codec.prior import PriorError, save_prior
from ..codec.search import SearchConfig
from ..training.checkpoint import final_model_path, load_model


def parse(argv):
    p = argparse.ArgumentParser(prog="bpgan-encode", description=__doc__.splitlines()[0])
    p.add_argument("paths", nargs="+", metavar="[MODEL] INPUT",
                   help="run folder or model.pt (default: the shipped model for the input), then the image "
                        "(PNG, JPEG, ...) or audio file (WAV, FLAC, ...)")
    p.add_argument("-o", "--output", required=True, help="output bitstream (.bpg)")
    p.add_argument("--iters", type=int, default=50, help="latent search iterations; 0 = encoder latent only")
    p.add_argument("--lr", type=float, default=SearchConfig.lr, help="search: Adam step on the latent")
    p.add_argument("--rho", type=float, default=SearchConfig.rho, help="search: ADMM penalty")
    p.add_argument("--mse", type=float, default=1.0, help="search: MSE weight")
    p.add_argument("--msssim", type=float, default=0.0, help="search: (1 - MS-SSIM) weight")
    p.add_argument("--colour", type=float, default=0.0,
                   help="search: weight of the per-channel mean colour difference (images)")
    p.add_argument("--float-gradients", action="store_true",
                   help="search: full-precision gradients instead of the model's 8-bit gradient quantizers")
    p.add_argument("--gl-iters", type=int, default=32, help="audio: Griffin-Lim iterations for the measured waveform")
    p.add_argument("--prior", default=None, help="prior table .npy (default: prior.npy beside the model)")
    p.add_argument("--prior-from", default=None, help="estimate the prior from these training images and save it")
    p.add_argument("--colour-offsets", action="store_true",
                   help="images: send per-channel offsets that match the decoded mean colour to the original's "
                        "(4 header bytes; decoders add them to the output)")
    p.add_argument("--per-channel-prior", action="store_true",
                   help="code with the prior.npy table even where a learned entropy model (entropy_model.pt) lies "
                        "beside it (for rate comparisons; the exported program decodes the learned model's streams)")
    p.add_argument("--prior-crops", type=int, default=64, help="training crops used by --prior-from")
    p.add_argument("--context-prior", action="store_true",
                   help="with --prior-from: condition each symbol on the one above and the previous channel's")
    args = p.parse_args(argv)
    args.model, args.image = optional_model_and_input(p, args.paths, "MODEL")
    return args


def resolve_model(path: Path) -> Path:
    return path if path.is_file() else final_model_path(path)


def find_prior(args, model_file: Path, model) -> np.ndarray:
    if args.prior_from:
        if getattr(model, "modality", "image") == "audio":
            if args.context_prior:
                raise PriorError("--context-prior conditions on the row above: images only")
            from ..audio.codec import prior_from_clips
            table = prior_from_clips(model, args.prior_from, crops=args.prior_crops)
        else:
            from ..datasets import ImageCrops
            crops = ImageCrops(args.prior_from, 128).fixed_crops(args.prior_crops)
            table = prior_from_batches(model, crops.split(16), context=args.context_prior)
        save_prior(model_file.parent / "prior.npy", table)
        print(f"bpgan-encode: prior from {args.prior_from} saved to {model_file.parent / 'prior.npy'}")
        return table
    candidates = [Path(args.prior)] if args.prior else [model_file.parent / "prior.npy",
                                                        model_file.parent.parent / "prior.npy"]
    for c in candidates:
        if c.is_file():
            return load_stream_prior(c, learned=not args.per_channel_prior)
    raise PriorError(f"no prior table at {candidates[0]}; pass --prior or estimate one with --prior-from DATA")


def reference_engine(model_file: Path):
    """The integer reference decoder when the run holds an export, else None."""
    for folder in (model_file.parent.parent / "export", model_file.parent / "export"):
        if (folder / "program.json").is_file():
            from bpgan.firmware_ref.decoder import decode_latent
            from bpgan.firmware_ref.program import load_program
            prog = load_program(folder)
            return (lambda symbols: decode_latent(prog, symbols)), f"reference decoder ({folder})"
    return None


def encode_audio_file(args, model, model_file: Path, prior) -> int:
    from ..audio.commands import encode_wav
    search = SearchConfig(args.iters, args.lr, args.rho, args.mse, args.msssim,
                          quantized_gradients=not args.float_gradients) if args.iters > 0 else None
    engine, engine_name = reference_engine(model_file) or (torch_engine(model), "torch fake-quant generator")
    encode_wav("bpgan-encode", args, model, prior, model_hash(model, prior), search, engine, engine_name)
    return 0


def msssim_of(a: np.ndarray, b: np.ndarray) -> str:
    from ..metrics import msssim
    try:
        return f"{msssim(pixels_to_tensor(a), pixels_to_tensor(b)):.4f}"
    except ValueError:
        return "n/a (image too small)"


def main(argv=None) -> int:
    args = parse(argv)
    try:
        if args.model is None:
            from ..zoo import default_for_input
            args.model = default_for_input(args.image)
            print(f"bpgan-encode: model {args.model} (shipped default)")
        model_file = resolve_model(Path(args.model))
        model, _ = load_model(model_file)
        if getattr(model, "modality", "image") == "lossless":
            from ..audio.lossless_commands import encode_pcm_file
            return encode_pcm_file("bpgan-encode", model_file, args.image, Path(args.output))
        prior = find_prior(args, model_file, model)
        if getattr(model, "modality", "image") == "audio":
            return encode_audio_file(args, model, model_file, prior)
        image = read_image(args.image, model.stride)
        for note in image.notes:
            print(f"bpgan-encode: note: {note}")
        mhash = model_hash(model, prior)
        search = SearchConfig(args.iters, args.lr, args.rho, args.mse, args.msssim,
                              quantized_gradients=not args.float_gradients, colour=args.colour) \
            if args.iters > 0 else None
        t0 = time.perf_counter()
        enc = encode_image(model, prior, image, search, mhash, args.colour_offsets)
        seconds = time.perf_counter() - t0
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(enc.data)
        engine, engine_name = reference_engine(model_file) or (torch_engine(model), "torch fake-quant generator")
        _, pixels = decode_image(out.read_bytes(), prior, mhash, engine, model.stride)
    except (ValueError, OSError) as e:  # ImageError, PriorError, BitstreamError, model/program errors
        print(f"bpgan-encode: error: {e}", file=sys.stderr)
        return 2
    size = out.stat().st_size
    print(f"bpgan-encode: {out}: {size} bytes, {bits_per_pixel(size, image.original_size):.4f} bpp "
          f"({image.original_size[1]}x{image.original_size[0]}, encode {seconds:.2f} s)")
    print(f"bpgan-encode: decoded by the {engine_name}: PSNR {psnr(image.pixels, pixels):.2f} dB, "
          f"MS-SSIM {msssim_of(image.pixels, pixels)}")
    if enc.search is not None:  # the same image without the search, same engine, for the gain
        plain = encode_image(model, prior, image, None, mhash)
        base = int8_to_pixels(engine(plain.symbols[None]), image.original_size)
        print(f"bpgan-encode: latent search: best at iteration {enc.search.best_iteration}/{args.iters}; "
              f"encoder latent alone: {bits_per_pixel(len(plain.data), image.original_size):.4f} bpp, "
              f"PSNR {psnr(image.pixels, base):.2f} dB, MS-SSIM {msssim_of(image.pixels, base)}")
    return 0


def entry():
    sys.exit(main())


if __name__ == "__main__":
    entry()
