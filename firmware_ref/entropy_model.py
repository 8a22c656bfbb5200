"""The learned entropy model: each latent symbol's distribution from an integer program over what is decoded.

A (C, h, w) latent of L-center symbols is coded in T = C * P steps, t = c * P + p: channel c's positions
of phase p, in row-major order, where the phase of (i, j) is 0 for P = 1, (i + j) % 2 for P = 2 (a
checkerboard) and [[0, 2], [3, 1]][i % 2][j % 2] for P = 4. Before step t the decoder knows every
channel < c and channel c's phases < p. The entropy program (its own program.json / program.npz, in the
export folder's entropy/) maps the context
    ctx[0, k, i, j] = symbol[k, i, j] + 1 where known, else 0                  (int8, C channels, frac 0)
to logits (int8 at 2^-LOGIT_FRAC, clipped to LOGIT_CLIP, T * L channels); step t reads channels
[t * L, (t + 1) * L). A symbol's frequency row (rows_from_logits, integers only, PRECISION bits):
    d_i = max(q) - q_i (0..127),  e_i = EXP2[d_i] = nearest integer to 2^(16 - d_i / 16),
    f_i = 1 + (e_i * (2^PRECISION - L)) // sum(e),  the units left over go to the first largest q.
So every engine that runs the program bit-exactly (reference, TVM) yields the same rows on every machine.
The payload is rans.py's (sealed at 2**32), symbols pushed in decoding order; work is bounded as in ans.py:
the cheapest row any logits can give (most_peaked_row) fixes the shortest code a latent of the header's
shape can have, and a payload shorter than that is refused before the program runs even once.
"""
from typing import Callable, Iterator, List, Tuple

import numpy as np

from .ans import code_costs, payload_budget
from .program import Program, ProgramError
from .rans import RansDecoder, RansEncoder, row_cdfs, row_tables

LOGIT_FRAC = 4
LOGIT_CLIP = (-64, 63)
PRECISION = 16
PHASES = (1, 2, 4)
ENTROPY_DIR = "entropy"   # the entropy program's folder inside an export folder
_EXP_BITS = 16

Engine = Callable[[np.ndarray], np.ndarray]   # ctx (1, C, h, w) int8 -> logits (1, T * L, h, w) int8


def _nearest_exp2(d: int) -> int:
    """The integer nearest to 2^(16 - d/16), ties up, in integers: the largest m with (2m - 1)^16 <= 2^(272 - d)."""
    lo, hi = 0, 1 << (_EXP_BITS + 1)
    while lo < hi:
        m = (lo + hi + 1) // 2
        if (2 * m - 1) ** 16 <= 1 << (16 * (_EXP_BITS + 1) - d):
            lo = m
        else:
            hi = m - 1
    return lo


EXP2 = np.array([_nearest_exp2(d) for d in range(LOGIT_CLIP[1] - LOGIT_CLIP[0] + 1)], dtype=np.int64)


def phase_map(h: int, w: int, phases: int) -> np.ndarray:
    if phases not in PHASES:
        raise ProgramError(f"entropy model phases must be one of {PHASES}, got {phases!r}")
    i, j = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    if phases == 1:
        return np.zeros((h, w), dtype=np.int64)
    if phases == 2:
        return (i + j) % 2
    return np.array([[0, 2], [3, 1]])[i % 2, j % 2]


def rows_from_logits(q: np.ndarray, precision: int = PRECISION) -> np.ndarray:
    """(n, L) integer logits in LOGIT_CLIP -> (n, L) int64 frequencies >= 1 summing to 2**precision."""
    q = np.asarray(q, dtype=np.int64)
    if q.size and (q.min() < LOGIT_CLIP[0] or q.max() > LOGIT_CLIP[1]):
        raise ProgramError(f"entropy logits outside {LOGIT_CLIP}")
    e = EXP2[q.max(axis=1, keepdims=True) - q]
    free = (1 << precision) - q.shape[1]
    f = 1 + (e * free) // e.sum(axis=1, keepdims=True)
    f[np.arange(len(q)), q.argmax(axis=1)] += (1 << precision) - f.sum(axis=1)
    return f


