"""idf-audio's decode side as one integer program: per level l, input a{l} -> outputs mu{l}, scale{l}.

The levels are independent subgraphs of their own lengths (meta input_sizes "independent": the TVM
library gives every input its own symbolic size); the decoder runs level l's subgraph when a{l} is known
(firmware_ref/lossless.py). meta["lossless"] and the array lossless.freq carry the coder's tables, so a
program decodes lossless streams on its own. The model hash that streams carry is the first 16 bytes of
sha256 over the program's content hash before the hash is added.
"""
import hashlib

import numpy as np
import torch

from bpgan.firmware_ref.builder import ProgramBuilder
from bpgan.firmware_ref.lossless import LosslessSpec, build_tables
from bpgan.firmware_ref.program import Program

from .idf_audio import FEATURE_KERNELS, SCALES, IdfAudio

PRECISION_BITS, BINS = 16, 64


def _int(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().round().astype(np.int64)


def idf_program(model: IdfAudio, meta: dict = None) -> Program:
    """The QAT model -> its integer program (the same integers as the model's forward, tested)."""
    cfg = model.cfg
    if not all(level.quant for level in model.generator):
        raise ValueError("export needs a quantized idf-audio model (qat or later), not the float stage")
    b = ProgramBuilder(dict(meta or {}))
    b.meta.update({"input_sizes": "independent",
                   "lossless": {"levels": cfg.levels, "precision_bits": PRECISION_BITS, "bins": BINS,
                                "block": cfg.block, "predictors": cfg.predictors}})
    outs = []
    r = cfg.taps // 2
    for level, net in enumerate(model.generator):
        a = b.input(f"a{level}", "int16", 0, 1)
        w_mu = _int(torch.clamp(torch.floor(net.mu.detach().double() * 2 ** cfg.tap_frac + 0.5), -127, 127))
        mu = b.conv("conv1d", f"l{level}.mu", a, w_mu, np.zeros(cfg.predictors), cfg.tap_frac, "int16", 0,
                    padding=[r - 1, r], out=f"mu{level}")
        feat = b.conv("conv1d", f"l{level}.feat", a, np.asarray(FEATURE_KERNELS)[:, None, :],
                      np.zeros(len(FEATURE_KERNELS)), 0, "int16", 0, padding=[1, 1])
        logs = b.log2_abs(f"l{level}.log", feat, cfg.log_frac)
        (wh, bh, _), (ws, bs, _) = net.int_params()
        fh, fs = net.fracs()
        h = b.conv("conv1d", f"l{level}.hidden", logs, _int(wh), _int(bh), fh, "uint8", cfg.hidden_frac,
                   padding=cfg.kernel // 2, relu=True)
        s = b.conv("conv1d", f"l{level}.scale", h, _int(ws), _int(bs), fs, "uint8", 0, padding=1, relu=True)
        s = b.clip(f"scale{level}", s, 0, SCALES - 1)
        outs += [mu, s]
    b.arrays["lossless.freq"] = build_tables(SCALES, BINS, PRECISION_BITS)
    prog = b.build(outs)
    prog.meta["model_hash"] = hashlib.sha256(prog.content_hash.encode()).hexdigest()[:32]
    LosslessSpec.of(prog)   # the decoder's checks, at export
    return prog
