"""Context prior: each symbol's distribution depends on two neighbours the decoder already has.

For the symbol s[c, i, j] of a (C, h, w) latent, decoded channel by channel, row by row:
  up   = s[c, i - 1, j] if i > 0 else L      (the row above in the same channel; L = "none")
  prev = s[c - 1, i, j] if c > 0 else 0      (the same position in the previous channel)
  context = up * L + prev,   K = (L + 1) * L contexts per channel.
A whole row's contexts are known before the row is decoded, so the decoder codes row by row.
The table is (C, K, L) uint32, every row a frequency table summing to 2**24 (prior.py rules);
a (C, L) table means the plain per-channel prior. Both are integers only, so decoding is exact.
context_ids and symbol_frequencies are defined in prior.py (its cross_entropy_bits reads context
tables, and prior.py must not import this module) and re-exported here for the encoder/decoder.
"""
from typing import Iterable

import numpy as np

from .prior import PRECISION_BITS, PriorError, context_ids, quantize_frequencies, symbol_frequencies

__all__ = ["num_contexts", "context_ids", "row_contexts", "count_context_symbols",
           "estimate_context_prior", "symbol_frequencies"]


def num_contexts(num_centers: int) -> int:
    return (num_centers + 1) * num_centers


def row_contexts(decoded: np.ndarray, c: int, i: int, num_centers: int) -> np.ndarray:
    """Context ids of row i of channel c from the rows already decoded (decoder side)."""
    w = decoded.shape[2]
    up = decoded[c, i - 1] if i > 0 else np.full(w, num_centers, dtype=np.int64)
    prev = decoded[c - 1, i] if c > 0 else np.zeros(w, dtype=np.int64)
    return up * num_centers + prev


def count_context_symbols(indices_iterable: Iterable, num_channels: int, num_centers: int) -> np.ndarray:
    """(C, K, L) int64 counts from batches of training latents shaped (N, C, h, w)."""
    k = num_contexts(num_centers)
    counts = np.zeros((num_channels, k * num_centers), dtype=np.int64)
    for idx in indices_iterable:
        a = np.asarray(idx.detach().cpu() if hasattr(idx, "detach") else idx).astype(np.int64)
        if a.ndim != 4 or a.shape[1] != num_channels:
            raise PriorError(f"index batch of shape {a.shape} is not (N, {num_channels}, h, w)")
        if a.size and (a.min() < 0 or a.max() >= num_centers):
            raise PriorError(f"index outside [0, {num_centers}) in the training latents")
        joint = context_ids(a, num_centers) * num_centers + a  # (context, symbol) pairs
        for c in range(num_channels):
            counts[c] += np.bincount(joint[:, c].ravel(), minlength=k * num_centers)
    return counts.reshape(num_channels, k, num_centers)


def estimate_context_prior(indices_iterable: Iterable, num_channels: int, num_centers: int,
                           precision_bits: int = PRECISION_BITS, smoothing: int = 1) -> np.ndarray:
    """Training-set latents -> (C, K, L) uint32 context table (add-`smoothing` counts per context)."""
    counts = count_context_symbols(indices_iterable, num_channels, num_centers) + int(smoothing)
    c, k, n = counts.shape
    return quantize_frequencies(counts.reshape(c * k, n), precision_bits).reshape(c, k, n)
