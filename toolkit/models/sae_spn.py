"""CompressNet's SAE-SPN (Raman et al., WACV 2020): stacked autoencoders whose decoder unpools with
switches that a Switch Prediction Network predicts, so the "where" of max pooling is never sent.

Encoder (sender side, float): per stage conv -> relu4 -> 2x2 max pooling; the pooling's switches (the
argmax cell of each 2x2 block, 0..3 = i*2+j) are the SPN's training targets. Head conv to C channels
at 1/16, the L-center quantizer as in the other image models.
Decoder (device side, QAT): head conv -> residual blocks at 1/16, then per stage (coarse to fine) an
unpooling to twice the size and a conv; the last stage's conv is the RGB tail. The unpooling of a stage:
  switches "predicted" (SAE-SPN): a conv (the SPN) maps the features to 4 int8 logits per channel and
      the integer op argmax_unpool places each value at the argmax cell (ties: lowest index);
  switches "sent" (SWWAE): the encoder's own switches (side information, counted in the rate);
  switches "none" (SAE): nearest upsampling.
Only the coarsest `switch_stages` stages use switches; finer ones upsample (switches there cost the
most: SWWAE's side information grows 4x per stage). The decoder's features entering stage s have the
channels of the encoder's pooling it mirrors (encoder_widths reversed), so switches line up channel by
channel. Training adds the SPN's cross-entropy against the true switches (loss.switch).
"""
from typing import List, Literal, Optional

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from ..quant.layers import OUTPUT, ConvAct, LayerFactory, QuantSpec, ResBlock, signed
from .codec_model import BPGANCodec
from .image_config import ImageCodecConfig
from .registry import register_model

STAGES = 4   # 2x2 poolings: the latent is at 1/16


class SAESPNConfig(ImageCodecConfig):
    num_centers: int = Field(5, ge=2, le=256)                 # L
    downsample: Literal[16] = 16
    encoder_widths: List[int] = [24, 32, 48, 64]             # conv width before each pooling, fine to coarse
    res_blocks: int = Field(2, ge=0)
    switches: Literal["predicted", "sent", "none"] = "predicted"
    switch_stages: int = Field(STAGES, ge=0, le=STAGES)       # coarsest unpoolings that use switches
    spn_kernels: List[int] = [3, 1, 1, 1]                     # SPN conv kernel per stage, coarse to fine
    logit_frac_bits: int = Field(4, ge=0, le=7)               # SPN logits: int8 at 2**-logit_frac_bits

    @model_validator(mode="after")
    def _stage_lists(self):
        if len(self.encoder_widths) != STAGES or len(self.spn_kernels) != STAGES:
            raise ValueError(f"encoder_widths and spn_kernels need {STAGES} entries (one per 2x2 pooling)")
        if any(k not in (1, 3, 5) for k in self.spn_kernels):
            raise ValueError("spn_kernels: each kernel must be 1, 3 or 5")
        return self

    def uses_switches(self, stage: int) -> bool:
        """Stage 0 is the coarsest unpooling (1/16 -> 1/8)."""
        return self.switches != "none" and stage < self.switch_stages


