"""The .bpg bitstream layout in plain integer Python: header fields, CRCs, pack/unpack (no entropy coder).

Format version 2 (version 1 is the same layout with an unsealed ANS payload; both are read), little-endian:

  offset        size  field
  0             4     magic b"BPGC"
  4             1     version (2; 1 for streams written before the sealed payload)
  5             1     modality: 1 image, 2 audio, 3 lossless (PCM samples, firmware_ref/lossless.py)
  6             1     n: number of spatial dims (2 for image: H, W; 1 for audio: samples)
  7             1     flags: bit 0 = colour offsets follow the dim records (image only); other bits 0
  8             16    model hash (fingerprint.model_hash of the decoder side)
  24            2     stride: latent downsampling factor (1..65535)
  26            2     C: latent channels
  28            8*n   per spatial dim: original size u32, padding u16, latent size u16
  (lossless only: the dim record is (samples per channel u32, 0, 0), C the channel count, stride 1,
   and 4 more bytes follow it: the sample rate u32; every offset below moves by 4)
  (flag bit 0: 4 more bytes, the colour offsets R, G, B as int8 in output LSBs (about one level each) and a
   0 byte; the decoder adds them to the generator's output, clipped to its range (offset_output); every
   offset below moves by 4)
  28+8n         4     payload length in bytes
  32+8n         4     CRC32 of the payload
  36+8n         4     CRC32 of the header bytes [0, 36+8n)
  40+8n         ...   payload (ANS words, decoded by firmware_ref/ans.py; version 2 seals the coder's
                      start state at 2**32 so every symbol costs its code length: see ans.py)

Geometry invariant, checked on both sides: original + padding == latent * stride and
padding < stride, per dim; padding goes at the end (bottom / right) and is cropped after decoding.
Every way a file can be wrong surfaces from `unpack` as one BitstreamError with a one-line message.
"""
import struct
import zlib
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

MAGIC = b"BPGC"
VERSION = 2
READ_VERSIONS = (1, 2)
HASH_BYTES = 16
MODALITIES = {"image": (1, 2), "audio": (2, 1), "lossless": (3, 1)}  # name -> (code, spatial dims)
LOSSLESS_CODE = 3
MAX_LOSSLESS_CHANNELS = 64
MAX_SAMPLE_RATE = 1 << 20
MAX_SYMBOLS = 1 << 28  # refuse headers that would make the decoder allocate without bound
MAX_DECODE_PIXELS = 1 << 23  # default decoder limit (8.4 Mpixel: 4K UHD fits); decoders take max_pixels
MAX_DECODE_FRAMES = 1 << 22  # about 9 hours of mel frames: the same bound for audio
AUDIO_HOP = 64  # samples per mel frame: an audio stream's sizes are samples, its mel has ceil(samples / 64) frames

_FIXED = struct.Struct("<4sBBBB16sHH")  # magic .. C
_DIM = struct.Struct("<IHH")
_TAIL = struct.Struct("<III")  # payload length, payload CRC, header CRC
_RATE = struct.Struct("<I")    # lossless: the sample rate
_COLOUR = struct.Struct("<bbbB")   # flag bit 0: R, G, B offsets and a zero byte
COLOUR_FLAG = 0x01
MAX_COLOUR_OFFSET = 127


class BitstreamError(ValueError):
    """Any reason a byte string is not a decodable bitstream for this model."""


