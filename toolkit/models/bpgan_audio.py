"""BPGAN speech codec on log-mel spectrograms: 1-D convs over time with the 64 mel bands as channels.

Why 1-D and not 2-D over the 64 x T mel image: the mel bands are not translation invariant (a
formant at band 10 is not the same sound shifted from band 40), so a 2-D net spends most of its
MACs re-learning per-band filters; 1-D convs see the whole spectrum per frame at a fraction of the
MACs, and conv1d / conv_transpose1d are already ops of the integer program, the reference decoder
and the TVM lowering.
Encoder (sender side, float): stride-2 convs with relu4 down to C channels at 1/8 of the frame rate.
Generator (device side, QAT): conv -> residual blocks -> stride-2 conv-transposes -> conv to the
64 bands; relu4 everywhere, output clamped to int8 at scale 2**-7. Mels live in [-1, 1] (audio/mel.py).
Input length must be a multiple of the stride: callers pad (audio/mel.pad_frames) and crop.
"""
import math
from typing import ClassVar, List, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from ..quant.layers import OUTPUT, ConvAct, LayerFactory, QuantSpec, ResBlock, signed
from .codec_model import BPGANCodec
from .registry import register_model


class BPGANAudioConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    modality: ClassVar[str] = "audio"
    signal_dims: ClassVar[int] = 1                          # (N, bands, T)
    mel_bands: Literal[64] = 64                             # fixed by the front end (audio/mel.py)
    latent_channels: int = Field(8, ge=1, le=256)           # C
    num_centers: int = Field(16, ge=2, le=256)              # L
    downsample: Literal[4, 8, 16] = 8                       # frames per latent step
    encoder_widths: List[int] = [96, 128, 128]              # one per stride-2 stage
    generator_widths: List[int] = [128, 128, 96, 96]        # latent rate, then after each upsampling
    res_blocks: int = Field(2, ge=0)
    latent_frac_bits: int = Field(4, ge=0, le=7)
    branch_frac_bits: int = Field(5, ge=0, le=7)
    batchnorm: bool = True                                  # float stage only; folded before QAT
    disc_scales: int = Field(2, ge=1)
    disc_width: int = Field(64, ge=4)
    disc_layers: int = Field(3, ge=1)

    @property
    def signal_channels(self) -> int:
        return self.mel_bands

    @model_validator(mode="after")
    def _widths_match_stages(self):
        stages = int(math.log2(self.downsample))
        if len(self.encoder_widths) != stages:
            raise ValueError(f"encoder_widths needs {stages} entries for downsample {self.downsample}")
        if len(self.generator_widths) != stages + 1:
            raise ValueError(f"generator_widths needs {stages + 1} entries for downsample {self.downsample}")
        return self


class AudioEncoder(nn.Module):
    def __init__(self, cfg: BPGANAudioConfig):
        super().__init__()
        f = LayerFactory(None, batchnorm=cfg.batchnorm, dims=1)
        layers, c = [], cfg.mel_bands
        for w in cfg.encoder_widths:
            layers.append(ConvAct(f, c, w, 5, stride=2, padding=2))
            c = w
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv1d(c, cfg.latent_channels, 3, padding=1)

    def forward(self, x):
        return self.head(self.body(x))


class AudioGenerator(nn.Module):
    def __init__(self, cfg: BPGANAudioConfig, quant: Optional[QuantSpec] = None):
        super().__init__()
        f = LayerFactory(quant, batchnorm=cfg.batchnorm, dims=1)
        w = cfg.generator_widths
        self.head = ConvAct(f, cfg.latent_channels, w[0], 3, in_fmt=signed(cfg.latent_frac_bits))
        self.res = nn.Sequential(*[ResBlock(f, w[0], cfg.branch_frac_bits) for _ in range(cfg.res_blocks)])
        self.up = nn.Sequential(*[ConvAct(f, cin, cout, 4, stride=2, padding=1, transpose=True)
                                  for cin, cout in zip(w[:-1], w[1:])])
        self.tail = ConvAct(f, w[-1], cfg.mel_bands, 3, out_fmt=OUTPUT)

    def forward(self, z):
        return self.tail(self.up(self.res(self.head(z))))


class BPGANAudio(BPGANCodec):
    """forward(mel (N, 64, T), T a multiple of the stride) -> {"x_hat", "z", "z_hat", "indices"}."""
    modality = "audio"

    def __init__(self, cfg, quant: Optional[QuantSpec] = None):
        super().__init__(cfg, AudioEncoder(cfg), AudioGenerator(cfg, quant))


@register_model("bpgan-audio", BPGANAudioConfig)
def build_bpgan_audio(cfg: BPGANAudioConfig, quant: Optional[QuantSpec] = None) -> BPGANAudio:
    return BPGANAudio(cfg, quant)
