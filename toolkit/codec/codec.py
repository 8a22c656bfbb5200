"""One image through the codec: the pieces (search, prior, entropy coder, bitstream, image I/O) glued once.

Encode: image -> encoder latent [-> ADMM latent search] -> symbols -> ANS with the prior -> bitstream.
Decode: firmware_ref's one decode path (bitstream -> symbols -> an integer engine -> int8), then pixels.
The engine is a function `symbols (1, C, h, w) int64 -> int8-valued (1, 3, H, W)`, so the reference
decoder, the TVM library and the torch fake-quant generator all plug in the same way and share
everything else; constriction only encodes.
"""
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Tuple

import numpy as np
import torch

from bpgan.firmware_ref.bitstream import MAX_COLOUR_OFFSET, MAX_DECODE_PIXELS
from bpgan.firmware_ref.bitstream_decode import StreamModel, decode_with
from bpgan.firmware_ref.entropy_model import LearnedPrior

from .bitstream import Header, write_bitstream
from .context import estimate_context_prior
from .fingerprint import model_hash as compute_model_hash
from .learned import table_of
from .image_io import LoadedImage, int8_to_pixels, output_to_int8
from .prior import PRECISION_BITS, estimate_prior
from .search import SearchConfig, SearchResult, latent_search

Engine = Callable[[np.ndarray], np.ndarray]


@torch.no_grad()
def latent_indices(model, x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in [-1, 1] -> (N, C, h, w) symbols of the encoder's own latent."""
    return model.quantizer.indices(model.encoder(x))


def prior_from_batches(model, batches: Iterable[torch.Tensor], context: bool = False,
                       precision_bits: int = PRECISION_BITS, smoothing: int = 1) -> np.ndarray:
    """The prior table from training-set image batches (never from the images being coded).

    context=False: (C, L) per-channel table; True: (C, K, L) context table (context.py).
    """
    model.eval()
    cfg = model.cfg
    estimate = estimate_context_prior if context else estimate_prior
    return estimate((latent_indices(model, x) for x in batches), cfg.latent_channels, cfg.num_centers,
                    precision_bits, smoothing)


@dataclass
class Encoded:
    data: bytes                       # the complete bitstream
    header: Header
    symbols: np.ndarray               # (C, h, w) int64
    search: Optional[SearchResult]    # None when the encoder's latent was used as is


def encode_image(model, prior: np.ndarray, image: LoadedImage, search: Optional[SearchConfig] = None,
                 model_hash: Optional[bytes] = None, colour_offsets: bool = False) -> Encoded:
    """colour_offsets: send the per-channel offsets that bring the decoded image's mean colour to the original's
    (colour_offsets_for; 4 header bytes)."""
    model.eval()
    if search is not None and search.iters > 0:
        found = latent_search(model, image.x, search, image.original_size)
        symbols = found.indices.numpy()
    else:
        found, symbols = None, latent_indices(model, image.x)[0].numpy()
    offsets = None
    if colour_offsets:
        h, w = image.original_size
        offsets = colour_offsets_for(image.pixels, torch_engine(model)(symbols[None])[:, :, :h, :w])
    header = Header("image", model_hash or compute_model_hash(model, prior), model.stride, image.original_size,
                    image.padding, tuple(symbols.shape), colour_offsets=offsets)
    return Encoded(write_bitstream(header, symbols, prior), header, symbols.astype(np.int64), found)


def colour_offsets_for(pixels: np.ndarray, y: np.ndarray, rounds: int = 4) -> tuple:
    """(R, G, B) int offsets in output LSBs that bring mean(decoded pixels) to mean(pixels), per channel.

    y: the decoder's (1, 3, H, W) int8 output for the original size (the torch generator's equals the integer
    decoder's). One LSB is 255/256 of a level; clipping at the range ends is why it takes a few rounds."""
    target = pixels.reshape(-1, 3).astype(np.float64).mean(0)
    off = np.zeros(3, dtype=np.int64)
    for _ in range(rounds):
        shifted = np.clip(y.astype(np.int64) + off.reshape(1, 3, 1, 1), -128, 127)
        got = int8_to_pixels(shifted).reshape(-1, 3).astype(np.float64).mean(0)
        off = np.clip(off + np.floor((target - got) * 256 / 255 + 0.5).astype(np.int64), -MAX_COLOUR_OFFSET,
                      MAX_COLOUR_OFFSET)
    return tuple(int(o) for o in off)


def torch_engine(model) -> Engine:
    """The generator in torch as a decoder engine (the QAT model's fake-quant output is on the int8 grid)."""
    def run(symbols: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            y = model.generator(model.quantizer.dequantize(torch.from_numpy(np.asarray(symbols, dtype=np.int64))))
        return output_to_int8(y)
    return run


def decode_image(data: bytes, prior: np.ndarray, model_hash: bytes, engine: Engine,
                 stride: Optional[int] = None, max_pixels: int = MAX_DECODE_PIXELS) -> Tuple[Header, np.ndarray]:
    """Bitstream -> (Header, (H, W, 3) uint8 pixels). BitstreamError for any stream this model cannot decode."""
    learned = prior if isinstance(prior, LearnedPrior) else None
    model = StreamModel(table_of(prior), model_hash, PRECISION_BITS, stride, 3, "image", learned)
    header, y = decode_with(model, data, engine, max_pixels)
    return header, int8_to_pixels(y)


def bits_per_pixel(num_bytes: int, original_size) -> float:
    """bpp from the real stream size, header included, over the original (unpadded) pixels."""
    return 8.0 * num_bytes / float(np.prod(original_size))
