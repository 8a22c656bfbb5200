"""The int32 overflow proof: the worst-case intermediate of every op, for any input in its dtype's range.

Conv, output channel o: acc = b[o] + sum w * x over the taps that reach one output (at most all
taps; padding adds zeros, inside every input range). So, over x in [xlo, xhi]:
  hi[o] = b[o] + sum max(w * xlo, w * xhi),   lo[o] = b[o] + sum min(w * xlo, w * xhi)
bound every accumulator exactly-or-above. Requantizing shifts left by `left` and adds `rnd`
(rounding.shift_terms), so we need  -2**31 <= lo << left  and  (hi << left) + rnd < 2**31.
abs_bound[o] = sum |w| * max(|xlo|, |xhi|) bounds every partial sum in any summation order:
the reference decoder uses it to pick float32 (< 2**24) or float64 (< 2**53) BLAS exactly.
Each op's bound function lives beside its kernel (ops/); prove_no_overflow asks the registry.
"""
import numpy as np

from .formats import DTYPE_RANGE, INT32_MAX, INT32_MIN, ProgramError
from .rounding import shift_terms


class AccumulatorOverflow(ProgramError):
    """Some input in range can overflow a layer's int32 arithmetic; the message names the layer."""


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


def requantized_range(lo, hi, shift):
    """Worst [bottom, top] of ((acc << left) + rnd) for acc in [lo, hi] (before the right shift)."""
    left, rnd, _ = shift_terms(shift)
    lo, hi = np.asarray(lo, dtype=object), np.asarray(hi, dtype=object)   # Python ints: no int64 wrap
    scale = np.vectorize(lambda v: 1 << int(v), otypes=[object])(left)
    return lo * scale, hi * scale + rnd.astype(object)


def check_int32(name: str, bottom, top, what: str) -> int:
    """Raise AccumulatorOverflow unless every [bottom, top] lies in int32; -> the worst magnitude."""
    bottom, top = np.atleast_1d(bottom), np.atleast_1d(top)
    bad = np.flatnonzero((top > INT32_MAX) | (bottom < INT32_MIN))
    if bad.size:
        o = int(bad[0])
        where = f" (output channel {o})" if top.size > 1 else ""
        raise AccumulatorOverflow(f"layer {name!r}: int32 arithmetic can overflow{where}: worst case "
                                  f"[{int(bottom[o])}, {int(top[o])}] for {what}; refusing the program")
    return int(max(max(top), -min(bottom)))


def prove_no_overflow(prog) -> dict:
    """Check every op that does arithmetic; -> {layer: worst |intermediate|}. Raises AccumulatorOverflow."""
    from .ops import REGISTRY

    report = {}
    for op in prog.ops:
        bound = REGISTRY[op.kind].bound
        if bound is not None:  # layout ops and clips only move or narrow values
            report[op.name] = bound(prog, op)
    return report
