"""Step 3: integer Program -> TVM Relax graph of integer ops -> tvm.compile -> export_library.

Each op lowers to the same integer steps as its firmware_ref kernel: conv with out_dtype int32,
+ bias, << left, + 2**(k-1), >> k (arithmetic), clip, cast. The spatial size stays symbolic, so
one library decodes any latent size. The overflow proof runs first: a program whose accumulator
could leave int32 is refused before any code is generated.
"""
from pathlib import Path
from typing import Optional

import numpy as np
import tvm
import tvm.tirx  # noqa: F401 - registers tirx for symbolic shapes
from tvm import relax

from bpgan.firmware_ref.bounds import prove_no_overflow
from bpgan.firmware_ref.ops import REGISTRY
from bpgan.firmware_ref.program import Program, ProgramError
from bpgan.firmware_ref.rounding import shift_terms

from .isa import ISAS, check_cpu, llvm_mcpu, pick_isa, write_sidecar

# name -> (Target spec, library file, runs on this machine)
TARGETS = {
    "llvm": ({"kind": "llvm", "num-cores": 2}, "decoder-llvm.so", True),
    "aarch64": ({"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mattr": ["+neon"]}, "decoder-aarch64.tar", False),
    "c": ({"kind": "c"}, "decoder-c.tar", False),
}


def _i32(values, ndim):
    """A per-channel int32 constant shaped (1, C, 1, ...) or a scalar one."""
    v = np.asarray(values, dtype=np.int64)
    if v.ndim and np.all(v == v.flat[0]):
        v = v.flat[0]
    if v.ndim:
        v = v.reshape((1, -1) + (1,) * (ndim - 2))
    return relax.const(np.asarray(v, dtype=np.int32), "int32")


