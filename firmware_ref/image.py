"""Generator output integers -> 8-bit pixels, in integers (so every engine writes the same PNG)."""
import numpy as np

from .rounding import rounding_shift


def to_pixels(y: np.ndarray, frac_bits: int) -> np.ndarray:
    """pixel = clip(((y + 2**f) * 255 + 2**f) >> (f + 1), 0, 255): round half up of (y * 2**-f + 1) * 255 / 2."""
    y = y.astype(np.int64)
    one = 1 << frac_bits
    return np.clip(rounding_shift((y + one) * 255, frac_bits + 1), 0, 255).astype(np.uint8)


def to_hwc_image(y: np.ndarray, frac_bits: int) -> np.ndarray:
    """(1, 3, H, W) int output -> (H, W, 3) uint8 for an image writer."""
    if y.ndim != 4 or y.shape[0] != 1 or y.shape[1] not in (1, 3):
        raise ValueError(f"expected a (1, 3, H, W) or (1, 1, H, W) image output, got shape {y.shape}")
    return np.ascontiguousarray(to_pixels(y[0], frac_bits).transpose(1, 2, 0))
