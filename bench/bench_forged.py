"""Forged bitstreams through every decoder engine: crashes, hangs and the slowest case.

python bench/bench_forged.py [RUN_OR_EXPORT] [--streams 100000] [--engines ref,tvm,c99] [--hang-s 1.0]
Each stream is a forgery of toolkit/codec/forgery.py (CRCs recomputed, so the checks behind them run),
built from a genuine stream of random symbols coded with the program's prior, and decoded by
firmware_ref.decode_bitstream: the one decode path. A refusal (BitstreamError / ProgramError) is the
expected outcome; any other exception is a crash, a stream slower than --hang-s a hang. The tvm engine
uses the export's decoder-llvm.so, compiled into a temporary folder when the export has none. The c99
engine is the standalone C decoder (bpgan-export --target c99) built natively in a temporary folder and
run once per stream: exit 0 decodes, exit 1 with one stderr line refuses, anything else (a signal) is a
crash; its verdict and bytes must equal the reference's; its times are the process's CPU seconds.
Default model: zoo/bpgan-image-light.
"""
import argparse
import collections
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

warnings.simplefilter("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402

from bpgan.firmware_ref.bitstream import BitstreamError, Header  # noqa: E402
from bpgan.firmware_ref.bitstream_decode import decode_bitstream, engine_for  # noqa: E402
from bpgan.firmware_ref.decoder import symbols_to_latent  # noqa: E402
from bpgan.firmware_ref.program import ProgramError, load_program  # noqa: E402
from bpgan.toolkit.codec.bitstream import write_bitstream  # noqa: E402
from bpgan.toolkit.codec.forgery import KINDS, forge  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def tvm_engine(prog):
    lib = prog.source / "decoder-llvm.so"
    if lib.is_file():
        return engine_for(prog, "tvm")
    from bpgan.export.tvm.lower import TvmDecoder, compile_program
    dec = TvmDecoder(compile_program(prog, "llvm", tempfile.mkdtemp(prefix="bench-forged-")))
    return lambda symbols: dec(symbols_to_latent(prog, symbols))


class C99Engine:
    """The generated C decoder as a process per stream; raises BitstreamError when it refuses."""

    def __init__(self, prog):
        from bpgan.export.c99 import emit_c99, native
        self.native, self.prog = native, prog
        self.dir = Path(tempfile.mkdtemp(prefix="bench-forged-c99-"))
        self.report = emit_c99(prog, self.dir / "c99")
        self.binary = native.build(self.report.out_dir)
        self.mismatches = 0

    def __call__(self, data: bytes):
        audio = self.prog.modality == "audio"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        r = self.native.run(self.binary, data, self.dir, suffix=".wav" if audio else ".ppm")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        # the process's own CPU seconds: on a loaded machine its wall time is mostly waiting for a core
        self.cpu_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        report = self.report
        want = self.native.expected(self.prog, data, report.max_pixels, report.max_width, report.max_frames)
        if r.returncode not in (0, 1):
            raise RuntimeError(f"bpgan_decode exited {r.returncode}: {r.stderr.strip()[:80]}")
        if (r.returncode == 0) != (want is not None) or (want is not None and r.output != want) or \
                (r.returncode == 1 and r.stderr.count("\n") != 1):
            self.mismatches += 1
        if r.returncode:
            raise BitstreamError(r.stderr.strip())


def genuine_stream(prog, rng) -> bytes:
    """Random symbols at a 4x6 latent (1-D: 24 steps) coded with the program's prior."""
    c, stride = prog.prior().shape[0], int(prog.meta["config"]["downsample"])
    if prog.modality == "audio":
        step = stride * 64
        header = Header("audio", prog.model_hash(), step, (24 * step,), (0,), (c, 24))
    else:
        header = Header("image", prog.model_hash(), stride, (4 * stride, 6 * stride), (0, 0), (c, 4, 6))
    return write_bitstream(header, rng.integers(0, prog.prior().shape[-1], header.latent_shape), prog.prior())


def run(prog, engine, streams: int, hang_s: float, seed: int, stream_decoder=None) -> dict:
    rng = np.random.default_rng(seed)
    valid = genuine_stream(prog, rng)
    verdicts, crashes, hangs = collections.Counter(), [], []
    slowest = (0.0, "", 0)
    for i in tqdm(range(streams), desc="streams", unit="stream", leave=False):
        kind = KINDS[i % len(KINDS)]
        data = forge(kind, valid, rng, prog.prior())
        t0 = time.perf_counter()
        try:
            if stream_decoder is not None:
                stream_decoder(data)
            else:
                decode_bitstream(prog, data, engine)
            verdicts["decoded"] += 1
        except (BitstreamError, ProgramError):
            verdicts["refused"] += 1
        except Exception as e:  # noqa: BLE001 - a crash is what this bench looks for
            crashes.append(f"{kind}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        dt = time.perf_counter() - t0
        if stream_decoder is not None:
            dt = stream_decoder.cpu_s
        if dt > hang_s:
            hangs.append((kind, dt, len(data)))
        if dt > slowest[0]:
            slowest = (dt, kind, len(data))
    return {"verdicts": verdicts, "crashes": crashes, "hangs": hangs, "slowest": slowest}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", default=str(REPO / "zoo" / "bpgan-image-light"))
    p.add_argument("--streams", type=int, default=100_000)
    p.add_argument("--engines", default="ref,tvm,c99")
    p.add_argument("--hang-s", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    folder = Path(args.model)
    prog = load_program(folder / "export" if (folder / "export" / "program.json").is_file() else folder)
    print(f"machine: {describe()}")
    print(f"model: {folder} ({args.streams} forged streams per engine, kinds: {', '.join(KINDS)})")
    bad = 0
    for name in args.engines.split(","):
        c99 = C99Engine(prog) if name == "c99" else None
        engine = None if c99 else tvm_engine(prog) if name == "tvm" else engine_for(prog, name)
        t0 = time.perf_counter()
        r = run(prog, engine, args.streams, args.hang_s, args.seed, c99)
        ms, kind, size = r["slowest"]
        extra = f", verdict or bytes differing from the reference {c99.mismatches}" if c99 else ""
        print(f"{name}: {dict(r['verdicts'])}, crashes {len(r['crashes'])}, hangs (> {args.hang_s} s) "
              f"{len(r['hangs'])}, slowest {1e3 * ms:.1f} ms ({kind}, {size} bytes){extra}, total "
              f"{time.perf_counter() - t0:.0f} s")
        bad += c99.mismatches if c99 else 0
        for line in r["crashes"][:5]:
            print(f"  crash: {line}")
        bad += len(r["crashes"]) + len(r["hangs"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
