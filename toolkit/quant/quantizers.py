"""Brevitas quantizers that implement the integer contract.

Every scale is a power of two, every rounding is round-half-up:
- weights: int8 narrow range [-127, 127], scale 2**ceil(log2(max|w| / 127)), per tensor or per output channel;
- relu4: uint8 at scale exactly 2**-6, range [0, 255/64] (the quantizer's clamp *is* the relu4 clamp);
- signed activations: int8 [-128, 127] at a fixed scale 2**-frac_bits (latent, residual branch, output);
- bias: int32 at the accumulator scale (input scale x weight scale).
"""
from functools import lru_cache

from brevitas.inject.enum import ScalingImplType
from brevitas.quant import (
    Int8ActPerTensorFixedPoint,
    Int8WeightPerTensorFixedPoint,
    Int32Bias,
    Uint8ActPerTensorFixedPoint,
)

from .rounding import RoundHalfUpSte

RELU4_FRAC_BITS = 6
RELU4_MAX = 255 / 64  # the largest uint8 value at scale 2**-6
OUTPUT_FRAC_BITS = 7  # tanh becomes a clamp to int8 at scale 2**-7: [-1, 127/128]


class Int8WeightPerTensorPoT(Int8WeightPerTensorFixedPoint):
    """int8 narrow-range weights, power-of-two per-tensor scale from max |w|, round half up."""
    float_to_int_impl = RoundHalfUpSte


class Int8WeightPerChannelPoT(Int8WeightPerTensorPoT):
    """As above with one power-of-two scale per output channel."""
    scaling_per_output_channel = True


class Relu4Act(Uint8ActPerTensorFixedPoint):
    """relu4 = min(max(x, 0), 255/64) as uint8 at scale exactly 2**-6 (constant, not learned)."""
    scaling_impl_type = ScalingImplType.CONST
    scaling_init = RELU4_MAX
    float_to_int_impl = RoundHalfUpSte


class Int32BiasHalfUp(Int32Bias):
    """int32 bias at the accumulator scale (input scale x weight scale)."""
    float_to_int_impl = RoundHalfUpSte


@lru_cache(maxsize=None)
def signed_act_quant(frac_bits: int):
    """int8 [-128, 127] activation quantizer at the fixed scale 2**-frac_bits."""
    # Brevitas divides the threshold by 128 for signed int8, then keeps the power of two.
    threshold = float(2 ** (7 - frac_bits))
    return type(
        f"Int8ActFrac{frac_bits}",
        (Int8ActPerTensorFixedPoint,),
        {"scaling_impl_type": ScalingImplType.CONST, "scaling_init": threshold,
         "float_to_int_impl": RoundHalfUpSte},
    )


def weight_quant(per_channel: bool):
    return Int8WeightPerChannelPoT if per_channel else Int8WeightPerTensorPoT
