"""Reference integer kernels, one function per op (TFLite Micro reference-kernel style).

Each docstring's first line is the op's integer semantics. Accumulators are int64 here; the
export's overflow proof (bounds.py) guarantees they fit int32, so an int32 device gives the same
numbers. Convs multiply through BLAS in float32 or float64 only where exact: every partial sum is
an integer of magnitude <= abs_bound (bounds.py), exactly representable when abs_bound < 2**24
(float32) or < 2**53 (float64), so any summation order and any FMA give the exact integer.
"""
from typing import Sequence

import numpy as np

from .bounds import conv_bounds
from .program import DTYPE_RANGE


def exact_float_dtype(abs_bound: int):
    """The narrowest float type whose integers cover every partial sum up to abs_bound."""
    if abs_bound < 2 ** 24:
        return np.float32
    if abs_bound < 2 ** 53:
        return np.float64
    raise OverflowError(f"partial sums up to {abs_bound} are not exact in float64")


def _matmul_dtype(x: np.ndarray, w: np.ndarray, transpose: bool):
    dtype = "uint8" if x.dtype == np.uint8 else "int8"
    _, _, abs_bound = conv_bounds(w, np.zeros(w.shape[1 if transpose else 0], np.int64), dtype, transpose)
    return exact_float_dtype(int(abs_bound.max(initial=0)))


def conv2d_acc(x, w, b, stride: Sequence[int], padding: Sequence[int]) -> np.ndarray:
    """acc[n,o,y,x] = b[o] + sum_{c,i,j} w[o,c,i,j] * xpad[n,c,y*sh+i,x*sw+j]   (padding [t,l,b,r] with 0)."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    (sh, sw), (pt, pl, pb, pr) = stride, padding
    ft = _matmul_dtype(x, w, transpose=False)
    xp = np.pad(x.astype(ft), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    ho, wo = (h + pt + pb - kh) // sh + 1, (wd + pl + pr - kw) // sw + 1
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


def rounding_shift(acc: np.ndarray, k) -> np.ndarray:
    """k > 0: (acc + 2**(k-1)) >> k  (round half up);  k <= 0: acc << -k;  k per channel (axis 1) or scalar."""
    k = np.asarray(k, dtype=np.int64)
    if k.ndim:
        k = k.reshape((1, -1) + (1,) * (acc.ndim - 2))
    right, left = np.maximum(k, 0), np.maximum(-k, 0)
    rnd = np.where(right > 0, np.left_shift(np.int64(1), np.maximum(right - 1, 0)), 0)
    return (np.left_shift(acc.astype(np.int64), left) + rnd) >> right


def requantize(acc: np.ndarray, shift, clip: Sequence[int], dtype: str) -> np.ndarray:
    """y = clip(rounding_shift(acc, shift), lo, hi) as uint8/int8."""
    return np.clip(rounding_shift(acc, shift), clip[0], clip[1]).astype(dtype)


def add(a, b, align: Sequence[int], shift: int, clip: Sequence[int], dtype: str) -> np.ndarray:
    """y = clip(rounding_shift((a << la) + (b << lb), shift), lo, hi)   (|a|,|b| < 2**8, la,lb < 8: no overflow)."""
    s = np.left_shift(a.astype(np.int64), align[0]) + np.left_shift(b.astype(np.int64), align[1])
    return requantize(s, shift, clip, dtype)


def clip(x, bounds: Sequence[int], dtype: str) -> np.ndarray:
    """y = min(max(x, lo), hi) as uint8/int8 (same scale)."""
    return np.clip(x.astype(np.int64), bounds[0], bounds[1]).astype(dtype)


def pixel_shuffle(x, r: int) -> np.ndarray:
    """y[n,c,h*r+i,w*r+j] = x[n,c*r*r+i*r+j,h,w]   (ONNX DepthToSpace CRD, torch PixelShuffle)."""
    n, c, h, w = x.shape
    return x.reshape(n, c // (r * r), r, r, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(n, c // (r * r), h * r, w * r)


def upsample_nearest(x, r: int) -> np.ndarray:
    """y[n,c,h,w] = x[n,c,h//r,w//r]   (every spatial axis; 1-D tensors too)."""
    for axis in range(2, x.ndim):
        x = np.repeat(x, r, axis=axis)
    return x


def concat(xs, axis: int = 1) -> np.ndarray:
    """y = x0 ++ x1 ++ ... along channels (inputs share one integer format)."""
    return np.concatenate(xs, axis=axis)


def in_range(x: np.ndarray, dtype: str) -> bool:
    lo, hi = DTYPE_RANGE[dtype]
    return x.size == 0 or (x.min() >= lo and x.max() <= hi)
