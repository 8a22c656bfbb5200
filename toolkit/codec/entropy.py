"""Entropy coding of latent symbols with constriction's ANS coder and the integer prior table.

Stream: symbols (C, ...) are coded channel by channel, row-major inside a channel, each channel
with its own categorical model from the (C, L) frequency table (rows sum to 2**24, see prior.py),
or, with a (C, K, L) context table (context.py), each symbol with its context's row.
The payload is constriction's AnsCoder word stack (64-bit state, 32-bit words, 24-bit
probabilities) written as little-endian uint32 words; decoding pops channel 0 first. Sealed
payloads (bitstream version 2) start the coder at state 2**32 (the words [0, 1]) instead of 0, so
every symbol, symbol 0 included, costs its code length and the decoder can bound its work by the
payload's size (firmware_ref/ans.py); the decoder must end at that state.

Why decoding is deterministic across machines: constriction's `Categorical(p, perfect=False)`
builds its CDF as `left_cdf[i] = as_int(sum_{j<i} p_j * scale) + i` with
`scale = (2**24 - L) / sum(p)` (fast_quantized_cdf in constriction's categorical.rs). We pass
`p_j = f_j - 1` as float64: small integers, so every sum is exact, `scale` is exactly 1.0 and
`left_cdf[i] = sum_{j<i} f_j` -- the integer table itself, with no rounding anywhere. The test
`test_constriction_model_is_the_integer_table` probes every CDF boundary through the decoder to
hold constriction to this. ANS itself is integer arithmetic only; firmware_ref/ans.py restates the decoder
in plain Python (the spec for device ports) and is tested equal to constriction. Decoding
bitstreams goes through firmware_ref (one decode path); decode_symbols here is the cross-check.
"""
import numpy as np

import constriction

from .context import row_contexts, symbol_frequencies
from .prior import PRECISION_BITS, check_prior

SEAL_WORDS = np.array([0, 1], dtype=np.uint32)  # a stack whose state is 2**32: what sealed coding starts from


def _coder(sealed: bool):
    return constriction.stream.stack.AnsCoder(SEAL_WORDS.copy()) if sealed else constriction.stream.stack.AnsCoder()


class EntropyError(ValueError):
    """A payload that does not decode to the expected symbols."""


def _check(table: np.ndarray) -> np.ndarray:
    return check_prior(table, PRECISION_BITS)  # constriction's AnsCoder codes 24-bit models: ans.PRECISION


def channel_models(table: np.ndarray) -> list:
    """One constriction Categorical per channel whose CDF is exactly the integer table row."""
    # f - 1 as float64: exact small integers, see the module docstring.
    return [constriction.stream.model.Categorical(row.astype(np.float64) - 1.0, perfect=False) for row in _check(table)]


def _family():
    """Per-symbol rows of a context table; the same exact f - 1 construction (constriction's lazy model)."""
    return constriction.stream.model.Categorical(perfect=False)


def _check_shape(shape, table: np.ndarray) -> None:
    if len(shape) < 1 or shape[0] != table.shape[0]:
        raise EntropyError(f"symbols of shape {tuple(shape)} do not have the prior's {table.shape[0]} channels")
    if table.ndim == 3 and len(shape) != 3:
        raise EntropyError(f"a context prior codes (C, h, w) latents, not shape {tuple(shape)}")


def encode_symbols(symbols: np.ndarray, table: np.ndarray, sealed: bool = True) -> bytes:
    """symbols (C, ...) integers in [0, L) -> payload bytes (little-endian uint32 words); sealed: start at 2**32."""
    table = _check(table)
    s = np.asarray(symbols)
    _check_shape(s.shape, table)
    num_channels, num_centers = table.shape[0], table.shape[-1]
    if s.size and (s.min() < 0 or s.max() >= num_centers):
        raise EntropyError(f"symbol outside [0, {num_centers})")
    flat = s.reshape(num_channels, -1).astype(np.int32)
    coder = _coder(sealed)
    if table.ndim == 3:  # every symbol with its context's row; the whole stream in one call
        rows = symbol_frequencies(s, table).astype(np.float64) - 1.0
        if flat.size:
            coder.encode_reverse(flat.ravel(), _family(), rows.reshape(-1, num_centers))
        return coder.get_compressed().astype("<u4").tobytes()
    models = channel_models(table)
    for c in reversed(range(num_channels)):  # a stack: push the last channel first
        coder.encode_reverse(flat[c], models[c])
    return coder.get_compressed().astype("<u4").tobytes()


def decode_symbols(payload: bytes, table: np.ndarray, shape, sealed: bool = True) -> np.ndarray:
    """payload bytes -> symbols int64 of `shape` (C, ...); EntropyError if the payload does not fit."""
    table = _check(table)
    shape = tuple(int(d) for d in shape)
    _check_shape(shape, table)
    if len(payload) % 4:
        raise EntropyError(f"payload length {len(payload)} is not a whole number of 32-bit words")
    words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
    try:
        coder = constriction.stream.stack.AnsCoder(words)
        out = _decode_context(coder, table, shape) if table.ndim == 3 else _decode_channels(coder, table, shape)
    except (ValueError, RuntimeError, OverflowError) as e:
        raise EntropyError(f"entropy decoding failed: {str(e).splitlines()[0]}") from None
    done = np.array_equal(coder.get_compressed(), SEAL_WORDS) if sealed else coder.is_empty()
    if not done:  # an exact stream is consumed to the last bit (to the seal when sealed)
        raise EntropyError("payload holds data beyond the coded symbols")
    return out


def _decode_channels(coder, table, shape) -> np.ndarray:
    models = channel_models(table)
    per_channel = int(np.prod(shape[1:], dtype=np.int64))
    return np.stack([coder.decode(models[c], per_channel) for c in range(shape[0])]).astype(np.int64).reshape(shape)


def _decode_context(coder, table, shape) -> np.ndarray:
    """Row by row: a row's contexts depend only on rows decoded before it."""
    out = np.zeros(shape, dtype=np.int64)
    rows = table.astype(np.float64) - 1.0
    family = _family()
    if shape[2] == 0:
        return out
    for c in range(shape[0]):
        for i in range(shape[1]):
            ctx = row_contexts(out, c, i, table.shape[-1])
            out[c, i] = coder.decode(family, rows[c, ctx])
    return out
