"""One 768x512 bitstream through every decoder engine, one thread each: reference, TVM, C99.

python bench/bench_engines.py [RUN] [--repeat 5]
RUN (default: a copy of zoo/bpgan-image-light in runs/bench-engines) gets its TVM library and its C99
decoder exported first. The stream codes random symbols drawn from the prior. Prints the median ms of
each engine (the C99 one as a whole process, file I/O included) and, where valgrind exists, the C99
decoder's instructions per output pixel (callgrind: an exact count, unlike emulated time).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TVM_NUM_THREADS", "1")
import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402

from bpgan.export.pipeline import export_run  # noqa: E402
from bpgan.firmware_ref.bitstream import Header  # noqa: E402
from bpgan.firmware_ref.bitstream_decode import decode_bitstream, engine_for  # noqa: E402
from bpgan.firmware_ref.program import load_program  # noqa: E402
from bpgan.toolkit.codec.bitstream import write_bitstream  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def stream(prog, h=512, w=768) -> bytes:
    p, s = prog.prior(), int(prog.meta["config"]["downsample"])
    rng = np.random.default_rng(0)
    shape = (p.shape[0], h // s, w // s)
    sym = np.stack([rng.choice(p.shape[1], size=shape[1:], p=row / row.sum()) for row in p])
    return write_bitstream(Header("image", prog.model_hash(), s, (h, w), (0, 0), shape), sym, p)


def median_ms(fn, repeat: int) -> float:
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return 1e3 * sorted(ts)[repeat // 2]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", nargs="?", default=None)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    run = Path(args.run) if args.run else REPO / "runs" / "bench-engines"
    if args.run is None and not run.exists():
        shutil.copytree(REPO / "zoo" / "bpgan-image-light", run)
    if not (run / "export" / "decoder-llvm.so").is_file():
        export_run(run, "llvm")
    c99 = export_run(run, "c99", out_dir=Path(tempfile.mkdtemp(prefix="bench-engines-"))).library / "bpgan_decode"
    prog = load_program(run / "export")
    data = stream(prog)
    src = Path(tempfile.mkdtemp(prefix="bench-engines-")) / "in.bpg"
    src.write_bytes(data)
    print(f"machine: {describe()}")
    print(f"model: {run}, 768x512 stream of {len(data)} bytes, one thread, median of {args.repeat}")
    with threadpool_limits(1):
        ref = median_ms(lambda: decode_bitstream(prog, data, "ref"), args.repeat)
    tvm_engine = engine_for(prog, "tvm")
    tvm = median_ms(lambda: decode_bitstream(prog, data, tvm_engine), args.repeat)
    c = median_ms(lambda: subprocess.run([str(c99), str(src), str(src.with_suffix(".ppm"))], check=True), args.repeat)
    for name, ms in (("reference decoder (NumPy)", ref), ("TVM integer (scheduled)", tvm), ("C99 decoder (process)", c)):
        print(f"{name:28s} {ms:9.1f} ms  {ms / tvm:6.1f}x TVM")
    if shutil.which("valgrind"):
        out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", str(c99), str(src),
                              str(src.with_suffix(".ppm"))], capture_output=True, text=True).stderr
        refs = int(re.search(r"Collected : (\d+)", out).group(1))
        print(f"C99 decoder: {refs:,} instructions (callgrind), {refs / (512 * 768):,.0f} per output pixel")
    return 0


if __name__ == "__main__":
    sys.exit(main())
