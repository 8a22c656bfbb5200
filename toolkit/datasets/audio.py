"""Speech data: folders of audio clips (LJ Speech style) or the embedded clip, as [-1, 1] log-mel crops.

Every clip is read once (audio/wav.py: 8 kHz mono) and kept as its (64, T) mel (audio/mel.py).
Crops are `crop` frames long (8 ms each); a clip shorter than a crop is padded by repeating its
last frame. The embedded clip `lj001-0013-8k.wav` is LJ Speech LJ001-0013 (public domain) at
8 kHz 16-bit, so demos and the tiny test recipe need no downloaded data.
"""
from pathlib import Path
from typing import Iterable, List, Optional

import numpy as np
import torch

from ..audio.mel import wav_to_mel
from ..audio.wav import read_audio

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
EMBEDDED_CLIP = Path(__file__).resolve().parent / "lj001-0013-8k.wav"


def audio_paths(source: str, exclude: Iterable[str] = (), only: Optional[Iterable[str]] = None) -> List[Path]:
    """Clips of a folder (or the embedded clip), minus `exclude` names, or exactly the `only` names."""
    from .images import EMBEDDED
    folder = EMBEDDED_CLIP.parent if source == EMBEDDED else Path(source)
    paths = [EMBEDDED_CLIP] if source == EMBEDDED else \
        sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
    if only is not None:
        wanted = list(only)
        by_name = {p.name: p for p in paths}
        missing = [n for n in wanted if n not in by_name]
        if missing:
            raise ValueError(f"{folder}: no clip named {missing[0]!r}")
        return [by_name[n] for n in wanted]
    paths = [p for p in paths if p.name not in set(exclude)]
    if not paths:
        raise ValueError(f"no audio clips ({', '.join(AUDIO_SUFFIXES)}) in {folder}")
    return paths


class ClipCrops:
    """The ImageCrops interface over clips held as (channels, T) tensors in self.clips: random_batch
    (training) and fixed_crops (validation) of `crop` steps along T. MelCrops and PcmCrops fill it."""
    clips: List[torch.Tensor]
    crop: int

    def random_batch(self, batch_size: int, gen: torch.Generator) -> torch.Tensor:
        out = []
        for _ in range(batch_size):
            clip = self.clips[int(torch.randint(len(self.clips), (1,), generator=gen))]
            t = int(torch.randint(clip.shape[1] - self.crop + 1, (1,), generator=gen))
            out.append(clip[:, t:t + self.crop])
        return torch.stack(out)

    def fixed_crops(self, count: int) -> torch.Tensor:
        """`count` deterministic crops spread over the clips (middle, then start, then end)."""
        crops, c = [], self.crop
        for k in range(count):
            clip = self.clips[k % len(self.clips)]
            t_max = clip.shape[1] - c
            spots = [t_max // 2, 0, t_max]
            t = spots[(k // len(self.clips)) % len(spots)]
            crops.append(clip[:, t:t + c])
        return torch.stack(crops)


class MelCrops(ClipCrops):
    """Speech clips as (64, T) mels; a clip shorter than a crop is padded by repeating its last frame."""

    def __init__(self, source: str, crop: int, exclude: Iterable[str] = (), only: Optional[Iterable[str]] = None):
        self.paths = audio_paths(source, exclude, only)
        self.crop = crop
        self.clips = [torch.from_numpy(self._at_least(wav_to_mel(read_audio(p).samples))) for p in self.paths]

    def _at_least(self, mel: np.ndarray) -> np.ndarray:
        short = self.crop - mel.shape[1]
        return np.pad(mel, ((0, 0), (0, short)), mode="edge") if short > 0 else mel
