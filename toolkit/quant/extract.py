"""Read the integers a QAT layer stands for: int8 weights and their power-of-two exponents."""
import numpy as np
import torch
from torch import nn


def quant_conv_layers(module: nn.Module) -> dict:
    """name -> Brevitas conv / conv-transpose layer, in forward order."""
    return {n: m for n, m in module.named_modules() if hasattr(m, "quant_weight")}


def input_exponents(module: nn.Module) -> dict:
    """conv layer name -> e of its input scale 2**-e (declared by the enclosing ConvAct)."""
    from .layers import ConvAct, fmt_exponent
    return {f"{n}.conv" if n else "conv": fmt_exponent(m.in_fmt)
            for n, m in module.named_modules() if isinstance(m, ConvAct)}


@torch.no_grad()
def weight_scale(conv) -> torch.Tensor:
    """Power-of-two weight scale, broadcastable to the weight (per tensor or per output channel)."""
    return conv.quant_weight().scale.detach()


@torch.no_grad()
def integer_weights(conv) -> np.ndarray:
    """int8 weights of a Brevitas layer (narrow range)."""
    return conv.quant_weight().int().cpu().numpy().astype(np.int8)
