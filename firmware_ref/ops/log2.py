"""log2_abs: a fixed-point log2 of a magnitude (Mitchell's piecewise-linear log2), integers only.

Lossless audio (the idf-audio model) predicts each sample's coding scale from the log magnitude of
nearby, already decoded samples: the scale of speech spans four decades, which no int8 activation at a
fixed scale can hold, while its log does. Semantics, for q = attrs["frac"]:
  u = |x| + 1;  n = floor(log2(u)) (u's bit length - 1);  y = clip((n << q) + ((u << q) >> n) - (1 << q), lo, hi)
so y = 2^q * (n + (u - 2^n) / 2^n) truncated: exact log2 at powers of two, linear between them (error
< 0.087 in log2). The output is at 2^-q. Inputs int8/uint8/int16 only: u << q stays below 2^20, so every
engine computes it in int32.
"""
import numpy as np

from ..formats import ProgramError
from .registry import Attr, OpSpec, channels, check_channels, check_clip, register

MAX_FRAC = 4
INPUT_DTYPES = ("int8", "uint8", "int16")


def bit_length(u: np.ndarray) -> np.ndarray:
    """floor(log2(u)) + 1 for integers u >= 1 (0 for u == 0), by comparisons: no float, no rounding."""
    u = np.asarray(u, dtype=np.int64)
    n = np.zeros(u.shape, dtype=np.int64)
    for k in range(63):
        n += u >= (np.int64(1) << k)
    return n


def log2_abs(x: np.ndarray, frac: int, clip, dtype: str) -> np.ndarray:
    """y = clip((n << q) + ((u << q) >> n) - (1 << q)), u = |x| + 1, n = bit_length(u) - 1."""
    u = np.abs(np.asarray(x, dtype=np.int64)) + 1
    n = bit_length(u) - 1
    y = (n << frac) + ((u << frac) >> n) - (1 << frac)
    return np.clip(y, clip[0], clip[1]).astype(dtype)


def _kernel(prog, op, xs):
    """y = clip((n << q) + (((|x| + 1) << q) >> n) - (1 << q), lo, hi), n = floor(log2(|x| + 1)), at 2^-q."""
    return log2_abs(xs[0], op.attrs["frac"], op.attrs["clip"], prog.fmt(op.output)[0])


def _check(prog, op, where: str) -> None:
    dtype = prog.fmt(op.inputs[0])[0]
    if dtype not in INPUT_DTYPES:
        raise ProgramError(f"{where}: input dtype {dtype} is not one of {', '.join(INPUT_DTYPES)}")
    if prog.fmt(op.inputs[0])[1] != 0:
        raise ProgramError(f"{where}: the input must be integers at 2^0 (frac_bits 0), got "
                           f"2^-{prog.fmt(op.inputs[0])[1]}")
    if prog.fmt(op.output)[1] != op.attrs["frac"]:
        raise ProgramError(f"{where}: the output is at 2^-frac = 2^-{op.attrs['frac']}, its tensor says "
                           f"2^-{prog.fmt(op.output)[1]}")
    check_clip(prog, op, where)
    check_channels(prog, op, where, channels(prog, op.inputs[0]))


def _bound(prog, op) -> int:
    """|x| + 1 <= 2^15 + 1, shifted left by q <= 4: below 2^20, far inside int32."""
    return (2 ** 15 + 1) << op.attrs["frac"]


register(OpSpec("log2_abs", _kernel.__doc__.splitlines()[0], (1, 1),
                (Attr("frac", 0, MAX_FRAC), Attr("clip", -2 ** 31, 2 ** 31 - 1, 2)), _kernel, _check, _bound))
