"""bpgan-encode for a lossless model: PCM file -> stream, the round trip checked, ratio and speed printed."""
import time
from pathlib import Path

import numpy as np

from .pcm import read_pcm


def encode_pcm_file(prog_name: str, model_file: Path, source, output: Path) -> int:
    """Code `source` with the run's exported program (model_file's run folder). Raises ValueError/OSError."""
    from bpgan.firmware_ref.lossless_stream import decode_lossless, encode_lossless
    from bpgan.firmware_ref.program import load_program

    export = next((d for d in (model_file.parent.parent / "export", model_file.parent / "export")
                   if (d / "program.json").is_file()), None)
    if export is None:
        raise ValueError(f"{model_file.parent.parent} has no export/program.json: a lossless model encodes with its "
                         f"integer program; run bpgan-export first")
    prog = load_program(export)
    samples, rate = read_pcm(source)
    t0 = time.perf_counter()
    data = encode_lossless(prog, samples, rate)
    t1 = time.perf_counter()
    _, back = decode_lossless(prog, data)
    t2 = time.perf_counter()
    if not np.array_equal(back, samples):
        raise RuntimeError("the reference decoder does not return the input samples (a bug: please report)")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(data)
    n = samples.size
    shape = f"{samples.shape[0]} channel(s) x {samples.shape[1]} samples at {rate} Hz"
    if n == 0:
        print(f"{prog_name}: {output}: {len(data)} bytes (header only: {shape}); exact round trip")
        return 0
    print(f"{prog_name}: {output}: {len(data)} bytes, ratio {2 * n / len(data):.3f} against 16-bit PCM, "
          f"{8 * len(data) / n:.2f} bits/sample ({shape})")
    print(f"{prog_name}: exact round trip through the reference decoder; encode {n / max(t1 - t0, 1e-9):,.0f} "
          f"samples/s, decode {n / max(t2 - t1, 1e-9):,.0f} samples/s")
    return 0
