"""Scalar latent quantizer with L learned centers (soft-to-hard, Agustsson et al. 2017).

Training: z_soft = sum_j softmax(-sigma (z - c_j)^2)_j c_j, forward value the hard nearest center,
gradient through z_soft; sigma is annealed upwards by the trainer. Inference: hard only.
The centers are kept on the generator's int8 input grid 2**-frac_bits (straight-through), so the
symbol j decodes to the integer round(c_j * 2**frac_bits) in the integer program.
"""
import torch
from torch import nn

from ..quant.rounding import round_half_up


class CenterQuantizer(nn.Module):
    def __init__(self, num_centers: int, frac_bits: int, init_range: float = 2.0):
        super().__init__()
        self.frac_bits = frac_bits
        self.centers = nn.Parameter(torch.linspace(-init_range, init_range, num_centers))
        self.register_buffer("sigma", torch.tensor(1.0))

    def grid_centers(self) -> torch.Tensor:
        """Centers snapped to the int8 grid, sorted; gradient passes straight through."""
        step = 2.0 ** -self.frac_bits
        c = self.centers.clamp(-128 * step, 127 * step)
        c = c + (round_half_up(c / step) * step - c).detach()
        return torch.sort(c).values

    def integer_centers(self) -> torch.Tensor:
        return torch.round(self.grid_centers().detach() * 2 ** self.frac_bits).to(torch.int64)

    def indices(self, z: torch.Tensor) -> torch.Tensor:
        c = self.grid_centers().detach()
        return torch.argmin((z.unsqueeze(-1) - c).abs(), dim=-1)

    def dequantize(self, idx: torch.Tensor) -> torch.Tensor:
        return self.grid_centers()[idx]

    def assign(self, z: torch.Tensor) -> torch.Tensor:
        """(..., L) soft assignment of z to the centers at the current sigma: the soft-to-hard weights, which the
        rate term (loss.rate) differentiates through."""
        return torch.softmax(-self.sigma * (z.unsqueeze(-1) - self.grid_centers()) ** 2, dim=-1)

    def forward(self, z: torch.Tensor):
        c = self.grid_centers()
        idx = torch.argmin((z.detach().unsqueeze(-1) - c.detach()).abs(), dim=-1)
        hard = c[idx]
        if not self.training:
            return hard, idx
        soft = (self.assign(z) * c).sum(-1)
        return soft + (hard - soft).detach(), idx
