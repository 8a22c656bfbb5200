"""Forged bitstreams for fuzzing the decoders: every field at will, CRCs recomputed so the checks behind them run.

Random bit flips alone only exercise the CRCs; these streams pass them and attack what comes after:
header geometry, claimed sizes, versions, payload length and contents. Used by tests/test_forged_streams.py
(hypothesis) and bench/bench_forged.py (10^5 streams through every engine).
"""
import struct
import zlib
from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np

from bpgan.firmware_ref.bitstream import MAGIC, MODALITIES, Header, pack

KINDS = ("random_header", "random_payload", "flipped_payload", "resized_payload", "claims_more", "empty_payload",
         "reencoded", "other_modality")


@dataclass(frozen=True)
class Fields:
    """A header as raw numbers, none of them checked."""
    version: int
    modality_code: int
    model_hash: bytes
    stride: int
    channels: int
    dims: Tuple[Tuple[int, int, int], ...]   # per spatial dim: (original size, padding, latent size)
    flags: int = 0


def raw_stream(f: Fields, payload: bytes) -> bytes:
    """Pack any field values (clipped to their widths) with correct CRCs."""
    head = struct.pack("<4sBBBB16sHH", MAGIC, f.version & 0xFF, f.modality_code & 0xFF, len(f.dims) & 0xFF,
                       f.flags & 0xFF, bytes(f.model_hash).ljust(16, b"\0")[:16], f.stride & 0xFFFF,
                       f.channels & 0xFFFF)
    for orig, pad, lat in f.dims:
        head += struct.pack("<IHH", orig & 0xFFFFFFFF, pad & 0xFFFF, lat & 0xFFFF)
    head += struct.pack("<II", len(payload), zlib.crc32(payload))
    return head + struct.pack("<I", zlib.crc32(head)) + payload


def fields_of(header: Header) -> Fields:
    return Fields(header.version, MODALITIES[header.modality][0], header.model_hash, header.stride,
                  header.latent_shape[0], tuple(zip(header.original_size, header.padding, header.latent_shape[1:])))


def _claim(f: Fields, latent: Sequence[int]) -> Fields:
    """The same header claiming other latent sizes, with consistent geometry."""
    dims = tuple((max(1, lat * f.stride), 0, lat) for lat in latent)
    return Fields(f.version, f.modality_code, f.model_hash, f.stride, f.channels, dims)


def forge(kind: str, valid: bytes, rng: np.random.Generator, prior=None) -> bytes:
    """One forged stream of `kind` built from a valid stream of the model under attack.

    "reencoded" (needs the model's prior) is a genuine stream of random symbols at a random small latent
    size: it must decode, so the engines also meet sizes and symbols no test image has."""
    from bpgan.firmware_ref.bitstream import unpack

    header, payload = unpack(valid)
    f = fields_of(header)
    words = np.frombuffer(payload, dtype="<u4").copy()
    big = [int(rng.integers(1, 1 << int(rng.integers(1, 9)))) for _ in f.dims]
    if kind == "random_header":
        dims = tuple((int(rng.integers(0, 1 << 20)), int(rng.integers(0, 64)), int(rng.integers(0, 1 << 16)))
                     for _ in range(int(rng.integers(0, 4))))
        f = Fields(int(rng.integers(0, 4)), int(rng.integers(0, 4)), f.model_hash, int(rng.integers(0, 1 << 16)),
                   int(rng.choice([f.channels, int(rng.integers(0, 1 << 16))])), dims, int(rng.choice([0, 0, 0, 1])))
        return raw_stream(f, rng.integers(0, 2 ** 32, int(rng.integers(0, 8)), dtype=np.uint64).astype("<u4").tobytes())
    if kind == "random_payload":
        n = int(rng.integers(0, 2 * len(words) + 4))
        return raw_stream(f, rng.integers(0, 2 ** 32, n, dtype=np.uint64).astype("<u4").tobytes())
    if kind == "flipped_payload":
        b = bytearray(payload)
        for _ in range(int(rng.integers(1, 4))):
            if b:
                b[int(rng.integers(0, len(b)))] ^= 1 << int(rng.integers(0, 8))
        return raw_stream(f, bytes(b))
    if kind == "resized_payload":
        cut = int(rng.integers(-len(words), 4))
        grown = np.concatenate([words, rng.integers(0, 2 ** 32, max(cut, 0), dtype=np.uint64).astype("<u4")])
        return raw_stream(f, (grown if cut >= 0 else words[:cut]).astype("<u4").tobytes())
    if kind == "claims_more":
        return raw_stream(_claim(f, big), payload)
    if kind == "empty_payload":
        return raw_stream(_claim(f, big), b"")
    if kind == "other_modality":  # a consistent header of the other modality, the same payload
        audio = header.modality == "image"
        step = header.stride * (64 if audio else 1) if audio else max(header.stride // 64, 1)
        n = int(np.prod(header.latent_shape[1:]))
        dims = ((n * step, 0, n),) if audio else ((step, 0, 1), (n * step, 0, n))
        return raw_stream(Fields(f.version, MODALITIES["audio" if audio else "image"][0], f.model_hash, step,
                                 f.channels, dims), payload)
    if kind == "reencoded" and prior is not None:
        from .bitstream import write_bitstream

        latent = tuple(int(rng.integers(1, 6)) for _ in f.dims)
        h = Header(header.modality, header.model_hash, header.stride, tuple(n * header.stride for n in latent),
                   (0,) * len(latent), (header.latent_shape[0],) + latent, header.version)
        return write_bitstream(h, rng.integers(0, prior.shape[-1], h.latent_shape), prior)
    if kind == "reencoded":
        return valid
    raise ValueError(f"unknown forgery {kind!r}; choose one of {', '.join(KINDS)}")


def forged_1024(model_hash: bytes, stride: int, channels: int, version: int = 2) -> bytes:
    """The 56-byte stream of the security note: valid CRCs, empty payload, a 1024x1024 image claimed."""
    lat = 1024 // stride
    return pack(Header("image", model_hash, stride, (lat * stride, lat * stride), (0, 0), (channels, lat, lat),
                       version), b"")
