"""The shape every BPGAN codec model shares: encoder -> L-center quantizer -> generator.

Subclasses set `modality` and build their own encoder and generator; state-dict names (encoder.*,
quantizer.*, generator.*) are the same for every modality, which the export, codec and hash rely on.
"""
from torch import nn

from .latent import CenterQuantizer


class BPGANCodec(nn.Module):
    """forward(x) -> {"x_hat", "z", "z_hat", "indices"}; `stride` is the latent downsampling factor."""
    modality = "signal"

    def __init__(self, cfg, encoder: nn.Module, generator: nn.Module):
        super().__init__()
        self.cfg = cfg
        self.encoder = encoder
        self.quantizer = CenterQuantizer(cfg.num_centers, cfg.latent_frac_bits)
        self.generator = generator

    @property
    def stride(self) -> int:
        return self.cfg.downsample

    def forward(self, x):
        z = self.encoder(x)
        z_hat, idx = self.quantizer(z)
        return {"x_hat": self.generator(z_hat), "z": z, "z_hat": z_hat, "indices": idx}
