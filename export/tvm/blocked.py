"""Scheduled lowering: convs as channel-blocked kernels of one Isa (tvm.isa: VNNI, AVX2, generic) in the Relax graph.

Tensors between scheduled kernels stay in NCHW16c; the layout changes only at the graph's input and
output, or in front of an op that has no blocked kernel (pixel shuffle, upsample, concat, clip, argmax_unpool take
the plain lowering of tvm.lower in NCHW). 1-D programs (NCW) run the same kernels as 2-D convs of
height 1: activations (1, CB, 1, W, 16), conv1d / conv_transpose1d weights O I 1 K / I O 1 K.
Each kernel is a PrimFunc emitted with emit_te, then replaced by its hand schedule and marked opaque, so Relax fusion leaves it alone and
`tvm.compile` still yields one library.
"""
from dataclasses import replace

from tvm import te, tirx
from tvm import relax
from tvm.s_tir import Schedule

from bpgan.firmware_ref.program import Op, Program
from bpgan.firmware_ref.rounding import shift_terms

from . import kernels as K
from .isa import Isa
from .schedule import schedule_conv, tiles_for

OPAQUE = {"tir.is_scheduled": True, "op_pattern": 8}
FEW_CHANNELS = 8   # convs with at most this many outputs vectorize over pixels instead of channels


def to_blocked_te(x):
    """NCHW -> NCHW16c, NCW -> NC1W16c; channels past C are zero."""
    c, (h, w) = x.shape[1], ((1,) + tuple(x.shape[2:]))[-2:]
    cb = (c + K.LANES - 1) // K.LANES

    def f(n, b, y, xx, l):
        ch = tirx.min(b * K.LANES + l, c - 1)
        v = x[n, ch, xx] if len(x.shape) == 3 else x[n, ch, y, xx]
        return tirx.if_then_else(b * K.LANES + l < c, v, tirx.const(0, x.dtype))
    return te.compute((1, cb, h, w, K.LANES), f, name="blocked")


