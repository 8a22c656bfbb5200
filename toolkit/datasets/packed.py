"""Training crops packed in one file, so a dataset travels to an accelerator machine (at most 64 MiB).

`bpgan-pack SOURCE OUT.npz --crop S` cuts `count` random S x S crops (seeded; each a random image, a
random position) from a folder of images and stores them as one uint8 array (N, S, S, 3) beside its
metadata. A recipe's `data.train` (or `data.val`) may then name the .npz instead of the folder:
ImageCrops draws its training crops from inside the packed ones (so the recipe's crop must be at most
S) and its fixed validation crops from them as from images.
"""
import json
from pathlib import Path

import numpy as np
import torch

MAX_PACK_BYTES = 64 * 2 ** 20
FORMAT = "bpgan-crops/1"
FILE_OVERHEAD = 64 * 1024   # the .npz container, the metadata and the arrays' headers: well under this


def crop_bytes(crop: int) -> int:
    """Bytes one packed crop takes in the file: its pixels and its (image, row, column) origin."""
    return crop * crop * 3 + 3 * 8


def crops_that_fit(crop: int, max_bytes: int = MAX_PACK_BYTES) -> int:
    return max(0, (max_bytes - FILE_OVERHEAD) // crop_bytes(crop))


def is_packed(source) -> bool:
    return str(source).endswith(".npz") and Path(source).is_file()


def pack_crops(source: str, out, crop: int, count: int, seed: int = 0, max_bytes: int = MAX_PACK_BYTES) -> dict:
    """Cut and store the crops; -> their metadata. ValueError (one line) when they would not fit max_bytes."""
    from .images import image_paths, load_rgb

    need = count * crop_bytes(crop) + FILE_OVERHEAD
    if need > max_bytes:
        raise ValueError(f"{count} crops of {crop}x{crop} need {need / 2 ** 20:.1f} MiB, over the "
                         f"{max_bytes / 2 ** 20:.0f} MiB limit: at most {crops_that_fit(crop, max_bytes)} fit")
    paths = image_paths(source)
    images = [load_rgb(p) for p in paths]
    small = [p.name for p, im in zip(paths, images) if min(im.shape[:2]) < crop]
    if small:
        raise ValueError(f"{source}: {small[0]} is smaller than the crop size {crop}")
    gen = torch.Generator().manual_seed(seed)
    crops = np.empty((count, crop, crop, 3), np.uint8)
    origin = np.empty((count, 3), np.int64)   # (image index, row, column) of every crop
    for n in range(count):
        i = int(torch.randint(len(images), (1,), generator=gen))
        h, w = images[i].shape[:2]
        y, x = (int(torch.randint(s - crop + 1, (1,), generator=gen)) for s in (h, w))
        crops[n], origin[n] = images[i][y:y + crop, x:x + crop], (i, y, x)
    meta = {"format": FORMAT, "source": str(source), "images": [p.name for p in paths], "crop": crop,
            "count": count, "seed": seed}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez(tmp, crops=crops, origin=origin, meta=np.array(json.dumps(meta)))
    tmp.replace(out)
    return meta


def load_packed(path) -> tuple:
    """-> (crops uint8 (N, S, S, 3), origin (N, 3), metadata). ValueError for a file that is not one."""
    try:
        with np.load(path) as z:
            crops, origin, meta = z["crops"], z["origin"], json.loads(str(z["meta"]))
    except (OSError, KeyError, ValueError) as e:
        raise ValueError(f"{path} is not a packed crop file ({type(e).__name__})") from None
    if meta.get("format") != FORMAT or crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[3] != 3:
        raise ValueError(f"{path} is not a packed crop file (expected format {FORMAT})")
    return crops, origin, meta
