"""A .bpg bitstream -> the program's output integers, cropped to the original size (integers only, no torch).

Image: (1, 3, H, W) generator integers for the header's original (H, W); firmware_ref.image makes pixels.
Audio: (1, bands, T) int8 mel codes with T = ceil(samples / AUDIO_HOP) frames (the toolkit's decode_mel).
Every bad stream is one BitstreamError, every unusable program one ProgramError, each a one-line message.
"""
from typing import Tuple

import numpy as np

from .ans import decode_symbols
from .bitstream import AUDIO_HOP, MAX_DECODE_FRAMES, MAX_DECODE_PIXELS, BitstreamError, Header, unpack
from .decoder import decode_latent
from .program import Program


def _expected_output(prog: Program, header: Header) -> Tuple[int, ...]:
    """The (1, channels, ...) shape the generator must produce for this header; BitstreamError if out of bounds."""
    down = prog.meta.get("config", {}).get("downsample")
    channels = prog.tensors[prog.outputs[0]].get("channels")
    if header.modality == "image":
        if down is not None and header.stride != int(down):
            raise BitstreamError(f"bitstream stride {header.stride} differs from the model's {down}")
        size = tuple(d * header.stride for d in header.latent_shape[1:])
        if size[0] * size[1] > MAX_DECODE_PIXELS:
            raise BitstreamError(f"image of {size[0]}x{size[1]} pixels exceeds the decoder limit {MAX_DECODE_PIXELS}")
        return (1, channels) + size
    if down is not None and header.stride != int(down) * AUDIO_HOP:
        raise BitstreamError(f"bitstream stride {header.stride} samples differs from the model's {int(down) * AUDIO_HOP}")
    if header.stride % AUDIO_HOP:
        raise BitstreamError(f"bitstream stride {header.stride} is not a whole number of {AUDIO_HOP}-sample frames")
    frames = header.latent_shape[1] * header.stride // AUDIO_HOP
    if frames > MAX_DECODE_FRAMES:
        raise BitstreamError(f"{frames} mel frames exceed the decoder limit {MAX_DECODE_FRAMES}")
    return (1, channels, frames)


def decode_bitstream(prog: Program, data: bytes) -> Tuple[Header, np.ndarray]:
    """bytes -> (Header, output integers cropped to the original size): unpack, ANS decode, run the program."""
    header, payload = unpack(data, prog.model_hash())
    table = prog.prior()
    if header.latent_shape[0] != table.shape[0]:
        raise BitstreamError(f"bitstream has {header.latent_shape[0]} latent channels, the model {table.shape[0]}")
    if table.ndim == 3 and header.modality != "image":
        raise BitstreamError("a context prior codes (C, h, w) image latents, not audio")
    expected = _expected_output(prog, header)
    try:
        symbols, complete = decode_symbols(payload, table, header.latent_shape)
    except ValueError as e:
        raise BitstreamError(f"entropy decoding failed: {e}") from None
    if not complete:
        raise BitstreamError("payload holds data beyond the coded symbols")
    y = decode_latent(prog, symbols[None])
    if y.shape[0] != 1 or y.shape[2:] != expected[2:] or expected[1] not in (None, y.shape[1]):
        raise BitstreamError(f"decoder produced {y.shape}, the header implies {expected}")
    if header.modality == "image":
        h, w = header.original_size
        return header, y[:, :, :h, :w]
    return header, y[:, :, :-(-header.original_size[0] // AUDIO_HOP)]
