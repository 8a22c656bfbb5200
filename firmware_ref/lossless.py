"""Lossless PCM coding with an integer discrete flow: the stream layout, encode and decode, integers only.

The flow (toolkit/models/idf_audio.py trains it): each level splits the signal x into its even samples
a = x[0::2] and odd samples b = x[1::2] and applies the additive coupling z = b - mu(a), a factor-out:
z is coded, the level recurses on a. After K levels the coarse signal is coded by first differences.
mu(a) and the coding scale index s(a) of every z come from one integer program (inputs a0..a{K-1},
outputs mu{l}, scale{l}: int16 and an index in [0, S)), the same on every engine; the decoder inverts
the flow level by level, coarse to fine, b = z + mu(a), so it needs the exact mu of the encoder.
With P > 1 predictors (meta lossless.predictors) mu{l} has P channels, one prediction each, and every
block of `block` odd samples names the one it uses (the encoder picks the cheapest).

Coding a residual z (an integer in [-65535, 65535]) with scale index s: row s of the program's
frequency table (meta lossless.freq, S rows of 2Q + 1 entries summing to 2**P: a discretized logistic
of scale 2**(s/4 - 2) over bins of width 2**shift[s], the last entry the escape) codes the bin
q = z >> shift[s] when -Q <= q < Q, then z - (q << shift[s]) follows as shift[s] raw bits; otherwise
the escape, then z + 65535 as 17 raw bits. The tables are data in the program: no decoder computes a
logistic. Stream payload (rans.py), per channel in turn:
  4 raw bits: wasted low bits w (every sample of the channel is a multiple of 2**w; they are shifted out)
  coarse signal x_K (ceil(n / 2**K) samples), in blocks of B: the block's scale index (6 raw bits), then
  its first differences x_K[i] - x_K[i - 1] (x_K[-1] = 0) with that row;
  then levels K-1 .. 0: per block of `block` odd samples, its predictor index (ceil(log2 P) raw bits, none
  when P = 1) and its mode (3 raw bits): ZERO_BLOCK (every z of the block is 0, nothing more is coded), or an
  index into SCALE_OFFSETS, then the z of each odd sample, in order, each with the row of
  clip(s + offset, 0, 63), s its predicted scale index. The encoder picks the cheapest predictor and mode per
  block: the offset corrects the learned scale where the signal is not what it was trained on (a much
  quieter or louder recording), the zero block codes digital silence in 3 bits per block.
A decoded sample outside int16, or a payload with words left over, is a corrupt stream. The decoder's
work is bounded by the payload (rans.py): every sample costs at least the cheapest row's cost, or, in a
zero block, its share of the block's 3 mode bits (block <= MAX_BLOCK: at least 1/256 bit a sample).
"""
from dataclasses import dataclass
from typing import Callable, List, Tuple

import numpy as np

from .ans import COST_BITS, payload_budget
from .program import Program, ProgramError
from .rans import RansDecoder, RansEncoder, row_tables

ESCAPE_BITS = 17            # z + 65535 in [0, 131070]
ESCAPE_OFFSET = 65535
SCALE_BITS = 6              # a coarse block's scale index
WASTED_BITS = 4             # a channel's wasted low bits, 0..15
SCALE_OFFSETS = (0, -4, -8, -16, -32, 4, 8)   # per level block, added to the predicted scale index (x 2^(1/4))
ZERO_BLOCK = len(SCALE_OFFSETS)               # the block's residuals are all 0
MODE_BITS = 3
MAX_BLOCK = MODE_BITS << COST_BITS            # 768: a zero block still costs >= 1/256 bit per sample it yields
LevelEngine = Callable[[int, np.ndarray], Tuple[np.ndarray, np.ndarray]]   # (level, a (n,)) -> (mu (P, n), s (n,))


def scale_sigma(s) -> np.ndarray:
    """The logistic scale of index s: 2**(s/4 - 2) (0.25 ... 2**13.75 for 64 indices)."""
    return np.exp2(np.asarray(s, dtype=np.float64) / 4 - 2)


