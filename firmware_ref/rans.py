"""A symbol-at-a-time rANS coder in plain integer Python: the lossless streams' payload (lossless.py).

The image and speech latents are coded in one batch by constriction (ans.py is their decoder); a
lossless stream cannot be: which frequency row codes a sample is known only once the coarser samples
are decoded and the level's program has run. So the payload is written by RansEncoder here and read by
RansDecoder, symbol by symbol, in the same order. The word layout is ans.py's (64-bit state, 32-bit
words read from the end of the little-endian array, the state sealed at 2**32), with P-bit
frequencies (the program's meta["lossless"]["precision_bits"]).

  encode (symbols pushed in reverse decoding order), frequency f, cumulative start c:
      if state >= f << (64 - P): emit state & (2**32 - 1); state >>= 32
      state = ((state // f) << P) + state % f + c
  decode: q = state & (2**P - 1); s with cdf[s] <= q < cdf[s + 1];
      state = f * (state >> P) + q - c; if state < 2**32 and words remain: state = (state << 32) | next word
  raw j bits (j <= P): the uniform row f = 2**(P - j), c = value * f: exactly j bits.
The encoder starts at 2**32 and flushes its state as two words, so a decoder ends with no words left
and the state 2**32: anything else is a corrupt stream. Work is bounded as in ans.py: every decoded
symbol adds its code_costs lower bound (1/256 bit), and decoding stops once that passes what the
payload's words can carry.
"""
from bisect import bisect_right
from typing import List, Sequence

import numpy as np

from .ans import COST_BITS, SEAL, WORD, code_costs, payload_budget

_MASK32 = (1 << WORD) - 1


class RansEncoder:
    """Collects (start, freq) pairs in decoding order; payload() codes them in reverse."""

    def __init__(self, precision: int):
        self.precision = precision
        self.ops: List[tuple] = []

    def symbol(self, cdf: Sequence[int], s: int) -> None:
        self.ops.append((cdf[s], cdf[s + 1] - cdf[s]))

    def raw(self, value: int, bits: int) -> None:
        """value in [0, 2**bits), in chunks of at most P bits, high chunk first."""
        while bits > 0:
            j = min(bits, self.precision)
            bits -= j
            f = 1 << (self.precision - j)
            self.ops.append((((value >> bits) & ((1 << j) - 1)) * f, f))

    def payload(self) -> bytes:
        p, state, words = self.precision, SEAL, []
        for start, freq in reversed(self.ops):
            if state >= freq << (64 - p):
                words.append(state & _MASK32)
                state >>= WORD
            state = ((state // freq) << p) + state % freq + start
        words += [state & _MASK32, state >> WORD]
        return np.asarray(words, dtype="<u4").tobytes()


class RansDecoder:
    """Reads a RansEncoder payload symbol by symbol; ValueError (one line) past the payload's capacity."""

    def __init__(self, payload: bytes, precision: int):
        if len(payload) % 4:
            raise ValueError(f"payload length {len(payload)} is not a whole number of 32-bit words")
        self.words = np.frombuffer(payload, dtype="<u4").tolist()
        if len(self.words) < 2:
            raise ValueError(f"payload of {len(payload)} bytes cannot carry a sealed rANS state (8 bytes)")
        self.precision, self.mask = precision, (1 << precision) - 1
        self.budget, self.spent = payload_budget(len(self.words)), 0
        state = self.words.pop()
        if state == 0:
            raise ValueError("rANS stream ends in a zero word")
        while self.words and state < SEAL:
            state = (state << WORD) | self.words.pop()
        self.state = state

    def _advance(self, start: int, freq: int, cost: int) -> None:
        state = freq * (self.state >> self.precision) + (self.state & self.mask) - start
        if state < SEAL and self.words:
            state = (state << WORD) | self.words.pop()
        self.state = state
        self.spent += cost
        if self.spent > self.budget or (state < SEAL and not self.words):   # a valid stream never runs dry
            raise ValueError("payload exhausted before the header's samples were decoded")

    def symbol(self, cdf: Sequence[int], costs: Sequence[int]) -> int:
        q = self.state & self.mask
        s = bisect_right(cdf, q) - 1
        self._advance(cdf[s], cdf[s + 1] - cdf[s], costs[s])
        return s

    def raw(self, bits: int) -> int:
        value = 0
        while bits > 0:
            j = min(bits, self.precision)
            bits -= j
            f = 1 << (self.precision - j)
            v = (self.state & self.mask) // f
            self._advance(v * f, f, j << COST_BITS)
            value = (value << j) | v
        return value

    def finish(self) -> None:
        if self.words or self.state != SEAL:
            raise ValueError("payload holds data beyond the coded samples")


def row_cdfs(freq: np.ndarray) -> list:
    """(rows, L) frequencies -> per row the cumulative list [0, f0, f0 + f1, ..., 2**P] (what symbol() takes)."""
    freq = np.asarray(freq, dtype=np.int64)
    return np.concatenate([np.zeros((len(freq), 1), np.int64), np.cumsum(freq, axis=1)], axis=1).tolist()


def row_tables(freq: np.ndarray, precision: int):
    """(rows, L) frequencies -> (cdf lists, cost lists) for RansEncoder/RansDecoder (costs: ans.code_costs)."""
    return row_cdfs(freq), code_costs(freq, precision).tolist()
