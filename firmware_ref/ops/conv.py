"""conv2d, conv_transpose2d, conv1d, conv_transpose1d: int8 weights, int32 bias, one requantize.

Layout NCHW / NCW; weights OI.. for convs, IO.. for transposed convs (torch / ONNX).
Accumulators are int64 here; the overflow proof (bound below) guarantees they fit int32, so an
int32 device gives the same numbers. Taps multiply through BLAS in float32 or float64 only where
exact: every partial sum is an integer of magnitude <= abs_bound (bounds.conv_bounds), exactly
representable when abs_bound < 2**24 (float32) or < 2**53 (float64), so any summation order and
any FMA give the exact integer.
"""
from typing import Sequence

import numpy as np

from ..bounds import check_int32, conv_bounds, requantized_range
from ..formats import DTYPE_RANGE, MAX_FRAC_BITS, ProgramError
from ..rounding import rounding_shift
from .registry import Attr, OpSpec, channels, check_channels, check_clip, register

MAX_STRIDE, MAX_PAD = 64, 1024


def exact_float_dtype(abs_bound: int):
    """The narrowest float type whose integers cover every partial sum up to abs_bound."""
    if abs_bound < 2 ** 24:
        return np.float32
    if abs_bound < 2 ** 53:
        return np.float64
    raise OverflowError(f"partial sums up to {abs_bound} are not exact in float64")


def _matmul_dtype(x: np.ndarray, w: np.ndarray, transpose: bool):
    _, _, abs_bound = conv_bounds(w, np.zeros(w.shape[1 if transpose else 0], np.int64), x.dtype.name, transpose)
    return exact_float_dtype(int(abs_bound.max(initial=0)))


