"""Image quality metrics: kept as a re-export of bpgan.toolkit.metrics (the leaf module that defines them).

training/loop.py and cli/encode.py still import the metrics from here; new code should import
..metrics directly so that nothing below the evaluation package depends on it.
"""
from ..metrics import MSSSIM_WEIGHTS, msssim, msssim_window, psnr, psnr_from_mse, to_unit

__all__ = ["MSSSIM_WEIGHTS", "to_unit", "psnr", "msssim_window", "msssim", "psnr_from_mse"]