@dataclass(frozen=True)
class Header:
    modality: str                       # "image" or "audio"
    model_hash: bytes                   # HASH_BYTES bytes
    stride: int
    original_size: Tuple[int, ...]      # (H, W) or (samples,)
    padding: Tuple[int, ...]            # added at the end of each dim before encoding
    latent_shape: Tuple[int, ...]       # (C, h, w) or (C, n)
    version: int = VERSION              # 1: unsealed ANS payload (read only); 2: sealed
    sample_rate: int = 0                # lossless only: Hz
    colour_offsets: Optional[Tuple[int, int, int]] = None   # image only: added to the output (R, G, B LSBs)

    @property
    def sealed(self) -> bool:
        return self.version >= 2

    def check(self) -> Optional[str]:
        """None if consistent, else what is wrong (one line)."""
        if self.modality not in MODALITIES:
            return f"unknown modality {self.modality!r}"
        ndim = MODALITIES[self.modality][1]
        if len(self.model_hash) != HASH_BYTES:
            return f"model hash must be {HASH_BYTES} bytes"
        if self.colour_offsets is not None and (self.modality != "image" or len(self.colour_offsets) != 3 or
                                                any(abs(int(o)) > MAX_COLOUR_OFFSET for o in self.colour_offsets)):
            return f"colour offsets are three values in [-{MAX_COLOUR_OFFSET}, {MAX_COLOUR_OFFSET}], images only"
        if self.modality == "lossless":
            return self._check_lossless()
        if not (len(self.original_size) == len(self.padding) == ndim and len(self.latent_shape) == ndim + 1):
            return f"{self.modality} needs {ndim} spatial dims"
        if not 1 <= self.stride <= 0xFFFF or not 1 <= self.latent_shape[0] <= 0xFFFF:
            return "stride or channel count out of range"
        for orig, pad, lat in zip(self.original_size, self.padding, self.latent_shape[1:]):
            if orig < 1 or not 0 <= pad < self.stride or orig + pad != lat * self.stride:
                return f"size {orig} + padding {pad} is not latent size {lat} x stride {self.stride}"
        if self.version not in READ_VERSIONS:
            return f"unknown version {self.version}"
        if int(np.prod(self.latent_shape, dtype=np.int64)) > MAX_SYMBOLS:
            return f"latent of {self.latent_shape} exceeds {MAX_SYMBOLS} symbols"
        return None

    def _check_lossless(self) -> Optional[str]:
        if len(self.original_size) != 1 or tuple(self.padding) != (0,) or self.stride != 1:
            return "a lossless stream has one size (samples), no padding and stride 1"
        channels, samples = self.latent_shape[0], self.original_size[0]
        if tuple(self.latent_shape) != (channels, samples) or not 1 <= channels <= MAX_LOSSLESS_CHANNELS:
            return f"a lossless stream has 1 to {MAX_LOSSLESS_CHANNELS} channels of its samples"
        if not 0 <= samples <= 0xFFFFFFFF or channels * samples > MAX_SYMBOLS:
            return f"{channels} x {samples} samples exceed {MAX_SYMBOLS}"
        if not 1 <= self.sample_rate <= MAX_SAMPLE_RATE:
            return f"sample rate {self.sample_rate} outside [1, {MAX_SAMPLE_RATE}]"
        if self.version != VERSION:
            return f"lossless streams are version {VERSION}"
        return None

    def header_bytes(self) -> int:
        extra = _RATE.size if self.modality == "lossless" else (_COLOUR.size if self.colour_offsets else 0)
        return _FIXED.size + _DIM.size * len(self.original_size) + extra + _TAIL.size


def pack(header: Header, payload: bytes) -> bytes:
    problem = header.check()
    if problem:
        raise ValueError(f"cannot pack bitstream: {problem}")
    code, ndim = MODALITIES[header.modality]
    flags = COLOUR_FLAG if header.colour_offsets is not None else 0
    head = _FIXED.pack(MAGIC, header.version, code, ndim, flags, bytes(header.model_hash), header.stride,
                       header.latent_shape[0])
    if header.modality == "lossless":   # samples u32; the latent field is unused (the samples themselves)
        head += _DIM.pack(header.original_size[0], 0, 0) + _RATE.pack(header.sample_rate)
    for orig, pad, lat in zip(header.original_size, header.padding, header.latent_shape[1:]):
        if header.modality == "lossless":
            break
        if orig > 0xFFFFFFFF or lat > 0xFFFF:
            raise ValueError(f"cannot pack bitstream: size {orig} (latent {lat}) does not fit the header")
        head += _DIM.pack(orig, pad, lat)
    if header.colour_offsets is not None:
        head += _COLOUR.pack(*(int(o) for o in header.colour_offsets), 0)
    head += struct.pack("<II", len(payload), zlib.crc32(payload))
    head += struct.pack("<I", zlib.crc32(head))
    return head + bytes(payload)


