"""idf-audio: an integer discrete flow for lossless PCM (Hoogeboom et al.'s IDF, predict-only couplings).

Level l (0 = finest) splits x into a = x[0::2] and b = x[1::2]; the additive coupling
z = b - round_half_up(mu(a)) is factored out and coded with a discretized logistic whose scale index
s(a) the level's network predicts from a, the coarser signal; the flow recurses on a. The decode side of
every level is integer: firmware_ref/lossless.py codes the stream, and `to_program` writes the integer
program (inputs a0..a{K-1}, outputs mu{l}, scale{l}) every engine runs. Per level:
  mu     conv1d of a (int16) with `taps` int8 taps at 2^-tap_frac -> int16 at 2^0 (round half up)
  feat   conv1d of a with fixed integer kernels [0, 1] (|a|), [-1, 1] (slope), [1, -2, 1] (curvature) -> int16,
         then log2_abs (Mitchell log2 at 2^-log_frac, uint8): the scale of speech spans four decades,
         its log does not
  hidden conv1d (k=5) -> relu -> uint8 at 2^-hidden_frac;  scale  conv1d (k=3) -> clip to [0, 63] at 2^0
Weights int8 with a power-of-two scale per tensor, biases int32 at the accumulator scale. The float
stage trains the same graph unrounded; QAT rounds weights, activations and mu exactly as the program does
(straight-through gradients), so the QAT model's integer mu and s equal the program's, bit for bit
(tests/test_idf_audio.py). The loss is the rate: bits per sample of the levels' residuals under the
logistic (the coarse signal, 2**-K of the samples, is coded by first differences and not trained).
"""
from typing import ClassVar, List

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from bpgan.firmware_ref.ops.log2 import log2_abs

from ..quant.fixed import pow2_frac, quantize_weight, round_half_up_ste
from .registry import register_model

SCALES = 64
FEATURE_KERNELS = ([0, 1, 0], [0, -1, 1], [1, -2, 1])   # |a[i]|-ish, a[i+1] - a[i], curvature (taps over a[i-1..i+1])


class IdfAudioConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    modality: ClassVar[str] = "lossless"
    signal_dims: ClassVar[int] = 1
    signal_channels: ClassVar[int] = 1
    levels: int = Field(4, ge=1, le=12)
    taps: int = Field(8, ge=2, le=32)           # even: taps over a[i - taps/2 + 1 .. i + taps/2] predict b[i]
    tap_frac: int = Field(7, ge=4, le=10)
    log_frac: int = Field(2, ge=0, le=4)
    hidden: int = Field(16, ge=1, le=64)
    hidden_frac: int = Field(4, ge=0, le=7)
    kernel: int = Field(5, ge=1, le=15)         # odd
    predictors: int = Field(1, ge=1, le=16)     # P mu filters per level; each block of `block` odd samples uses one
    block: int = Field(256, ge=16, le=768)      # (the encoder picks the cheapest, the stream names it)

    @model_validator(mode="after")
    def _shapes(self):
        if self.taps % 2 or self.kernel % 2 == 0:
            raise ValueError("taps must be even and kernel odd")
        return self

    @property
    def downsample(self) -> int:
        return 1 << self.levels


