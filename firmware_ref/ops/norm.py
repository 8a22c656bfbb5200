"""instance_norm: per-channel normalization over the spatial axes, in integers (the InstanceNorm2d / 1d with
affine gamma and beta of Agustsson et al.'s generative-compression decoders).

For one (sample, channel) with n spatial positions, exactly in int64:

  S = sum x,  Q = sum x^2,  D = n*Q - S*S + ((n*n) >> eps_shift),  s = max(1, isqrt(D))
  z = clip(rdiv((n*x - S) << Z, s), -32768, 32767),  rdiv(a, s) = floor((2a + s) / (2s))   (half up)
  y = clip(rounding_shift(gamma[c]*z + beta[c], shift[c]), lo, hi)

D / n^2 is the variance plus eps = 2^-eps_shift (in x's integer units squared), so z is (x - mean) / sqrt(var + eps)
at scale 2^-Z. gamma is int8 at its own power-of-two scale, beta int32 at the scale of gamma*z, and shift =
Z + gamma_frac - out_frac (ProgramBuilder.instance_norm), requantized by the project's one rounding rule.

int64 limits: x is int8 or uint8, so x^2 < 2^16 and n*Q, S*S <= n^2 * 2^16; with n <= 2^23 positions
(MAX_POSITIONS, refused above at run time) D < 2^62 and |(n*x - S) << Z| <= 255 * 2^23 * 2^12 < 2^44.
The int32 proof (bound) covers the affine step: |gamma*z + beta| with |z| <= 32768, plus the rounding terms.
"""
import numpy as np

from ..bounds import check_int32, requantized_range
from ..formats import DTYPE_RANGE, MAX_FRAC_BITS, ProgramError
from .conv import requantize
from .registry import Attr, OpSpec, channels, check_channels, check_clip, register

Z_FRAC = (4, 12)         # z at scale 2^-Z
MAX_EPS_SHIFT = 40
MAX_POSITIONS = 2 ** 23  # n*Q <= n^2 * 2^16 must stay below 2^63
Z_MIN, Z_MAX = -2 ** 15, 2 ** 15 - 1
IN_DTYPES = ("int8", "uint8")


def isqrt(d: np.ndarray) -> np.ndarray:
    """floor(sqrt(d)) exactly, for int64 d in [0, 2^63).

    The float64 root f = sqrt(float64(d)) carries a relative error below 2^-52 (one rounding of d, one of the
    correctly rounded sqrt), and sqrt(d) < 2^31.5, so |f - sqrt(d)| < 2^-20: floor(f) is isqrt(d) or one off
    it, and one step down (s*s > d) then one step up ((s+1)^2 <= d, written d - s*s > 2s so that nothing
    overflows: s <= 3037000499 and s*s < 2^63) make it exact. Any root within 1 of the true one would do: with
    an IEEE (correctly rounded) sqrt only the step down ever fires (d = k*k - 1 past 2^53 rounds up to k*k), the
    step up covers a sqrt that is merely faithful. The TVM lowering writes the same two steps with where."""
    d = np.asarray(d, dtype=np.int64)
    s = np.floor(np.sqrt(d.astype(np.float64))).astype(np.int64)
    s = np.where(s * s > d, s - 1, s)
    s = np.where(d - s * s > 2 * s, s + 1, s)
    return s


def rdiv(a: np.ndarray, s: np.ndarray) -> np.ndarray:
    """floor((2a + s) / (2s)) for s >= 1: a / s rounded half up (floor division, so negative a too)."""
    return (2 * a + s) // (2 * s)


def instance_norm(x, gamma, beta, z_frac: int, eps_shift: int, shift, clip, dtype: str) -> np.ndarray:
    """y = clip(rounding_shift(gamma[c]*z + beta[c], shift[c]), lo, hi); z, S, Q, D as the module docstring states."""
    axes = tuple(range(2, x.ndim))
    n = int(np.prod(x.shape[2:], dtype=np.int64))
    if n > MAX_POSITIONS:
        raise ProgramError(f"instance_norm: {n} spatial positions exceed the int64 statistics' limit of "
                           f"{MAX_POSITIONS} (2^23)")
    xi = x.astype(np.int64)
    s_ = xi.sum(axis=axes, keepdims=True)
    q = (xi * xi).sum(axis=axes, keepdims=True)
    d = n * q - s_ * s_ + ((n * n) >> eps_shift)
    s = np.maximum(isqrt(d), 1)
    z = np.clip(rdiv(np.left_shift(n * xi - s_, z_frac), s), Z_MIN, Z_MAX)
    per_channel = (1, -1) + (1,) * len(axes)
    acc = gamma.astype(np.int64).reshape(per_channel) * z + beta.astype(np.int64).reshape(per_channel)
    return requantize(acc, shift, clip, dtype)


def _params(prog, op):
    return prog.arrays[op.params["weight"]], prog.arrays[op.params["bias"]]


def _kernel(prog, op, xs):
    """y = clip(rshift(g[c]*z + b[c], shift[c]), lo, hi), z = clip(rdiv((n*x - S) << Z, max(1, isqrt(n*Q - S*S + (n*n >> eps_shift)))), -2^15, 2^15-1), S, Q = sum x, x^2 over n positions, rdiv(a, s) = floor((2a + s) / (2s))."""
    g, b = _params(prog, op)
    a = op.attrs
    return instance_norm(xs[0], g, b, a["z_frac"], a["eps_shift"], a["shift"], a["clip"], prog.fmt(op.output)[0])


def _check(prog, op, where: str) -> None:
    """Input int8 or uint8; weight (gamma) int8 in [-127, 127] and bias (beta) int32, one per channel."""
    dtype = prog.fmt(op.inputs[0])[0]
    if dtype not in IN_DTYPES:
        raise ProgramError(f"{where}: input must be int8 or uint8 (the int64 statistics' limit), got {dtype}")
    c = channels(prog, op.inputs[0])
    g, b = _params(prog, op)
    if g.dtype != np.int8 or g.shape != (c,) or g.min(initial=0) < -127:
        raise ProgramError(f"{where}: param 'weight' (gamma) must be int8 in [-127, 127] of shape ({c},)")
    if b.dtype != np.int32 or b.shape != (c,):
        raise ProgramError(f"{where}: param 'bias' (beta) must be int32 of shape ({c},)")
    check_clip(prog, op, where)
    check_channels(prog, op, where, c)


def _bound(prog, op) -> int:
    """Worst ((gamma*z + beta) << left) + rnd per channel for every z in [-2^15, 2^15 - 1] (the int32 part;
    the int64 statistics are bounded by MAX_POSITIONS, checked at run time)."""
    g, b = (v.astype(np.int64) for v in _params(prog, op))
    lo = b + np.minimum(g * Z_MIN, g * Z_MAX)
    hi = b + np.maximum(g * Z_MIN, g * Z_MAX)
    bottom, top = requantized_range(lo, hi, op.attrs["shift"])
    return check_int32(op.name, bottom, top, "every normalized value |z| <= 2^15")


register(OpSpec("instance_norm", _kernel.__doc__, (1, 1),
                (Attr("z_frac", *Z_FRAC), Attr("eps_shift", 0, MAX_EPS_SHIFT),
                 Attr("shift", -MAX_FRAC_BITS, MAX_FRAC_BITS, lambda prog, op: channels(prog, op.inputs[0])),
                 Attr("clip", *DTYPE_RANGE["int32"], 2)),
                _kernel, _check, _bound, params=("weight", "bias")))
