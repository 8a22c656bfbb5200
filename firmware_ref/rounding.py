"""The contract's one rounding rule, stated once: every engine calls this or emits what it returns.

  k > 0:  (a + (1 << (k - 1))) >> k    round half up (ties towards +inf), arithmetic shift
  k <= 0: a << -k                       exact
shift_terms splits k into (left, rnd, right) so that the rule is ((a << left) + rnd) >> right for
every k at once: the NumPy kernels apply it, the overflow proof bounds it, the TVM lowerings emit
it as three integer ops (a per-channel k gives per-channel terms).
"""
import numpy as np


def shift_terms(k):
    """-> (left, rnd, right) int64 arrays shaped like k: left = max(-k, 0), right = max(k, 0), rnd = 2**(right-1) or 0."""
    k = np.asarray(k, dtype=np.int64)
    right, left = np.maximum(k, 0), np.maximum(-k, 0)
    rnd = np.where(right > 0, np.left_shift(np.int64(1), np.maximum(right - 1, 0)), 0)
    return left, rnd, right


def rounding_shift(acc: np.ndarray, k) -> np.ndarray:
    """((acc << left) + rnd) >> right in int64; k scalar or per channel (axis 1)."""
    left, rnd, right = shift_terms(k)
    if left.ndim:
        shape = (1, -1) + (1,) * (np.ndim(acc) - 2)
        left, rnd, right = left.reshape(shape), rnd.reshape(shape), right.reshape(shape)
    return (np.left_shift(np.asarray(acc, dtype=np.int64), left) + rnd) >> right


def rounding_shift_int(a: int, k: int) -> int:
    """The same rule on one Python int (for scalar bounds and integer pixel maths)."""
    left, rnd, right = (int(v) for v in shift_terms(k))
    return ((a << left) + rnd) >> right
