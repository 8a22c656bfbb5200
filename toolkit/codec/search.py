"""BPGAN latent search: refine the encoder's latent by back-propagation through the generator.

ADMM over the constraint "the latent is on the centers":
  z-step  Adam on  D(G(z), x) + rho/2 mean((z - Z + U)^2)   (one step per iteration)
  Z-step  Z = nearest center of (z + U)                   (projection onto the constraint set)
  U-step  U += z - Z
Each iteration evaluates the target loss D(G(Z), x) of the quantized latent and keeps the best,
starting with the encoder's own quantized latent (iteration 0), so the result is never worse
than the encoder alone by the target loss. D = mse * MSE + msssim * (1 - MS-SSIM) on [-1, 1]
images (+ colour * the squared difference of the per-channel means: a colour cast, which MSE
weighs little), measured on the unpadded region only.

Runs through whatever generator the model has: the QAT fake-quant one (with GradQuant8 8-bit
gradients when it was built with gradient_bits=8: the fixed-point device setting; or with
full-precision gradients, quantized_gradients=False) or a float one.
Only z receives gradients; the model's parameters are untouched, and the GradQuant8 running
statistics that the backward passes update are restored afterwards, so the model (and its hash)
is the same before and after a search.
"""
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F

from ..metrics import colour_cast, msssim as msssim_metric
from ..quant.gradient import GradQuant8


@dataclass(frozen=True)
class SearchConfig:
    iters: int = 50
    lr: float = 0.05           # Adam step on z (latent units; centers are ~0.5 apart)
    rho: float = 0.01          # ADMM penalty weight (relative to the distortion, a mean)
    mse: float = 1.0
    msssim: float = 0.0
    quantized_gradients: bool = True  # False: bypass the model's GradQuant8 (full-precision gradients)
    colour: float = 0.0        # weight of the squared per-channel mean difference (a colour cast), images


@dataclass
class SearchResult:
    indices: torch.Tensor                     # (C, h, w) int64 symbols of the best latent
    best_iteration: int                       # 0 = the encoder's latent was best
    losses: List[float] = field(default_factory=list)   # target loss of G(Z) per iteration, [0] = encoder
    encoder_loss: float = 0.0
    best_loss: float = 0.0


def distortion(x_hat: torch.Tensor, x: torch.Tensor, cfg: SearchConfig) -> torch.Tensor:
    """Weighted distortion between [-1, 1] images (batch mean)."""
    total = x_hat.new_zeros(())
    if cfg.mse:
        total = total + cfg.mse * F.mse_loss(x_hat, x)
    if cfg.msssim:
        total = total + cfg.msssim * (1 - msssim_metric(x_hat, x, reduce=False).mean())
    if cfg.colour and x.ndim == 4:   # per-channel means over the image: what a colour cast shifts
        total = total + cfg.colour * colour_cast(x_hat, x)
    return total


def _crop(t: torch.Tensor, size: Optional[Tuple[int, ...]]) -> torch.Tensor:
    """The top-left `size` of the trailing dims: (H, W) of an image or (T,) of a mel."""
    return t if size is None else t[(...,) + tuple(slice(0, n) for n in size)]


def _grad_stats(model):
    return [(m, m.running_max.clone(), m.scale.clone()) for m in model.modules() if isinstance(m, GradQuant8)]


def _identity(grad):
    return grad


def latent_search(model, x: torch.Tensor, cfg: SearchConfig = SearchConfig(),
                  original_size: Optional[Tuple[int, int]] = None) -> SearchResult:
    """x (1, 3, H, W) padded image or (1, bands, T) padded mel in [-1, 1] -> best quantized latent and a log.

    original_size (H, W) or (T,) restricts the distortion to the unpadded top-left region.
    """
    if x.ndim not in (3, 4) or x.shape[0] != 1:
        raise ValueError(f"latent_search codes one image (1, 3, H, W) or one mel (1, bands, T), "
                         f"got {tuple(x.shape)}")
    if x.ndim == 3 and cfg.msssim:
        raise ValueError("latent search: MS-SSIM is an image distortion; use --msssim 0 for audio")
    if cfg.iters < 0 or cfg.mse < 0 or cfg.msssim < 0 or cfg.mse + cfg.msssim <= 0:
        raise ValueError("latent search needs iters >= 0 and non-negative distortion weights, not all zero")
    was_training = model.training
    model.eval()
    saved_stats = _grad_stats(model)
    if not cfg.quantized_gradients:
        for m, _, _ in saved_stats:
            m.quantize = _identity  # instance attribute shadows the method until restored below
    quantizer, generator = model.quantizer, model.generator
    target = _crop(x, original_size)

    def target_loss(idx):
        with torch.no_grad():
            return float(distortion(_crop(generator(quantizer.dequantize(idx)), original_size), target, cfg))

    try:
        with torch.no_grad():
            z = model.encoder(x)
        idx = quantizer.indices(z)
        best_idx, best_loss, best_it = idx, target_loss(idx), 0
        losses = [best_loss]
        z = z.clone().requires_grad_(True)
        Z = quantizer.dequantize(idx).detach()
        U = torch.zeros_like(z)
        opt = torch.optim.Adam([z], lr=cfg.lr)
        for it in range(1, cfg.iters + 1):
            with torch.enable_grad():
                loss = distortion(_crop(generator(z), original_size), target, cfg)
                loss = loss + cfg.rho / 2 * ((z - Z + U) ** 2).sum() / z.numel()
                (grad,) = torch.autograd.grad(loss, z)
            z.grad = grad
            opt.step()
            with torch.no_grad():
                idx = quantizer.indices(z + U)
                Z = quantizer.dequantize(idx).detach()
                U += z - Z
            losses.append(target_loss(idx))
            if losses[-1] < best_loss:
                best_idx, best_loss, best_it = idx, losses[-1], it
    finally:
        for m, running_max, scale in saved_stats:
            m.running_max.copy_(running_max)
            m.scale.copy_(scale)
            m.__dict__.pop("quantize", None)
        model.train(was_training)
    return SearchResult(best_idx[0].detach().clone(), best_it, losses, losses[0], best_loss)
