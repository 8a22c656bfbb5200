"""The config fields every image codec model shares (bpgan-image, sae-spn, gc); each model adds its own.

Other code reads these by name: modality / signal_dims / signal_channels (data, losses, discriminator),
latent_channels and num_centers (quantizer, prior, bitstream), the generator's int8 formats, batchnorm
(folded before QAT) and the multiscale discriminator's size. A model may override a field's default.
"""
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field


class ImageCodecConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    modality: ClassVar[str] = "image"
    signal_dims: ClassVar[int] = 2                         # (N, 3, H, W)
    signal_channels: ClassVar[int] = 3
    latent_channels: int = Field(8, ge=1, le=256)          # C
    num_centers: int = Field(8, ge=2, le=256)              # L
    latent_frac_bits: int = Field(4, ge=0, le=7)           # generator input: int8 at 2**-latent_frac_bits
    branch_frac_bits: int = Field(5, ge=0, le=7)           # residual branch: int8 at 2**-branch_frac_bits
    batchnorm: bool = True                                 # float stage only; folded before QAT
    disc_scales: int = Field(2, ge=1)
    disc_width: int = Field(32, ge=4)
    disc_layers: int = Field(3, ge=1)