def conv2d_acc(x, w, b, stride: Sequence[int], padding: Sequence[int]) -> np.ndarray:
    """acc[n,o,y,x] = b[o] + sum_{c,i,j} w[o,c,i,j] * xpad[n,c,y*sh+i,x*sw+j]   (padding [t,l,b,r] with 0)."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    (sh, sw), (pt, pl, pb, pr) = stride, padding
    ft = _matmul_dtype(x, w, transpose=False)
    xp = np.pad(x.astype(ft), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    ho, wo = (h + pt + pb - kh) // sh + 1, (wd + pl + pr - kw) // sw + 1
    if ho < 1 or wo < 1:
        raise ProgramError(f"conv input {h}x{wd} is smaller than its {kh}x{kw} kernel with padding")
    acc = np.zeros((n, o, ho * wo), ft)
    wt = np.ascontiguousarray(np.transpose(w, (2, 3, 0, 1)).astype(ft))  # [i, j] -> contiguous (O, C): BLAS path
    for i in range(kh):  # one (O,C) @ (C, Ho*Wo) product per tap: no big im2col buffer
        for j in range(kw):
            patch = xp[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]
            for b_ in range(n):
                acc[b_] += wt[i, j] @ np.ascontiguousarray(patch[b_]).reshape(c, ho * wo)
    return acc.astype(np.int64).reshape(n, o, ho, wo) + b.astype(np.int64).reshape(1, -1, 1, 1)


def conv_transpose2d_acc(x, w, b, stride: Sequence[int], padding: Sequence[int],
                         output_padding: Sequence[int]) -> np.ndarray:
    """acc[n,o,y*sh+i-pt, x*sw+j-pl] += sum_c x[n,c,y,x] * w[c,o,i,j], plus b[o]; w is IOHW (torch/ONNX)."""
    n, c, h, wd = x.shape
    _, o, kh, kw = w.shape
    (sh, sw), (pt, pl, pb, pr), (oph, opw) = stride, padding, output_padding
    ft = _matmul_dtype(x, w, transpose=True)
    full = np.zeros((n, o, (h - 1) * sh + kh + oph, (wd - 1) * sw + kw + opw), ft)
    xf = x.astype(ft).reshape(n, c, h * wd)
    wt = np.ascontiguousarray(np.transpose(w, (2, 3, 1, 0)).reshape(kh * kw * o, c).astype(ft))
    for b_ in range(n):  # all taps in one (KH*KW*O, C) @ (C, H*W) product, then strided scatter per tap
        taps = (wt @ xf[b_]).reshape(kh, kw, o, h, wd)
        for i in range(kh):
            for j in range(kw):
                full[b_, :, i:i + sh * (h - 1) + 1:sh, j:j + sw * (wd - 1) + 1:sw] += taps[i, j]
    ho, wo = full.shape[2] - pt - pb, full.shape[3] - pl - pr
    if ho < 1 or wo < 1:
        raise ProgramError(f"transposed conv output {ho}x{wo} is empty for input {h}x{wd}")
    acc = full[:, :, pt:pt + ho, pl:pl + wo].astype(np.int64)
    return acc + b.astype(np.int64).reshape(1, -1, 1, 1)


def conv1d_acc(x, w, b, stride: Sequence[int], padding: Sequence[int]) -> np.ndarray:
    """acc[n,o,t] = b[o] + sum_{c,i} w[o,c,i] * xpad[n,c,t*s+i]   (padding [l,r] with 0)."""
    acc = conv2d_acc(x[:, :, None, :], w[:, :, None, :], b, (1, stride[0]), (0, padding[0], 0, padding[1]))
    return acc[:, :, 0, :]


def conv_transpose1d_acc(x, w, b, stride: Sequence[int], padding: Sequence[int],
                         output_padding: Sequence[int]) -> np.ndarray:
    """acc[n,o,t*s+i-pl] += sum_c x[n,c,t] * w[c,o,i], plus b[o]; w is IOW."""
    acc = conv_transpose2d_acc(x[:, :, None, :], w[:, :, None, :], b, (1, stride[0]),
                               (0, padding[0], 0, padding[1]), (0, output_padding[0]))
    return acc[:, :, 0, :]


def requantize(acc: np.ndarray, shift, clip: Sequence[int], dtype: str) -> np.ndarray:
    """y = clip(rounding_shift(acc, shift), lo, hi) in dtype."""
    return np.clip(rounding_shift(acc, shift), clip[0], clip[1]).astype(dtype)


_ACC = {"conv2d": conv2d_acc, "conv1d": conv1d_acc,
        "conv_transpose2d": conv_transpose2d_acc, "conv_transpose1d": conv_transpose1d_acc}


def _params(prog, op):
    return prog.arrays[op.params["weight"]], prog.arrays[op.params["bias"]]


def is_transpose(op) -> bool:
    return op.kind.startswith("conv_transpose")


def out_channels(prog, op) -> int:
    w = prog.arrays.get(op.params.get("weight"))
    return int(w.shape[1 if is_transpose(op) else 0]) if w is not None and w.ndim >= 2 else -1


def conv_kernel(prog, op, xs):
    """y = clip(rounding_shift(b + sum w * x, shift[o]), clip)   (the accumulation is the kind's *_acc)."""
    w, b = _params(prog, op)
    a = op.attrs
    extra = (a["output_padding"],) if is_transpose(op) else ()
    acc = _ACC[op.kind](xs[0], w, b, a["stride"], a["padding"], *extra)
    return requantize(acc, a["shift"], a["clip"], prog.fmt(op.output)[0])


def conv_check(prog, op, where: str) -> None:
    """Weights int8 in [-127, 127] of rank dims+2 with the input's channels; bias int32 per output channel."""
    dims = 1 if op.kind.endswith("1d") else 2
    w, b = _params(prog, op)
    if w.dtype != np.int8 or w.ndim != dims + 2 or w.min(initial=0) < -127:
        raise ProgramError(f"{where}: param 'weight' must be int8 in [-127, 127] of rank {dims + 2}")
    cin = w.shape[0 if is_transpose(op) else 1]
    if cin != channels(prog, op.inputs[0]):
        raise ProgramError(f"{where}: weights take {cin} input channels, the input has {channels(prog, op.inputs[0])}")
    o = out_channels(prog, op)
    if b.dtype != np.int32 or b.shape != (o,):
        raise ProgramError(f"{where}: param 'bias' must be int32 of shape ({o},)")
    if is_transpose(op) and any(p >= s for p, s in zip(op.attrs["output_padding"], op.attrs["stride"])):
        raise ProgramError(f"{where}: attribute 'output_padding' must be below the stride")
    check_clip(prog, op, where)
    check_channels(prog, op, where, o)


def conv_bound(prog, op) -> int:
    """Worst ((acc << left) + rnd) over inputs in the input dtype's range, per output channel."""
    w, b = _params(prog, op)
    lo, hi, _ = conv_bounds(w, b, prog.fmt(op.inputs[0])[0], is_transpose(op))
    bottom, top = requantized_range(lo, hi, op.attrs["shift"])
    return check_int32(op.name, bottom, top, f"inputs in the {prog.fmt(op.inputs[0])[0]} range")


def _conv_spec(kind: str, dims: int) -> OpSpec:
    attrs = [Attr("stride", 1, MAX_STRIDE, dims), Attr("padding", 0, MAX_PAD, 2 * dims),
             Attr("shift", -MAX_FRAC_BITS, MAX_FRAC_BITS, out_channels),
             Attr("clip", DTYPE_RANGE["int32"][0], DTYPE_RANGE["int32"][1], 2)]
    if kind.startswith("conv_transpose"):
        attrs.append(Attr("output_padding", 0, MAX_STRIDE - 1, dims))
    return register(OpSpec(kind, conv_kernel.__doc__.splitlines()[0], (1, 1), tuple(attrs), conv_kernel,
                           conv_check, conv_bound, params=("weight", "bias")))


CONV_KINDS = ("conv2d", "conv_transpose2d", "conv1d", "conv_transpose1d")
for _kind in CONV_KINDS:
    _conv_spec(_kind, 1 if _kind.endswith("1d") else 2)
