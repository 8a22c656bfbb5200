"""Entropy coding of latent symbols with constriction's ANS coder and the integer prior table.

Stream: symbols (C, ...) are coded channel by channel, row-major inside a channel, each channel
with its own categorical model from the (C, L) frequency table (rows sum to 2**24, see prior.py).
The payload is constriction's AnsCoder word stack (64-bit state, 32-bit words, 24-bit
probabilities) written as little-endian uint32 words; decoding pops channel 0 first.

Why decoding is deterministic across machines: constriction's `Categorical(p, perfect=False)`
builds its CDF as `left_cdf[i] = as_int(sum_{j<i} p_j * scale) + i` with
`scale = (2**24 - L) / sum(p)` (fast_quantized_cdf in constriction's categorical.rs). We pass
`p_j = f_j - 1` as float64: small integers, so every sum is exact, `scale` is exactly 1.0 and
`left_cdf[i] = sum_{j<i} f_j` -- the integer table itself, with no rounding anywhere. The test
`test_constriction_model_is_the_integer_table` probes every CDF boundary through the decoder to
hold constriction to this. ANS itself is integer arithmetic only; ans_ref.py restates the decoder
in plain Python (the spec for device ports) and is tested equal to constriction.
"""
import numpy as np

import constriction

from .prior import PRECISION_BITS, check_prior

_ANS_PRECISION = 24  # constriction.stream.stack.AnsCoder's models use 24-bit probabilities


class EntropyError(ValueError):
    """A payload that does not decode to the expected symbols."""


def channel_models(table: np.ndarray) -> list:
    """One constriction Categorical per channel whose CDF is exactly the integer table row."""
    table = check_prior(table, PRECISION_BITS)
    if PRECISION_BITS != _ANS_PRECISION:
        raise EntropyError(f"prior precision {PRECISION_BITS} differs from the coder's {_ANS_PRECISION}")
    # f - 1 as float64: exact small integers, see the module docstring.
    return [constriction.stream.model.Categorical(row.astype(np.float64) - 1.0, perfect=False) for row in table]


def encode_symbols(symbols: np.ndarray, table: np.ndarray) -> bytes:
    """symbols (C, ...) integers in [0, L) -> payload bytes (little-endian uint32 words)."""
    s = np.asarray(symbols)
    num_channels, num_centers = np.asarray(table).shape
    if s.ndim < 1 or s.shape[0] != num_channels:
        raise EntropyError(f"symbols of shape {s.shape} do not have the prior's {num_channels} channels")
    if s.size and (s.min() < 0 or s.max() >= num_centers):
        raise EntropyError(f"symbol outside [0, {num_centers})")
    flat = s.reshape(num_channels, -1).astype(np.int32)
    models = channel_models(table)
    coder = constriction.stream.stack.AnsCoder()
    for c in reversed(range(num_channels)):  # a stack: push the last channel first
        coder.encode_reverse(flat[c], models[c])
    return coder.get_compressed().astype("<u4").tobytes()


def decode_symbols(payload: bytes, table: np.ndarray, shape) -> np.ndarray:
    """payload bytes -> symbols int64 of `shape` (C, ...); EntropyError if the payload does not fit."""
    shape = tuple(int(d) for d in shape)
    num_channels = np.asarray(table).shape[0]
    if not shape or shape[0] != num_channels:
        raise EntropyError(f"symbol shape {shape} does not have the prior's {num_channels} channels")
    if len(payload) % 4:
        raise EntropyError(f"payload length {len(payload)} is not a whole number of 32-bit words")
    words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
    models = channel_models(table)
    per_channel = int(np.prod(shape[1:], dtype=np.int64))
    try:
        coder = constriction.stream.stack.AnsCoder(words)
        out = np.stack([coder.decode(models[c], per_channel) for c in range(num_channels)])
    except (ValueError, RuntimeError, OverflowError) as e:
        raise EntropyError(f"entropy decoding failed: {str(e).splitlines()[0]}") from None
    if not coder.is_empty():  # an exact stream is consumed to the last bit
        raise EntropyError("payload holds data beyond the coded symbols")
    return out.astype(np.int64).reshape(shape)
