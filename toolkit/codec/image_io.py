"""Image files <-> model tensors, and the decoder's int8 output -> 8-bit PNG.

Input: any image Pillow reads becomes 8-bit RGB; conversions that lose or invent information
(grayscale, alpha, palette, 16-bit samples, extra frames) are listed in `notes` for the CLI to print.
16-bit samples keep their high byte (v >> 8), which is what Pillow itself does for 16-bit colour PNGs.
The image is padded at the bottom/right to a multiple of the model stride by repeating the edge
pixels; the original size is kept for cropping after decoding. Tensor: x = 2 * p / 255 - 1.

Output: the generator's int8 y at scale 2**-7 (value y / 128 in [-1, 127/128]) maps back through
the inverse of the input convention, p = (y / 128 + 1) * 255 / 2 = (y + 128) * 255 / 256,
rounded half up in integers only:  p = ((y + 128) * 255 + 128) >> 8  (0 <= p <= 254), which is
firmware_ref.image.to_pixels (the one definition, shared with the reference decoder).
Integer-only, so every decoder engine writes the same pixels; PNGs are written with fixed settings
and no metadata, so the same pixels give byte-identical files.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Tuple

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from bpgan.firmware_ref.image import to_pixels

from ..quant.quantizers import OUTPUT_FRAC_BITS
from ..quant.rounding import round_half_up

MAX_PIXELS = 1 << 28  # refuse decompression bombs with one clear line
PNG_COMPRESS_LEVEL = 6


class ImageError(ValueError):
    """An input image that cannot be read or converted."""


@dataclass(frozen=True)
class LoadedImage:
    x: torch.Tensor                   # (1, 3, H + pad_h, W + pad_w) float32 in [-1, 1]
    pixels: np.ndarray                # (H, W, 3) uint8: the original, for measuring distortion
    original_size: Tuple[int, int]    # (H, W)
    padding: Tuple[int, int]          # (pad_h, pad_w), added at the bottom / right
    notes: Tuple[str, ...]            # conversions done, one line each


def _png_bit_depth(path: Path) -> int:
    with open(path, "rb") as f:
        head = f.read(25)
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR" and len(head) == 25:
        return head[24]
    return 8


def to_rgb8(im: Image.Image, bit_depth: int = 8) -> Tuple[np.ndarray, list]:
    """A Pillow image -> ((H, W, 3) uint8, notes)."""
    notes = []
    if bit_depth == 16:
        notes.append("16-bit image reduced to 8 bits per sample (high byte)")
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I") and bit_depth == 16:
        gray = (np.asarray(im).astype(np.uint32) >> 8).astype(np.uint8)  # 16-bit grayscale PNG
        notes.append("grayscale image converted to RGB")
        return np.repeat(gray[:, :, None], 3, axis=2), notes
    if mode in ("I", "F") or mode.startswith("I;"):
        raise ImageError(f"unsupported image mode {mode} (use 8- or 16-bit PNG, or JPEG)")
    if mode in ("L", "LA", "1"):
        notes.append("grayscale image converted to RGB")
    elif mode == "P":
        notes.append("palette image converted to RGB")
    elif mode not in ("RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "RGBX", "PA"):
        notes.append(f"{mode} image converted to RGB")
    if "A" in mode or (mode == "P" and "transparency" in im.info):
        notes.append("alpha channel dropped")
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy(), notes


def pad_to_stride(pixels: np.ndarray, stride: int, mode: str = "edge") -> Tuple[np.ndarray, Tuple[int, int]]:
    """(H, W, 3) -> padded (H + ph, W + pw, 3), (ph, pw) with both sizes multiples of stride."""
    h, w = pixels.shape[:2]
    ph, pw = (-h) % stride, (-w) % stride
    if mode == "reflect" and (ph >= h or pw >= w):
        mode = "edge"  # reflect needs more pixels than the padding
    return np.pad(pixels, ((0, ph), (0, pw), (0, 0)), mode=mode), (ph, pw)


def pixels_to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32, x = 2 * p / 255 - 1."""
    t = torch.from_numpy(np.require(pixels, requirements=["C", "W"])).permute(2, 0, 1)[None].to(torch.float32)
    return t * (2.0 / 255.0) - 1.0


def read_image(path, stride: int, pad_mode: str = "edge") -> LoadedImage:
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"no image file at {path}")
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_PIXELS:
                raise ImageError(f"{path} has {im.width}x{im.height} pixels, more than {MAX_PIXELS}")
            extra = ["only the first frame is coded"] if getattr(im, "n_frames", 1) > 1 else []
            im.load()
            pixels, notes = to_rgb8(im, _png_bit_depth(path))
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as e:
        raise ImageError(f"{path} is not a readable image ({type(e).__name__})") from None
    padded, padding = pad_to_stride(pixels, stride, pad_mode)
    h, w = pixels.shape[:2]
    return LoadedImage(pixels_to_tensor(padded), pixels, (h, w), padding, tuple(notes + extra))


def output_to_int8(y: torch.Tensor) -> np.ndarray:
    """The torch generator output (values on the 2**-7 grid, or float) -> int8 codes, round half up."""
    return round_half_up(y.detach().cpu().to(torch.float64) * 128).clamp(-128, 127).to(torch.int8).numpy()


def int8_to_pixels(y: np.ndarray, original_size=None) -> np.ndarray:
    """int8 codes (3, H, W) or (1, 3, H, W) -> (H, W, 3) uint8, cropped to original_size (H, W)."""
    y = np.asarray(y)
    if y.ndim == 4 and y.shape[0] == 1:
        y = y[0]
    if y.ndim != 3 or y.shape[0] != 3:
        raise ValueError(f"decoder output must be (3, H, W), got {y.shape}")
    if y.min(initial=0) < -128 or y.max(initial=0) > 127:
        raise ValueError("decoder output outside int8")
    if original_size is not None:
        h, w = original_size
        y = y[:, :h, :w]
    return np.ascontiguousarray(to_pixels(y, OUTPUT_FRAC_BITS).transpose(1, 2, 0))


def write_png(path, pixels: np.ndarray) -> None:
    """(H, W, 3) uint8 -> PNG with fixed settings and no metadata (same pixels, same bytes)."""
    if np.ndim(pixels) != 3 or np.shape(pixels)[2] != 3:
        raise ValueError(f"write_png takes (H, W, 3) pixels, got {np.shape(pixels)}")
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(
        Path(path), format="PNG", compress_level=PNG_COMPRESS_LEVEL, optimize=False)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images of the same shape (inf when equal)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))
