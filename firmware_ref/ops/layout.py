"""pixel_shuffle, upsample_nearest, concat, reflect_pad: ops that move integers without arithmetic (no bound)."""
import numpy as np

from ..formats import ProgramError
from .registry import Attr, OpSpec, channels, check_same_format, register

MAX_FACTOR = 16
MAX_REFLECT = 64   # reflect_pad: at most 64 rows / columns on each side


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


def reflect_index(i, size: int):
    """r(i) = size-1 - |size-1 - |i||: -i -> i, size-1+i -> size-1-i (one reflection, no edge repeat; |i| < size)."""
    return (size - 1) - np.abs((size - 1) - np.abs(i))


def reflect_pad(x, padding) -> np.ndarray:
    """y[n,c,h,w] = x[n,c,r_H(h-pt),r_W(w-pl)] with r_N(i) = N-1-|N-1-|i|| (torch ReflectionPad2d/1d; pads < N)."""
    dims = len(padding) // 2
    if x.ndim != dims + 2:
        raise ProgramError(f"reflect_pad: {len(padding)} pads for a tensor of shape {x.shape}")
    for axis in range(dims):
        x = reflect_axis(x, 2 + axis, padding[axis], padding[dims + axis])
    return x


def reflect_axis(x, axis: int, before: int, after: int) -> np.ndarray:
    """One axis of reflect_pad: y[..., i, ...] = x[..., r(i - before), ...]; refuses a size not above its pads."""
    size = x.shape[axis]
    if before >= size or after >= size:
        raise ProgramError(f"reflect_pad: size {size} along spatial axis {axis - 2} must exceed its pads "
                           f"({before}, {after})")
    return np.take(x, reflect_index(np.arange(-before, size + after), size), axis=axis)


def _reflect_length(prog, op) -> int:
    """[top, left, bottom, right] in 2-D programs, [left, right] in 1-D ones (Program.spatial_dims)."""
    return 2 * prog.spatial_dims


def _pixel_shuffle_check(prog, op, where):
    c, r = channels(prog, op.inputs[0]), op.attrs["factor"]
    if c % (r * r):
        raise ProgramError(f"{where}: {c} channels do not split into {r}x{r} blocks")
    check_same_format(prog, op, where, c // (r * r))


def _concat_check(prog, op, where):
    fmts = {prog.fmt(t) for t in op.inputs}
    if len(fmts) != 1:
        raise ProgramError(f"{where}: concat inputs must share one integer format, got {sorted(fmts)}")
    check_same_format(prog, op, where, sum(channels(prog, t) for t in op.inputs))


def _shuffle(prog, op, xs):
    """y[n,c,h*r+i,w*r+j] = x[n,c*r*r+i*r+j,h,w]."""
    if xs[0].ndim != 4:
        raise ProgramError(f"op {op.name!r} (pixel_shuffle): needs a 2-D (N, C, H, W) input, got {xs[0].shape}")
    return pixel_shuffle(xs[0], op.attrs["factor"])


def _upsample(prog, op, xs):
    """y[n,c,h,w] = x[n,c,h//r,w//r]."""
    return upsample_nearest(xs[0], op.attrs["factor"])


def _concat(prog, op, xs):
    """y = x0 ++ x1 ++ ... along channels."""
    return concat(xs, op.attrs["axis"])


def _reflect(prog, op, xs):
    """y[n,c,h,w] = x[n,c,r_H(h-pt),r_W(w-pl)], r_N(i) = N-1-|N-1-|i||: torch reflect padding, each pad < N."""
    return reflect_pad(xs[0], op.attrs["padding"])


register(OpSpec("pixel_shuffle", _shuffle.__doc__, (1, 1), (Attr("factor", 1, MAX_FACTOR),), _shuffle,
                _pixel_shuffle_check))
register(OpSpec("upsample_nearest", _upsample.__doc__, (1, 1), (Attr("factor", 1, MAX_FACTOR),), _upsample,
                lambda prog, op, where: check_same_format(prog, op, where, channels(prog, op.inputs[0]))))
register(OpSpec("concat", _concat.__doc__, (1, 64), (Attr("axis", 1, 1),), _concat, _concat_check))
# bound None: reflect_pad only copies integers (the index arithmetic is on sizes, not on values).
register(OpSpec("reflect_pad", _reflect.__doc__, (1, 1), (Attr("padding", 0, MAX_REFLECT, _reflect_length),),
                _reflect, lambda prog, op, where: check_same_format(prog, op, where, channels(prog, op.inputs[0]))))
