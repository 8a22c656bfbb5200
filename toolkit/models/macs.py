"""Count multiply-accumulates and parameters of conv layers with forward hooks."""
import torch
from torch import nn


def _is(mod, names):
    return type(mod).__name__ in names


CONV = ("Conv1d", "QuantConv1d", "Conv2d", "QuantConv2d")
CONV_T = ("ConvTranspose1d", "QuantConvTranspose1d", "ConvTranspose2d", "QuantConvTranspose2d")


@torch.no_grad()
def count_macs(model: nn.Module, example: torch.Tensor) -> dict:
    """Per-layer and total MACs of one forward pass on `example` (plus the model's example_inputs, if any)."""
    per_layer, hooks = {}, []

    def hook(name):
        def fn(mod, inp, out):
            per_weight_row = mod.weight[0].numel()
            if _is(mod, CONV):  # each output element: cin/groups * kernel taps
                per_layer[name] = out.numel() // out.shape[0] * per_weight_row
            else:  # each input element is scattered into cout/groups * kernel taps outputs
                x = inp[0].value if hasattr(inp[0], "value") else inp[0]
                per_layer[name] = x.numel() // x.shape[0] * per_weight_row
        return fn

    for name, mod in model.named_modules():
        if _is(mod, CONV + CONV_T):
            hooks.append(mod.register_forward_hook(hook(name)))
    was_training = model.training
    model.eval()
    try:
        model(example, **(model.example_inputs(example) if hasattr(model, "example_inputs") else {}))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return {"per_layer": per_layer, "total": sum(per_layer.values())}


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if n.endswith(("weight", "bias")))
