"""add and clip: the elementwise integer ops."""
from typing import Sequence

import numpy as np

from ..bounds import check_int32, requantized_range
from ..formats import DTYPE_RANGE, MAX_FRAC_BITS, ProgramError
from ..rounding import rounding_shift
from .registry import Attr, OpSpec, channels, check_channels, check_clip, register

_I32 = DTYPE_RANGE["int32"]


def add(a, b, align: Sequence[int], shift: int, clip: Sequence[int], dtype: str) -> np.ndarray:
    """y = clip(rounding_shift((a << la) + (b << lb), shift), lo, hi)."""
    s = np.left_shift(a.astype(np.int64), align[0]) + np.left_shift(b.astype(np.int64), align[1])
    return np.clip(rounding_shift(s, shift), clip[0], clip[1]).astype(dtype)


def add_kernel(prog, op, xs):
    """y = clip(rounding_shift((a << la) + (b << lb), shift), lo, hi)   (a, b aligned to the finer scale)."""
    a = op.attrs
    return add(xs[0], xs[1], a["align"], a["shift"], a["clip"], prog.fmt(op.output)[0])


def add_check(prog, op, where: str) -> None:
    """align = [f - fa, f - fb] with f the finer input scale; shift = f - out_frac; inputs share channels."""
    fa, fb = prog.fmt(op.inputs[0])[1], prog.fmt(op.inputs[1])[1]
    f = max(fa, fb)
    if op.attrs["align"] != [f - fa, f - fb]:
        raise ProgramError(f"{where}: attribute 'align' must be {[f - fa, f - fb]} for inputs at 2^-{fa} and 2^-{fb}")
    if op.attrs["shift"] != f - prog.fmt(op.output)[1]:
        raise ProgramError(f"{where}: attribute 'shift' must be {f - prog.fmt(op.output)[1]} "
                           f"(2^-{f} -> the output's 2^-{prog.fmt(op.output)[1]})")
    ca, cb = channels(prog, op.inputs[0]), channels(prog, op.inputs[1])
    if ca != cb:
        raise ProgramError(f"{where}: inputs have {ca} and {cb} channels")
    check_clip(prog, op, where)
    check_channels(prog, op, where, ca)


def add_bound(prog, op) -> int:
    """(a << la) + (b << lb), then the requantize terms, over both inputs' dtype ranges."""
    (alo, ahi), (blo, bhi) = (DTYPE_RANGE[prog.fmt(t)[0]] for t in op.inputs)
    la, lb = op.attrs["align"]
    lo, hi = (alo << la) + (blo << lb), (ahi << la) + (bhi << lb)
    check_int32(op.name, np.array([min(alo << la, lo)], object), np.array([max(ahi << la, hi)], object),
                "the aligned inputs")
    bottom, top = requantized_range(np.array([lo], object), np.array([hi], object), op.attrs["shift"])
    return check_int32(op.name, bottom, top, "inputs in their dtype ranges")


def clip(x, bounds: Sequence[int], dtype: str) -> np.ndarray:
    """y = min(max(x, lo), hi) in dtype (same scale)."""
    return np.clip(x.astype(np.int64), bounds[0], bounds[1]).astype(dtype)


def clip_kernel(prog, op, xs):
    """y = min(max(x, lo), hi)   (same scale, the output dtype may be narrower)."""
    return clip(xs[0], op.attrs["clip"], prog.fmt(op.output)[0])


def clip_check(prog, op, where: str) -> None:
    if prog.fmt(op.output)[1] != prog.fmt(op.inputs[0])[1]:
        raise ProgramError(f"{where}: clip keeps the scale; output frac_bits {prog.fmt(op.output)[1]} "
                           f"differs from the input's {prog.fmt(op.inputs[0])[1]}")
    check_clip(prog, op, where)
    check_channels(prog, op, where, channels(prog, op.inputs[0]))


register(OpSpec("add", add_kernel.__doc__.splitlines()[0], (2, 2),
                (Attr("align", 0, MAX_FRAC_BITS, 2), Attr("shift", -MAX_FRAC_BITS, MAX_FRAC_BITS),
                 Attr("clip", *_I32, 2)), add_kernel, add_check, add_bound))
register(OpSpec("clip", clip_kernel.__doc__.splitlines()[0], (1, 1), (Attr("clip", *_I32, 2),),
                clip_kernel, clip_check))
