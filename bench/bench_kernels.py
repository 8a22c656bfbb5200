"""The machine's exact int8 peaks, measured with the same tensor intrinsics the decoder kernels use.

python bench/bench_kernels.py [--threads 2] [--isa vnni avx2]
Each thread keeps a register tile of 16-lane int32 accumulators (the kernels' budget: 24 zmm for
VNNI, 6 x 2 ymm for AVX2) and feeds them its ISA's dot-product step from L1-resident data
(accumulators x 128 x group activation values, 128 x 16 x group weights), 512 passes per call: the
throughput ceiling of this code shape. VNNI: one vpdpbusd zmm (64 u8 x s8 MACs); AVX2: two vpmaddwd
ymm + two vpaddd (32 int16 x int16 MACs, exact). The AVX2 peak is built for x86-64-v3, so it is
AVX2 code on any CPU that runs it. Prints GMAC/s (1 MAC = one product added).
"""
import argparse
import time

import numpy as np
import tvm
from tvm import te
from tvm.s_tir import Schedule

from bpgan.export.tvm.isa import ISAS, cpu_flags
from bpgan.export.tvm.lower import target_of

DEPTH, PASSES = 128, 512
CPU_FLAG = {"vnni": "avx512_vnni", "avx2": "avx2"}


def peak_func(threads, isa):
    g, accs = isa.group, isa.acc_vectors
    a = te.placeholder((accs, DEPTH, g), isa.act_dtype, "a")
    b = te.placeholder((DEPTH, 16, g), isa.w_dtype, "b")
    rep, r, ci = te.reduce_axis((0, PASSES), "rep"), te.reduce_axis((0, DEPTH), "r"), te.reduce_axis((0, g), "ci")
    c = te.compute((threads, accs, 16), lambda p, j, o: te.sum(
        a[j, r, ci].astype("int32") * b[r, o, ci].astype("int32"), axis=[rep, r, ci]), name="acc")
    sch = Schedule(te.create_prim_func([a, b, c]))
    blk = sch.get_sblock("acc")
    p, j, o, rep_, r_, ci_ = sch.get_loops(blk)
    sch.reorder(p, rep_, r_, j, o, ci_)
    sch.parallel(p)
    out = sch.cache_write(blk, 0, "global")
    sch.reverse_compute_at(out, p)
    init = sch.decompose_reduction(blk, rep_)
    sch.vectorize(sch.get_loops(init)[-1])
    sch.tensorize(o, isa.oc_intrin)
    sch.unroll(j)
    sch.set_scope(init, 0, "local")
    return sch.mod["main"]


def peak_gmacs(isa_name="vnni", threads=2, repeat=20) -> float:
    """GMAC/s of the isa's dot-product step on this CPU; RuntimeError where the CPU lacks it."""
    if CPU_FLAG[isa_name] not in (cpu_flags() or set()):
        raise RuntimeError(f"this CPU has no {CPU_FLAG[isa_name]}")
    isa = ISAS[isa_name]
    f = tvm.compile(tvm.IRModule({"main": peak_func(threads, isa)}), target=target_of("llvm", isa=isa_name))["main"]
    dev, rng = tvm.cpu(), np.random.default_rng(0)
    lo = 0 if isa.act_dtype == "uint8" else -128
    args = [tvm.runtime.tensor(rng.integers(lo, 256 + lo, (isa.acc_vectors, DEPTH, isa.group)).astype(isa.act_dtype),
                               dev),
            tvm.runtime.tensor(rng.integers(-127, 128, (DEPTH, 16, isa.group)).astype(isa.w_dtype), dev),
            tvm.runtime.tensor(np.zeros((threads, isa.acc_vectors, 16), np.int32), dev)]
    f(*args)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f(*args)
        times.append(time.perf_counter() - t)
    macs = threads * isa.acc_vectors * 16 * PASSES * DEPTH * isa.group
    return macs / min(times) / 1e9  # the best call: a ceiling, not a typical time


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--isa", nargs="+", choices=tuple(CPU_FLAG), default=list(CPU_FLAG))
    args = p.parse_args(argv)
    for name in args.isa:
        try:
            print(f"{name.upper()} exact int8 peak ({args.threads} threads, best of 20): "
                  f"{peak_gmacs(name, args.threads):.0f} GMAC/s")
        except RuntimeError as e:
            print(f"{name.upper()} peak: n/a ({e})")


if __name__ == "__main__":
    main()
