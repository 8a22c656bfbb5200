"""Lossless .bpg streams end to end: PCM <-> bitstream through a lossless program on any engine.

  encode_lossless(prog, samples (channels, n) int16, rate, engine) -> bytes
  decode_lossless(prog, data, engine) -> (Header, samples (channels, n) int16)
Engines: "ref" runs level l's subgraph of the program in NumPy; "tvm" calls the library beside the
program (decoder-llvm.so; the other levels' inputs get one dummy sample); a callable (level, a) -> (mu, s)
is used as is. Every bad stream is one BitstreamError line; the checks that need no decoding come first.
"""
from typing import Dict, List, Union

import numpy as np

from .bitstream import VERSION, BitstreamError, Header, pack, unpack
from .decoder import check_input
from .lossless import LevelEngine, LosslessSpec, decode_channels, encode_channels
from .ops import REGISTRY
from .program import Program, ProgramError

MAX_DECODE_SAMPLES = 1 << 28


def _subgraphs(prog: Program, levels: int) -> List[list]:
    """The ops each level's outputs need, in program order."""
    producer = {op.output: op for op in prog.ops}
    plans = []
    for level in range(levels):
        need, stack = set(), [f"mu{level}", f"scale{level}"]
        while stack:
            t = stack.pop()
            if t in producer and producer[t].name not in need:
                need.add(producer[t].name)
                stack.extend(producer[t].inputs)
        plans.append([op for op in prog.ops if op.name in need])
    return plans


def reference_engine(prog: Program) -> LevelEngine:
    plans = _subgraphs(prog, LosslessSpec.of(prog).levels)

    def run(level: int, a: np.ndarray):
        env: Dict[str, np.ndarray] = {f"a{level}": check_input(prog, f"a{level}", a.reshape(1, 1, -1))}
        for op in plans[level]:
            env[op.output] = REGISTRY[op.kind].kernel(prog, op, [env[t] for t in op.inputs])
        return env[f"mu{level}"][0], env[f"scale{level}"][0, 0]
    return run


def tvm_engine(prog: Program) -> LevelEngine:
    from .bitstream_decode import tvm_decoder
    dec, levels = tvm_decoder(prog), LosslessSpec.of(prog).levels
    dummy = np.zeros((1, 1, 1), dtype=np.int16)

    def run(level: int, a: np.ndarray):
        ins = {f"a{i}": (a.reshape(1, 1, -1).astype(np.int16) if i == level else dummy) for i in range(levels)}
        outs = dec(ins)
        return outs[2 * level][0], outs[2 * level + 1][0, 0]
    return run


def engine_for(prog: Program, engine: Union[str, LevelEngine] = "ref") -> LevelEngine:
    if callable(engine):
        return engine
    if engine == "ref":
        return reference_engine(prog)
    if engine == "tvm":
        return tvm_engine(prog)
    raise ProgramError(f"unknown engine {engine!r}; choose ref or tvm")


def encode_lossless(prog: Program, samples: np.ndarray, sample_rate: int,
                    engine: Union[str, LevelEngine] = "ref") -> bytes:
    spec = LosslessSpec.of(prog)
    x = np.asarray(samples)
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.integer) or x.size and (x.min() < -2 ** 15 or x.max() >= 2 ** 15):
        raise ValueError("lossless input must be int16 samples shaped (channels, n)")
    header = Header("lossless", prog.model_hash(), 1, (x.shape[1],), (0,), (x.shape[0], x.shape[1]), VERSION,
                    int(sample_rate))
    problem = header.check()
    if problem:
        raise ValueError(f"cannot code this signal losslessly: {problem}")
    return pack(header, encode_channels(spec, x, engine_for(prog, engine)))


def decode_lossless(prog: Program, data: bytes, engine: Union[str, LevelEngine] = "ref",
                    max_samples: int = MAX_DECODE_SAMPLES):
    """bytes -> (Header, int16 samples (channels, n)); BitstreamError on any bad stream."""
    spec = LosslessSpec.of(prog)
    header, payload = unpack(data, prog.model_hash())
    if header.modality != "lossless":
        raise BitstreamError(f"bitstream holds {header.modality}; this model decodes lossless streams")
    channels, n = header.latent_shape
    if channels * n > max_samples:
        raise BitstreamError(f"{channels} x {n} samples exceed the decoder limit {max_samples}")
    run = engine_for(prog, engine)   # after every header check: a refused stream loads no library
    try:
        return header, decode_channels(spec, payload, channels, n, run)
    except ValueError as e:
        if isinstance(e, ProgramError):
            raise
        raise BitstreamError(f"entropy decoding failed: {e}") from None
