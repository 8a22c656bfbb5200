"""The machine's int8 VNNI peak, measured with the same tensor intrinsic the decoder kernels use.

python bench/bench_kernels.py [--threads 2]
Each thread keeps 24 int32x16 accumulators in registers and feeds them vpdpbusd from L1-resident
data (24 x 128 x 4 activation bytes, 128 x 16 x 4 weight bytes), 512 passes per call: the
throughput ceiling of this code shape. Prints GMAC/s (1 MAC = one u8 x s8 product added).
"""
import argparse
import time

import numpy as np
import tvm
from tvm import te
from tvm.s_tir import Schedule

from bpgan.export.tvm_lower import target_of
from bpgan.export.tvm_vnni import OC16_INTRIN, has_vnni

ACCS, DEPTH, PASSES = 24, 128, 512


def peak_func(threads):
    a = te.placeholder((ACCS, DEPTH, 4), "uint8", "a")
    b = te.placeholder((DEPTH, 16, 4), "int8", "b")
    rep, r, ci = te.reduce_axis((0, PASSES), "rep"), te.reduce_axis((0, DEPTH), "r"), te.reduce_axis((0, 4), "ci")
    c = te.compute((threads, ACCS, 16), lambda p, j, o: te.sum(
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
    sch.tensorize(o, OC16_INTRIN)
    sch.unroll(j)
    sch.set_scope(init, 0, "local")
    return sch.mod["main"]


def vnni_peak_gmacs(threads=2, repeat=20) -> float:
    tgt = target_of("llvm")
    if not has_vnni(tgt):
        raise RuntimeError("this CPU has no AVX512-VNNI")
    f = tvm.compile(tvm.IRModule({"main": peak_func(threads)}), target=tgt)["main"]
    dev, rng = tvm.cpu(), np.random.default_rng(0)
    args = [tvm.runtime.tensor(rng.integers(0, 256, (ACCS, DEPTH, 4)).astype(np.uint8), dev),
            tvm.runtime.tensor(rng.integers(-127, 128, (DEPTH, 16, 4)).astype(np.int8), dev),
            tvm.runtime.tensor(np.zeros((threads, ACCS, 16), np.int32), dev)]
    f(*args)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f(*args)
        times.append(time.perf_counter() - t)
    macs = threads * ACCS * 16 * PASSES * DEPTH * 4
    return macs / float(np.median(times)) / 1e9


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    print(f"VNNI peak ({args.threads} threads, median of 20): {vnni_peak_gmacs(args.threads):.0f} GMAC/s")


if __name__ == "__main__":
    main()
