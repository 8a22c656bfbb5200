"""VGG19 perceptual loss (CompressGAN / GC, after pix2pixHD's VGG feature loss), for images in [-1, 1].

The network is torchvision's VGG19 `features` stack, built here layer for layer (torchvision is not a dependency):
the same nn.Sequential indices, so a torchvision-format state dict (`features.N.weight` / `features.N.bias`, e.g.
torchvision's vgg19 ImageNet file saved with torch.save(model.state_dict())) loads by key name; its `classifier.*`
keys are ignored. Only the layers up to the deepest tapped ReLU are built.

Tapped layers (ReLU outputs; torchvision indices) and their weights, pix2pixHD's 1/32 .. 1 weighting:
  relu1_2 (3) 1/32, relu2_2 (8) 1/16, relu3_4 (17) 1/8, relu4_4 (26) 1/4, relu5_4 (35) 1.
loss = sum_i w_i * mean|phi_i(x_hat) - phi_i(x)| / sum_i w_i  (a weighted mean of per-layer L1 distances).
Inputs are mapped from [-1, 1] to [0, 1] and normalized with ImageNet's mean and std, as the weights expect.
The VGG is frozen: eval mode, requires_grad False on every weight; gradients reach x_hat only.

Without weights (loss.vgg_weights not set) the substitute is the same VGG19 with fixed random weights: Kaiming
normal (fan_in, ReLU gain), biases 0, drawn from a torch.Generator seeded 0 (the global RNG is not touched), so
every run gets the same network. This "random-feature perceptual loss" is not an ImageNet-trained VGG: it
still compares local structure and texture statistics through a deep stack of random ReLU filters (random
conv features are known to carry texture/structure information, e.g. Ustyuzhaninov et al. 2017, "What does it
take to generate natural textures?"), but it is no measure of semantic similarity; results trained with it are
not comparable to a pretrained-VGG loss. No pretrained VGG weights are reachable offline here, so this is the
honest default; set loss.vgg_weights to a torchvision vgg19 .pth for the real loss.
"""
from pathlib import Path
from typing import Dict, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

# torchvision's "E" configuration (VGG19): conv widths, "M" = 2x2 max pool
VGG19_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
             512, 512, 512, 512, "M"]
LAYERS = {"relu1_2": 3, "relu2_2": 8, "relu3_4": 17, "relu4_4": 26, "relu5_4": 35}   # index in `features`
DEFAULT_LAYERS = ("relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4")
DEFAULT_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SEED = 0


class VGGWeightsError(ValueError):
    """A VGG19 state dict that does not fit; str() is one line naming the file and the first bad key."""


def vgg19_features(upto: Optional[int] = None) -> nn.Sequential:
    """torchvision.models.vgg19().features (37 layers), or its layers 0..upto inclusive; same indices and shapes.
    Building it leaves torch's global RNG as it was (the conv layers' default init runs in a forked RNG), so a
    loss built lazily mid-run does not shift the training's random draws (resumed runs stay identical)."""
    layers, cin = [], 3
    with torch.random.fork_rng(devices=[]):
        for v in VGG19_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(cin, v, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
                cin = v
    return nn.Sequential(*(layers if upto is None else layers[:upto + 1]))


def random_init(features: nn.Sequential, seed: int = SEED) -> nn.Sequential:
    """The substitute's fixed random weights: Kaiming normal (fan_in, ReLU), bias 0, from a seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in features:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=gen)
                nn.init.zeros_(m.bias)
    return features


def load_vgg19_features(features: nn.Sequential, source: Union[str, Path, Dict[str, torch.Tensor]],
                        name: Optional[str] = None) -> nn.Sequential:
    """Copy `features.N.weight/bias` from a torchvision-format VGG19 state dict (a .pth path or a dict) into
    `features`; other keys (classifier.*) are ignored. A missing or mis-shaped key is one VGGWeightsError line."""
    if isinstance(source, (str, Path)):
        name = name or str(source)
        try:
            sd = torch.load(source, map_location="cpu", weights_only=True)
        except Exception as e:   # not a torch file, a pickle with objects, a truncated file, ...
            raise VGGWeightsError(f"{name}: not a readable torch state dict ({type(e).__name__})") from None
    else:
        sd, name = source, name or "state dict"
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise VGGWeightsError(f"{name}: expected a state dict (mapping of tensors), got {type(sd).__name__}")
    own = {f"features.{k}": v for k, v in features.state_dict().items()}
    for key, want in own.items():
        got = sd.get(key)
        if got is None:
            raise VGGWeightsError(f"{name}: missing key {key} (a torchvision VGG19 state dict has "
                                  f"features.N.weight/bias)")
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(want.shape):
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise VGGWeightsError(f"{name}: key {key} has shape {shape}, VGG19 needs {tuple(want.shape)}")
    features.load_state_dict({k[len("features."):]: sd[k].float() for k in own})
    return features


class VGGPerceptualLoss(nn.Module):
    """Weighted L1 between frozen VGG19 features of x_hat and x (both in [-1, 1]); see the module docstring.

    weights: a torchvision-format VGG19 .pth (or a state dict); None: the seeded random-feature substitute."""

    def __init__(self, weights: Union[None, str, Path, Dict[str, torch.Tensor]] = None,
                 layers: Sequence[str] = DEFAULT_LAYERS, layer_weights: Sequence[float] = DEFAULT_WEIGHTS):
        super().__init__()
        unknown = [n for n in layers if n not in LAYERS]
        if unknown or not layers or len(layers) != len(layer_weights):
            raise ValueError(f"vgg layers must be a non-empty subset of {list(LAYERS)} with one weight each")
        self.taps = [LAYERS[n] for n in layers]
        self.layer_weights = [float(w) for w in layer_weights]
        self.substitute = weights is None
        self.features = vgg19_features(max(self.taps))
        if weights is None:
            random_init(self.features)
        else:
            load_vgg19_features(self.features, weights)
        self.features.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.eval()

    def train(self, mode: bool = True):
        return super().train(False)   # frozen: always eval

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return ((x + 1) / 2 - self.mean) / self.std

    def tapped(self, x: torch.Tensor):
        out, h, taps = [], self.normalize(x), set(self.taps)
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in taps:
                out.append(h)
        return out

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if x_hat.shape[1] != 3:
            raise ValueError(f"the VGG perceptual loss needs RGB images (3 channels), got {x_hat.shape[1]}")
        with torch.no_grad():
            real = self.tapped(x)
        fake = self.tapped(x_hat)
        total = sum(w * F.l1_loss(a, b) for w, a, b in zip(self.layer_weights, fake, real))
        return total / sum(self.layer_weights)