class _Lowering:
    def __init__(self, prog: Program, bb: relax.BlockBuilder):
        self.prog, self.bb = prog, bb

    def requantize(self, acc, shift, clip, dtype, ndim):
        """clip(((acc << left) + rnd) >> right) as dtype: the terms of firmware_ref.rounding.shift_terms."""
        left, rnd, right = shift_terms(shift)
        if np.any(left):
            acc = self.bb.emit(relax.op.left_shift(acc, _i32(left, ndim)))
        if np.any(right):
            acc = self.bb.emit(relax.op.add(acc, _i32(rnd, ndim)))
            acc = self.bb.emit(relax.op.right_shift(acc, _i32(right, ndim)))
        acc = self.bb.emit(relax.op.clip(acc, int(clip[0]), int(clip[1])))
        return self.bb.emit(relax.op.astype(acc, dtype))

    def conv(self, op, x):
        a, p = op.attrs, self.prog
        w, b = p.arrays[op.params["weight"]], p.arrays[op.params["bias"]]
        wc = relax.const(w, "int8")
        if p.fmt(op.inputs[0])[0] not in ("int8", "uint8"):  # int16/int32 inputs: int32 x int32 -> int32
            x, wc = self.bb.emit(relax.op.astype(x, "int32")), relax.const(w.astype(np.int32), "int32")
        if op.kind == "conv2d":
            acc = relax.op.nn.conv2d(x, wc, strides=a["stride"], padding=a["padding"], out_dtype="int32")
        elif op.kind == "conv1d":
            acc = relax.op.nn.conv1d(x, wc, strides=a["stride"], padding=a["padding"], out_dtype="int32")
        elif op.kind == "conv_transpose2d":
            acc = relax.op.nn.conv2d_transpose(x, wc, strides=a["stride"], padding=a["padding"],
                                               output_padding=a["output_padding"], out_dtype="int32")
        else:
            acc = relax.op.nn.conv1d_transpose(x, wc, strides=a["stride"], padding=a["padding"],
                                               output_padding=a["output_padding"], out_dtype="int32")
        ndim = w.ndim
        acc = self.bb.emit(relax.op.add(self.bb.emit(acc), _i32(b, ndim)))
        return self.requantize(acc, a["shift"], a["clip"], p.fmt(op.output)[0], ndim)

    def add(self, op, xa, xb):
        a, ndim = op.attrs, xa.ty.ndim
        terms = []
        for x, la in zip((xa, xb), a["align"]):
            x = self.bb.emit(relax.op.astype(x, "int32"))
            terms.append(self.bb.emit(relax.op.left_shift(x, _i32(la, ndim))) if la else x)
        s = self.bb.emit(relax.op.add(*terms))
        return self.requantize(s, a["shift"], a["clip"], self.prog.fmt(op.output)[0], ndim)

    def pixel_shuffle(self, op, x):
        r = op.attrs["factor"]
        n, c, h, w = x.ty.shape.values
        y = self.bb.emit(relax.op.reshape(x, (n, c // (r * r), r, r, h, w)))
        y = self.bb.emit(relax.op.permute_dims(y, [0, 1, 4, 2, 5, 3]))
        return self.bb.emit(relax.op.reshape(y, (n, c // (r * r), h * r, w * r)))

    def argmax_unpool(self, op, x, logits):
        """Values to the argmax of their k*k logits, zeros elsewhere: the reference's strict > scan written out,
        so ties go to the lowest index on every engine (topi argmax promises no tie order)."""
        k = op.attrs["factor"]
        n, c, h, w = x.ty.shape.values
        # logits in x's own shape variables (a runtime check where the two are not provably equal)
        logits = self.bb.match_cast(logits, relax.TensorType([n, c * k * k, h, w], logits.ty.dtype))
        lg = self.bb.emit(relax.op.reshape(logits, (n, c, k * k, h, w)))
        lg = self.bb.emit(relax.op.astype(lg, "int32"))
        best = self.bb.emit(relax.op.strided_slice(lg, [2], [0], [1]))
        idx = self.bb.emit(relax.op.zeros_like(best, "int32"))
        for j in range(1, k * k):
            v = self.bb.emit(relax.op.strided_slice(lg, [2], [j], [j + 1]))
            take = self.bb.emit(relax.op.greater(v, best))
            best = self.bb.emit(relax.op.where(take, v, best))
            idx = self.bb.emit(relax.op.where(take, relax.const(j, "int32"), idx))
        cells = relax.const(np.arange(k * k, dtype=np.int32).reshape(1, 1, -1, 1, 1), "int32")
        hit = self.bb.emit(relax.op.equal(idx, cells))                                   # (n, c, k*k, h, w)
        x5 = self.bb.emit(relax.op.reshape(x, (n, c, 1, h, w)))
        z = self.bb.emit(relax.op.where(hit, x5, relax.const(0, x.ty.dtype)))
        # z[n, c, i*k+j, h, w] -> y[n, c, h*k+i, w*k+j]: pixel_shuffle's permutation
        z = self.bb.emit(relax.op.reshape(z, (n, c, k, k, h, w)))
        z = self.bb.emit(relax.op.permute_dims(z, [0, 1, 4, 2, 5, 3]))
        return self.bb.emit(relax.op.reshape(z, (n, c, h * k, w * k)))

    def reflect_pad(self, op, x):
        """Per spatial axis: flip(x[1:before+1]) ++ x ++ flip(x[N-1-after:N-1]) = x[r(i - before)], torch's reflect
        padding, with N the symbolic size (slices assumed in bounds: the reference refuses N <= a pad, which
        these slices would not notice)."""
        pad = op.attrs["padding"]
        dims = len(pad) // 2
        if not isinstance(x.ty.shape, relax.ShapeExpr):   # e.g. after repeat: name its sizes
            sizes = [tvm.tirx.Var(f"s{i}", "int64") for i in range(dims)]
            x = self.bb.match_cast(x, relax.TensorType([1, self.prog.tensors[op.inputs[0]]["channels"], *sizes],
                                                       x.ty.dtype))
        for axis in range(dims):
            before, after, ax = pad[axis], pad[dims + axis], 2 + axis
            size = x.ty.shape.values[ax]
            parts = [x]
            if before:
                top = self.bb.emit(relax.op.strided_slice(x, [ax], [1], [before + 1], assume_inbound=True))
                parts.insert(0, self.bb.emit(relax.op.flip(top, ax)))
            if after:
                bottom = self.bb.emit(relax.op.strided_slice(x, [ax], [size - 1 - after], [size - 1],
                                                             assume_inbound=True))
                parts.append(self.bb.emit(relax.op.flip(bottom, ax)))
            if len(parts) > 1:
                x = self.bb.emit(relax.op.concat(parts, axis=ax))
        return x

    def isqrt(self, d):
        """floor(sqrt(d)) of an int64 tensor in [0, 2^63): the float64 root, floored by the cast (it is >= 0), then
        one exact step down (s*s > d) and one up (d - s*s > 2s): firmware_ref.ops.norm.isqrt, where each step's
        proof is. Any float root within 1 of the true one gives the exact floor root."""
        bb, R = self.bb, relax.op
        one, two = relax.const(np.int64(1), "int64"), relax.const(np.int64(2), "int64")
        s = bb.emit(R.astype(bb.emit(R.sqrt(bb.emit(R.astype(d, "float64")))), "int64"))
        s = bb.emit(R.where(bb.emit(R.greater(bb.emit(R.multiply(s, s)), d)), bb.emit(R.subtract(s, one)), s))
        up = bb.emit(R.greater(bb.emit(R.subtract(d, bb.emit(R.multiply(s, s)))), bb.emit(R.multiply(s, two))))
        return bb.emit(R.where(up, bb.emit(R.add(s, one)), s))

    def instance_norm(self, op, x):
        """The reference's integer steps in int64 (ops/norm.py): S, Q over the spatial axes, D, s = max(1, isqrt(D))
        (the float64 root made exact, see isqrt), z = floor((2a + s) / (2s)) clipped to int16; then gamma*z + beta
        in int32, requantized as a conv is."""
        a, p = op.attrs, self.prog
        g, beta = p.arrays[op.params["weight"]], p.arrays[op.params["bias"]]
        ndim, bb, R = x.ty.ndim, self.bb, relax.op
        axes = list(range(2, ndim))

        def i64(v):
            return relax.const(np.int64(v), "int64")

        xi = bb.emit(R.astype(x, "int64"))
        one = bb.emit(R.ones_like(bb.emit(R.strided_slice(xi, [1], [0], [1]))))
        n = bb.emit(R.sum(one, axes, keepdims=True))                           # (1, 1, 1..): the positions
        s_ = bb.emit(R.sum(xi, axes, keepdims=True))
        q = bb.emit(R.sum(bb.emit(R.multiply(xi, xi)), axes, keepdims=True))
        d = bb.emit(R.subtract(bb.emit(R.multiply(n, q)), bb.emit(R.multiply(s_, s_))))
        d = bb.emit(R.add(d, bb.emit(R.right_shift(bb.emit(R.multiply(n, n)), i64(a["eps_shift"])))))
        s = bb.emit(R.maximum(self.isqrt(d), i64(1)))
        num = bb.emit(R.left_shift(bb.emit(R.subtract(bb.emit(R.multiply(n, xi)), s_)), i64(a["z_frac"])))
        num = bb.emit(R.add(bb.emit(R.multiply(num, i64(2))), s))
        z = bb.emit(R.floor_divide(num, bb.emit(R.multiply(s, i64(2)))))
        z = bb.emit(R.astype(bb.emit(R.clip(z, -2 ** 15, 2 ** 15 - 1)), "int32"))
        acc = bb.emit(R.add(bb.emit(R.multiply(z, _i32(g, ndim))), _i32(beta, ndim)))
        return self.requantize(acc, a["shift"], a["clip"], p.fmt(op.output)[0], ndim)

    def log2_abs(self, op, x):
        """The reference's steps in int32 (ops/log2.py): u = |x| + 1, n = sum_k (u >= 2^k), then
        (n << q) + ((u << q) >> n) - (1 << q), clipped."""
        bb, R, q = self.bb, relax.op, op.attrs["frac"]

        def i32(v):
            return relax.const(np.int32(v), "int32")

        u = bb.emit(R.add(bb.emit(R.abs(bb.emit(R.astype(x, "int32")))), i32(1)))
        n = None
        for k in range(1, 17):   # u <= 2^15 + 1 (int8/uint8/int16 inputs): bit lengths up to 16
            ge = bb.emit(R.astype(bb.emit(R.greater_equal(u, i32(1 << k))), "int32"))
            n = ge if n is None else bb.emit(R.add(n, ge))
        y = bb.emit(R.add(bb.emit(R.left_shift(n, i32(q))),
                          bb.emit(R.right_shift(bb.emit(R.left_shift(u, i32(q))), n))))
        y = bb.emit(R.clip(bb.emit(R.subtract(y, i32(1 << q))), *op.attrs["clip"]))
        return bb.emit(R.astype(y, self.prog.fmt(op.output)[0]))

    def clip(self, op, x):
        y = self.bb.emit(relax.op.clip(x, *op.attrs["clip"]))
        return self.bb.emit(relax.op.astype(y, self.prog.fmt(op.output)[0]))

    def upsample_nearest(self, op, x):
        for axis in range(2, x.ty.ndim):
            x = self.bb.emit(relax.op.repeat(x, op.attrs["factor"], axis=axis))
        return x

    def concat(self, op, *xs):
        return self.bb.emit(relax.op.concat(list(xs), axis=op.attrs["axis"]))

    def emit(self, op, env):
        """Lower one op through LOWERINGS (every kind of the firmware_ref registry has one)."""
        if op.kind not in LOWERINGS:
            raise ProgramError(f"op {op.name!r}: kind {op.kind!r} has no TVM lowering")
        return LOWERINGS[op.kind](self, op, *[env[i] for i in op.inputs])


# The TVM engine's lowering of each registry kind (tests check the two key sets are equal).
LOWERINGS = {"conv2d": _Lowering.conv, "conv1d": _Lowering.conv, "conv_transpose2d": _Lowering.conv,
             "conv_transpose1d": _Lowering.conv, "add": _Lowering.add, "clip": _Lowering.clip,
             "pixel_shuffle": _Lowering.pixel_shuffle, "upsample_nearest": _Lowering.upsample_nearest,
             "concat": _Lowering.concat, "argmax_unpool": _Lowering.argmax_unpool,
             "reflect_pad": _Lowering.reflect_pad, "instance_norm": _Lowering.instance_norm,
             "log2_abs": _Lowering.log2_abs}
assert set(LOWERINGS) <= set(REGISTRY), "a TVM lowering for a kind the registry does not define"


def to_relax(prog: Program, spatial_dims: int = 2, isa=None, tiles=None) -> tvm.IRModule:
    """main(inputs...) -> output (a tuple for several outputs), integer ops only; batch 1, spatial dims symbolic.

    isa None: plain Relax ops (default pipeline, untuned). An Isa or its name (tvm.isa.ISAS: vnni,
    avx2, generic): convs (1-D ones as height-1 2-D convs) and adds as scheduled channel-blocked
    kernels (tvm.blocked) built on that ISA's dot-product intrinsic; tiles: {op name: Tiles} from tvm.tune."""
    prove_no_overflow(prog)
    # One set of symbolic sizes for every input, unless the program says its inputs are independent
    # subgraphs of their own sizes (meta "input_sizes": "independent": the lossless model's levels).
    independent = prog.meta.get("input_sizes") == "independent"
    spatial = [[tvm.tirx.Var(f"{v}{i if independent else ''}", "int64") for v in "hw"[:spatial_dims]]
               for i in range(len(prog.inputs) if independent else 1)]
    xs = [relax.Var(name, relax.TensorType([1, prog.tensors[name]["channels"], *spatial[i if independent else 0]],
                                           prog.fmt(name)[0]))
          for i, name in enumerate(prog.inputs)]
    bb = relax.BlockBuilder()
    with bb.function("main", xs):
        with bb.dataflow():
            env, low = dict(zip(prog.inputs, xs)), _Lowering(prog, bb)
            if isa is not None:
                from .blocked import BlockedLowering
                low = BlockedLowering(prog, bb, low, ISAS[isa] if isinstance(isa, str) else isa, spatial_dims, tiles)
                low.nchw.update(env)
                env = low.env()
            for op in prog.ops:
                env[op.output] = low.emit(op, env)
            outs = [env[name] for name in prog.outputs]
            out = bb.emit_output(outs[0] if len(outs) == 1 else relax.Tuple(outs))
        bb.emit_func_output(out)
    mod = bb.get()
    return low.finish(mod) if hasattr(low, "finish") else mod


SCHEDULES = ("auto", "none")


def target_of(target: str, schedule: str = "auto", isa: Optional[str] = None,
              mcpu: Optional[str] = None) -> tvm.target.Target:
    """The TVM target. Scheduled llvm builds for this machine's CPU, or for the CPU an explicit isa or
    mcpu implies (tvm.isa.llvm_mcpu: isa "avx2" -> x86-64-v3, runnable on any AVX2 CPU)."""
    spec = dict(TARGETS[target][0])
    if target == "llvm" and (schedule != "none" or mcpu):
        spec["mcpu"] = llvm_mcpu(isa, mcpu)
    elif mcpu:
        spec["mcpu"] = mcpu
    if target == "aarch64" and isa in ISAS:   # cross builds: the ISA's features go into mattr
        spec["mattr"] = list(spec["mattr"]) + [f"+{f}" for f in ISAS[isa].needs if f"+{f}" not in spec["mattr"]]
    return tvm.target.Target(spec)


def compile_program(prog: Program, target: str, out_dir, schedule: str = "auto", isa: Optional[str] = None,
                    mcpu: Optional[str] = None, tune: int = 0, tune_size=None, log=None,
                    tune_summary: Optional[dict] = None) -> Path:
    """Compile for one of TARGETS and write its library into out_dir; -> the library path.

    schedule "auto": hand-scheduled blocked kernels on isa (vnni | avx2 | generic; None: the best the
    target's features allow, tvm.isa.pick_isa); "none": the plain default pipeline (untuned; for
    benchmarks and as the cross-check). Beside the library, <name>.isa.json records the ISA and the
    CPU flags it needs; TvmDecoder checks them. llvm: tiles measured earlier (<name>.tune.json, tvm.tune) are
    reused; tune N measures up to N tiles for each kernel the database lacks, at tune_size (latent positions),
    printing each through log; tune_summary (a dict) receives what was reused and measured."""
    if target not in TARGETS:
        raise ProgramError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    if schedule not in SCHEDULES:
        raise ProgramError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    _, filename, _ = TARGETS[target]
    tgt = target_of(target, schedule, isa, mcpu)
    chosen = None if schedule == "none" else pick_isa(tgt, isa)
    path = Path(out_dir) / filename
    if tune and (target != "llvm" or chosen is None):
        raise ProgramError("--tune measures kernels on this machine: it needs --target llvm and scheduled kernels")
    tiles = None
    if target == "llvm" and chosen is not None:
        from .tune import tune_path, tuned_tiles
        tiles, summary = tuned_tiles(prog, chosen, tgt, tune_path(path), tune, tune_size, log)
        if tune_summary is not None:
            tune_summary.update(summary)
    mod = to_relax(prog, prog.spatial_dims, chosen, tiles)
    ex = tvm.compile(mod, target=tgt)
    path.parent.mkdir(parents=True, exist_ok=True)
    ex.export_library(str(path))  # .tar: objects/sources only, no cross linker needed here
    write_sidecar(path, chosen, tgt)
    return path


class TvmDecoder:
    """A compiled decoder library loaded into a Relax VM on the CPU."""

    def __init__(self, lib_path):
        check_cpu(lib_path)  # a library built for VNNI on an AVX2-only CPU: one clear error, not SIGILL
        self.dev = tvm.cpu()
        self.vm = relax.VirtualMachine(tvm.runtime.load_module(str(lib_path)), self.dev)

    def __call__(self, x):
        """One input array (or {name: array} in the program's input order) -> output (a list for several)."""
        xs = list(x.values()) if isinstance(x, dict) else [x]
        out = self.vm["main"](*[tvm.runtime.tensor(np.ascontiguousarray(a), self.dev) for a in xs])
        return out.numpy() if hasattr(out, "numpy") else [o.numpy() for o in out]
