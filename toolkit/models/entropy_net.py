"""The learned entropy model's network (firmware_ref/entropy_model.py defines what it computes and how it codes).

context (C, int8 symbol + 1 or 0) -> conv KxK -> relu4 (uint8 at 2^-6) [-> conv 3x3 -> relu4, `spatial` - 1 times]
-> conv 1x1 -> relu4 -> conv 1x1 -> logits (int8 at 2^-4, clipped to [-64, 63]), T * L channels for the
T = C * P coding steps. Weights int8 at a
power-of-two scale per tensor, biases int32 at the accumulator scale. The float stage trains it unrounded;
QAT rounds weights and activations as the program does (toolkit/quant/fixed.py), so the QAT net's integer
logits equal the entropy program's, bit for bit (tests/test_entropy_model.py). The loss is the rate: bits per
symbol, -log2 of the symbol's probability p_i = 2^(q_i/16) / sum_j 2^(q_j/16), which the integer rows of
rows_from_logits follow to within their rounding.
"""
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bpgan.firmware_ref.builder import ProgramBuilder
from bpgan.firmware_ref.entropy_model import LOGIT_CLIP, LOGIT_FRAC, phase_map
from bpgan.firmware_ref.program import Program

from ..quant.fixed import pow2_frac, quantize_weight, requantize_ste, round_half_up_ste
from ..quant.quantizers import RELU4_FRAC_BITS

FORMAT = "bpgan-entropy/1"


@dataclass(frozen=True)
class EntropyNetConfig:
    channels: int
    centers: int
    phases: int = 2
    width: int = 32
    kernel: int = 5
    spatial: int = 1     # spatial convs: the KxK one, then 3x3 ones

    @property
    def steps(self) -> int:
        return self.channels * self.phases


