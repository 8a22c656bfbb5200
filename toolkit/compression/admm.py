"""ADMM compression of the generator's weights (Boyd et al.; Zhang et al. 2018 for DNN pruning).

Both constraints are handled the same way: the loss gets rho/2 ||W - Z + U||^2, and every few steps
Z = Proj(W + U) and U += W - Z.  Pruning projects onto the top-|w| set of each layer; weight
quantization projects onto a per-layer codebook of 2^b int8 values (times the layer's fixed scale).
"""
from typing import Dict

import numpy as np
import torch

from ..quant.extract import weight_scale


def keep_count(numel: int, sparsity: float) -> int:
    return int(round(numel * (1.0 - sparsity)))


def topk_mask(w: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Boolean mask of the round(n * (1 - sparsity)) largest |w| (ties broken by index)."""
    keep = keep_count(w.numel(), sparsity)
    mask = torch.zeros(w.numel(), dtype=torch.bool, device=w.device)
    if keep:
        mask[torch.topk(w.detach().abs().flatten(), keep).indices] = True
    return mask.view_as(w)


class ADMM:
    """Base: holds W (parameters), Z, U and rho; subclasses define the projection."""

    def __init__(self, params: Dict[str, torch.nn.Parameter], rho: float):
        self.params = params
        self.rho = rho
        self.Z = {n: self.project(n, p.detach()) for n, p in params.items()}
        self.U = {n: torch.zeros_like(p) for n, p in params.items()}

    def project(self, name: str, w: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def penalty(self) -> torch.Tensor:
        return sum(self.rho / 2 * ((p - self.Z[n] + self.U[n]) ** 2).sum() for n, p in self.params.items())

    @torch.no_grad()
    def update(self):
        for n, p in self.params.items():
            self.Z[n] = self.project(n, p + self.U[n])
            self.U[n] += p - self.Z[n]

    @torch.no_grad()
    def residual(self) -> float:
        """max over layers of ||W - Z|| / ||W||: how far the weights are from the constraint set."""
        return max(float((p - self.Z[n]).norm() / p.norm().clamp_min(1e-12)) for n, p in self.params.items())

    def state_dict(self):
        return {"rho": self.rho, "Z": self.Z, "U": self.U}

    def load_state_dict(self, s):
        self.rho, self.Z, self.U = s["rho"], s["Z"], s["U"]


class ADMMPruner(ADMM):
    def __init__(self, params, targets: Dict[str, float], rho: float):
        self.targets = targets
        super().__init__(params, rho)

    def project(self, name, w):
        return w * topk_mask(w, self.targets[name])

    @torch.no_grad()
    def hard_prune(self) -> Dict[str, torch.Tensor]:
        """Zero all but the top-|w| of each layer; returns the masks (True = kept)."""
        masks = {}
        for n, p in self.params.items():
            masks[n] = topk_mask(p, self.targets[n])
            p.mul_(masks[n])
        return masks


def kmeans_1d(values: np.ndarray, k: int, iters: int = 30) -> np.ndarray:
    """Integer codebook of up to k distinct int8 values by Lloyd's algorithm (quantile init).

    The two outer centers stay pinned at min and max, so the codebook spans the weights' range."""
    values = values.astype(np.float64)
    centers = np.quantile(values, (np.arange(k) + 0.5) / k)
    for _ in range(iters):
        centers[0], centers[-1] = values.min(), values.max()
        assign = np.abs(values[:, None] - centers[None]).argmin(1)
        for j in range(1, k - 1):
            if np.any(assign == j):
                centers[j] = values[assign == j].mean()
    centers[0], centers[-1] = values.min(), values.max()
    ints = np.unique(np.clip(np.floor(centers + 0.5), -127, 127)).astype(np.int64)
    return ints[ints != 0] if len(ints) > 1 else ints  # zero is carried by the sparsity mask


class ADMMCodebook(ADMM):
    """Weights of each layer restricted to scale * codebook (2^bits int8 values); pruned zeros stay zero."""

    def __init__(self, params, layers, bits: int, rho: float, masks=None):
        self.bits, self.layers = bits, layers
        self.scales = {n: weight_scale(layers[n]) for n in params}  # fixed until hard_assign
        self.masks = masks or {}
        self.codebooks = {n: self._fit(n, p.detach()) for n, p in params.items()}
        super().__init__(params, rho)

    def _ints(self, name, w):
        return w / self.scales[name]

    def _nonzero(self, name, w):
        m = self.masks.get(name)
        return torch.ones_like(w, dtype=torch.bool) if m is None else m

    def _fit(self, name, w):
        """Brevitas' scale is 2^ceil(log2(max|w| / 128)), so max |int| lies in (64, 127] at that scale.
        The outermost codebook value is kept above 64: a range that shrank to 64 or less would halve
        the scale after assignment and move every weight off its codebook."""
        vals = self._ints(name, w)[self._nonzero(name, w)].cpu().numpy()
        book = kmeans_1d(vals, 2 ** self.bits)
        top = np.abs(book).argmax()
        if np.abs(vals).max() > 64 >= abs(book[top]):
            book[top] = 65 if book[top] > 0 else -65
        return torch.from_numpy(book).to(w.device)

    def project(self, name, w):
        book = self.codebooks[name].to(w.dtype)
        ints = self._ints(name, w)
        nearest = book[(ints.unsqueeze(-1) - book).abs().argmin(-1)]
        return nearest * self.scales[name] * self._nonzero(name, w)

    @torch.no_grad()
    def refit(self):
        for n, p in self.params.items():
            self.codebooks[n] = self._fit(n, p + self.U[n])

    @torch.no_grad()
    def hard_assign(self):
        """Final fit on the weights themselves at the scale Brevitas gives them now, then assign."""
        for n, p in self.params.items():
            self.scales[n] = weight_scale(self.layers[n])
            self.codebooks[n] = self._fit(n, p)
            p.copy_(self.project(n, p))
        return {n: c.clone() for n, c in self.codebooks.items()}
