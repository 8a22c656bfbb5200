"""argmax_unpool: max-unpooling with switches predicted in integers (CompressNet's SAE-SPN decoder).

A switch is where, inside a k x k block, max pooling found the maximum. SWWAE sends it; SAE-SPN's
Switch Prediction Network predicts it from the decoder's own features as k*k integer logits per channel,
and the decoder places each value at the logits' argmax (ties to the lowest index, so every engine picks
the same cell), zeros elsewhere. Logits that are a program input (one-hot) give SWWAE's unpooling with
sent switches. The op moves integers and compares them; nothing is added or multiplied (bound None).
"""
import numpy as np

from ..formats import ProgramError
from .registry import Attr, OpSpec, channels, check_same_format, register

MAX_FACTOR = 4   # a k x k block of k*k <= 16 candidates


def argmax_first(logits: np.ndarray, axis: int) -> np.ndarray:
    """Index of the largest value along axis, the lowest such index on ties (a strict > scan, like the engines)."""
    best = np.take(logits, 0, axis=axis).astype(np.int64)
    idx = np.zeros(best.shape, np.int64)
    for j in range(1, logits.shape[axis]):
        v = np.take(logits, j, axis=axis).astype(np.int64)
        take = v > best
        best, idx = np.where(take, v, best), np.where(take, j, idx)
    return idx


def argmax_unpool(x: np.ndarray, logits: np.ndarray, k: int) -> np.ndarray:
    """y[n,c,h*k+i,w*k+j] = x[n,c,h,w] if i*k+j == argmax_first(logits[n,c*k*k:(c+1)*k*k,h,w]) else 0."""
    n, c, h, w = x.shape
    if logits.shape != (n, c * k * k, h, w):
        raise ProgramError(f"argmax_unpool: logits of shape {logits.shape} for values {x.shape} and factor {k}")
    idx = argmax_first(logits.reshape(n, c, k * k, h, w), axis=2)          # (n, c, h, w)
    hit = idx[:, :, None] == np.arange(k * k).reshape(1, 1, -1, 1, 1)     # (n, c, k*k, h, w)
    y = np.where(hit, x[:, :, None], 0).astype(x.dtype)
    return y.reshape(n, c, k, k, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(n, c, h * k, w * k)


def _kernel(prog, op, xs):
    """y[n,c,h*k+i,w*k+j] = x[n,c,h,w] if i*k+j == argmax_first(logits[n,c*k*k:(c+1)*k*k,h,w]) else 0."""
    x, logits = xs
    if x.ndim != 4:
        raise ProgramError(f"op {op.name!r} (argmax_unpool): needs 2-D (N, C, H, W) inputs, got {x.shape}")
    return argmax_unpool(x, logits, op.attrs["factor"])


def _check(prog, op, where):
    """Output: the values' format; logits: any integer format with k*k channels per value channel."""
    c, k = channels(prog, op.inputs[0]), op.attrs["factor"]
    if channels(prog, op.inputs[1]) != c * k * k:
        raise ProgramError(f"{where}: logits have {channels(prog, op.inputs[1])} channels, {c} values with a "
                           f"{k}x{k} block need {c * k * k}")
    check_same_format(prog, op, where, c)


register(OpSpec("argmax_unpool", _kernel.__doc__, (2, 2), (Attr("factor", 2, MAX_FACTOR),), _kernel, _check))
