"""Fixed-point layers written by hand (no Brevitas): power-of-two int8 weights, round half up, straight-through.

The small integer nets that are built directly into a program (idf-audio's couplings, the learned entropy
model) train with these: forward computes exactly the integers the program's ops compute (float64 holds
them exactly), backward passes the gradient straight through the rounding.
"""
import math

import torch

from .rounding import round_half_up


def ste(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """y in the forward pass, x's gradient in the backward pass."""
    return x + (y - x).detach()


def round_half_up_ste(x: torch.Tensor) -> torch.Tensor:
    return ste(x, round_half_up(x))


def pow2_frac(w: torch.Tensor, max_frac: int = 12) -> int:
    """The finest power-of-two scale 2^-f with every |w| * 2^f <= 127 (f in [0, max_frac])."""
    m = float(w.detach().abs().max())
    return max_frac if m == 0 else int(min(max(math.floor(math.log2(127.0 / m)), 0), max_frac))


def quantize_weight(w: torch.Tensor, frac: int) -> torch.Tensor:
    """int8 codes (as float, straight-through) of w at 2^-frac: clamp(round_half_up(w * 2^frac), -127, 127)."""
    return ste(w * 2.0 ** frac, torch.clamp(round_half_up(w.detach() * 2.0 ** frac), -127, 127))


def requantize_ste(acc: torch.Tensor, shift: int, lo: int, hi: int) -> torch.Tensor:
    """clip(round_half_up(acc / 2^shift), lo, hi): the program's requantize (any shift sign), straight-through."""
    return torch.clamp(round_half_up_ste(acc * 2.0 ** -shift), lo, hi)
