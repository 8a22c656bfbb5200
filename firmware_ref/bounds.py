"""The int32 overflow proof: worst-case accumulator of every conv for any input in its dtype's range.

For output channel o, acc = b[o] + sum w * x over the taps that reach one output (at most all taps,
and padding adds zeros, which lie inside every input range). So, over x in [xlo, xhi]:
  hi[o] = b[o] + sum max(w * xlo, w * xhi),   lo[o] = b[o] + sum min(w * xlo, w * xhi)
bound every accumulator exactly-or-above; the requantize step adds the rounding constant 2**(k-1)
(or shifts left by -k), so we need  -2**31 <= lo * 2**left  and  hi * 2**left + round < 2**31.
abs_bound[o] = sum |w| * max(|xlo|, |xhi|) bounds every partial sum in any summation order:
the reference decoder uses it to pick float32 (< 2**24) or float64 (< 2**53) BLAS exactly.
"""
import numpy as np

from .program import CONV_KINDS, DTYPE_RANGE, Program

INT32_MIN, INT32_MAX = -2 ** 31, 2 ** 31 - 1


class AccumulatorOverflow(ValueError):
    """Some input in range can overflow a layer's int32 accumulator; the message names the layer."""


def conv_bounds(weight: np.ndarray, bias: np.ndarray, in_dtype: str, transpose: bool):
    """-> (lo[o], hi[o], abs_bound[o]) as Python-int-exact int64 arrays over output channels."""
    xlo, xhi = DTYPE_RANGE[in_dtype]
    w = weight.astype(np.int64)
    if transpose:  # IO.. -> OI..
        w = np.swapaxes(w, 0, 1)
    w = w.reshape(w.shape[0], -1)
    pos, neg = np.where(w > 0, w, 0).sum(1), np.where(w < 0, w, 0).sum(1)
    b = bias.astype(np.int64)
    hi = b + pos * xhi + neg * xlo
    lo = b + pos * xlo + neg * xhi
    abs_bound = np.abs(w).sum(1) * max(abs(xlo), abs(xhi))
    return lo, hi, abs_bound


def prove_no_overflow(prog: Program) -> dict:
    """Check every conv of prog; -> {layer: worst |acc| after requantize's first step}. Raises AccumulatorOverflow."""
    report = {}
    for op in prog.ops:
        if op.kind not in CONV_KINDS:
            continue  # add/clip/reshapes work on at most 9-bit values shifted by < 8: far below 2**31
        lo, hi, _ = conv_bounds(prog.arrays[op.params["weight"]], prog.arrays[op.params["bias"]],
                                prog.fmt(op.inputs[0])[0], op.kind.startswith("conv_transpose"))
        k = np.asarray(op.attrs["shift"], dtype=np.int64)
        left = np.where(k < 0, -k, 0)
        rnd = np.where(k > 0, np.left_shift(1, np.maximum(k - 1, 0)), 0)
        top = hi * (2 ** left) + rnd
        bottom = lo * (2 ** left)
        bad = np.flatnonzero((top > INT32_MAX) | (bottom < INT32_MIN))
        if bad.size:
            o = int(bad[0])
            raise AccumulatorOverflow(
                f"layer {op.name!r}: int32 accumulator can overflow (output channel {o}: worst case "
                f"[{int(bottom[o])}, {int(top[o])}] for inputs in the {prog.fmt(op.inputs[0])[0]} range); "
                f"refusing to export")
        report[op.name] = int(max(top.max(), -bottom.min()))
    return report
