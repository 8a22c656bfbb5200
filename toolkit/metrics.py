"""Image quality metrics on [-1, 1] tensors (converted to [0, 1]).

A leaf module: it imports nothing from the toolkit, so the codec (search.py), the losses and
the evaluation code can all use it without the lower layers importing the evaluation package.
"""
import math

import torch
from pytorch_msssim import ms_ssim

MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def to_unit(x: torch.Tensor) -> torch.Tensor:
    return ((x + 1) / 2).clamp(0, 1)


def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean over the batch of PSNR (dB, peak 1) between [-1, 1] images."""
    mse = ((to_unit(x) - to_unit(y)) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return float((10 * torch.log10(1 / mse)).mean())


def msssim_window(size: int) -> int:
    """Standard MS-SSIM uses an 11-tap window and needs a side > 160; smaller crops (training patches)
    use the largest odd window that keeps all 5 scales valid: size > (win - 1) * 16."""
    for win in (11, 9, 7, 5, 3):
        if size > (win - 1) * 16:
            return win
    raise ValueError(f"MS-SSIM needs images larger than 32 pixels a side, got {size}")


def msssim(x: torch.Tensor, y: torch.Tensor, reduce: bool = True):
    """MS-SSIM between [-1, 1] images (5 scales, standard weights)."""
    win = msssim_window(min(x.shape[-2:]))
    val = ms_ssim(to_unit(x), to_unit(y), data_range=1.0, win_size=win, weights=list(MSSSIM_WEIGHTS),
                  size_average=False)
    return float(val.mean()) if reduce else val


def psnr_from_mse(mse: float) -> float:
    return 10 * math.log10(1 / max(mse, 1e-10))


def colour_cast(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the per-channel means of (N, C, H, W) images: a colour cast, which the
    pixel MSE weighs little (a 4-level shift of one channel is 1/20 of the MSE at 22.6 dB)."""
    return torch.mean((x_hat.mean(dim=(2, 3)) - x.mean(dim=(2, 3))) ** 2)

