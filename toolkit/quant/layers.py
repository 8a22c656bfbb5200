"""Layer factory: the same network built in float (for the float stage) or as Brevitas QAT layers.

Both builds give identical module names, so a folded float state dict loads into the quant build.
Tensor formats between layers (what the integer program calls them):
- "relu4":      uint8 at scale 2**-6;
- ("signed", f): int8 at scale 2**-f.
"""
from dataclasses import dataclass
from typing import Optional, Union

import brevitas.nn as qnn
import torch
from torch import nn

from .gradient import GradQuant8
from .quantizers import (
    OUTPUT_FRAC_BITS,
    RELU4_FRAC_BITS,
    Int32BiasHalfUp,
    Relu4Act,
    signed_act_quant,
    weight_quant,
)

Fmt = Union[str, tuple]  # "relu4" or ("signed", frac_bits)
RELU4: Fmt = "relu4"
OUTPUT: Fmt = ("signed", OUTPUT_FRAC_BITS)


def signed(frac_bits: int) -> Fmt:
    return ("signed", int(frac_bits))


def fmt_exponent(fmt: Fmt) -> int:
    """e such that the tensor's scale is 2**-e."""
    return RELU4_FRAC_BITS if fmt == RELU4 else int(fmt[1])


@dataclass(frozen=True)
class QuantSpec:
    """What the QAT build quantizes; None in place of a QuantSpec means float."""
    per_channel_weights: bool = False
    gradient_bits: Optional[int] = None  # 8 turns on GradQuant8 at every layer output
    stochastic_gradients: bool = False


def act_quant_for(fmt: Fmt):
    return Relu4Act if fmt == RELU4 else signed_act_quant(fmt[1])


class Relu4(nn.Module):
    """Float relu4(x) = min(max(x, 0), 4) of the paper."""

    def forward(self, x):
        return torch.clamp(x, 0.0, 4.0)


_FLOAT_CONV = {(1, False): nn.Conv1d, (1, True): nn.ConvTranspose1d,
               (2, False): nn.Conv2d, (2, True): nn.ConvTranspose2d}
_QUANT_CONV = {(1, False): qnn.QuantConv1d, (1, True): qnn.QuantConvTranspose1d,
               (2, False): qnn.QuantConv2d, (2, True): qnn.QuantConvTranspose2d}


class LayerFactory:
    """dims: 2 for images (N, C, H, W), 1 for signals over time (N, C, T), e.g. mel bands as channels."""

    def __init__(self, quant: Optional[QuantSpec], batchnorm: bool = False, dims: int = 2):
        if dims not in (1, 2):
            raise ValueError(f"LayerFactory dims must be 1 or 2, got {dims}")
        self.quant = quant
        self.batchnorm = batchnorm and quant is None  # BN is folded before QAT
        self.dims = dims

    def batch_norm(self, channels: int) -> nn.Module:
        return (nn.BatchNorm1d if self.dims == 1 else nn.BatchNorm2d)(channels)

    def conv(self, cin, cout, k, stride=1, padding=None, in_fmt: Fmt = RELU4, transpose=False):
        padding = (k - 1) // 2 if padding is None else padding
        args = dict(in_channels=cin, out_channels=cout, kernel_size=k, stride=stride, padding=padding,
                    bias=True)
        if self.quant is None:
            return _FLOAT_CONV[self.dims, transpose](**args)
        return _QUANT_CONV[self.dims, transpose](
            **args, input_quant=act_quant_for(in_fmt), weight_quant=weight_quant(self.quant.per_channel_weights),
            bias_quant=Int32BiasHalfUp, return_quant_tensor=False)

    def act(self, fmt: Fmt) -> nn.Module:
        """relu4, a signed int8 tensor, or the generator output (float: tanh; quant: clamp at 2**-7)."""
        if self.quant is None:
            if fmt == RELU4:
                return Relu4()
            return nn.Tanh() if fmt == OUTPUT else nn.Identity()
        if fmt == RELU4:
            return qnn.QuantReLU(act_quant=Relu4Act, return_quant_tensor=False)
        return qnn.QuantIdentity(act_quant=signed_act_quant(fmt[1]), return_quant_tensor=False)

    def grad(self) -> nn.Module:
        q = self.quant
        if q is None or not q.gradient_bits:
            return nn.Identity()
        return GradQuant8(q.gradient_bits, stochastic=q.stochastic_gradients)


class ConvAct(nn.Module):
    """conv [-> bn] -> act -> grad-quant; one integer op once exported."""

    def __init__(self, f: LayerFactory, cin, cout, k, stride=1, in_fmt: Fmt = RELU4, out_fmt: Fmt = RELU4,
                 transpose=False, padding=None):
        super().__init__()
        self.in_fmt, self.out_fmt, self.transpose = in_fmt, out_fmt, transpose
        self.conv = f.conv(cin, cout, k, stride, padding, in_fmt, transpose)
        self.bn = f.batch_norm(cout) if f.batchnorm and out_fmt != OUTPUT else nn.Identity()
        self.act = f.act(out_fmt)
        self.grad = f.grad()

    def forward(self, x):
        return self.grad(self.act(self.bn(self.conv(x))))


class ResBlock(nn.Module):
    """relu4(x + conv2(conv1(x))): the branch ends as a signed int8 tensor, the sum as relu4."""

    def __init__(self, f: LayerFactory, width: int, branch_frac_bits: int = 5):
        super().__init__()
        self.conv1 = ConvAct(f, width, width, 3)
        self.conv2 = ConvAct(f, width, width, 3, out_fmt=signed(branch_frac_bits))
        self.act = f.act(RELU4)
        self.grad = f.grad()

    def forward(self, x):
        return self.grad(self.act(x + self.conv2(self.conv1(x))))