class Level(nn.Module):
    """One coupling: mu(a) and the scale index s(a) of z = b - mu(a)."""

    def __init__(self, cfg: IdfAudioConfig, quant: bool):
        super().__init__()
        self.cfg, self.quant = cfg, quant
        r = cfg.taps // 2
        mu = torch.zeros(cfg.predictors, 1, cfg.taps)
        mu[:, 0, r - 1] = mu[:, 0, r] = 0.5        # start as linear interpolation, the others perturbed to differ
        mu[1:] += 0.03 * torch.randn(cfg.predictors - 1, 1, cfg.taps, generator=torch.Generator().manual_seed(0))
        self.mu = nn.Parameter(mu)
        self.register_buffer("feat", torch.tensor(FEATURE_KERNELS, dtype=torch.float64)[:, None, :])
        self.hidden = nn.Conv1d(len(FEATURE_KERNELS), cfg.hidden, cfg.kernel, padding=cfg.kernel // 2)
        self.scale = nn.Conv1d(cfg.hidden, 1, 3, padding=1)
        with torch.no_grad():   # start near a useful scale: log2|features| at 2^-q ~ 4 * log2 sigma + 8
            self.hidden.weight.mul_(0.1)
            self.scale.weight.mul_(0.1)
            self.scale.bias.fill_(24.0)

    def features(self, a: torch.Tensor) -> torch.Tensor:
        """Integer log features (float64 holding uint8 values at 2^-log_frac); data only, no gradient: the
        reference kernel itself computes them (one definition of the op; a CPU round trip on a GPU)."""
        d = torch.clamp(F.conv1d(F.pad(a, (1, 1)), self.feat), -2 ** 15, 2 ** 15 - 1)
        y = log2_abs(d.detach().cpu().numpy().astype(np.int64), self.cfg.log_frac, (0, 255), "uint8")
        return torch.from_numpy(y.astype(np.float64)).to(a.device)

    def forward(self, a: torch.Tensor):
        """a (N, 1, n) integer-valued float64 -> (mu (N, P, n), s (N, 1, n)), float64; integers under QAT."""
        c, r = self.cfg, self.cfg.taps // 2
        ap = F.pad(a, (r - 1, r))
        f = self.features(a)
        if not self.quant:
            mu = F.conv1d(ap, self.mu.double())
            h = torch.clamp(F.relu(F.conv1d(f / 2 ** c.log_frac, self.hidden.weight.double(),
                                            self.hidden.bias.double(), padding=c.kernel // 2)),
                            max=255 / 2 ** c.hidden_frac)
            s = F.conv1d(h, self.scale.weight.double(), self.scale.bias.double(), padding=1)
            return mu, torch.clamp(s, 0, SCALES - 1)
        tf = c.tap_frac
        mu = round_half_up_ste(F.conv1d(ap, quantize_weight(self.mu.double(), tf)) / 2 ** tf)
        mu = torch.clamp(mu, -2 ** 15, 2 ** 15 - 1)
        (wh, bh, sh), (ws, bs, ss) = self.int_params()
        h = torch.clamp(round_half_up_ste((F.conv1d(f, wh, bh, padding=c.kernel // 2)) / 2 ** sh), 0, 255)
        s = torch.clamp(round_half_up_ste(F.conv1d(h, ws, bs, padding=1) / 2 ** ss), 0, SCALES - 1)
        return mu, s

    def fracs(self):
        return pow2_frac(self.hidden.weight), pow2_frac(self.scale.weight)

    def int_params(self):
        """[(int weights, int bias, requantize shift)] of the hidden and scale convs (float64, straight-through)."""
        c = self.cfg
        fh, fs = self.fracs()
        acc_h, acc_s = c.log_frac + fh, c.hidden_frac + fs
        wh = quantize_weight(self.hidden.weight.double(), fh)
        bh = round_half_up_ste(self.hidden.bias.double() * 2 ** acc_h)
        ws = quantize_weight(self.scale.weight.double(), fs)
        bs = round_half_up_ste(self.scale.bias.double() * 2 ** acc_s)
        return (wh, bh, acc_h - c.hidden_frac), (ws, bs, acc_s)


def logistic_bits(z: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """-log2 P(z) for integer z under the discretized logistic of scale 2^(s/4 - 2) (at most 20 bits)."""
    sigma = torch.exp2(s / 4 - 2)
    p = torch.sigmoid((z + 0.5) / sigma) - torch.sigmoid((z - 0.5) / sigma)
    return -torch.log2(p.clamp_min(2.0 ** -20))


def _split(x: torch.Tensor, levels: int) -> List[torch.Tensor]:
    xs = [x]
    for _ in range(levels):
        xs.append(xs[-1][..., 0::2])
    return xs


class _NoQuantizer(nn.Module):
    """The training loop anneals model.quantizer.sigma; a lossless flow has no soft quantizer."""

    def __init__(self):
        super().__init__()
        self.register_buffer("sigma", torch.ones(()))


class IdfAudio(nn.Module):
    """forward(x (N, 1, n) integer PCM as float) -> {"x_hat": x, "losses": {"rate": bits/sample}, "bits": ...}."""
    modality = "lossless"

    def __init__(self, cfg: IdfAudioConfig, quant=None):
        super().__init__()
        self.cfg, self.stride = cfg, cfg.downsample
        self.generator = nn.ModuleList([Level(cfg, quant is not None) for _ in range(cfg.levels)])
        self.quantizer = _NoQuantizer()

    def level_bits(self, x: torch.Tensor) -> torch.Tensor:
        """(N,) bits of every level's residuals (the coarse signal excluded)."""
        xs = _split(x.double(), self.cfg.levels)
        bits = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
        for level, net in enumerate(self.generator):
            a, b = xs[level + 1], xs[level][..., 1::2]
            mu, s = net(a)
            n = b.shape[-1]
            per = logistic_bits(b - mu[..., :n], s[..., :n])          # (N, P, n)
            blocks = -(-n // self.cfg.block)
            per = F.pad(per, (0, blocks * self.cfg.block - n)).reshape(*per.shape[:2], blocks, self.cfg.block)
            # each block codes with its cheapest predictor and names it (what the encoder does)
            side = blocks * ((self.cfg.predictors - 1).bit_length())
            bits = bits + per.sum(-1).min(dim=1).values.sum(-1) + side
        return bits

    def coarse_bits(self, x: torch.Tensor) -> torch.Tensor:
        """(N,) an estimate of the coarse signal's bits: first differences under a logistic fitted per crop."""
        c = _split(x.double(), self.cfg.levels)[-1]
        d = torch.diff(c, dim=-1, prepend=torch.zeros_like(c[..., :1]))
        s = torch.clamp(4 * (torch.log2(d.abs().mean(dim=-1, keepdim=True) * 0.55 + 1e-3) + 2), 0, SCALES - 1)
        return logistic_bits(d, s.expand_as(d)).sum(dim=(1, 2)).detach()

    def macs_per_sample(self) -> float:
        """Decoder MACs per output sample: level l runs once per sample of a, 2**-(l+1) of the samples."""
        c = self.cfg
        per_position = c.predictors * c.taps + 3 * len(FEATURE_KERNELS) + len(FEATURE_KERNELS) * c.hidden * c.kernel + c.hidden * 3
        return sum(per_position * 2.0 ** -(level + 1) for level in range(c.levels))

    def summary(self) -> dict:
        """The training report's model section (report.model_summary)."""
        params = sum(p.numel() for p in self.generator.parameters())
        return {"sizes_bytes": {"float32_dense": 4 * params, "int8_dense": params, "int8_sparse": None,
                                "codebook_sparse": None},
                "sparsity": {}, "generator_params": params, "generator_macs_per_pixel": self.macs_per_sample(),
                "output_unit": "sample", "macs_per_pixel_by_layer": {}}

    def forward(self, x: torch.Tensor):
        bits = self.level_bits(x)
        rate = bits.sum() / x.numel()
        return {"x_hat": x, "losses": {"rate": rate.float()}, "bits": bits + self.coarse_bits(x)}


@register_model("idf-audio", IdfAudioConfig)
def build_idf_audio(cfg: IdfAudioConfig, quant=None) -> IdfAudio:
    return IdfAudio(cfg, quant)
