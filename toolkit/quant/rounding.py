"""The one rounding rule of the integer contract, on the torch side.

Integer side: ``(acc + (1 << (k - 1))) >> k`` (firmware_ref.kernels.rounding_shift).
Float side:   ``floor(x + 0.5)`` on ``acc * 2**-k``: the same number for every int32 acc,
because ``acc * 2**-k + 0.5 = (acc + 2**(k-1)) * 2**-k`` and floor of that is the arithmetic shift.
torch.round (half to even) is never used.
"""
import torch
from torch import nn


def round_half_up(x: torch.Tensor) -> torch.Tensor:
    """floor(x + 0.5): ties go up (towards +inf), as the integer right shift does."""
    return torch.floor(x + 0.5)


class RoundHalfUpSte(nn.Module):
    """Round half up with a straight-through gradient; Brevitas's float_to_int_impl slot."""

    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (round_half_up(x) - x).detach()
