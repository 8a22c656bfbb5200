"""pixel_shuffle, upsample_nearest, concat: ops that move integers without arithmetic (no bound)."""
import numpy as np

from ..formats import ProgramError
from .registry import Attr, OpSpec, channels, check_same_format, register

MAX_FACTOR = 16


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


register(OpSpec("pixel_shuffle", _shuffle.__doc__, (1, 1), (Attr("factor", 1, MAX_FACTOR),), _shuffle,
                _pixel_shuffle_check))
register(OpSpec("upsample_nearest", _upsample.__doc__, (1, 1), (Attr("factor", 1, MAX_FACTOR),), _upsample,
                lambda prog, op, where: check_same_format(prog, op, where, channels(prog, op.inputs[0]))))
register(OpSpec("concat", _concat.__doc__, (1, 64), (Attr("axis", 1, 1),), _concat, _concat_check))
