"""A .bpg bitstream -> the program's output integers, cropped to the original size (integers only, no torch).

Image: (1, 3, H, W) generator integers for the header's original (H, W); firmware_ref.image makes pixels.
Audio: (1, bands, T) int8 mel codes with T = ceil(samples / AUDIO_HOP) frames (the toolkit's decode_mel).
Every bad stream is one BitstreamError, every unusable program one ProgramError, each a one-line message.
"""
from typing import Tuple

import numpy as np

from .ans import decode_symbols
from .bitstream import AUDIO_HOP, BitstreamError, Header, output_size, unpack
from .decoder import decode_latent
from .program import Program


def _expected_output(prog: Program, header: Header) -> Tuple[int, ...]:
    """The (1, channels, ...) shape the generator must produce for this header; BitstreamError if out of bounds."""
    down = prog.meta.get("config", {}).get("downsample")
    channels = prog.tensors[prog.outputs[0]].get("channels")
    return (1, channels) + output_size(header, down)


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
