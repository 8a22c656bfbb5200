"""PCM training data for the lossless flow: random crops of integer samples, every channel a signal.

The ImageCrops interface (random_batch, fixed_crops) over audio clips read exactly (audio/pcm.py):
(N, 1, crop) float32 tensors holding int16 values. Clips shorter than a crop are skipped.
"""
from typing import Iterable, Optional

import numpy as np
import torch

from ..audio.pcm import read_pcm
from .audio import audio_paths


class PcmCrops:
    def __init__(self, source: str, crop: int, exclude: Iterable[str] = (), only: Optional[Iterable[str]] = None):
        self.paths = audio_paths(source, exclude, only)
        self.crop = crop
        signals = [ch for p in self.paths for ch in read_pcm(p)[0]]
        self.signals = [torch.from_numpy(s.astype(np.float32)) for s in signals if len(s) >= crop]
        if not self.signals:
            raise ValueError(f"no clip in {source} holds {crop} samples (a crop)")

    def random_batch(self, batch_size: int, gen: torch.Generator) -> torch.Tensor:
        out = []
        for _ in range(batch_size):
            s = self.signals[int(torch.randint(len(self.signals), (1,), generator=gen))]
            t = int(torch.randint(len(s) - self.crop + 1, (1,), generator=gen))
            out.append(s[t:t + self.crop])
        return torch.stack(out)[:, None]

    def fixed_crops(self, count: int) -> torch.Tensor:
        """`count` deterministic crops spread over the clips (middle, then start, then end)."""
        crops = []
        for k in range(count):
            s = self.signals[k % len(self.signals)]
            t_max = len(s) - self.crop
            t = [t_max // 2, 0, t_max][(k // len(self.signals)) % 3]
            crops.append(s[t:t + self.crop])
        return torch.stack(crops)[:, None]
