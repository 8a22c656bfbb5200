"""The entropy model's prior: per-channel categorical over the L latent centers, as integer frequencies.

Estimated once from training-set latent indices (never from the images being coded), then frozen
as a (C, L) uint32 table whose rows each sum to exactly 2**precision_bits with every entry >= 1.
Encoder and decoder only ever read this integer table, so both sides code with identical
probabilities on every machine; the float-free quantization below makes the table itself
reproducible from the same counts.
A (C, K, L) table is the context prior (context.py estimates it); how a symbol picks its row
(context_ids, symbol_frequencies) lives here, so that this module imports nothing from context.py
and the dependency runs one way: context.py builds on prior.py.
"""
from pathlib import Path
from typing import Iterable

import numpy as np

from bpgan.firmware_ref.ans import PRECISION as PRECISION_BITS  # noqa: F401  (the encoder's precision, stated once)
PRIOR_FORMAT = "bpgan-prior/1"


class PriorError(ValueError):
    """A prior table that is not a valid frequency table."""


def count_symbols(indices_iterable: Iterable, num_channels: int, num_centers: int) -> np.ndarray:
    """(C, L) int64 occurrence counts of each center per channel.

    Each item is a batch of index arrays shaped (N, C, ...), e.g. model.quantizer.indices(z) of a batch.
    """
    counts = np.zeros((num_channels, num_centers), dtype=np.int64)
    for idx in indices_iterable:
        a = np.asarray(idx.detach().cpu() if hasattr(idx, "detach") else idx)
        if a.ndim < 2 or a.shape[1] != num_channels:
            raise PriorError(f"index batch of shape {a.shape} is not (N, {num_channels}, ...)")
        a = np.moveaxis(a, 1, 0)
        a = a.reshape(num_channels, -1).astype(np.int64)
        if a.size and (a.min() < 0 or a.max() >= num_centers):
            raise PriorError(f"index outside [0, {num_centers}) in the training latents")
        for c in range(num_channels):
            counts[c] += np.bincount(a[c], minlength=num_centers)
    return counts


def quantize_frequencies(counts: np.ndarray, precision_bits: int = PRECISION_BITS) -> np.ndarray:
    """Integer counts (C, L) -> uint32 frequencies, each row summing to 2**precision_bits, every entry >= 1.

    Integer-only largest-remainder rule: every symbol gets 1, the free mass 2**p - L is shared
    as floor(count * free / total); the few units left go to the largest remainders, ties to the
    lower symbol index. A row of all-zero counts becomes (nearly) uniform.
    """
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[1] < 2:
        raise PriorError(f"counts must be (C, L) with L >= 2, got shape {counts.shape}")
    if (counts < 0).any():
        raise PriorError("counts must be non-negative")
    num_centers = counts.shape[1]
    total_mass = 1 << precision_bits
    free = total_mass - num_centers
    if free < 0 or precision_bits > 31:
        raise PriorError(f"precision {precision_bits} bits cannot hold {num_centers} symbols")
    table = np.empty(counts.shape, dtype=np.uint32)
    for c, row in enumerate(counts.tolist()):  # Python ints: no overflow for any count
        total = sum(row)
        if total == 0:
            row, total = [1] * num_centers, num_centers
        shares = [(k * free) // total for k in row]
        remainders = [(k * free) % total for k in row]
        left = free - sum(shares)  # 0 <= left < L
        order = sorted(range(num_centers), key=lambda j: (-remainders[j], j))
        for j in order[:left]:
            shares[j] += 1
        table[c] = [1 + s for s in shares]
    return table


def estimate_prior(indices_iterable: Iterable, num_channels: int, num_centers: int,
                   precision_bits: int = PRECISION_BITS, smoothing: int = 1) -> np.ndarray:
    """Training-set latent indices -> (C, L) uint32 frequency table (add-`smoothing` counts)."""
    counts = count_symbols(indices_iterable, num_channels, num_centers)
    return quantize_frequencies(counts + int(smoothing), precision_bits)


def check_prior(table: np.ndarray, precision_bits: int = PRECISION_BITS) -> np.ndarray:
    """Validate a (C, L) per-channel or (C, K, L) context table; returns it as C-contiguous uint32."""
    t = np.asarray(table)
    if t.ndim not in (2, 3) or t.shape[-1] < 2 or not np.issubdtype(t.dtype, np.integer):
        raise PriorError(f"prior must be an integer (C, L) or (C, K, L) table with L >= 2, got {t.dtype} {t.shape}")
    if (t < 1).any():
        raise PriorError("prior has a symbol with frequency 0")
    sums = t.astype(np.int64).sum(axis=-1)
    if (sums != 1 << precision_bits).any():
        raise PriorError(f"prior rows must sum to 2**{precision_bits}, got {sorted(set(sums.ravel().tolist()))[:3]}")
    return np.ascontiguousarray(t, dtype=np.uint32)


def save_prior(path, table: np.ndarray) -> None:
    """Save as a .npy file (uint32, (C, L))."""
    np.save(Path(path), check_prior(table), allow_pickle=False)


def load_prior(path) -> np.ndarray:
    try:
        table = np.load(Path(path), allow_pickle=False)
    except (OSError, ValueError) as e:
        raise PriorError(f"{path} is not a readable prior table ({type(e).__name__})") from None
    return check_prior(table)


def context_ids(symbols: np.ndarray, num_centers: int) -> np.ndarray:
    """(C, h, w) or (N, C, h, w) symbols -> same-shape int64 context ids (definition: context.py docstring)."""
    s = np.asarray(symbols, dtype=np.int64)
    if s.ndim not in (3, 4):
        raise PriorError(f"context prior needs (C, h, w) latents, got shape {s.shape}")
    up = np.full_like(s, num_centers)
    up[..., 1:, :] = s[..., :-1, :]
    prev = np.zeros_like(s)
    prev[..., 1:, :, :] = s[..., :-1, :, :]
    return up * num_centers + prev


def symbol_frequencies(symbols: np.ndarray, table: np.ndarray) -> np.ndarray:
    """(C, ...) symbols -> (C, n, L) frequency rows used for each symbol, in coding order."""
    table = np.asarray(table)
    s = np.asarray(symbols, dtype=np.int64)
    if table.ndim == 2:
        return np.broadcast_to(table[:, None, :], (table.shape[0], s[0].size, table.shape[1]))
    ctx = context_ids(s, table.shape[2]).reshape(s.shape[0], -1)
    return table[np.arange(s.shape[0])[:, None], ctx]


def cross_entropy_bits(symbols: np.ndarray, table: np.ndarray, precision_bits: int = PRECISION_BITS) -> float:
    """Ideal code length in bits of symbols (C, ...) under the table: sum -log2(f / 2**p)."""
    s = np.asarray(symbols, dtype=np.int64).reshape(np.shape(table)[0], -1)
    rows = symbol_frequencies(np.asarray(symbols), table)
    f = np.take_along_axis(rows.astype(np.float64), s[..., None], axis=-1)
    return float(np.sum(precision_bits - np.log2(f)))
