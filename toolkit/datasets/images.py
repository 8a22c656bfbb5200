"""Image data: folders of photos (BSDS500 style), packed crop files (packed.py) or the embedded default,
as [-1, 1] crops.

The embedded default is the photograph `grace_hopper.jpg` that matplotlib installs with itself
(public domain), so `make demo` needs no downloaded data.
"""
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch
from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".webp")
EMBEDDED = "embedded"


def embedded_image_path() -> Path:
    import matplotlib
    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def load_rgb(path: Path) -> np.ndarray:
    """HxWx3 uint8; any mode Pillow reads is converted to RGB."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def image_paths(source: str) -> List[Path]:
    if source == EMBEDDED:
        return [embedded_image_path()]
    folder = Path(source)
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return paths


def to_signed_unit(batch_uint8: torch.Tensor) -> torch.Tensor:
    """N,H,W,3 uint8 -> N,3,H,W float in [-1, 1]."""
    return batch_uint8.permute(0, 3, 1, 2).float() / 127.5 - 1.0


class ImageCrops:
    """Images held in memory as uint8; random crops with flips for training, fixed crops for validation."""

    def __init__(self, source: str, crop: int, limit: Optional[int] = None):
        from .packed import is_packed, load_packed
        if is_packed(source):   # bpgan-pack's crops, each one an image here
            self.images = list(torch.from_numpy(load_packed(source)[0][:limit]))
        else:
            self.images = [torch.from_numpy(load_rgb(p).copy()) for p in image_paths(source)[:limit]]
        self.crop = crop
        small = [i for i, im in enumerate(self.images) if min(im.shape[:2]) < crop]
        if small:
            raise ValueError(f"{source}: image {small[0]} is smaller than the crop size {crop}")

    def random_batch(self, batch_size: int, gen: torch.Generator) -> torch.Tensor:
        out = []
        for _ in range(batch_size):
            im = self.images[int(torch.randint(len(self.images), (1,), generator=gen))]
            y = int(torch.randint(im.shape[0] - self.crop + 1, (1,), generator=gen))
            x = int(torch.randint(im.shape[1] - self.crop + 1, (1,), generator=gen))
            patch = im[y:y + self.crop, x:x + self.crop]
            if torch.rand((), generator=gen) < 0.5:
                patch = patch.flip(1)
            out.append(patch)
        return to_signed_unit(torch.stack(out))

    def fixed_crops(self, count: int) -> torch.Tensor:
        """`count` deterministic crops spread over the images (centre, then corners)."""
        crops, c = [], self.crop
        for k in range(count):
            im = self.images[k % len(self.images)]
            h, w = im.shape[:2]
            spots = [((h - c) // 2, (w - c) // 2), (0, 0), (h - c, w - c), (0, w - c), (h - c, 0)]
            y, x = spots[(k // len(self.images)) % len(spots)]
            crops.append(im[y:y + c, x:x + c])
        return to_signed_unit(torch.stack(crops))
