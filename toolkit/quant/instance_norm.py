"""Instance norm (+ its activation) for the float and the QAT build, the QAT one exactly the integer op.

Float build: InstanceNormAct = torch's InstanceNorm2d(affine=True), then relu4 (or nothing for a signed output).
QAT build:   QuantInstanceNormAct, the same parameter names (weight = gamma, bias = beta), whose forward value is
firmware_ref.ops.norm.instance_norm on the integers of its input, bit for bit:

  x      the input's integers (int8 / uint8 at 2^-in_frac: the conv before it ends with signed(f));
  S, Q   sum x, sum x^2 per (sample, channel); D = n*Q - S*S + ((n*n) >> eps_shift); s = max(1, isqrt(D));
  z      clip(rdiv((n*x - S) << Z, s), -2^15, 2^15 - 1), rdiv(a, s) = floor((2a + s) / (2s));
  gamma  int8 [-127, 127] at a power-of-two scale 2^-gamma_frac, Brevitas's rule (scale 2^ceil(log2(max|g| / 128)),
         per tensor or per channel), rounded half up;
  beta   int32 at 2^-(Z + gamma_frac), rounded half up;
  y      clip(rounding_shift(gamma*z + beta, Z + gamma_frac - out_frac), lo, hi): int8, or uint8 for relu4,

computed by the reference kernel itself (firmware_ref.ops.norm.instance_norm, the one copy of those steps) on the
input's integers, and the float output is y * 2^-out_frac. The gradient is straight through the float
instance norm, (x - mean) / sqrt(var + eps) * gamma + beta clamped to the output format's range. Under ONNX export
the layer is one node bpgan::InstanceNorm(x, gamma int8, beta int32) with attributes z_frac, eps_shift,
gamma_frac (per channel), out_frac, out_dtype, relu, which export/onnx_to_program.py maps to
ProgramBuilder.instance_norm.
"""
import math
from typing import Tuple

import torch
from torch import nn

from bpgan.firmware_ref.ops.norm import instance_norm

from .layers import RELU4, Fmt, fmt_exponent
from .rounding import round_half_up

INT32_MIN, INT32_MAX = -2 ** 31, 2 ** 31 - 1
GAMMA_FRAC = (-8, 16)   # gamma's exponent range: max|gamma| from 2^-9 up to 2^15 (the shift stays in range)


def eps_shift_for(eps: float, in_frac: int) -> int:
    """The power of two nearest torch's eps in x's integer units squared (ProgramBuilder.instance_norm's default)."""
    return min(max(round(-math.log2(eps) - 2 * in_frac), 0), 40)


def _out_range(out_fmt: Fmt) -> Tuple[int, int, str, bool]:
    """(lo, hi, dtype, relu) of the output format: relu4 is uint8 [0, 255], signed(f) int8 [-128, 127]."""
    return (0, 255, "uint8", True) if out_fmt == RELU4 else (-128, 127, "int8", False)


class InstanceNormAct(nn.InstanceNorm2d):
    """Float build: InstanceNorm2d(affine=True) then relu4 (out_fmt "relu4") or nothing (a signed output)."""

    def __init__(self, channels: int, out_fmt: Fmt = RELU4, eps: float = 1e-5):
        super().__init__(channels, eps=eps, affine=True)
        self.out_fmt = out_fmt

    def forward(self, x):
        y = super().forward(x)
        return torch.clamp(y, 0.0, 4.0) if self.out_fmt == RELU4 else y


class _StraightThrough(torch.autograd.Function):
    """Forward: `exact` bit for bit (soft + (exact - soft).detach() can be off by a float rounding); backward: the
    gradient goes to `soft` unchanged."""

    @staticmethod
    def forward(ctx, soft, exact):
        return exact.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class _InstanceNormOnnx(torch.autograd.Function):
    """The integer op as one ONNX node of domain bpgan; gamma, beta and the exponents travel as Python ints."""

    @staticmethod
    def forward(ctx, x, in_frac, gamma, beta, gamma_frac, z_frac, eps_shift, out_frac, out_dtype, relu):
        # Runs only while tracing for export, where the tracer records this body too (integer tensor ops that
        # the TorchScript passes refuse); the value is the symbolic's node, so the shape is all that counts here.
        return x.clone()

    @staticmethod
    def symbolic(g, x, in_frac, gamma, beta, gamma_frac, z_frac, eps_shift, out_frac, out_dtype, relu):
        gv = g.op("Constant", value_t=torch.tensor(gamma, dtype=torch.int8))
        bv = g.op("Constant", value_t=torch.tensor(beta, dtype=torch.int32))
        out = g.op("bpgan::InstanceNorm", x, gv, bv, z_frac_i=z_frac, eps_shift_i=eps_shift,
                   gamma_frac_i=list(gamma_frac), out_frac_i=out_frac, out_dtype_s=out_dtype, relu_i=int(relu))
        out.setType(x.type().with_sizes([None] * 4))
        return out


