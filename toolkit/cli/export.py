"""bpgan-export RUN_DIR --target llvm|aarch64|c|c99 [--out DIR] [--schedule auto|none] [--tune N]: model -> ONNX QCDQ -> integer program -> TVM library.

RUN_DIR is a bpgan-quantize run folder (its last stage is exported) or a model.pt file.
Writes model.qcdq.onnx, program.json + program.npz, test_vectors.npz and decoder-<target>.so|.tar
into --out (default RUN_DIR/export). The library holds hand-scheduled channel-blocked kernels
(VNNI where the CPU has it); --schedule none builds the plain, untuned one (for benchmarks).
--target c99 writes instead the standalone C decoder into DIR/c99 (bpgan/export/c99: no heap, no
floating point, one static arena planned for --max-pixels / --max-frames).
"""
import argparse
import sys
import warnings

TARGET_CHOICES = ("llvm", "aarch64", "c", "c99")


def parse(argv):
    p = argparse.ArgumentParser(prog="bpgan-export", description=__doc__.splitlines()[0])
    p.add_argument("run_dir", help="run folder or model.pt")
    p.add_argument("--target", choices=TARGET_CHOICES, default="llvm",
                   help="llvm: this machine (verified); aarch64: Linux aarch64 objects (.tar; verified under qemu-aarch64 "
                        "where it exists); c: TVM C source (.tar); "
                        "c99: the standalone C decoder (DIR/c99)")
    p.add_argument("--out", default=None, help="output folder (default RUN_DIR/export)")
    p.add_argument("--schedule", choices=("auto", "none"), default="auto",
                   help="auto: scheduled int8 kernels (default); none: untuned default pipeline")
    p.add_argument("--isa", choices=("vnni", "avx2", "i8mm", "dotprod", "generic"), default=None,
                   help="the kernel family: llvm default the best this CPU has; aarch64 default generic (any ARMv8), "
                        "i8mm: usdot (Armv8.6), dotprod: sdot (Armv8.2); the library records what it needs")
    p.add_argument("--tune", type=int, default=0, metavar="N",
                   help="llvm: time up to N register tiles per kernel on this CPU and keep the fastest (export/tvm/"
                        "tune.py); the database beside the library is reused by later exports")
    p.add_argument("--tune-size", default=None, metavar="HxW",
                   help="latent size the kernels are timed at (default 32x48, 768x512 images at 1/16; 1-D: 157, "
                        "10 s of speech)")
    p.add_argument("--max-pixels", type=int, default=None,
                   help="c99: largest image the arena is planned for (default 768x512 = 393216)")
    p.add_argument("--max-width", type=int, default=None,
                   help="c99: widest image (the decoder streams rows, so its memory grows with the width; default 768)")
    p.add_argument("--max-frames", type=int, default=None,
                   help="c99: longest speech in mel frames the arena is planned for (default 2500 = 20 s)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    with warnings.catch_warnings():  # brevitas warns about optional CUDA kernels on import
        warnings.simplefilter("ignore")
        from bpgan.export.pipeline import export_run  # heavy imports (torch, onnx, tvm) after parsing
    from bpgan.firmware_ref.bounds import AccumulatorOverflow
    from bpgan.firmware_ref.program import ProgramError

    from bpgan.export.tvm.tune import parse_size

    if args.tune < 0:
        print("bpgan-export: error: --tune N needs N >= 0", file=sys.stderr)
        return 2
    try:
        report = export_run(args.run_dir, args.target, args.out, args.schedule,
                            {"max_pixels": args.max_pixels, "max_frames": args.max_frames,
                             "max_width": args.max_width}, args.isa, args.tune, parse_size(args.tune_size),
                            log=lambda line: print(f"bpgan-export: {line}", flush=True))
    except (AccumulatorOverflow, ProgramError, ValueError, RuntimeError) as e:
        print(f"bpgan-export: error: {e}", file=sys.stderr)
        return 2
    for line in report.lines():
        print(f"bpgan-export: {line}")
    return 0


def entry():
    sys.exit(main())


if __name__ == "__main__":
    entry()
