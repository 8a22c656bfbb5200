"""Golden bitstreams for a shipped model: export/golden.bpg and export/golden.npz (its decoded integers).

python scripts/golden_streams.py zoo/NAME
An image model codes a 96x120 crop of the bundled test photo (a size that is not a multiple of the
stride); a speech model (lossy or lossless) the first 2 s of the bundled clip. golden.npz holds `output`, the program's
output integers that every decoder (reference, TVM, C99, an installed wheel) must reproduce exactly.
"""
import sys
import warnings
from pathlib import Path

import numpy as np

warnings.simplefilter("ignore")
import bpgan  # noqa: E402


def golden_input(model):
    if model.modality == "audio":
        from bpgan.toolkit.audio.wav import read_audio
        from bpgan.toolkit.datasets import EMBEDDED_CLIP
        return read_audio(EMBEDDED_CLIP).samples[:16000]
    from bpgan.toolkit.datasets import embedded_image_path, load_rgb
    return np.ascontiguousarray(load_rgb(embedded_image_path())[200:296, 150:270])


def main(argv=None) -> int:
    folder = Path((argv or sys.argv[1:])[0])
    model = bpgan.load_model(folder)
    if model.modality == "lossless":   # the bundled clip's first 2 s, its own 16-bit samples at 8 kHz
        from bpgan.toolkit.audio.pcm import read_pcm
        from bpgan.toolkit.datasets import EMBEDDED_CLIP
        samples, rate = read_pcm(EMBEDDED_CLIP)
        data = bpgan.encode(model, samples[:, :16000], sample_rate=rate)
    else:
        data = bpgan.encode(model, golden_input(model))
    header, y = bpgan.decode_integers(data, model)
    (folder / "export" / "golden.bpg").write_bytes(data)
    np.savez(folder / "export" / "golden.npz", output=y)
    print(f"golden_streams: {folder}/export/golden.bpg ({len(data)} bytes, {header.modality} "
          f"{header.original_size}) and golden.npz (output {y.shape} {y.dtype})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
