"""Classical image codecs through Pillow (JPEG, WebP, AVIF) as rate-distortion anchors.

bpp is 8 * len(encoded bytes) / pixels: the real file size, container included, as for our bitstreams.
"""
import io
import time
from typing import Dict, Sequence

import numpy as np
from PIL import Image

QUALITIES: Dict[str, Sequence[int]] = {
    "JPEG": (1, 3, 5, 8, 12, 20, 30),
    "WEBP": (0, 2, 5, 10, 20, 30),
    "AVIF": (0, 5, 10, 20, 30, 40),
}


def encode_decode(pixels: np.ndarray, codec: str, quality: int):
    """-> (decoded HxWx3 uint8, bytes used, decode seconds)."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=codec, quality=quality)
    data = buf.getvalue()
    t0 = time.perf_counter()
    with Image.open(io.BytesIO(data)) as im:
        out = np.asarray(im.convert("RGB"))
    return out, len(data), time.perf_counter() - t0


def available_codecs() -> list:
    from PIL import features
    names = {"JPEG": "jpg", "WEBP": "webp", "AVIF": "avif"}
    return [c for c, feat in names.items() if features.check(feat)]


def bracket(points: Sequence[dict], bpp: float) -> list:
    """The anchor points just below and just above `bpp` (by mean bpp), for the tables."""
    below = [p for p in points if p["bpp"] <= bpp]
    above = [p for p in points if p["bpp"] > bpp]
    picked = ([max(below, key=lambda p: p["bpp"])] if below else []) + \
             ([min(above, key=lambda p: p["bpp"])] if above else [])
    return picked