def unpack(data: bytes, model_hash: Optional[bytes] = None) -> Tuple[Header, bytes]:
    """bytes -> (Header, payload); BitstreamError unless the file is intact (and for this model)."""
    data = bytes(data)
    if len(data) < 4 or data[:4] != MAGIC:
        raise BitstreamError("not a bpgan bitstream (wrong magic)" if len(data) >= 4 else "truncated bitstream")
    if len(data) < _FIXED.size:
        raise BitstreamError("truncated bitstream (header incomplete)")
    _, version, code, ndim, flags, mhash, stride, channels = _FIXED.unpack_from(data, 0)
    if version not in READ_VERSIONS:
        raise BitstreamError(f"unsupported bitstream version {version} (this decoder reads versions "
                             f"{', '.join(map(str, READ_VERSIONS))})")
    if ndim not in (1, 2):
        raise BitstreamError(f"corrupt header (bad dimension count {ndim})")
    lossless, colour = code == LOSSLESS_CODE, bool(flags & COLOUR_FLAG) and code == MODALITIES["image"][0]
    extra = _RATE.size if lossless else (_COLOUR.size if colour else 0)
    head_len = _FIXED.size + _DIM.size * ndim + extra + _TAIL.size
    if len(data) < head_len:
        raise BitstreamError("truncated bitstream (header incomplete)")
    payload_len, payload_crc, head_crc = _TAIL.unpack_from(data, head_len - _TAIL.size)
    if zlib.crc32(data[:head_len - 4]) != head_crc:
        raise BitstreamError("corrupt header (CRC mismatch)")
    if flags & ~COLOUR_FLAG or (flags and not colour):
        raise BitstreamError(f"corrupt header (unknown flags {flags:#04x})")
    names = {c: name for name, (c, _) in MODALITIES.items()}
    if code not in names:
        raise BitstreamError(f"unknown modality code {code}")
    dims = [_DIM.unpack_from(data, _FIXED.size + _DIM.size * i) for i in range(ndim)]
    if lossless:
        if ndim != 1 or dims[0][1:] != (0, 0):
            raise BitstreamError("corrupt header (a lossless stream has one size record, padding 0)")
        rate = _RATE.unpack_from(data, _FIXED.size + _DIM.size)[0]
        header = Header("lossless", mhash, stride, (dims[0][0],), (0,), (channels, dims[0][0]), version, rate)
    else:
        offsets = None
        if colour:
            *offsets, zero = _COLOUR.unpack_from(data, _FIXED.size + _DIM.size * ndim)
            if zero:
                raise BitstreamError("corrupt header (colour offsets' reserved byte is not 0)")
            offsets = tuple(offsets)
        header = Header(names[code], mhash, stride, tuple(d[0] for d in dims), tuple(d[1] for d in dims),
                        (channels,) + tuple(d[2] for d in dims), version, colour_offsets=offsets)
    problem = header.check()
    if problem:
        raise BitstreamError(f"corrupt header ({problem})")
    if model_hash is not None and bytes(model_hash) != mhash:
        raise BitstreamError(f"bitstream was made for model {mhash.hex()}, not this model {bytes(model_hash).hex()}")
    available = len(data) - head_len
    if available < payload_len:
        raise BitstreamError(f"truncated bitstream (payload {available} of {payload_len} bytes)")
    if available > payload_len:
        raise BitstreamError(f"{available - payload_len} bytes of trailing garbage after the payload")
    payload = data[head_len:]
    if zlib.crc32(payload) != payload_crc:
        raise BitstreamError("corrupt payload (CRC mismatch)")
    return header, payload


def offset_output(y: np.ndarray, header: Header, lo: int = -128, hi: int = 127) -> np.ndarray:
    """The generator's (1, 3, H, W) output integers with the stream's colour offsets added, clipped to [lo, hi]."""
    if header.colour_offsets is None:
        return y
    if y.ndim != 4 or y.shape[1] != 3:
        raise BitstreamError(f"colour offsets need a (1, 3, H, W) image output, the model gives {y.shape}")
    off = np.asarray(header.colour_offsets, dtype=np.int64).reshape(1, -1, 1, 1)
    return np.clip(y.astype(np.int64) + off, lo, hi).astype(y.dtype)


def output_size(header: Header, downsample: Optional[int] = None,
                max_pixels: int = MAX_DECODE_PIXELS) -> Tuple[int, ...]:
    """The generator's output size for this header: image (H, W) = latent * stride; audio (frames,) =
    latent * stride / AUDIO_HOP. BitstreamError when the stride is not the model's `downsample` (latent
    steps: pixels, or mel frames) or the size exceeds the decoder limits (max_pixels for images)."""
    if header.modality == "image":
        if downsample is not None and header.stride != int(downsample):
            raise BitstreamError(f"bitstream stride {header.stride} differs from the model's {downsample}")
        size = tuple(d * header.stride for d in header.latent_shape[1:])
        if size[0] * size[1] > max_pixels:
            raise BitstreamError(f"image of {size[1]}x{size[0]} pixels exceeds the decoder limit of {max_pixels} "
                                 f"pixels (raise it with --max-pixels)")
        return size
    if downsample is not None and header.stride != int(downsample) * AUDIO_HOP:
        raise BitstreamError(f"bitstream stride {header.stride} samples differs from the model's "
                             f"{int(downsample) * AUDIO_HOP}")
    if header.stride % AUDIO_HOP:
        raise BitstreamError(f"bitstream stride {header.stride} is not a whole number of {AUDIO_HOP}-sample frames")
    frames = header.latent_shape[1] * header.stride // AUDIO_HOP
    if frames > MAX_DECODE_FRAMES:
        raise BitstreamError(f"{frames} mel frames exceed the decoder limit {MAX_DECODE_FRAMES}")
    return (frames,)