def scale_shift(s) -> np.ndarray:
    """Bin width 2**shift of index s: at most a quarter of the scale, at least 1."""
    return np.maximum(np.asarray(s, dtype=np.int64) // 4 - 4, 0)


def build_tables(scales: int = 64, bins: int = 64, precision: int = 16, max_share_log2: int = 6) -> np.ndarray:
    """(scales, 2 * bins + 1) uint32 rows summing to 2**precision (export time, float64; decoders read them).

    Every entry >= 1, none above 2**P - 2**(P - max_share_log2): every symbol costs > 0.02 bit, which
    bounds a forged stream's work."""
    total = 1 << precision
    rows = []
    for s in range(scales):
        sigma, k = float(scale_sigma(s)), int(scale_shift(s))
        edges = (np.arange(-bins, bins + 1, dtype=np.float64) * (1 << k)) - 0.5
        cdf = 1.0 / (1.0 + np.exp(-edges / sigma))
        p = np.append(np.diff(cdf), cdf[0] + 1.0 - cdf[-1])             # bins, then the tails: the escape
        f = np.maximum(np.floor(p * (total - (2 * bins + 1))), 0).astype(np.int64) + 1
        cap = total - (total >> max_share_log2)
        f[np.argmax(f)] -= max(f.max() - cap, 0)
        f[np.argmax(f)] += total - f.sum()                                # the rest to the mode
        if f.max() > cap:                                                 # the mode over the cap: spread it
            over = f.max() - cap
            f[np.argmax(f)] -= over
            f[np.argsort(f)[-2]] += over
        rows.append(f)
    table = np.asarray(rows, dtype=np.uint32)
    assert np.all(table.sum(1, dtype=np.int64) == total) and table.min() >= 1
    return table


@dataclass(frozen=True)
class LosslessSpec:
    """The lossless part of a program: levels, table geometry, the tables as coder lists."""
    levels: int
    predictors: int
    precision: int
    bins: int
    block: int
    shift: Tuple[int, ...]
    cdfs: list
    costs: list

    @classmethod
    def of(cls, prog: Program) -> "LosslessSpec":
        m = prog.meta.get("lossless") if isinstance(prog.meta, dict) else None
        if not isinstance(m, dict):
            raise ProgramError("not a lossless program (no meta.lossless)")
        try:
            levels, precision, bins, block = (int(m[k]) for k in ("levels", "precision_bits", "bins", "block"))
        except (KeyError, TypeError, ValueError):
            raise ProgramError("meta.lossless needs integer levels, precision_bits, bins, block") from None
        freq = prog.arrays.get("lossless.freq")
        predictors = m.get("predictors", 1)
        if not (1 <= levels <= 16 and 8 <= precision <= 24 and 1 <= bins <= 4096 and 1 <= block <= MAX_BLOCK) \
                or not isinstance(predictors, int) or not 1 <= predictors <= 256:
            raise ProgramError(f"meta.lossless: levels 1..16, precision_bits 8..24, bins 1..4096, block 1..{MAX_BLOCK}, "
                               f"predictors 1..256")
        if freq is None or freq.dtype != np.uint32 or freq.ndim != 2 or freq.shape[1] != 2 * bins + 1 \
                or freq.shape[0] != 1 << SCALE_BITS or freq.min() < 1 \
                or np.any(freq.sum(1, dtype=np.int64) != 1 << precision):
            raise ProgramError(f"lossless.freq must be ({1 << SCALE_BITS}, 2 * bins + 1) uint32 >= 1 summing to "
                               f"2**precision_bits per row")
        want_in = [f"a{level}" for level in range(levels)]
        want_out = [t for level in range(levels) for t in (f"mu{level}", f"scale{level}")]
        if prog.inputs != want_in or prog.outputs != want_out:
            raise ProgramError(f"a lossless program has inputs {want_in} and outputs {want_out}")
        for level in range(levels):
            if prog.fmt(f"a{level}") != ("int16", 0) or prog.fmt(f"mu{level}") != ("int16", 0) \
                    or prog.fmt(f"scale{level}")[1] != 0:
                raise ProgramError(f"level {level}: a and mu are int16 samples, scale an index at 2^0")
            if prog.tensors[f"mu{level}"]["channels"] != predictors or prog.tensors[f"scale{level}"]["channels"] != 1:
                raise ProgramError(f"level {level}: mu needs {predictors} channel(s) (the predictors), scale one")
        cdfs, costs = row_tables(freq, precision)
        if min(min(row) for row in costs) < 1:
            raise ProgramError("lossless.freq has a row entry so likely it costs nothing: refused (unbounded work)")
        return cls(levels, predictors, precision, bins, block, tuple(int(v) for v in scale_shift(np.arange(len(freq)))),
                   cdfs, costs)


def level_sizes(n: int, levels: int) -> List[int]:
    """[n_0 = n, n_1 = ceil(n / 2), ..., n_K]: the signal's length at each level."""
    sizes = [n]
    for _ in range(levels):
        sizes.append(-(-sizes[-1] // 2))
    return sizes


def wasted_bits(x: np.ndarray) -> int:
    """The most low bits (<= 15) that are zero in every sample (0 for silence)."""
    nz = np.bitwise_or.reduce(np.asarray(x, dtype=np.int64) & 0xFFFF) if len(x) else 0
    return 0 if nz == 0 else min(int((int(nz) & -int(nz)).bit_length() - 1), 15)


def _symbolize(spec: LosslessSpec, z: np.ndarray, s: np.ndarray):
    """Residuals z under scale rows s (broadcast) -> (symbol, raw value, raw bits): the bin q = z >> shift[s]
    and z - (q << shift[s]) in shift[s] raw bits when -Q <= q < Q, else the escape and z + 65535 in 17 bits."""
    shift = np.asarray(spec.shift)[s]
    q = z >> shift
    inside = (q >= -spec.bins) & (q < spec.bins)
    return (np.where(inside, q + spec.bins, 2 * spec.bins), np.where(inside, z - (q << shift), z + ESCAPE_OFFSET),
            np.where(inside, shift, ESCAPE_BITS))


def _put(enc: RansEncoder, spec: LosslessSpec, z: np.ndarray, s: np.ndarray) -> None:
    """Code residuals z (n,), each with its scale row s (n,, or one row for all)."""
    s = np.broadcast_to(s, z.shape)
    sym, raw, bits = _symbolize(spec, z, s)
    for si, symbol, value, k in zip(s.tolist(), sym.tolist(), raw.tolist(), bits.tolist()):
        enc.symbol(spec.cdfs[si], symbol)
        if k:
            enc.raw(value, k)


def _get(dec: RansDecoder, spec: LosslessSpec, s: int) -> int:
    sym = dec.symbol(spec.cdfs[s], spec.costs[s])
    if sym == 2 * spec.bins:
        return dec.raw(ESCAPE_BITS) - ESCAPE_OFFSET
    k = spec.shift[s]
    q = sym - spec.bins
    return (q << k) + (dec.raw(k) if k else 0)


def split_levels(x: np.ndarray, levels: int) -> List[np.ndarray]:
    """[x_0 = x, x_1 = x_0[0::2], ..., x_K]."""
    xs = [np.asarray(x, dtype=np.int64)]
    for _ in range(levels):
        xs.append(xs[-1][0::2])
    return xs


def _level_outputs(engine: LevelEngine, level: int, a: np.ndarray, count: int, predictors: int):
    """-> (mu (P, count), s (count,)) int64: the level's program outputs, checked."""
    if count == 0:   # no odd samples at this level (signals of 0 or 1 samples): nothing to run
        return np.zeros((predictors, 0), np.int64), np.zeros(0, np.int64)
    mu, s = engine(level, a.astype(np.int16))
    mu, s = np.asarray(mu, dtype=np.int64).reshape(predictors, -1), np.asarray(s, dtype=np.int64).reshape(-1)
    if mu.shape[1] < count or len(s) < count or s[:count].min() < 0 or s[:count].max() >= 1 << SCALE_BITS:
        raise ProgramError(f"level {level}: the program gave {mu.shape[1]} predictions for {count} samples "
                           f"(or scale indices outside [0, {1 << SCALE_BITS}))")
    return mu[:, :count], s[:count]


def offset_rows(s: np.ndarray, offsets=SCALE_OFFSETS) -> np.ndarray:
    """(len(offsets), n): the scale rows of a block under each offset, clip(s + offset, 0, 63)."""
    return np.clip(np.asarray(s, dtype=np.int64)[None, :] + np.asarray(offsets)[:, None], 0, (1 << SCALE_BITS) - 1)


def index_bits(predictors: int) -> int:
    return (predictors - 1).bit_length()


def _code_costs(spec: LosslessSpec, z: np.ndarray, s: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """Cost estimates (1/256 bit) of residuals z (..., n) under scale rows s (broadcast): what the encoder minimizes."""
    sym, _, bits = _symbolize(spec, z, s)
    return costs[s, sym] + (bits << COST_BITS)


def encode_channels(spec: LosslessSpec, samples: np.ndarray, engine: LevelEngine) -> bytes:
    """int16 samples (channels, n) -> payload bytes."""
    enc = RansEncoder(spec.precision)
    costs = np.asarray(spec.costs, dtype=np.int64)
    for x in np.asarray(samples, dtype=np.int64):
        w = wasted_bits(x)
        enc.raw(w, WASTED_BITS)
        xs = split_levels(x >> w, spec.levels)
        coarse = xs[-1]
        deltas = np.diff(coarse, prepend=0)
        for start in range(0, len(coarse), spec.block):
            d = deltas[start:start + spec.block]
            s = _best_block_scale(spec, d, costs)
            enc.raw(s, SCALE_BITS)
            _put(enc, spec, d, np.int64(s))
        for level in range(spec.levels - 1, -1, -1):
            a, b = xs[level + 1], xs[level][1::2]
            mu, s = _level_outputs(engine, level, a, len(b), spec.predictors)
            z = b[None, :] - mu
            for start in range(0, len(b), spec.block):
                end = min(start + spec.block, len(b))
                zero = np.flatnonzero(~np.any(z[:, start:end], axis=1))
                if zero.size:
                    p, o = int(zero[0]), ZERO_BLOCK
                else:
                    rows = offset_rows(s[start:end])                                  # (offsets, n)
                    cost = _code_costs(spec, z[:, None, start:end], rows, costs).sum(-1)   # (P, offsets)
                    p, o = divmod(int(np.argmin(cost)), len(SCALE_OFFSETS))
                if spec.predictors > 1:
                    enc.raw(p, index_bits(spec.predictors))
                enc.raw(o, MODE_BITS)
                if o != ZERO_BLOCK:
                    _put(enc, spec, z[p, start:end], rows[o])
    return enc.payload()


def _best_block_scale(spec: LosslessSpec, d: np.ndarray, costs: np.ndarray) -> int:
    """The scale index whose row codes the block's differences cheapest (code-length estimates)."""
    scales = np.arange(len(spec.shift))
    return int(np.argmin(_code_costs(spec, d[None, :], scales[:, None].repeat(len(d), 1), costs).sum(1)))


def decode_channels(spec: LosslessSpec, payload: bytes, channels: int, n: int, engine: LevelEngine) -> np.ndarray:
    """payload -> int16 samples (channels, n); ValueError (one line) on a corrupt payload."""
    dec = RansDecoder(payload, spec.precision)
    cheapest = min(min(min(row) for row in spec.costs), (MODE_BITS << COST_BITS) // spec.block)
    if channels * n * cheapest > payload_budget(len(dec.words) + 2):
        raise ValueError(f"payload of {len(payload)} bytes cannot carry {channels} x {n} samples")
    sizes = level_sizes(n, spec.levels)
    out = np.zeros((channels, n), dtype=np.int16)
    for c in range(channels):
        w = dec.raw(WASTED_BITS)
        coarse, prev = [], 0
        while len(coarse) < sizes[-1]:
            s = dec.raw(SCALE_BITS)
            for _ in range(min(spec.block, sizes[-1] - len(coarse))):
                prev += _get(dec, spec, s)
                coarse.append(prev)
        x = _checked(coarse, w, "coarse")
        for level in range(spec.levels - 1, -1, -1):
            count = sizes[level] - len(x)
            mu, s = _level_outputs(engine, level, x, count, spec.predictors)
            b = []
            for start in range(0, count, spec.block):
                p = dec.raw(index_bits(spec.predictors)) if spec.predictors > 1 else 0
                if p >= spec.predictors:
                    raise ValueError(f"corrupt stream: predictor {p} of {spec.predictors}")
                mode, end = dec.raw(MODE_BITS), min(start + spec.block, count)
                if mode == ZERO_BLOCK:
                    b += mu[p, start:end].tolist()   # paid for by the mode's 3 bits: see MAX_BLOCK
                    continue
                if mode > ZERO_BLOCK:
                    raise ValueError(f"corrupt stream: block mode {mode}")
                rows = offset_rows(s[start:end], (SCALE_OFFSETS[mode],))[0].tolist()
                b += [m + _get(dec, spec, si) for m, si in zip(mu[p, start:end].tolist(), rows)]
            full = np.empty(sizes[level], dtype=np.int64)
            full[0::2], full[1::2] = x, _checked(b, w, f"level {level}")
            x = full
        out[c] = x << w
    dec.finish()
    return out


def _checked(values, w: int, where: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.int64)
    lo, hi = -(1 << 15) >> w, ((1 << 15) - 1) >> w
    if v.size and (v.min() < lo or v.max() > hi):
        raise ValueError(f"corrupt stream: {where} decodes to samples outside 16 bits")
    return v
