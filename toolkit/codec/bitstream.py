"""The .bpg bitstream with constriction's coder: the layout itself lives in firmware_ref/bitstream.py.

Header, pack, unpack and BitstreamError are re-exported from there (one source of truth);
this module adds write_bitstream / read_bitstream, which entropy code the symbols (entropy.py).
"""
from typing import Optional, Tuple

import numpy as np

from bpgan.firmware_ref.bitstream import (  # noqa: F401  (re-exported)
    HASH_BYTES,
    MAGIC,
    MAX_SYMBOLS,
    MODALITIES,
    VERSION,
    BitstreamError,
    Header,
    pack,
    unpack,
)

from bpgan.firmware_ref.entropy_model import LearnedPrior

from .entropy import EntropyError, decode_symbols, encode_symbols


def write_bitstream(header: Header, symbols: np.ndarray, table) -> bytes:
    """Symbols (C, ...) of header.latent_shape -> the complete bitstream; table: a prior table or a LearnedPrior."""
    if tuple(np.shape(symbols)) != tuple(header.latent_shape):
        raise ValueError(f"symbols of shape {np.shape(symbols)} do not match the header's {header.latent_shape}")
    if isinstance(table, LearnedPrior):
        if not header.sealed:
            raise ValueError("a learned entropy model writes sealed (version 2) streams only")
        return pack(header, table.encode(symbols))
    if np.shape(table)[0] != header.latent_shape[0]:
        raise ValueError(f"prior has {np.shape(table)[0]} channels, the latent {header.latent_shape[0]}")
    return pack(header, encode_symbols(symbols, table, header.sealed))


def read_bitstream(data: bytes, table: np.ndarray, model_hash: Optional[bytes] = None) -> Tuple[Header, np.ndarray]:
    """Bitstream -> (Header, symbols int64 (C, ...)) through constriction: the cross-check of firmware_ref's
    decoder (decoding for real goes through firmware_ref.decode_bitstream). BitstreamError on anything wrong."""
    header, payload = unpack(data, model_hash)
    if header.latent_shape[0] != np.shape(table)[0]:
        raise BitstreamError(f"bitstream has {header.latent_shape[0]} latent channels, the model {np.shape(table)[0]}")
    try:
        return header, decode_symbols(payload, table, header.latent_shape, header.sealed)
    except EntropyError as e:
        raise BitstreamError(str(e)) from None
