"""GC: the generative-compression network of Agustsson et al., "Generative Adversarial Networks for Extreme
Learned Image Compression" (ICCV 2019, arXiv 2018), with the widths and block counts configurable.

Encoder (sender side, float): c7s1-w0, d(w1), d(w2), d(w3), d(w4), c3s1-C; c7s1-k is a 7x7 conv, stride 1,
reflection padding 3, norm, ReLU; d(k) a 3x3 conv, stride 2, reflection padding 1, norm, ReLU; c3s1-C the last
3x3 conv (reflection padding 1, no norm), then the L-center quantizer (latent.CenterQuantizer) as in the other
models. The paper's widths are the defaults: [60, 120, 240, 480, 960], C in {2, 4, 8, 16}, L = 5.
Generator (device side, QAT): c3s1-g0 from the latent, `res_blocks` residual blocks at g0, u(g1)..u(g4), c7s1-3:
  c3s1-g0  3x3 conv, reflection padding 1, norm, relu4 (the latent is quantized first so that the padding acts on
           an integer tensor);
  R(g0)    relu4(x + norm(conv(relu4(norm(conv(x)))))), both convs 3x3 with reflection padding 1, the branch a
           signed int8 tensor at 2^-branch_frac_bits; the paper's block has no ReLU after the sum, the integer
           contract wants the next block's input bounded (relu4, as ResBlock of the other models);
  u(k)     the paper's fractionally strided conv: ConvTranspose 4x4, stride 2, padding 1 (not 3x3: a 3x3 stride-2
           transpose needs output_padding to double the size, and k = 4 gives every output pixel the same 2x2 taps,
           so no checkerboard from uneven overlap), norm, relu4. upsample "nearest": nearest 2x, reflection padding
           1, 3x3 conv, norm, relu4 (Odena et al.'s resize-convolution);
  c7s1-3   7x7 conv, reflection padding 3, no norm, the output clamped to int8 at 2^-7 (tanh in the float stage).
norm: "instance" (the paper's): each normalized conv ends as int8 at 2^-norm_frac_bits and the integer instance
norm (quant.instance_norm, exactly firmware_ref's instance_norm op) produces the layer's output format; "batch":
BatchNorm in the float stage, folded into the convs before QAT (no norm op in the program); "none".
Reflection padding is torch's ReflectionPad2d before a conv with padding 0: an ONNX Pad(mode=reflect), which the
importer maps to reflect_pad.
noise_channels: the paper's optional noise concatenated to the latent. Training (float and QAT) draws it from
N(0, 1); eval feeds zeros (deterministic, the prior's mean); export refuses it in one line, since the integer
program has one input, the latent.
Images live in [-1, 1] (x = 2 * pixel / 255 - 1).
"""
from typing import List, Literal, Optional

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from ..quant.instance_norm import instance_norm_layer
from ..quant.layers import OUTPUT, RELU4, ConvAct, Fmt, LayerFactory, QuantSpec, signed
from .codec_model import BPGANCodec
from .image_config import ImageCodecConfig
from .registry import register_model

STAGES = 4   # stride-2 stages: the latent is at 1/16


class GCConfig(ImageCodecConfig):
    num_centers: int = Field(5, ge=2, le=256)                    # L
    downsample: Literal[16] = 16
    encoder_widths: List[int] = [60, 120, 240, 480, 960]         # c7s1, then d(k) per stride-2 stage
    generator_widths: List[int] = [960, 480, 240, 120, 60]       # c3s1 and the residual blocks, then u(k) per stage
    res_blocks: int = Field(9, ge=0)
    upsample: Literal["conv_transpose", "nearest"] = "conv_transpose"
    norm: Literal["instance", "batch", "none"] = "instance"      # the generator's (and the encoder's) norm
    noise_channels: int = Field(0, ge=0, le=64)                  # float training only (see the module docstring)
    norm_frac_bits: int = Field(4, ge=0, le=7)                   # a conv entering an instance norm: int8 at 2**-f
    norm_z_frac: int = Field(8, ge=4, le=12)                     # the instance norm's z at 2**-Z
    batchnorm: bool = True     # norm "batch" only: BN in the float stage (False: none, as the folded QAT build)

    @model_validator(mode="after")
    def _widths_match_stages(self):
        if len(self.encoder_widths) != STAGES + 1 or len(self.generator_widths) != STAGES + 1:
            raise ValueError(f"encoder_widths and generator_widths need {STAGES + 1} entries each "
                             f"(the stride-1 layer and {STAGES} stride-2 stages)")
        return self

    @property
    def generator_norm(self) -> str:
        return "none" if self.norm == "batch" and not self.batchnorm else self.norm


