"""8-bit gradient quantization (Brevitas quantizes only the forward pass).

GradQuant8 sits at a layer's output. Forward: identity. Backward: the incoming gradient is
quantized to int8 [-127, 127] at the power-of-two scale 2**ceil(log2(running_max / 127)), where
running_max is this module's own exponential moving average of max |grad|. Rounding is
round half up (floor(g/s + 0.5)) or, as an option, stochastic (floor(g/s + u), u ~ U[0, 1)).
"""
import torch
from torch import nn


class _QuantizeGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, module):
        ctx.module = module
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return ctx.module.quantize(grad), None


class GradQuant8(nn.Module):
    """Identity forward; quantizes the backward gradient to `bits` with a per-module running max."""

    def __init__(self, bits: int = 8, momentum: float = 0.9, stochastic: bool = False):
        super().__init__()
        self.bits = bits
        self.momentum = momentum
        self.stochastic = stochastic
        self.register_buffer("running_max", torch.zeros(()))
        self.register_buffer("scale", torch.zeros(()))  # last scale used, for tests and reports

    @property
    def qmax(self) -> int:
        return 2 ** (self.bits - 1) - 1

    @torch.no_grad()
    def quantize(self, grad: torch.Tensor) -> torch.Tensor:
        peak = grad.abs().max()
        if self.running_max == 0:
            self.running_max.copy_(peak)
        else:
            self.running_max.mul_(self.momentum).add_((1 - self.momentum) * peak)
        if self.running_max <= 0:
            return torch.zeros_like(grad)
        scale = torch.exp2(torch.ceil(torch.log2(self.running_max / self.qmax)))
        self.scale.copy_(scale)
        offset = torch.rand_like(grad) if self.stochastic else 0.5
        q = torch.floor(grad / scale + offset).clamp_(-self.qmax, self.qmax)
        return q * scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled() or not x.requires_grad:
            return x
        return _QuantizeGrad.apply(x, self)
