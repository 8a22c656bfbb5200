"""Reference ANS decoder in plain integer Python: the stream format of entropy.py, without constriction.

It is the specification a device decoder ports (C, firmware): it must equal constriction's
AnsCoder symbol for symbol, which test_codec_entropy checks on valid and garbage streams.

State: 64-bit integer; words: 32-bit, read from the END of the little-endian word array (a stack).
  init:   no words -> state 0. Else the last word w (w == 0 is invalid), then while words remain and
          state < 2**32: state = (state << 32) | next word from the end.
  symbol: q = state & (2**24 - 1); find s with cdf[s] <= q < cdf[s + 1] (cdf = prefix sums of the
          channel's frequency row, cdf[0] = 0, cdf[L] = 2**24);
          state = (state >> 24) * freq[s] + (q - cdf[s]);
          if state < 2**32 and words remain: state = (state << 32) | next word from the end.
  end:    a complete stream leaves no words and state 0.
Channel 0 is decoded first, each channel's h*w symbols in row-major order.
"""
import numpy as np

PRECISION = 24
_WORD = 32


def decode_symbols_ref(payload: bytes, table: np.ndarray, shape):
    """-> (symbols int64 of shape, complete) where complete means the stream ended exactly (no data left)."""
    if len(payload) % 4:
        raise ValueError(f"payload length {len(payload)} is not a whole number of 32-bit words")
    words = np.frombuffer(payload, dtype="<u4").tolist()
    table = np.asarray(table, dtype=np.int64)
    cdfs = [np.concatenate([[0], np.cumsum(row)]).tolist() for row in table]
    mask = (1 << PRECISION) - 1
    state = 0
    if words:
        state = words.pop()
        if state == 0:
            raise ValueError("ANS stream ends in a zero word")
        while words and state < 1 << _WORD:
            state = (state << _WORD) | words.pop()
    shape = tuple(int(d) for d in shape)
    per_channel = int(np.prod(shape[1:], dtype=np.int64))
    out = np.empty((shape[0], per_channel), dtype=np.int64)
    for c in range(shape[0]):
        cdf, freq = cdfs[c], table[c].tolist()
        for i in range(per_channel):
            q = state & mask
            s = int(np.searchsorted(cdf, q, side="right")) - 1  # cdf[s] <= q < cdf[s + 1]
            state = (state >> PRECISION) * freq[s] + (q - cdf[s])
            if state < 1 << _WORD and words:
                state = (state << _WORD) | words.pop()
            out[c, i] = s
    return out.reshape(shape), (not words and state == 0)
