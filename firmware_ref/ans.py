"""ANS decoder in plain integer Python: the payload format of toolkit/codec/entropy.py, without constriction.

It is the specification a device decoder ports (C, firmware): it must equal constriction's
AnsCoder symbol for symbol, which test_codec_entropy checks on valid and garbage streams.
Both priors are covered: per-channel (C, L) tables and context (C, K, L) tables.

State: 64-bit integer; words: 32-bit, read from the END of the little-endian word array (a stack).
  init:   no words -> state 0. Else the last word w (w == 0 is invalid), then while words remain and
          state < 2**32: state = (state << 32) | next word from the end.
  symbol: q = state & (2**24 - 1); find s with cdf[s] <= q < cdf[s + 1] (cdf = prefix sums of the
          channel's frequency row, cdf[0] = 0, cdf[L] = 2**24);
          state = (state >> 24) * freq[s] + (q - cdf[s]);
          if state < 2**32 and words remain: state = (state << 32) | next word from the end.
  end:    a complete stream leaves no words and state 0.
Channel 0 is decoded first, each channel's h*w symbols in row-major order. With a (C, K, L)
context table the row of channel c is table[c, up * L + prev] (context.py: up = the symbol above,
L in row 0; prev = the same position in channel c - 1, 0 in channel 0).
Errors (a payload not of whole words, a final zero word) are ValueError.
"""
import numpy as np

PRECISION = 24
_WORD = 32


def decode_symbols(payload: bytes, table: np.ndarray, shape):
    """-> (symbols int64 of shape, complete) where complete means the stream ended exactly (no data left)."""
    if len(payload) % 4:
        raise ValueError(f"payload length {len(payload)} is not a whole number of 32-bit words")
    words = np.frombuffer(payload, dtype="<u4").tolist()
    table = np.asarray(table, dtype=np.int64)
    contextual = table.ndim == 3
    num_centers = table.shape[-1]
    rows = table.reshape(-1, num_centers)
    cdfs = [np.concatenate([[0], np.cumsum(row)]).tolist() for row in rows]
    freqs = rows.tolist()
    mask = (1 << PRECISION) - 1
    state = 0
    if words:
        state = words.pop()
        if state == 0:
            raise ValueError("ANS stream ends in a zero word")
        while words and state < 1 << _WORD:
            state = (state << _WORD) | words.pop()
    shape = tuple(int(d) for d in shape)
    out = np.zeros(shape, dtype=np.int64)
    flat = out.reshape(shape[0], -1)
    width = shape[-1] if len(shape) > 1 else 1
    for c in range(shape[0]):
        for n in range(flat.shape[1]):
            if contextual:
                i, j = divmod(n, width)
                up = int(flat[c, n - width]) if i > 0 else num_centers
                prev = int(flat[c - 1, n]) if c > 0 else 0
                r = c * table.shape[1] + up * num_centers + prev
            else:
                r = c
            cdf, freq = cdfs[r], freqs[r]
            q = state & mask
            s = int(np.searchsorted(cdf, q, side="right")) - 1  # cdf[s] <= q < cdf[s + 1]
            state = (state >> PRECISION) * freq[s] + (q - cdf[s])
            if state < 1 << _WORD and words:
                state = (state << _WORD) | words.pop()
            flat[c, n] = s
    return out, (not words and state == 0)
