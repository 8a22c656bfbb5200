"""Channel-blocked integer conv kernels as TE computes; weights packed once, at export.

Activations between scheduled kernels live in NCHW16c: (1, ceil(C/16), H, W, 16); channels past C
hold don't-care values that meet zero weights. Two kernels:

PhaseConv (conv2d, and conv_transpose2d whose output is exactly stride x input):
  a transposed conv with kernel k = s*T is s*s small convs ("phases") on the input, each with T x T
  taps and no multiplies by inserted zeros; output pixel s*m + r comes from phase r. A plain conv
  is the one-phase case with an input stride. Output channels in lanes of 16 (VNNI: 16 x int32).
    acc[ob, m, rh, xm, rw, o] = sum_{a,b,cg,ci} xp[cg//(16/g), m*S+off(rh)+a, xm*S+off(rw)+b, cg%(16/g)*g+ci]
                                                * wp[rh, rw, ob, a, b, cg, o, ci]     (g: the Isa's group)
  (1, OB, Hq, Ph, Wq, Pw, 16) is byte for byte (1, OB, Hq*Ph, Wq*Pw, 16): phases interleave for free.

PixelConv (stride-1 conv2d with few output channels, e.g. RGB): pixels in lanes of 16, the input
  repacked to NCHW{group}c so 16 pixels x group channels are contiguous, weights broadcast.

The group (4 for VNNI, 2 for AVX2) and the operand dtypes come from the plan's Isa (tvm.isa):
everything else, the 16 lanes included, is one structure for every ISA.

Each kernel pads its input in a first stage (the copy also does any layout change); the padded
copy is a second output, so the Relax VM plans and reuses its memory instead of the kernel
allocating megabytes per call. When the input's signedness differs from the activation operand's, the
padding copy offsets it: for uint8 operands (VNNI vpdpbusd's first source, usdot's) an int8 input
becomes x + 128 (pad value 128 = zero); for int8 operands (sdot) a uint8 input becomes x - 128 (pad
value -128). The bias absorbs -offset * sum(w) of each phase: exact in int32 when 255 * sum|w| +
|bias'| < 2**31, which `fits_offset` checks. int16 operands (AVX2) hold either as they are: no offset.
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np
from tvm import te, tirx

from bpgan.firmware_ref.program import Op, Program
from bpgan.firmware_ref.rounding import shift_terms

from .isa import Isa

LANES = 16  # int32 lanes per accumulator (one zmm, two ymm); the products per lane are the Isa's group


def ceil_to(v, m):
    return (v + m - 1) // m * m


@dataclass
class Requant:
    """y = clip((((acc + bias) << left) + rnd) >> right), per output channel: firmware_ref's rounding_shift."""
    left: np.ndarray
    rnd: np.ndarray
    right: np.ndarray
    clip: tuple
    dtype: str

    @classmethod
    def of(cls, op: Op, prog: Program, channels: int):
        k = np.broadcast_to(np.asarray(op.attrs["shift"], np.int64), (channels,))
        left, rnd, right = shift_terms(k)
        return cls(left, rnd, right, tuple(int(c) for c in op.attrs["clip"]), prog.fmt(op.output)[0])

    def fold_rnd(self) -> Optional[np.ndarray]:
        """Without left shifts the rounding constant joins the bias: one add less per output."""
        return None if self.left.any() else self.rnd

    def table(self, lanes_total: int) -> np.ndarray:
        """(3, lanes_total) int32 [left, rnd, right], zero past the real channels."""
        t = np.zeros((3, lanes_total), np.int32)
        t[:, :len(self.left)] = np.stack([self.left, self.rnd, self.right])
        return t

    def apply(self, v, tab, lane):
        """v: acc + bias (int32 expr); tab: the (3, N) te tensor of table(); lane: channel index expr."""
        if self.left.any():
            v = (v << tab[0, lane]) + tab[1, lane]
        if self.right.any():
            v = v >> (tirx.const(int(self.right[0]), "int32") if np.all(self.right == self.right[0])
                      else tab[2, lane])
        return tirx.Cast(self.dtype, tirx.max(tirx.min(v, self.clip[1]), self.clip[0]))


@dataclass
class PhaseConv:
    """Everything packed at export for one conv / transposed conv in phase form."""
    phases: tuple      # (Ph, Pw): 1 for conv, the stride for a transposed conv
    stride: tuple      # input stride per output step (conv stride, 1 for transposed)
    taps: tuple        # (KH', KW') per phase
    offsets: tuple     # (offh[Ph], offw[Pw]) input row/col offset of each phase in the padded input
    pad_before: tuple  # (top, left) zero rows/cols before the input
    extent: tuple      # (dh, dw): output rows = (H + dh) // S per phase (conv), H (transposed)
    wp: np.ndarray     # isa.w_dtype (Ph, Pw, OB, KH', KW', CG, 16, group)
    bias: np.ndarray   # int32 (Ph, Pw, OB*16), includes the offset correction and folded rounding
    req: Requant
    input_offset: int    # +128: int8 input on uint8 operands; -128: uint8 input on int8 operands; else 0
    out_channels: int
    isa: Isa