class QuantInstanceNormAct(nn.Module):
    """QAT build: forward value = the integer instance_norm (module docstring), gradient of the float one.

    in_fmt: the input's format (its integers are x * 2^in_frac exactly, e.g. a signed(f) conv output);
    out_fmt: relu4 (uint8 at 2^-6, the norm -> ReLU of the paper) or signed(f) (int8, e.g. a residual branch)."""

    def __init__(self, channels: int, in_fmt: Fmt, out_fmt: Fmt = RELU4, z_frac: int = 8, eps: float = 1e-5,
                 per_channel: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps, self.z_frac, self.per_channel = eps, int(z_frac), per_channel
        self.in_frac, self.out_frac = fmt_exponent(in_fmt), fmt_exponent(out_fmt)
        self.in_fmt, self.out_fmt = in_fmt, out_fmt
        self.eps_shift = eps_shift_for(eps, self.in_frac)
        self.lo, self.hi, self.out_dtype, self.relu = _out_range(out_fmt)

    @torch.no_grad()
    def integer_params(self):
        """-> (gamma int8 values, gamma_frac per channel, beta int32 values), each an int64 tensor of (C,)."""
        w = self.weight.detach().to(torch.float64)
        absmax = w.abs() if self.per_channel else w.abs().max().expand_as(w)
        absmax = absmax.clamp(min=2.0 ** -(GAMMA_FRAC[1] + 7))
        frac = (-torch.ceil(torch.log2(absmax / 128))).clamp(*GAMMA_FRAC).to(torch.int64)
        gamma = round_half_up(w * torch.pow(2.0, frac.to(torch.float64))).clamp(-127, 127).to(torch.int64)
        b = self.bias.detach().to(torch.float64) * torch.pow(2.0, (frac + self.z_frac).to(torch.float64))
        beta = round_half_up(b).clamp(INT32_MIN, INT32_MAX).to(torch.int64)
        return gamma, frac, beta

    @torch.no_grad()
    def integer_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The op's output integers for a float input on the 2^-in_frac grid."""
        gamma, frac, beta = self.integer_params()
        xi = round_half_up(x.detach().to(torch.float64) * 2.0 ** self.in_frac).to(torch.int64)   # exact on the grid
        shift = (frac + self.z_frac - self.out_frac).tolist()
        y = instance_norm(xi.cpu().numpy(), gamma.numpy(), beta.numpy(), self.z_frac, self.eps_shift, shift,
                          (self.lo, self.hi), "int64")
        return torch.from_numpy(y).to(x.device)

    def forward(self, x):
        if torch.onnx.is_in_onnx_export():   # the integer steps run inside the node, not traced op by op
            gamma, frac, beta = self.integer_params()
            return _InstanceNormOnnx.apply(x, self.in_frac, tuple(gamma.tolist()), tuple(beta.tolist()),
                                           tuple(frac.tolist()), self.z_frac, self.eps_shift, self.out_frac,
                                           self.out_dtype, self.relu)
        exact = self.integer_forward(x).to(x.dtype) * 2.0 ** -self.out_frac
        axes = tuple(range(2, x.ndim))   # written out: F.instance_norm refuses 1x1 inputs when training
        mean, var = x.mean(axes, keepdim=True), x.var(axes, unbiased=False, keepdim=True)
        shape = (1, -1) + (1,) * len(axes)
        y = (x - mean) * torch.rsqrt(var + self.eps) * self.weight.reshape(shape) + self.bias.reshape(shape)
        y = torch.clamp(y, self.lo * 2.0 ** -self.out_frac, self.hi * 2.0 ** -self.out_frac)
        return _StraightThrough.apply(y, exact)


def instance_norm_layer(quant, channels: int, in_fmt: Fmt, out_fmt: Fmt = RELU4, z_frac: int = 8,
                        eps: float = 1e-5) -> nn.Module:
    """The float (quant None) or QAT instance norm + activation, with the same parameter names."""
    if quant is None:
        return InstanceNormAct(channels, out_fmt, eps)
    return QuantInstanceNormAct(channels, in_fmt, out_fmt, z_frac, eps, per_channel=quant.per_channel_weights)
