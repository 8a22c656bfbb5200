"""bpgan-decode [RUN_OR_PROGRAM] IN.bpg|latent.npz -o out.png|out.wav [--engine ref|tvm]: bitstream -> image or speech.

Without RUN_OR_PROGRAM a bitstream is decoded by the shipped model (zoo/) whose model hash it carries.

IN.bpg: a bitstream from bpgan-encode; it is entropy decoded with the prior stored in the integer
program, checked against the program's model hash, decoded and cropped to the original size. An audio
stream decodes to its int8 mel (bit-exact), then to a 16-bit 8 kHz .wav by Griffin-Lim (float
post-processing), or to .npz holding the int8 mel itself.

PROGRAM_OR_RUN_DIR: a folder holding program.json (what bpgan-export writes) or a run folder
(its export/ subfolder is used). latent.npz holds `latent` (int8) or `symbols` (indices into the
program's symbol table); test_vectors.npz from bpgan-export works as is. Output: .png (images)
or .npz (the raw output integers). Both engines write identical files.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from . import optional_model_and_input

ENGINES = ("ref", "tvm")


def parse(argv):
    p = argparse.ArgumentParser(prog="bpgan-decode", description=__doc__.splitlines()[0])
    p.add_argument("paths", nargs="+", metavar="[RUN_OR_PROGRAM] INPUT",
                   help="export folder (program.json) or run folder (default for a bitstream: the shipped "
                        "model it was made for), then the bitstream (.bpg) or .npz with `latent` or `symbols`")
    p.add_argument("-o", "--output", required=True, help="output .png or .npz (images), .wav or .npz (audio)")
    p.add_argument("--engine", choices=ENGINES, default="ref", help="ref: NumPy reference; tvm: decoder-llvm.so")
    p.add_argument("--gl-iters", type=int, default=32, help="audio: Griffin-Lim iterations")
    args = p.parse_args(argv)
    args.program, args.latent = optional_model_and_input(p, args.paths, "RUN_OR_PROGRAM")
    return args


def shipped_model_for(path: Path) -> Path:
    """The zoo entry a bitstream was made for, by the model hash in its header."""
    from ..codec.bitstream import unpack
    from ..zoo import ZOO, find_by_model_hash

    if path.suffix.lower() == ".npz" or not path.is_file():
        raise ValueError(f"{path}: without RUN_OR_PROGRAM the input must be a bitstream (.bpg)")
    header = unpack(path.read_bytes())[0]
    found = find_by_model_hash(header.model_hash)
    if found is None:
        raise ValueError(f"{path} was made for model {header.model_hash.hex()}, which is none of the shipped "
                         f"models in {ZOO}; pass RUN_OR_PROGRAM")
    return found


def program_dir(path: Path) -> Path:
    for d in (path, path / "export"):
        if (d / "program.json").is_file():
            return d
    raise ValueError(f"no program.json in {path} or {path / 'export'}; run bpgan-export first")


def read_latent(path: Path, prog):
    from bpgan.firmware_ref.decoder import symbols_to_latent

    if not path.is_file():
        raise ValueError(f"no latent file at {path}")
    with np.load(path, allow_pickle=False) as z:
        if "latent" in z.files:
            lat = z["latent"]
            if lat.dtype != np.int8:
                raise ValueError(f"{path}: `latent` must be int8, got {lat.dtype}")
            return lat
        if "symbols" in z.files:
            return symbols_to_latent(prog, z["symbols"])
    raise ValueError(f"{path} holds neither `latent` nor `symbols`")


def run_engine(engine: str, folder: Path, prog, latent: np.ndarray) -> np.ndarray:
    if engine == "ref":
        from bpgan.firmware_ref.decoder import run_program
        return run_program(prog, latent)[prog.outputs[0]]
    lib = folder / "decoder-llvm.so"
    if not lib.is_file():
        raise ValueError(f"no {lib.name} in {folder}; run bpgan-export with --target llvm")
    from bpgan.export.tvm_lower import TvmDecoder
    return TvmDecoder(lib)(latent)


def write_output(path: Path, y: np.ndarray, frac_bits: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".png":
        from PIL import Image

        from bpgan.firmware_ref.image import to_hwc_image
        hwc = to_hwc_image(y, frac_bits)
        Image.fromarray(hwc[..., 0] if hwc.shape[2] == 1 else hwc).save(path, format="PNG")
    elif path.suffix.lower() == ".npz":
        np.savez(path, output=y, frac_bits=np.int64(frac_bits))
    else:
        raise ValueError(f"output {path.name}: use .png or .npz")


def decode_bitstream(path: Path, folder: Path, prog, engine: str, output: Path, iters: int = 32):
    """Bitstream -> PNG (or WAV for an audio program) through the chosen integer engine; returns what was written."""
    from bpgan.firmware_ref.decoder import symbols_to_latent

    from ..codec.bitstream import unpack
    from ..codec.codec import decode_image
    from ..codec.image_io import write_png

    if not path.is_file():
        raise ValueError(f"no bitstream at {path}")
    data = path.read_bytes()
    if unpack(data)[0].modality == "audio":  # the stream says what it holds; the model hash check follows
        from ..audio.commands import decode_stream
        return decode_stream(data, prog, lambda s: run_engine(engine, folder, prog, symbols_to_latent(prog, s)),
                             output, iters)
    if output.suffix.lower() != ".png":
        raise ValueError(f"output {output.name}: a bitstream decodes to .png")
    stride = prog.meta.get("config", {}).get("downsample")
    _, pixels = decode_image(data, prog.prior(), prog.model_hash(),
                             lambda s: run_engine(engine, folder, prog, symbols_to_latent(prog, s)), stride)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_png(output, pixels)
    return f"{pixels.shape[1]}x{pixels.shape[0]}"


def main(argv=None) -> int:
    args = parse(argv)
    from bpgan.firmware_ref.program import load_program

    try:
        if args.program is None:
            args.program = shipped_model_for(Path(args.latent))
            print(f"bpgan-decode: model {args.program} (shipped, matched by the bitstream's model hash)")
        folder = program_dir(Path(args.program))
        prog = load_program(folder)
        if Path(args.latent).suffix.lower() != ".npz":
            what = decode_bitstream(Path(args.latent), folder, prog, args.engine, Path(args.output), args.gl_iters)
            print(f"bpgan-decode: {args.output} ({args.engine}, {what})")
            return 0
        latent = read_latent(Path(args.latent), prog)
        y = run_engine(args.engine, folder, prog, latent)
        write_output(Path(args.output), y, prog.fmt(prog.outputs[0])[1])
    except ValueError as e:  # ProgramError is a ValueError
        print(f"bpgan-decode: error: {e}", file=sys.stderr)
        return 2
    print(f"bpgan-decode: {args.output} ({args.engine}, output {tuple(y.shape)})")
    return 0


def entry():
    sys.exit(main())


if __name__ == "__main__":
    entry()
