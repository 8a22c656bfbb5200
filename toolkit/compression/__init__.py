"""Compression: ADMM pruning and codebook quantization, and model size accounting."""
from .admm import ADMMCodebook, ADMMPruner, kmeans_1d, topk_mask
from .storage import model_sizes

__all__ = ["ADMMCodebook", "ADMMPruner", "kmeans_1d", "topk_mask", "model_sizes"]
