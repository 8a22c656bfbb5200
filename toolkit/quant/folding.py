"""Fold BatchNorm into the preceding conv so the deployed generator has no normalization."""
import torch
from torch import nn

from .layers import ConvAct


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> dict:
    """State dict of `model` with every ConvAct's BN folded into its conv (bn.* keys dropped).

    conv(x) * g + c  with  g = gamma / sqrt(var + eps),  c = beta - mean * g.
    """
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for name, mod in model.named_modules():
        if not isinstance(mod, ConvAct) or not isinstance(mod.bn, (nn.BatchNorm1d, nn.BatchNorm2d)):
            continue
        bn, conv = mod.bn, mod.conv
        g = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        c = bn.bias - bn.running_mean * g
        spatial = (1,) * (conv.weight.ndim - 2)
        shape = (1, -1) + spatial if mod.transpose else (-1, 1) + spatial  # out channels: dim 1 for convT
        prefix = f"{name}." if name else ""
        state[prefix + "conv.weight"] = conv.weight * g.reshape(shape)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(g)
        state[prefix + "conv.bias"] = bias * g + c
        for key in list(state):
            if key.startswith(prefix + "bn."):
                del state[key]
    return state
