"""bpgan-decode [RUN_OR_PROGRAM] IN.bpg|latent.npz -o out.png|out.wav [--engine ref|tvm] [--max-pixels N] [--float-backend]: bitstream -> image or speech.

Without RUN_OR_PROGRAM a bitstream is decoded by the shipped model (zoo/) whose model hash it carries.

IN.bpg: a bitstream from bpgan-encode; firmware_ref.decode_bitstream (the one decode path) checks it
against the program's model hash, entropy decodes it with the program's prior under the work rules
(a stream whose payload cannot carry its latent, or an image over --max-pixels, is refused before
decoding), runs the chosen engine and crops to the original size. A lossless stream (idf-audio)
decodes to its exact samples, written as 16-bit .wav or .flac at the stream's rate. An audio
stream decodes to its int8 mel (bit-exact), then to a 16-bit 8 kHz .wav by the integer back end
(firmware_ref/speech.py: NNLS mel inversion + Griffin-Lim on integers, bit-exact too; --float-backend:
librosa's float Griffin-Lim instead), or to .npz holding the int8 mel itself.

PROGRAM_OR_RUN_DIR: a folder holding program.json (what bpgan-export writes) or a run folder
(its export/ subfolder is used). latent.npz holds `latent` (int8) or `symbols` (indices into the
program's symbol table); a program with several inputs reads one array per input name. test_vectors.npz
from bpgan-export works as is. Output: .png (images)
or .npz (the raw output integers). Both engines write identical files.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from . import optional_model_and_input

from bpgan.firmware_ref.bitstream import MAX_DECODE_PIXELS
from bpgan.firmware_ref.bitstream_decode import ENGINES


def parse(argv):
    p = argparse.ArgumentParser(prog="bpgan-decode", description=__doc__.splitlines()[0])
    p.add_argument("paths", nargs="+", metavar="[RUN_OR_PROGRAM] INPUT",
                   help="export folder (program.json) or run folder (default for a bitstream: the shipped "
                        "model it was made for), then the bitstream (.bpg) or .npz with `latent` or `symbols`")
    p.add_argument("-o", "--output", required=True, help="output .png or .npz (images), .wav or .npz (audio)")
    p.add_argument("--engine", choices=ENGINES, default="ref", help="ref: NumPy reference; tvm: decoder-llvm.so")
    p.add_argument("--gl-iters", type=int, default=32, help="audio: Griffin-Lim iterations")
    p.add_argument("--float-backend", action="store_true",
                   help="audio: librosa's float Griffin-Lim (mel.py) instead of the integer back end")
    p.add_argument("--band-rows", type=int, default=None,
                   help="ref engine: decode this many output rows at a time (bounded memory, same bytes)")
    p.add_argument("--max-pixels", type=int, default=MAX_DECODE_PIXELS,
                   help=f"refuse bitstreams of larger images (default {MAX_DECODE_PIXELS})")
    args = p.parse_args(argv)
    args.program, args.latent = optional_model_and_input(p, args.paths, "RUN_OR_PROGRAM")
    return args


def shipped_model_for(path: Path) -> Path:
    """The zoo entry a bitstream was made for, by the model hash in its header (the Python API's lookup)."""
    from bpgan.api import model_for_stream

    if path.suffix.lower() == ".npz" or not path.is_file():
        raise ValueError(f"{path}: without RUN_OR_PROGRAM the input must be a bitstream (.bpg)")
    return model_for_stream(path.read_bytes(), "pass RUN_OR_PROGRAM").folder


def program_dir(path: Path) -> Path:
    for d in (path, path / "export"):
        if (d / "program.json").is_file():
            return d
    raise ValueError(f"no program.json in {path} or {path / 'export'}; run bpgan-export first")


def read_latent(path: Path, prog):
    """.npz -> the program's input: `latent` (int8) or `symbols` for one input, else one array per input name."""
    from bpgan.firmware_ref.decoder import check_input, symbols_to_latent

    if not path.is_file():
        raise ValueError(f"no latent file at {path}")
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable .npz ({str(e).splitlines()[0]})") from None
    with z:
        if len(prog.inputs) > 1:
            missing = [name for name in prog.inputs if name not in z.files]
            if missing:
                raise ValueError(f"{path} lacks the program input(s) {missing}")
            return {name: check_input(prog, name, z[name]) for name in prog.inputs}
        if "latent" in z.files:
            return check_input(prog, prog.inputs[0], z["latent"])
        if "symbols" in z.files:
            return symbols_to_latent(prog, z["symbols"])
    raise ValueError(f"{path} holds neither `latent` nor `symbols`")


def run_engine(engine: str, prog, latent) -> np.ndarray:
    """The program's first output for one latent (or {input: array}) through the chosen engine."""
    if engine == "ref":
        from bpgan.firmware_ref.decoder import run_program
        return run_program(prog, latent)[prog.outputs[0]]
    from bpgan.firmware_ref.bitstream_decode import tvm_decoder
    y = tvm_decoder(prog)(latent)
    return y[0] if isinstance(y, list) else y


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


def decode_stream_file(path: Path, prog, engine: str, output: Path, iters: int = 32,
                       max_pixels: int = MAX_DECODE_PIXELS, band_rows=None, float_backend: bool = False) -> str:
    """Bitstream -> PNG (or WAV / .npz for speech) through the API's decode path; returns what was written."""
    from bpgan.api import Model, decode_integers
    from bpgan.firmware_ref.image import to_hwc_image

    from ..codec.image_io import write_png

    if not path.is_file():
        raise ValueError(f"no bitstream at {path}")
    header, y = decode_integers(path.read_bytes(), Model(prog.source, prog), engine, max_pixels, band_rows)
    if header.modality == "lossless":
        from ..audio.pcm import write_pcm
        if output.suffix.lower() not in (".wav", ".flac"):
            raise ValueError(f"output {output.name}: a lossless stream decodes to .wav or .flac")
        write_pcm(output, y, header.sample_rate)
        return f"{y.shape[0]} channel(s), {y.shape[1]} samples at {header.sample_rate} Hz, 16-bit, exact"
    if header.modality == "audio":
        from ..audio.commands import write_decoded
        return write_decoded(output, y[0], header.original_size[0], iters, float_backend)
    if output.suffix.lower() != ".png":
        raise ValueError(f"output {output.name}: a bitstream decodes to .png")
    pixels = to_hwc_image(y, prog.fmt(prog.outputs[0])[1])
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
        prog = load_program(program_dir(Path(args.program)))
        if Path(args.latent).suffix.lower() != ".npz":
            what = decode_stream_file(Path(args.latent), prog, args.engine, Path(args.output), args.gl_iters,
                                      args.max_pixels, args.band_rows, args.float_backend)
            print(f"bpgan-decode: {args.output} ({args.engine}, {what})")
            return 0
        latent = read_latent(Path(args.latent), prog)
        y = run_engine(args.engine, prog, latent)
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
