"""PCM training data for the lossless flow: random crops of integer samples, every channel a signal.

ClipCrops (random_batch, fixed_crops) over audio clips read exactly (audio/pcm.py):
(N, 1, crop) float32 tensors holding int16 values. Clips shorter than a crop are skipped.
"""
from typing import Iterable, Optional

import numpy as np
import torch

from ..audio.pcm import read_pcm
from .audio import ClipCrops, audio_paths


class PcmCrops(ClipCrops):
    """Every channel of every clip a (1, n) tensor of its int16 values (as float32)."""

    def __init__(self, source: str, crop: int, exclude: Iterable[str] = (), only: Optional[Iterable[str]] = None):
        self.paths = audio_paths(source, exclude, only)
        self.crop = crop
        signals = [ch for p in self.paths for ch in read_pcm(p)[0]]
        self.clips = [torch.from_numpy(s.astype(np.float32))[None] for s in signals if len(s) >= crop]
        if not self.clips:
            raise ValueError(f"no clip in {source} holds {crop} samples (a crop)")