class GCLayer(ConvAct):
    """[reflection pad] -> conv -> [norm] -> act -> grad-quant: the paper's c7s1-k, c3s1-k, u(k) and R(k) convs.

    norm "instance" (out_fmt not the output): the conv ends as int8 at 2^-norm_frac_bits (ConvAct's act) and
    `norm` is the instance norm producing out_fmt; norm "batch": ConvAct's BN (the factory's batchnorm flag);
    quant_input: quantize the input to in_fmt before padding (the generator's head reads the float latent)."""

    def __init__(self, f: LayerFactory, cfg: GCConfig, cin, cout, k, stride=1, in_fmt: Fmt = RELU4,
                 out_fmt: Fmt = RELU4, transpose=False, reflect: int = 0, padding=None, quant_input=False):
        instance = cfg.generator_norm == "instance" and out_fmt != OUTPUT
        conv_fmt = signed(cfg.norm_frac_bits) if instance else out_fmt
        super().__init__(f, cin, cout, k, stride, in_fmt, conv_fmt, transpose, 0 if reflect else padding)
        self.out_fmt = out_fmt
        self.quant_in = f.act(in_fmt) if quant_input else nn.Identity()
        self.pad = nn.ReflectionPad2d(reflect) if reflect else nn.Identity()
        self.norm = (instance_norm_layer(f.quant, cout, conv_fmt, out_fmt, cfg.norm_z_frac) if instance
                     else nn.Identity())

    def forward(self, x):
        return self.grad(self.norm(self.act(self.bn(self.conv(self.pad(self.quant_in(x)))))))


class GCResBlock(nn.Module):
    """relu4(x + R(x)), R = conv-norm-relu4-conv-norm with reflection padding; the branch ends signed int8."""

    def __init__(self, f: LayerFactory, cfg: GCConfig, width: int):
        super().__init__()
        self.conv1 = GCLayer(f, cfg, width, width, 3, reflect=1)
        self.conv2 = GCLayer(f, cfg, width, width, 3, reflect=1, out_fmt=signed(cfg.branch_frac_bits))
        self.act = f.act(RELU4)
        self.grad = f.grad()

    def forward(self, x):
        return self.grad(self.act(x + self.conv2(self.conv1(x))))


class GCUpsample(nn.Module):
    """u(k): ConvTranspose 4x4 stride 2 (conv_transpose) or nearest 2x then a reflection-padded 3x3 conv."""

    def __init__(self, f: LayerFactory, cfg: GCConfig, cin: int, cout: int):
        super().__init__()
        self.nearest = cfg.upsample == "nearest"
        self.conv = (GCLayer(f, cfg, cin, cout, 3, reflect=1) if self.nearest else
                     GCLayer(f, cfg, cin, cout, 4, stride=2, padding=1, transpose=True))

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest") if self.nearest else x)


def _norm2d(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.BatchNorm2d(channels) if kind == "batch" else nn.Identity()


class GCEncoder(nn.Module):
    def __init__(self, cfg: GCConfig):
        super().__init__()
        w, norm = cfg.encoder_widths, cfg.generator_norm
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, w[0], 7), _norm2d(norm, w[0]), nn.ReLU()]
        for cin, cout in zip(w[:-1], w[1:]):
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3, stride=2), _norm2d(norm, cout), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(w[-1], cfg.latent_channels, 3))

    def forward(self, x):
        return self.head(self.body(x))


class GCGenerator(nn.Module):
    def __init__(self, cfg: GCConfig, quant: Optional[QuantSpec] = None):
        super().__init__()
        f = LayerFactory(quant, batchnorm=cfg.generator_norm == "batch")
        w = cfg.generator_widths
        self.noise_channels = cfg.noise_channels
        self.head = GCLayer(f, cfg, cfg.latent_channels + cfg.noise_channels, w[0], 3,
                            in_fmt=signed(cfg.latent_frac_bits), reflect=1, quant_input=True)
        self.res = nn.Sequential(*[GCResBlock(f, cfg, w[0]) for _ in range(cfg.res_blocks)])
        self.up = nn.Sequential(*[GCUpsample(f, cfg, cin, cout) for cin, cout in zip(w[:-1], w[1:])])
        self.tail = GCLayer(f, cfg, w[-1], 3, 7, reflect=3, out_fmt=OUTPUT)

    def forward(self, z):
        if self.noise_channels:
            if torch.onnx.is_in_onnx_export():
                raise ValueError(f"gc: noise_channels {self.noise_channels} has no integer-program form (the program's "
                                 f"one input is the latent); export a model trained with noise_channels 0")
            shape = (z.shape[0], self.noise_channels, *z.shape[2:])
            noise = torch.randn(shape, device=z.device) if self.training else z.new_zeros(shape)
            z = torch.cat([z, noise], 1)
        return self.tail(self.up(self.res(self.head(z))))


class GC(BPGANCodec):
    """forward(x) -> {"x_hat", "z", "z_hat", "indices"}."""
    modality = "image"

    def __init__(self, cfg: GCConfig, quant: Optional[QuantSpec] = None):
        super().__init__(cfg, GCEncoder(cfg), GCGenerator(cfg, quant))


@register_model("gc", GCConfig)
def build_gc(cfg: GCConfig, quant: Optional[QuantSpec] = None) -> GC:
    return GC(cfg, quant)
