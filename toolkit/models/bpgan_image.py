"""BPGAN image codec: float encoder -> L-center latent quantizer -> 8-bit generator.

Encoder (sender side, float): stride-2 convs with relu4 down to C channels at 1/16 or 1/32.
Generator (the device side, QAT): conv -> residual blocks -> stride-2 upsampling (conv-transpose
or pixel shuffle) -> conv to RGB; relu4 everywhere, output clamped to int8 at scale 2**-7.
Images live in [-1, 1] (x = 2 * pixel / 255 - 1).
"""
import math
from typing import List, Literal, Optional

from pydantic import Field, model_validator
from torch import nn

from ..quant.layers import OUTPUT, ConvAct, LayerFactory, QuantSpec, ResBlock, signed
from .codec_model import BPGANCodec
from .image_config import ImageCodecConfig
from .registry import register_model


class BPGANImageConfig(ImageCodecConfig):
    downsample: Literal[16, 32] = 16
    encoder_widths: List[int] = [32, 48, 64, 96]           # one per stride-2 stage
    generator_widths: List[int] = [64, 48, 32, 24, 16]     # latent resolution, then after each upsampling
    res_blocks: int = Field(4, ge=0)
    upsample: Literal["conv_transpose", "pixel_shuffle"] = "conv_transpose"

    @model_validator(mode="after")
    def _widths_match_stages(self):
        stages = int(math.log2(self.downsample))
        if len(self.encoder_widths) != stages:
            raise ValueError(f"encoder_widths needs {stages} entries for downsample {self.downsample}")
        if len(self.generator_widths) != stages + 1:
            raise ValueError(f"generator_widths needs {stages + 1} entries for downsample {self.downsample}")
        return self


class Encoder(nn.Module):
    def __init__(self, cfg: BPGANImageConfig):
        super().__init__()
        f = LayerFactory(None, batchnorm=cfg.batchnorm)
        layers, c = [], 3
        for w in cfg.encoder_widths:
            layers.append(ConvAct(f, c, w, 5 if c == 3 else 3, stride=2))
            c = w
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(c, cfg.latent_channels, 3, padding=1)

    def forward(self, x):
        return self.head(self.body(x))


class Generator(nn.Module):
    def __init__(self, cfg: BPGANImageConfig, quant: Optional[QuantSpec] = None):
        super().__init__()
        f = LayerFactory(quant, batchnorm=cfg.batchnorm)
        w = cfg.generator_widths
        self.head = ConvAct(f, cfg.latent_channels, w[0], 3, in_fmt=signed(cfg.latent_frac_bits))
        self.res = nn.Sequential(*[ResBlock(f, w[0], cfg.branch_frac_bits) for _ in range(cfg.res_blocks)])
        ups = []
        for cin, cout in zip(w[:-1], w[1:]):
            if cfg.upsample == "conv_transpose":
                ups.append(ConvAct(f, cin, cout, 4, stride=2, padding=1, transpose=True))
            else:  # conv to 4*cout channels then depth-to-space; relu4 commutes with the shuffle
                ups.append(nn.Sequential(ConvAct(f, cin, 4 * cout, 3), nn.PixelShuffle(2)))
        self.up = nn.Sequential(*ups)
        self.tail = ConvAct(f, w[-1], 3, 3, out_fmt=OUTPUT)

    def forward(self, z):
        return self.tail(self.up(self.res(self.head(z))))


class BPGANImage(BPGANCodec):
    """forward(x) -> {"x_hat", "z", "z_hat", "indices"}."""
    modality = "image"

    def __init__(self, cfg, quant: Optional[QuantSpec] = None):
        super().__init__(cfg, Encoder(cfg), Generator(cfg, quant))


@register_model("bpgan-image", BPGANImageConfig)
def build_bpgan_image(cfg: BPGANImageConfig, quant: Optional[QuantSpec] = None) -> BPGANImage:
    return BPGANImage(cfg, quant)