def block_switches(indices: torch.Tensor, width: int) -> torch.Tensor:
    """max_pool2d's flat input indices -> the cell inside each 2x2 block, i*2+j in 0..3."""
    return (indices // width % 2) * 2 + indices % width % 2


def unpool_at(x: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
    """y[n,c,2h+i,2w+j] = x[n,c,h,w] where i*2+j == cell[n,c,h,w], else 0 (gradient flows to x)."""
    n, c, h, w = x.shape
    hit = F.one_hot(cell, 4).permute(0, 1, 4, 2, 3).to(x.dtype)        # (n, c, 4, h, w)
    return F.pixel_shuffle((hit * x.unsqueeze(2)).reshape(n, 4 * c, h, w), 2)


class _ArgmaxUnpoolOnnx(torch.autograd.Function):
    """The integer op as one ONNX node (domain bpgan) for the QCDQ importer: x, logits -> unpooled x."""

    @staticmethod
    def forward(ctx, x, logits):
        return _unpool_by_logits(x, logits)

    @staticmethod
    def symbolic(g, x, logits):
        y = g.op("bpgan::ArgmaxUnpool", x, logits, factor_i=2)
        y.setType(x.type().with_sizes([None] * 4))   # float, rank 4; the sizes are dynamic anyway
        return y


def argmax_unpool(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """firmware_ref's argmax_unpool (k = 2): torch.argmax returns the first maximum, the op's tie rule."""
    if torch.onnx.is_in_onnx_export():
        return _ArgmaxUnpoolOnnx.apply(x, logits)
    return _unpool_by_logits(x, logits)


def _unpool_by_logits(x, logits):
    n, c, h, w = x.shape
    return unpool_at(x, logits.reshape(n, c, 4, h, w).argmax(2))


class SAEEncoder(nn.Module):
    def __init__(self, cfg: SAESPNConfig):
        super().__init__()
        f = LayerFactory(None, batchnorm=cfg.batchnorm)
        c, convs = 3, []
        for w in cfg.encoder_widths:
            convs.append(ConvAct(f, c, w, 5 if c == 3 else 3))
            c = w
        self.stages = nn.ModuleList(convs)
        self.head = nn.Conv2d(c, cfg.latent_channels, 3, padding=1)

    def features(self, x):
        """-> (latent before quantization, switches per pooling fine to coarse, each (N, C_s, H_s, W_s) in 0..3)."""
        switches = []
        for conv in self.stages:
            y = conv(x)
            x, idx = F.max_pool2d(y, 2, return_indices=True)
            switches.append(block_switches(idx, y.shape[-1]))
        return self.head(x), switches

    def forward(self, x):
        return self.features(x)[0]


class SPNDecoder(nn.Module):
    """forward(z) -> image; decode(z, switches) -> (image, SPN logits per predicting stage)."""

    def __init__(self, cfg: SAESPNConfig, quant: Optional[QuantSpec] = None):
        super().__init__()
        self.cfg = cfg
        f = LayerFactory(quant, batchnorm=cfg.batchnorm)
        widths = cfg.encoder_widths[::-1]                      # channels entering each stage, coarse to fine
        self.head = ConvAct(f, cfg.latent_channels, widths[0], 3, in_fmt=signed(cfg.latent_frac_bits))
        self.res = nn.Sequential(*[ResBlock(f, widths[0], cfg.branch_frac_bits) for _ in range(cfg.res_blocks)])
        self.spn = nn.ModuleList()
        self.convs = nn.ModuleList()
        for s, w in enumerate(widths):
            if cfg.uses_switches(s) and cfg.switches == "predicted":
                self.spn.append(ConvAct(f, w, 4 * w, cfg.spn_kernels[s], out_fmt=signed(cfg.logit_frac_bits)))
            last = s == len(widths) - 1
            self.convs.append(ConvAct(f, w, 3 if last else widths[s + 1], 3, out_fmt=OUTPUT if last else "relu4"))

    def decode(self, z, switches: Optional[List[torch.Tensor]] = None):
        x, logits = self.res(self.head(z)), []
        for s, conv in enumerate(self.convs):
            if not self.cfg.uses_switches(s):
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            elif self.cfg.switches == "sent":
                x = unpool_at(x, switches[STAGES - 1 - s])
            else:
                logits.append(self.spn[s](x))
                x = argmax_unpool(x, logits[-1])
            x = conv(x)
        return x, logits

    def forward(self, z, switches: Optional[List[torch.Tensor]] = None):
        if self.cfg.switches == "sent" and switches is None:
            raise ValueError("an SWWAE decoder needs the sent switches: decode(z, switches)")
        return self.decode(z, switches)[0]

    def example_inputs(self, z) -> dict:
        """What a forward pass needs beside the latent (count_macs): SWWAE's switches, all in cell 0."""
        if self.cfg.switches != "sent":
            return {}
        n, _, h, w = z.shape
        return {"switches": [torch.zeros(n, c, h << (STAGES - 1 - i), w << (STAGES - 1 - i), dtype=torch.long)
                             for i, c in enumerate(self.cfg.encoder_widths)]}


class SAESPN(BPGANCodec):
    """forward(x) -> {"x_hat", "z", "z_hat", "indices", "switches", "losses": {"switch": SPN cross-entropy}}."""
    modality = "image"

    def __init__(self, cfg, quant: Optional[QuantSpec] = None):
        super().__init__(cfg, SAEEncoder(cfg), SPNDecoder(cfg, quant))

    def forward(self, x):
        z, switches = self.encoder.features(x)
        z_hat, idx = self.quantizer(z)
        x_hat, logits = self.generator.decode(z_hat, switches)
        out = {"x_hat": x_hat, "z": z, "z_hat": z_hat, "indices": idx, "switches": switches, "losses": {}}
        if logits:
            ce = [F.cross_entropy(lg.reshape(lg.shape[0], -1, 4, *lg.shape[2:]).transpose(1, 2),
                                  switches[STAGES - 1 - s]) for s, lg in enumerate(logits)]
            out["losses"]["switch"] = sum(ce) / len(ce)
        return out


@register_model("sae-spn", SAESPNConfig)
def build_sae_spn(cfg: SAESPNConfig, quant: Optional[QuantSpec] = None) -> SAESPN:
    return SAESPN(cfg, quant)