class EntropyNet(nn.Module):
    def __init__(self, cfg: EntropyNetConfig):
        super().__init__()
        self.cfg, self.quant = cfg, False
        phase_map(1, 1, cfg.phases)
        self.convs = nn.ModuleList([nn.Conv2d(cfg.channels, cfg.width, cfg.kernel, padding=cfg.kernel // 2)] +
                                   [nn.Conv2d(cfg.width, cfg.width, 3, padding=1) for _ in range(cfg.spatial - 1)] +
                                   [nn.Conv2d(cfg.width, cfg.width, 1),
                                    nn.Conv2d(cfg.width, cfg.steps * cfg.centers, 1)])

    def _fracs(self):
        """(in, weight, out) fraction bits of each conv."""
        a, n = RELU4_FRAC_BITS, len(self.convs)
        ins, outs = (0,) + (a,) * (n - 1), (a,) * (n - 1) + (LOGIT_FRAC,)
        return [(i, pow2_frac(conv.weight), o) for i, conv, o in zip(ins, self.convs, outs)]

    def int_params(self):
        """[(int8 weight, int32 bias, shift, (lo, hi))] per conv, float64, straight-through."""
        clips = ((0, 255),) * (len(self.convs) - 1) + (LOGIT_CLIP,)
        return [(quantize_weight(conv.weight.double(), fw), round_half_up_ste(conv.bias.double() * 2.0 ** (fi + fw)),
                 fi + fw - fo, clip) for conv, (fi, fw, fo), clip in zip(self.convs, self._fracs(), clips)]

    def forward(self, ctx: torch.Tensor) -> torch.Tensor:
        """ctx (N, C, h, w) integer-valued -> logits in log2 units (N, T * L, h, w); QAT: integers / 16."""
        if not self.quant:
            h = ctx.float()
            for conv in self.convs[:-1]:
                h = torch.clamp(F.relu(conv(h)), max=255 / 2 ** RELU4_FRAC_BITS)
            return torch.clamp(self.convs[-1](h), LOGIT_CLIP[0] / 16, LOGIT_CLIP[1] / 16)
        h = ctx.double()
        for k, (w, b, shift, (lo, hi)) in enumerate(self.int_params()):
            h = requantize_ste(F.conv2d(h, w, b, padding=self.convs[k].padding), shift, lo, hi)
        return (h * 2.0 ** -LOGIT_FRAC).float()

    def integer_logits(self, ctx: torch.Tensor) -> np.ndarray:
        """The QAT net's int8 logits (what the entropy program outputs)."""
        with torch.no_grad():
            return np.rint(self.forward(ctx).double().numpy() * 2 ** LOGIT_FRAC).astype(np.int64)

    def macs_per_symbol(self) -> int:
        """MACs of one run of the net per latent position (decoding runs it T times)."""
        return sum(conv.weight.numel() for conv in self.convs)


def step_masks(cfg: EntropyNetConfig, h: int, w: int):
    """(T, C, h, w) float masks: known before step t (input) and coded at step t (in the step's channel)."""
    phase = torch.from_numpy(phase_map(h, w, cfg.phases))
    known = torch.zeros(cfg.steps, cfg.channels, h, w)
    coded = torch.zeros(cfg.steps, h, w)
    for c in range(cfg.channels):
        for p in range(cfg.phases):
            t = c * cfg.phases + p
            known[t, :c] = 1
            known[t, c] = (phase < p).float()
            coded[t] = (phase == p).float()
    return known, coded


def latent_bits(net: EntropyNet, symbols: torch.Tensor, steps: torch.Tensor = None,
                assign: torch.Tensor = None) -> torch.Tensor:
    """Code length in bits of (N, C, h, w) symbols under the net, every step as the decoder runs it; with `steps`
    (step indices) only those steps' symbols (training samples a subset: the same expectation, less work).

    assign: the quantizer's soft assignment (N, C, h, w, L) of the codec being trained with loss.rate: the value
    is still the hard symbols' code length, the gradient reaches the encoder through the soft one (straight
    through); the context stays the hard symbols, as the decoder sees them. `net` may be wrapped (DDP)."""
    cfg = getattr(net, "module", net).cfg
    n, c, h, w = symbols.shape
    known, coded = step_masks(cfg, h, w)
    t = torch.arange(cfg.steps) if steps is None else steps.cpu()
    known, coded = known[t].to(symbols.device), coded[t].to(symbols.device)
    k = len(t)
    ctx = (known[None] * (symbols[:, None].float() + 1)).reshape(n * k, c, h, w)
    logits = net(ctx).reshape(n, k, cfg.steps, cfg.centers, h, w)
    logits = logits[:, torch.arange(k), t.to(symbols.device)]      # step t's head at step t
    target = symbols[:, t // cfg.phases]                           # the channel step t codes
    if assign is not None:
        q = assign[:, t.to(symbols.device) // cfg.phases].movedim(-1, 2)          # (n, k, L, h, w)
        q = F.one_hot(target, cfg.centers).movedim(-1, 2).to(q.dtype) + (q - q.detach())
        nll = -(q * F.log_softmax(logits * np.log(2.0), dim=2)).sum(2)
        return (nll * coded[None]).sum() / np.log(2.0)
    nll = F.cross_entropy(logits.reshape(-1, cfg.centers, h, w) * np.log(2.0), target.reshape(-1, h, w),
                          reduction="none").reshape(n, k, h, w)
    return (nll * coded[None]).sum() / np.log(2.0)


def entropy_program(net: EntropyNet) -> Program:
    """The QAT net -> its entropy program (firmware_ref/entropy_model.py reads it)."""
    if not net.quant:
        raise ValueError("the entropy program needs the QAT net (quant=True), not the float one")
    cfg = net.cfg
    b = ProgramBuilder({"entropy_model": asdict(cfg)})
    x = b.input("context", "int8", 0, cfg.channels)
    last = len(net.convs) - 1
    for k, ((w, bias, _, _), (_, fw, fo)) in enumerate(zip(net.int_params(), net._fracs())):
        x = b.conv("conv2d", f"entropy.conv{k + 1}", x, w.detach().numpy().astype(np.int64),
                   bias.detach().numpy().astype(np.int64), fw, "int8" if k == last else "uint8", fo,
                   padding=net.convs[k].padding[0], relu=k < last)
    return b.build([b.clip("logits", x, *LOGIT_CLIP)])


def save_entropy_net(path, net: EntropyNet, metrics: dict) -> None:
    torch.save({"format": FORMAT, "config": asdict(net.cfg), "quant": net.quant, "state_dict": net.state_dict(),
                "metrics": metrics}, path)


def load_entropy_net(path) -> EntropyNet:
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same one-line answer
        raise ValueError(f"{path} is not a readable entropy model ({type(e).__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"{path} is not a bpgan entropy model (expected format {FORMAT})")
    net = EntropyNet(EntropyNetConfig(**blob["config"]))
    net.load_state_dict(blob["state_dict"])
    net.quant = bool(blob["quant"])
    return net.eval()
