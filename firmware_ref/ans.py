"""ANS decoder in plain integer Python: the payload format of toolkit/codec/entropy.py, without constriction.

It is the specification a device decoder ports (C, firmware): it must equal constriction's
AnsCoder symbol for symbol, which test_codec_entropy checks on valid and garbage streams.
Both priors are covered: per-channel (C, L) tables and context (C, K, L) tables.

State: 64-bit integer; words: 32-bit, read from the END of the little-endian word array (a stack).
  init:   no words -> state 0. Else the last word w (w == 0 is invalid), then while words remain and
          state < 2**32: state = (state << 32) | next word from the end.
  symbol: q = state & (2**P - 1); find s with cdf[s] <= q < cdf[s + 1] (cdf = prefix sums of the
          channel's frequency row, cdf[0] = 0, cdf[L] = 2**P; P = the program's prior precision);
          state = (state >> P) * freq[s] + (q - cdf[s]);
          if state < 2**32 and words remain: state = (state << 32) | next word from the end.
  end:    sealed streams (bitstream version 2) end with no words left and state SEAL = 2**32, where
          the encoder started; version 1 streams started from state 0 and end there.
Channel 0 is decoded first, each channel's h*w symbols in row-major order. With a (C, K, L)
context table the row of channel c is table[c, up * L + prev] (context.py: up = the symbol above,
L in row 0; prev = the same position in channel c - 1, 0 in channel 0).

Bounded work (sealed streams). An encoder that starts at 2**32 spends at least the symbols' code
length, less a rounding loss under 2**-8 * log2(e) bit per symbol, plus 32 bits; so symbols whose
code length exceeds the payload's bits can only come from a forged stream. code_costs gives each
symbol a cost in 1/256 bit, computed in integers (a ceil log2 table) and never above its true code
length less 2/256 bit; decoding refuses a stream as soon as the decoded costs exceed
256 * (32 * words - 32), and before decoding when even the cheapest symbols would. Version 1
streams (state 0 at the start, where symbol 0 can be free) get no such bound: a non-empty latent
from an empty payload is refused, the rest is bounded by the caller's pixel limit.
Every refusal is a ValueError with a one-line message.
"""
from bisect import bisect_right

import numpy as np

PRECISION = 24   # what the toolkit's encoder codes at (constriction's 24-bit models); decoders take the program's
WORD = 32
SEAL = 1 << WORD
COST_BITS = 8                      # costs in units of 2**-8 bit
_RENORM_MARGIN = 2                 # units: above the encoder's worst rounding loss (1.44 units per symbol)
# ceil(256 * log2(m / 128)) for m = 128..256, exact (integer comparison 2**k * 128**256 >= m**256).
_LOG2_CEIL = [next(k for k in range(257) if (1 << k) * 128 ** 256 >= m ** 256) for m in range(128, 257)]


def log2_ceil_q8(f: int) -> int:
    """An integer >= 256 * log2(f) (f >= 1), off by < 4 units: an 8-bit mantissa rounded up, then the table."""
    n = f.bit_length() - 1
    if n <= 7:
        m = f << (7 - n)
    else:
        m = f >> (n - 7)
        if m << (n - 7) != f:
            m += 1  # round the mantissa up: the result stays an upper bound
    return 256 * n + _LOG2_CEIL[m - 128]


def code_costs(table: np.ndarray, precision: int = PRECISION) -> np.ndarray:
    """Per-entry lower bound of the code length in 1/256 bit: max(256 P - log2_ceil_q8(f) - margin, 0)."""
    flat = [max((precision << COST_BITS) - log2_ceil_q8(int(f)) - _RENORM_MARGIN, 0) for f in np.ravel(table)]
    return np.asarray(flat, dtype=np.int64).reshape(np.shape(table))


def payload_budget(num_words: int) -> int:
    """The most code length (1/256 bit) a sealed payload of num_words words can carry."""
    return max(WORD * num_words - WORD, 0) << COST_BITS


def minimum_cost(costs: np.ndarray, shape) -> int:
    """The code length of the cheapest possible latent of `shape`, given code_costs of its table: every
    symbol the cheapest of its channel."""
    per_channel = int(np.prod(shape[1:], dtype=np.int64))
    return int(costs.reshape(costs.shape[0], -1).min(axis=1).sum()) * per_channel


def decode_symbols(payload: bytes, table: np.ndarray, shape, precision: int = PRECISION, sealed: bool = True):
    """-> symbols int64 of `shape`: the stream decoded, every work rule and the exact end checked (ValueError)."""
    words = _words(payload)
    shape = tuple(int(d) for d in shape)
    count = int(np.prod(shape, dtype=np.int64))
    costs, budget = None, 0
    if sealed:
        if len(words) < 2:
            raise ValueError(f"payload of {len(payload)} bytes cannot carry a sealed ANS state (8 bytes)")
        budget, costs = payload_budget(len(words)), code_costs(table, precision)
        if minimum_cost(costs, shape) > budget:
            raise ValueError(f"payload of {len(payload)} bytes cannot carry {count} symbols under this prior")
    elif count and not words:
        raise ValueError("empty payload for a non-empty latent")
    out, state, left = _decode(words, table, shape, precision,
                               None if costs is None else costs.reshape(-1, table.shape[-1]).tolist(), budget)
    if left or state != (SEAL if sealed else 0):
        raise ValueError("payload holds data beyond the coded symbols")
    return out


def decode_raw(payload: bytes, table: np.ndarray, shape, precision: int = PRECISION):
    """-> (symbols, final state, words left) with no checks: the cross-check against constriction."""
    return _decode(_words(payload), table, tuple(int(d) for d in shape), precision, None, 0)


def _words(payload: bytes) -> list:
    if len(payload) % 4:
        raise ValueError(f"payload length {len(payload)} is not a whole number of 32-bit words")
    return np.frombuffer(payload, dtype="<u4").tolist()


def _decode(words: list, table: np.ndarray, shape, precision: int, costs, budget: int):
    """The decoding loop; with costs, refuse once the decoded code length passes budget or the state runs dry."""
    table = np.asarray(table, dtype=np.int64)
    contextual = table.ndim == 3
    num_centers = table.shape[-1]
    rows = table.reshape(-1, num_centers)
    cdfs = [np.concatenate([[0], np.cumsum(row)]).tolist() for row in rows]
    freqs = rows.tolist()
    mask = (1 << precision) - 1
    state = 0
    if words:
        state = words.pop()
        if state == 0:
            raise ValueError("ANS stream ends in a zero word")
        while words and state < SEAL:
            state = (state << WORD) | words.pop()
    out = np.zeros(shape, dtype=np.int64)
    flat = out.reshape(shape[0], -1)
    width = shape[-1] if len(shape) > 1 else 1
    spent = 0
    for c in range(shape[0]):
        row_c = flat[c]
        for n in range(flat.shape[1]):
            if contextual:
                up = int(row_c[n - width]) if n >= width else num_centers
                prev = int(flat[c - 1, n]) if c > 0 else 0
                r = c * table.shape[1] + up * num_centers + prev
            else:
                r = c
            cdf, freq = cdfs[r], freqs[r]
            q = state & mask
            s = bisect_right(cdf, q) - 1  # cdf[s] <= q < cdf[s + 1]
            state = (state >> precision) * freq[s] + (q - cdf[s])
            if state < SEAL and words:
                state = (state << WORD) | words.pop()
            row_c[n] = s
            if costs is not None:
                spent += costs[r][s]
                if spent > budget or (state < SEAL and not words):
                    raise ValueError("payload exhausted before the header's latent was decoded")
    return out, state, len(words)
