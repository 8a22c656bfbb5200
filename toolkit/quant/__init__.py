"""Quantization: the rounding rule, Brevitas quantizers, gradient quantization, layer factory, BN folding."""
from .folding import fold_batchnorm
from .gradient import GradQuant8
from .layers import OUTPUT, RELU4, ConvAct, LayerFactory, QuantSpec, ResBlock, signed
from .quantizers import OUTPUT_FRAC_BITS, RELU4_FRAC_BITS, RELU4_MAX, signed_act_quant
from .rounding import RoundHalfUpSte, round_half_up

__all__ = ["fold_batchnorm", "GradQuant8", "OUTPUT", "RELU4", "ConvAct", "LayerFactory", "QuantSpec",
           "ResBlock", "signed", "OUTPUT_FRAC_BITS", "RELU4_FRAC_BITS", "RELU4_MAX", "signed_act_quant",
           "RoundHalfUpSte", "round_half_up"]