def to_nchw_te(xb, channels):
    _, _, h, w, _ = xb.shape
    return te.compute((1, channels, h, w), lambda n, c, y, xx: xb[n, c // K.LANES, y, xx, c % K.LANES], name="nchw")


def to_ncw_te(xb, channels):
    """NC1W16c -> NCW."""
    w = xb.shape[3]
    return te.compute((1, channels, w), lambda n, c, xx: xb[n, c // K.LANES, 0, xx, c % K.LANES], name="nchw")


def as_2d(op: Op, prog: Program):
    """A conv1d / conv_transpose1d as the conv2d / conv_transpose2d of height 1 -> (op, program view)."""
    if not op.kind.endswith("1d"):
        return op, prog
    a = op.attrs
    attrs = dict(a, stride=[1, a["stride"][0]], padding=[0, a["padding"][0], 0, a["padding"][1]])
    if "output_padding" in a:
        attrs["output_padding"] = [0, a["output_padding"][0]]
    wkey = op.params["weight"]
    w = prog.arrays[wkey]
    view = replace(prog, arrays={**prog.arrays, wkey: w.reshape(w.shape[0], w.shape[1], 1, w.shape[2])})
    return replace(op, kind=op.kind[:-2] + "2d", attrs=attrs), view


def plan_conv(op: Op, prog: Program, isa: Isa):
    """-> (plan, consts) of the blocked kernel that runs this conv (1-D ones as height 1), or None where the plain
    lowering takes it (other kinds, 16/32-bit inputs, a phase conv whose offset does not fit)."""
    op, prog = as_2d(op, prog)
    if op.kind not in ("conv2d", "conv_transpose2d") or prog.fmt(op.inputs[0])[0] not in ("int8", "uint8"):
        return None  # the packed kernels read 8-bit inputs
    o = prog.arrays[op.params["weight"]].shape[0 if op.kind == "conv2d" else 1]
    if op.kind == "conv2d" and o <= FEW_CHANNELS and tuple(op.attrs["stride"]) == (1, 1):
        plan = K.plan_pixel_conv(op, prog, isa)
        return plan, [plan.wq, plan.bias, plan.req.table(o)]
    plan = K.plan_phase_conv(op, prog, isa)
    if plan is None or not K.fits_offset(plan):
        return None
    return plan, [plan.wp, plan.bias, plan.req.table(plan.bias.shape[-1])]


def add_te(xa, xb, attrs, dtype):
    """y = clip(rshift((a << la) + (b << lb), k), lo, hi) on blocked tensors (firmware_ref add)."""
    la, lb = attrs["align"]
    left, rnd, right = (int(t) for t in shift_terms(attrs["shift"]))
    lo, hi = attrs["clip"]

    def f(*i):
        v = (xa(*i).astype("int32") << la) + (xb(*i).astype("int32") << lb)
        if left:
            v = v << left
        if right:
            v = (v + rnd) >> right
        return tirx.Cast(dtype, tirx.max(tirx.min(v, hi), lo))
    return te.compute(xa.shape, f, name="add")


def schedule_elementwise(func):
    """Each stage: parallel over its leading loops, the 16-lane innermost loop vectorized."""
    sch = Schedule(func)
    for block in sch.get_child_blocks(sch.get_sblock("root")):
        loops = sch.get_loops(block)
        sch.parallel(sch.fuse(*loops[:3]))
        if len(loops) == 5:
            sch.vectorize(loops[-1])
    return sch.mod["main"]


class BlockedLowering:
    """Wraps the plain _Lowering: convs and adds blocked and scheduled, everything else plain."""

    def __init__(self, prog: Program, bb: relax.BlockBuilder, plain, isa: Isa, dims: int = 2, tiles=None):
        self.prog, self.bb, self.plain, self.isa, self.dims = prog, bb, plain, isa, dims
        self.tiles = tiles or {}   # op name -> Tiles measured by tvm.tune (else the hand schedule's choice)
        self.nchw, self.blocked = {}, {}
        self.schedules = {}   # PrimFunc name -> function(PrimFunc) -> scheduled PrimFunc

    def _emit_te(self, fn, args, schedule, hint):
        name = f"{hint}_{len(self.schedules)}"
        self.schedules[name] = schedule
        return self.bb.emit_te(fn, *args, primfunc_name_hint=name)

    def get_nchw(self, name):
        if name not in self.nchw:
            c = self.prog.tensors[name]["channels"]
            conv = to_nchw_te if self.dims == 2 else to_ncw_te
            self.nchw[name] = self._emit_te(lambda x: conv(x, c), [self.blocked[name]],
                                            schedule_elementwise, "to_nchw")
        return self.nchw[name]

    def get_blocked(self, name):
        if name not in self.blocked:
            x = self.get_nchw(name)
            if not isinstance(x.ty.shape, relax.ShapeExpr):  # e.g. after repeat: give it a symbolic shape
                c = self.prog.tensors[name]["channels"]
                hw = [tirx.Var(v, "int64") for v in "hw"[2 - self.dims:]]
                x = self.bb.match_cast(x, relax.TensorType([1, c, *hw], x.ty.dtype))
            self.blocked[name] = self._emit_te(to_blocked_te, [x], schedule_elementwise, "to_nchw16c")
        return self.blocked[name]

    def _fresh_shape(self, x):
        """Rebind H, W to new variables: the schedule's bound proofs fail on sizes like 2*h - 1 + 1.

        1-D programs keep H = 1 a constant (the schedules parallelize over pixel tiles then)."""
        _, cb, h, _, lanes = x.ty.shape.values
        h, w = (h if self.dims == 1 else tirx.Var("h", "int64")), tirx.Var("w", "int64")
        return self.bb.match_cast(x, relax.TensorType([1, cb, h, w, lanes], x.ty.dtype))

    def conv(self, op):
        planned = plan_conv(op, self.prog, self.isa)
        if planned is None:
            return None  # the plain lowering takes the rest
        (plan, consts), tiles = planned, self.tiles.get(op.name) or tiles_for(planned[0])

        def build(x, *cs):  # the te placeholders come from emit_te; scheduling happens after bb.get()
            fn = K.phase_conv_te if isinstance(plan, K.PhaseConv) else K.pixel_conv_te
            return list(fn(x, *cs, plan, tiles.tile_x))  # [padded copy, output]
        x = self.get_blocked(op.inputs[0])
        cs = [relax.const(c) for c in consts]
        y = self._emit_te(build, [self._fresh_shape(x)] + cs, lambda f: schedule_conv(f, plan, tiles),
                          op.name.replace(".", "_"))
        y = self.bb.emit(relax.TupleGetItem(y, 1))
        # back to shapes in the graph's own variables, so concat/add see equal sizes as equal
        shape = build(te.placeholder(x.ty.shape.values, x.ty.dtype), *[te.placeholder(c.shape, str(c.dtype))
                                                                       for c in consts])[1].shape
        y = self.bb.match_cast(y, relax.TensorType(list(shape), y.ty.dtype))
        if isinstance(plan, K.PixelConv):
            if self.dims == 1:  # (1, O, 1, W) -> NCW
                _, o, _, wo = y.ty.shape.values
                y = self.bb.emit(relax.op.reshape(y, (1, o, wo)))
            self.nchw[op.output] = y
        else:
            _, ob, hq, ph, wq, pw, lanes = y.ty.shape.values
            self.blocked[op.output] = self.bb.emit(relax.op.reshape(y, (1, ob, hq * ph, wq * pw, lanes)))
        return True

    def add(self, op):
        a, b = op.inputs
        if a not in self.blocked and b not in self.blocked:
            return None
        dtype = self.prog.fmt(op.output)[0]
        self.blocked[op.output] = self._emit_te(lambda x, y: add_te(x, y, op.attrs, dtype),
                                                [self.get_blocked(a), self.get_blocked(b)], schedule_elementwise, "add")
        return True

    def env(self):
        return _NchwEnv(self)

    def emit(self, op, env):
        """Emit op; -> its output in NCHW only when the plain lowering made it (else lazily converted)."""
        done = self.conv(op) if op.kind.startswith("conv") else self.add(op) if op.kind == "add" else None
        if done is None:
            self.nchw[op.output] = self.plain.emit(op, env)
        return None

    def finish(self, mod):
        """Replace each emitted PrimFunc by its scheduled version."""
        for gv in list(mod.get_global_vars()):
            if gv.name_hint in self.schedules:
                mod[gv] = self.schedules[gv.name_hint](mod[gv]).with_attrs(OPAQUE)
        return mod


class _NchwEnv:
    """env[name] in NCHW for the plain lowering and the graph output: blocked tensors convert on demand."""

    def __init__(self, low):
        self.low = low

    def __getitem__(self, name):
        return self.low.get_nchw(name)

    def __setitem__(self, name, value):
        pass  # BlockedLowering.emit already recorded the output in its own layout