def most_peaked_row(num_centers: int, precision: int = PRECISION) -> np.ndarray:
    """The row with the cheapest symbol any logits can give: one at the top of LOGIT_CLIP, the rest at the bottom."""
    q = np.full((1, num_centers), LOGIT_CLIP[0])
    q[0, 0] = LOGIT_CLIP[1]
    return rows_from_logits(q, precision)[0]


class LearnedPrior:
    """An entropy program and an engine that runs it: codes (C, h, w) symbols in the order above."""

    def __init__(self, prog: Program, table: np.ndarray, engine: Engine = None):
        """table: the model's (C, L) per-channel prior, which the model hash covers with the program."""
        meta = prog.meta.get("entropy_model") if isinstance(prog.meta, dict) else None
        if not isinstance(meta, dict) or len(prog.inputs) != 1 or len(prog.outputs) != 1:
            raise ProgramError("not an entropy program (one input, one output, meta.entropy_model)")
        self.prog, self.phases = prog, int(meta.get("phases", 0))
        self.channels, self.num_centers = int(meta.get("channels", 0)), int(meta.get("centers", 0))
        out = prog.tensors[prog.outputs[0]]
        if prog.tensors[prog.inputs[0]]["channels"] != self.channels or self.num_centers < 2 or \
                out["channels"] != self.channels * self.phases * self.num_centers or \
                prog.fmt(prog.outputs[0]) != ("int8", LOGIT_FRAC):
            raise ProgramError("entropy program's input / output channels or logit format do not match its meta")
        phase_map(1, 1, self.phases)
        self.table = np.asarray(table)
        if self.table.shape != (self.channels, self.num_centers):
            raise ProgramError(f"the entropy program codes {self.channels} channels of {self.num_centers} symbols, "
                               f"the prior table is {self.table.shape}")
        if engine is None:
            from .decoder import run_program
            engine = lambda ctx: run_program(prog, ctx)[prog.outputs[0]]   # noqa: E731
        self.engine = engine

    @property
    def content_hash(self) -> str:
        return self.prog.content_hash

    def _step_logits(self, known: np.ndarray, t: int) -> np.ndarray:
        q = np.asarray(self.engine(known[None].astype(np.int8)))
        L = self.num_centers
        if q.shape[1:2] != (self.channels * self.phases * L,) or q.shape[2:] != known.shape[1:]:
            raise ProgramError(f"entropy engine returned shape {q.shape}")
        q = np.clip(q[0, t * L:(t + 1) * L], *LOGIT_CLIP)   # the program clips already; an engine must not widen
        return q.reshape(L, -1).T

    def step_rows(self, known: np.ndarray, c: int, p: int, at: np.ndarray) -> np.ndarray:
        """The frequency rows of step (c, p): one per position where `at` (row-major), from what is `known`."""
        return rows_from_logits(self._step_logits(known, c * self.phases + p)[at.ravel()])

    def _check(self, shape) -> None:
        if len(shape) != 3 or shape[0] != self.channels:
            raise ValueError(f"the entropy model codes ({self.channels}, h, w) latents, not shape {tuple(shape)}")

    def rows_of(self, symbols: np.ndarray) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        """Known (C, h, w) symbols -> per coding step (its frequency rows, its symbols), in decoding order: the
        rows the decoder will compute, the T program runs fed with the true symbols."""
        s = np.asarray(symbols, dtype=np.int64)
        self._check(s.shape)
        if s.size and (s.min() < 0 or s.max() >= self.num_centers):
            raise ValueError(f"symbol outside [0, {self.num_centers})")
        phase = phase_map(s.shape[1], s.shape[2], self.phases)
        known = np.zeros(s.shape, dtype=np.int64)
        for c, p in self.steps():
            at = phase == p
            yield self.step_rows(known, c, p, at), s[c][at]
            known[c][at] = s[c][at] + 1

    def encode(self, symbols: np.ndarray) -> bytes:
        """(C, h, w) symbols -> sealed rANS payload."""
        enc = RansEncoder(PRECISION)
        for rows, coded in self.rows_of(symbols):
            for cdf, sym in zip(row_cdfs(rows), coded.tolist()):
                enc.symbol(cdf, sym)
        return enc.payload()

    def steps(self) -> List[tuple]:
        return [(c, p) for c in range(self.channels) for p in range(self.phases)]

    def minimum_cost(self, shape) -> int:
        """1/256 bit: the shortest code a latent of `shape` can have under any logits."""
        return int(code_costs(most_peaked_row(self.num_centers), PRECISION).min()) * int(np.prod(shape, dtype=np.int64))

    def decode(self, payload: bytes, shape) -> np.ndarray:
        """Sealed rANS payload -> (C, h, w) int64 symbols; ValueError (one line) for a payload that cannot hold them."""
        shape = tuple(int(d) for d in shape)
        self._check(shape)
        if len(payload) % 4 == 0 and self.minimum_cost(shape) > payload_budget(len(payload) // 4):
            raise ValueError(f"payload of {len(payload)} bytes cannot carry {int(np.prod(shape))} symbols "
                             f"under any output of the entropy model")
        dec = RansDecoder(payload, PRECISION)
        phase = phase_map(shape[1], shape[2], self.phases)
        known = np.zeros(shape, dtype=np.int64)
        for c, p in self.steps():
            at = phase == p
            cdfs, costs = row_tables(self.step_rows(known, c, p, at), PRECISION)
            known[c][at] = [dec.symbol(cdf, cost) + 1 for cdf, cost in zip(cdfs, costs)]
        dec.finish()
        return known - 1


def load_entropy_program(prog: Program, engine: str = "ref") -> LearnedPrior:
    """The learned prior of an exported image program (its folder's entropy/, hash-checked), run by the reference
    ("ref") or the TVM library entropy/decoder-llvm.so ("tvm")."""
    from .program import PRIOR_KEY, load_program

    meta = prog.meta.get("entropy_model")
    if prog.source is None:
        raise ProgramError("a learned entropy model is read from the program's export folder")
    eprog = load_program(prog.source / ENTROPY_DIR)
    if eprog.content_hash != meta.get("content_hash"):
        raise ProgramError(f"{prog.source / ENTROPY_DIR} is not the entropy program this program was exported with")
    if engine not in ("ref", "tvm"):
        raise ProgramError(f"unknown entropy engine {engine!r}; choose ref or tvm")
    if engine == "tvm":
        lib = eprog.source / "decoder-llvm.so"
        if not lib.is_file():
            raise ProgramError(f"no {lib.name} in {lib.parent}; run bpgan-export with --target llvm")
        loaded = []

        def engine(ctx):   # the library loads on the first step, after the stream passed every check
            if not loaded:
                from bpgan.export.tvm.lower import TvmDecoder
                loaded.append(TvmDecoder(lib))
            return loaded[0](ctx)
    else:
        engine = None
    return LearnedPrior(eprog, prog.arrays[PRIOR_KEY], engine)


def ideal_bits(prior: LearnedPrior, symbols: np.ndarray) -> float:
    """sum -log2(f / 2^PRECISION) of the symbols under the learned rows: the payload's size, less the seal."""
    return float(sum(np.sum(PRECISION - np.log2(rows[np.arange(len(rows)), coded]))
                     for rows, coded in prior.rows_of(symbols)))


__all__ = ["LOGIT_FRAC", "LOGIT_CLIP", "PRECISION", "EXP2", "LearnedPrior", "phase_map", "rows_from_logits",
           "most_peaked_row", "ideal_bits"]
