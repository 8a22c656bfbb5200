"""One speech clip through the codec: WAV -> mel -> symbols -> bitstream -> int8 mel -> WAV.

Reuses the image codec's pieces unchanged: the .bpg bitstream (modality "audio", one spatial dim),
the per-channel integer prior, constriction ANS, the model hash and the decoder engines
(`symbols (1, C, n) int64 -> int8 (1, 64, T)`: firmware_ref reference, TVM library, torch fake-quant).
Geometry in the header is in samples: stride = frames per latent step x HOP samples, original size
= the clip's samples at 8 kHz, padding up to latent steps x stride. The mel has T = ceil(n / HOP)
frames, padded by repeating the last frame to a multiple of the model stride, cropped after decoding.
The integer mel the engine returns is the bit-exact contract; Griffin-Lim after it is float.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import torch

from bpgan.firmware_ref.bitstream_decode import StreamModel, decode_with

from ..codec.bitstream import Header, write_bitstream
from ..codec.codec import Encoded, Engine, latent_indices
from ..codec.fingerprint import model_hash as compute_model_hash
from ..codec.prior import PRECISION_BITS
from ..codec.search import SearchConfig, latent_search
from .mel import GRIFFIN_LIM_ITERS, HOP, pad_frames, wav_to_mel
from .wav import SAMPLE_RATE, LoadedAudio


def samples_per_step(model) -> int:
    """Samples of audio per latent step: the bitstream's stride."""
    return model.stride * HOP


@dataclass(frozen=True)
class PreparedAudio:
    x: torch.Tensor        # (1, 64, T + pad) float32 in [-1, 1]
    mel: np.ndarray        # (64, T) the unpadded mel, for measuring
    num_samples: int


def prepare(audio: LoadedAudio, stride: int) -> PreparedAudio:
    mel = wav_to_mel(audio.samples)
    return PreparedAudio(torch.from_numpy(pad_frames(mel, stride))[None], mel, len(audio.samples))


def encode_audio(model, prior: np.ndarray, audio: LoadedAudio, search: Optional[SearchConfig] = None,
                 model_hash: Optional[bytes] = None) -> Tuple[Encoded, PreparedAudio]:
    if getattr(model, "modality", "image") != "audio":
        raise ValueError("this model codes images, not audio")
    model.eval()
    prep = prepare(audio, model.stride)
    if search is not None and search.iters > 0:
        found = latent_search(model, prep.x, search, (prep.mel.shape[1],))
        symbols = found.indices.numpy()
    else:
        found, symbols = None, latent_indices(model, prep.x)[0].numpy()
    step = samples_per_step(model)
    steps = symbols.shape[1]
    header = Header("audio", model_hash or compute_model_hash(model, prior), step, (prep.num_samples,),
                    (steps * step - prep.num_samples,), tuple(symbols.shape))
    return Encoded(write_bitstream(header, symbols, prior), header, symbols.astype(np.int64), found), prep


def decode_mel(data: bytes, prior: np.ndarray, model_hash: bytes, engine: Engine,
               stride: Optional[int] = None) -> Tuple[Header, np.ndarray]:
    """Bitstream -> (Header, int8 mel codes (64, T)): the bit-exact part. BitstreamError on any bad stream."""
    model = StreamModel(prior, model_hash, PRECISION_BITS, None if stride is None else stride // HOP, None, "audio")
    header, y = decode_with(model, data, engine)  # firmware_ref's one decode path, cropped to the clip
    return header, y[0]


def decode_audio(data: bytes, prior: np.ndarray, model_hash: bytes, engine: Engine, stride: Optional[int] = None,
                 iters: int = GRIFFIN_LIM_ITERS, float_backend: bool = False) -> Tuple[Header, np.ndarray, np.ndarray]:
    """Bitstream -> (Header, int8 mel (64, T), float32 samples at 8 kHz): the integer back end that
    bpgan-decode writes (firmware_ref/speech.py), or with float_backend librosa's Griffin-Lim (mel.py)."""
    from .backend import codes_to_samples
    header, mel_codes = decode_mel(data, prior, model_hash, engine, stride)
    return header, mel_codes, codes_to_samples(mel_codes, header.original_size[0], iters, float_backend)


def bits_per_second(num_bytes: int, num_samples: int) -> float:
    """Bit rate from the real stream size, header included, over the clip's duration."""
    return 8.0 * num_bytes * SAMPLE_RATE / float(num_samples)


def prior_from_clips(model, source: str, exclude=(), crops: int = 64, crop_frames: int = 128) -> np.ndarray:
    """The (C, L) prior from training clips' mel crops (never from the clips being coded)."""
    from ..codec.codec import prior_from_batches
    from ..datasets import MelCrops
    crop_frames -= crop_frames % model.stride
    mels = MelCrops(source, crop_frames, exclude=exclude).fixed_crops(crops)
    return prior_from_batches(model, mels.split(16))
