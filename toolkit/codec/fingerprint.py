"""The model hash written into every bitstream: what the decoder side depends on, hashed.

SHA-256 over the generator's and the latent quantizer's state (name, dtype, shape, raw bytes, in
sorted name order) and the prior table, truncated to 16 bytes. The float encoder is left out:
retraining it changes what gets encoded, not how a stream decodes. GradQuant8 running statistics
are left out too: they only shape training gradients, and the latent search updates them;
so is the soft quantizer's annealing sigma. A learned entropy model adds its program's content hash.
"""
import hashlib

import numpy as np
import torch

from bpgan.firmware_ref.entropy_model import LearnedPrior

from ..quant.gradient import GradQuant8
from .bitstream import HASH_BYTES

_DECODER_PARTS = ("generator.", "quantizer.")


def _gradient_stat_names(model) -> set:
    return {f"{name}.{buf}" for name, m in model.named_modules() if isinstance(m, GradQuant8)
            for buf, _ in m.named_buffers(recurse=False)}


def model_hash(model, prior) -> bytes:
    """prior: the (C, L) / (C, K, L) table, or a LearnedPrior (its table and its entropy program's content hash)."""
    skip = _gradient_stat_names(model) | {"quantizer.sigma"}  # sigma: soft-quantizer training only
    h = hashlib.sha256(b"bpgan-model-hash/1")
    state = model.state_dict()
    for name in sorted(state):
        if not name.startswith(_DECODER_PARTS) or name in skip:
            continue
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    learned = isinstance(prior, LearnedPrior)
    p = np.ascontiguousarray(prior.table if learned else prior, dtype="<u4")
    h.update(f"prior|{p.shape}|".encode() + p.tobytes())
    if learned:
        h.update(f"entropy|{prior.content_hash}".encode())
    return h.digest()[:HASH_BYTES]