def _phase_taps(k, s, p, r):
    """Kernel taps of output phase r of a transposed conv, in input order: (offset q_r, [kernel index])."""
    t = k // s
    i0, q = (r + p) % s, (r + p) // s
    return q, [i0 + s * (t - 1 - a) for a in range(t)]


def _input_offset(prog: Program, op: Op, isa: Isa) -> int:
    """What the padding copy adds to the input so that it fits the activation operand's dtype."""
    have = prog.fmt(op.inputs[0])[0]
    return {("int8", "uint8"): 128, ("uint8", "int8"): -128}.get((have, isa.act_dtype), 0)


def plan_phase_conv(op: Op, prog: Program, isa: Isa) -> Optional[PhaseConv]:
    """Pack one conv2d / conv_transpose2d; None when it has no phase form (the plain lowering takes it)."""
    w, b = prog.arrays[op.params["weight"]], prog.arrays[op.params["bias"]].astype(np.int64)
    a = op.attrs
    pt, pl, pb, pr = a["padding"]
    if op.kind == "conv2d":
        o, c, kh, kw = w.shape
        w_io = np.transpose(w, (1, 0, 2, 3))[None, None]        # (1, 1, C, O, KH, KW)
        phases, stride, taps = (1, 1), tuple(a["stride"]), (kh, kw)
        offsets, pad_before = ((0,), (0,)), (pt, pl)
        extent = (pt + pb - kh, pl + pr - kw)
    else:
        c, o, kh, kw = w.shape
        (sh, sw), (oph, opw) = a["stride"], a["output_padding"]
        if kh % sh or kw % sw or kh - pt - pb + oph != sh or kw - pl - pr + opw != sw:
            return None
        rows = [_phase_taps(kh, sh, pt, r) for r in range(sh)]
        cols = [_phase_taps(kw, sw, pl, r) for r in range(sw)]
        th, tw = kh // sh, kw // sw
        top, left = th - 1 - rows[0][0], tw - 1 - cols[0][0]
        if top < 0 or left < 0:
            return None
        w_io = np.stack([np.stack([w[:, :, ri][:, :, :, ci] for _, ci in cols]) for _, ri in rows])
        phases, stride, taps = (sh, sw), (1, 1), (th, tw)
        offsets = (tuple(q - rows[0][0] for q, _ in rows), tuple(q - cols[0][0] for q, _ in cols))
        pad_before, extent = (top, left), None
    ph, pw = phases
    g = isa.group
    ob, cg = -(-o // LANES), -(-c // g)
    full = np.zeros((ph, pw, cg * g, ob * LANES) + taps, np.int64)
    full[:, :, :c, :o] = w_io.reshape(ph, pw, c, o, *taps)
    wp = full.reshape(ph, pw, cg, g, ob, LANES, *taps).transpose(0, 1, 4, 6, 7, 2, 5, 3)
    offset = _input_offset(prog, op, isa)
    req = Requant.of(op, prog, o)
    bias = np.zeros((ph, pw, ob * LANES), np.int64)
    bias[:, :, :o] = b
    bias -= offset * full.sum(axis=(2, 4, 5))   # (x + offset) * w summed: take offset * sum(w) of the phase's taps back
    if req.fold_rnd() is not None:
        bias[:, :, :o] += req.rnd
    return PhaseConv(phases, stride, taps, offsets, pad_before, extent, wp.astype(isa.w_dtype),
                     bias.astype(np.int32) if np.abs(bias).max() < 2 ** 31 else None, req, offset, o, isa)


def fits_offset(plan: PhaseConv) -> bool:
    """int32 headroom for the offset trick: every partial sum of (x + offset) * w plus bias fits."""
    if plan.bias is None:
        return False
    worst = 255 * np.abs(plan.wp.astype(np.int64)).sum(axis=(3, 4, 5, 7)).max() + np.abs(plan.bias).max()
    return not plan.input_offset or worst < 2 ** 31 - 1


@dataclass
class PixelConv:
    """A stride-1 conv2d with few output channels, vectorized over 16 pixels."""
    taps: tuple
    padding: tuple     # (top, left, bottom, right)
    wq: np.ndarray     # isa.w_dtype (O, KH, KW, CG, group)
    bias: np.ndarray   # int32 (O,)
    req: Requant
    input_offset: int
    out_channels: int
    isa: Isa


def plan_pixel_conv(op: Op, prog: Program, isa: Isa) -> PixelConv:
    w, b = prog.arrays[op.params["weight"]], prog.arrays[op.params["bias"]].astype(np.int64)
    o, c, kh, kw = w.shape
    full = np.zeros((o, -(-c // isa.group) * isa.group, kh, kw), np.int64)
    full[:, :c] = w
    wq = full.reshape(o, -1, isa.group, kh, kw).transpose(0, 3, 4, 1, 2)
    offset = _input_offset(prog, op, isa)
    req = Requant.of(op, prog, o)
    bias = b - offset * full.sum(axis=(1, 2, 3))
    if req.fold_rnd() is not None:
        bias = bias + req.rnd
    return PixelConv((kh, kw), tuple(op.attrs["padding"]), wq.astype(isa.w_dtype), bias.astype(np.int32), req,
                     offset, o, isa)


def _offset(table, r):
    """The padded-input offset of phase r as an index expression (a linear table needs no select)."""
    if len(table) == 1:
        return table[0]
    step = table[1] - table[0]
    if all(t == table[0] + i * step for i, t in enumerate(table)):
        return table[0] + r * step
    expr = table[-1]
    for i in reversed(range(len(table) - 1)):
        expr = tirx.if_then_else(r == i, table[i], expr)
    return expr


def _pad_stage(x, shape, top, left, offset, channel, dtype):
    """Zero-padded copy of blocked x + offset as dtype in the kernel's shape; channel(g, l) maps lanes."""
    _, _, h, w, _ = x.shape
    zero = tirx.const(offset, dtype)

    def f(n, g, y, xx, lane):
        yy, xs = y - top, xx - left
        cb, cl = channel(g, lane)
        v = x[n, cb, yy, xs, cl]
        v = (v.astype("int32") + offset).astype(dtype) if offset else v.astype(dtype)
        return tirx.if_then_else(tirx.all(yy >= 0, yy < h, xs >= 0, xs < w), v, zero)
    return te.compute(shape, f, name="pad")


def phase_conv_te(x, wp, bias, tab, plan: PhaseConv, tile_x: int):
    """x (1, CB, H, W, 16) -> (padded input, (1, OB, Hq, Ph, Wq, Pw, 16) of the output dtype)."""
    _, cb, h, w, _ = x.shape
    (ph, pw), (sh, sw), (kh, kw), (offh, offw) = plan.phases, plan.stride, plan.taps, plan.offsets
    ob, cg, g = wp.shape[2], wp.shape[5], plan.isa.group
    if plan.extent is None:
        hq, wq = h, w
    else:
        hq, wq = (h + plan.extent[0]) // sh + 1, (w + plan.extent[1]) // sw + 1
    wq_r = ceil_to(wq, tile_x)  # whole register tiles: the extra columns read padding, never stored
    hp, wpd = (hq - 1) * sh + max(offh) + kh, (wq_r - 1) * sw + max(offw) + kw
    xp = _pad_stage(x, (1, cb, hp, wpd, LANES), *plan.pad_before, plan.input_offset, lambda c, l: (c, l),
                    plan.isa.act_dtype)
    ra, rb = te.reduce_axis((0, kh), "ra"), te.reduce_axis((0, kw), "rb")
    rc, ri = te.reduce_axis((0, cg), "rc"), te.reduce_axis((0, g), "ri")
    per = LANES // g  # channel groups per 16-lane block
    acc = te.compute(
        (1, ob, hq, ph, wq_r, pw, LANES),
        lambda n, b, m, rh, xm, rw, o: te.sum(
            xp[n, rc // per, m * sh + _offset(offh, rh) + ra, xm * sw + _offset(offw, rw) + rb, rc % per * g + ri]
            .astype("int32") * wp[rh, rw, b, ra, rb, rc, o, ri].astype("int32"), axis=[ra, rb, rc, ri]),
        name="acc")
    return xp, te.compute((1, ob, hq, ph, wq, pw, LANES), lambda n, b, m, rh, xm, rw, o: plan.req.apply(
        acc[n, b, m, rh, xm, rw, o] + bias[rh, rw, b * LANES + o], tab, b * LANES + o), name="out")


def pixel_conv_te(x, wq, bias, tab, plan: PixelConv, tile_x: int):
    """x (1, CB, H, W, 16) -> (padded input, (1, O, Ho, Wo) NCHW of the output dtype)."""
    _, cb, h, w, _ = x.shape
    o, kh, kw, cg, g = wq.shape
    pt, pl, pb, pr = plan.padding
    ho, wo = h + pt + pb - kh + 1, w + pl + pr - kw + 1
    wo_r = ceil_to(wo, LANES * tile_x)
    xp = _pad_stage(x, (1, cg, ho + kh - 1, wo_r + kw - 1, g), pt, pl, plan.input_offset,
                    lambda c, l: ((c * g + l) // LANES, (c * g + l) % LANES), plan.isa.act_dtype)
    ra, rb = te.reduce_axis((0, kh), "ra"), te.reduce_axis((0, kw), "rb")
    rc, ri = te.reduce_axis((0, cg), "rc"), te.reduce_axis((0, g), "ri")
    acc = te.compute((1, o, ho, wo_r), lambda n, c, y, xx: te.sum(
        xp[n, rc, y + ra, xx + rb, ri].astype("int32") * wq[c, ra, rb, rc, ri].astype("int32"),
        axis=[ra, rb, rc, ri]), name="acc")
    return xp, te.compute((1, o, ho, wo), lambda n, c, y, xx: plan.req.apply(acc[n, c, y, xx] + bias[c], tab, c),
                          name="out")
