"""The one decode path: a .bpg bitstream -> the program's output integers, cropped to the original size.

  decode_bitstream(prog, data, engine="ref"|"tvm"|callable, max_pixels=...) -> (Header, integers)
bpgan-decode, bpgan-encode's check, bpgan-compare and the Python API all call it (or decode_with, the
same path for a model that is not exported yet); the modality glue (pixels, mel -> WAV) comes after.
Image: (1, 3, H, W) generator integers for the header's original (H, W), plus the stream's colour offsets
where it has them (bitstream.offset_output); firmware_ref.image makes pixels.
Audio: (1, bands, T) int8 mel codes with T = ceil(samples / AUDIO_HOP) frames.
Every check that needs no entropy decoding comes first, then the ANS decoder's work rules (ans.py),
then the engine: a stream cannot make the decoder do work out of proportion to its size.
Every bad stream is one BitstreamError, every unusable program one ProgramError, each a one-line message.
"""
from dataclasses import dataclass
from typing import Callable, Optional, Tuple, Union

import numpy as np

from .ans import decode_symbols
from .bitstream import AUDIO_HOP, MAX_DECODE_PIXELS, BitstreamError, Header, offset_output, output_size, unpack
from .decoder import decode_latent, symbols_to_latent
from .entropy_model import LearnedPrior, load_entropy_program
from .program import Program, ProgramError

ENGINES = ("ref", "tvm")
Engine = Callable[[np.ndarray], np.ndarray]   # symbols (1, C, ...) int64 -> output integers (1, channels, ...)


@dataclass(frozen=True)
class StreamModel:
    """What decoding a stream needs from the model side: all of it is in an exported program."""
    prior: np.ndarray                    # (C, L) or (C, K, L) uint32 frequencies
    model_hash: bytes
    precision_bits: int = 24
    downsample: Optional[int] = None     # latent step in output steps (pixels, mel frames); None: unchecked
    out_channels: Optional[int] = None
    modality: Optional[str] = None       # "image" or "audio"; None: unchecked
    learned: Optional[LearnedPrior] = None   # a learned entropy model codes the stream instead of the table

    @classmethod
    def of(cls, prog: Program, engine: str = "ref") -> "StreamModel":
        """engine: what runs a learned entropy model's program, "ref" or "tvm"."""
        learned = load_entropy_program(prog, engine) if "entropy_model" in prog.meta else None
        return cls(prog.prior(), prog.model_hash(), prog.prior_precision_bits(),
                   prog.meta.get("config", {}).get("downsample"), prog.tensors[prog.outputs[0]].get("channels"),
                   prog.modality, learned)


def engine_for(prog: Program, engine: Union[str, Engine] = "ref", band_rows: Optional[int] = None) -> Engine:
    """"ref": the NumPy reference (band_rows: that many output rows at a time through a row cache,
    stripes.run_streaming); "tvm": the program folder's decoder-llvm.so; a callable is used as is."""
    if callable(engine):
        return engine
    if engine == "ref" and band_rows:
        from .stripes import run_streaming
        return lambda symbols: run_streaming(prog, symbols_to_latent(prog, symbols), band_rows)
    if engine == "ref":
        return lambda symbols: decode_latent(prog, symbols)
    if engine == "tvm":
        dec = tvm_decoder(prog)
        return lambda symbols: dec(symbols_to_latent(prog, symbols))
    raise ProgramError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")


def tvm_decoder(prog: Program):
    """The TVM library beside the program (decoder-llvm.so) loaded: latent(s) -> output(s). TVM only when asked for."""
    if prog.source is None:
        raise ProgramError("the tvm engine needs a program loaded from its export folder")
    lib = prog.source / "decoder-llvm.so"
    if not lib.is_file():
        raise ProgramError(f"no {lib.name} in {lib.parent}; run bpgan-export with --target llvm")
    from bpgan.export.tvm.lower import TvmDecoder
    return TvmDecoder(lib)


def read_symbols(model: StreamModel, data: bytes, max_pixels: int = MAX_DECODE_PIXELS) -> Tuple[Header, np.ndarray]:
    """bytes -> (Header, symbols (C, ...) int64): every header check, then ANS under the work rules."""
    header, payload = unpack(data, model.model_hash)
    if model.modality is not None and header.modality != model.modality:
        raise BitstreamError(f"bitstream holds {header.modality}; this model decodes {model.modality} streams")
    table = model.prior
    if header.latent_shape[0] != table.shape[0]:
        raise BitstreamError(f"bitstream has {header.latent_shape[0]} latent channels, the model {table.shape[0]}")
    if table.ndim == 3 and header.modality != "image":
        raise BitstreamError("a context prior codes (C, h, w) image latents, not audio")
    output_size(header, model.downsample, max_pixels)  # size limits before any decoding work
    if model.learned is not None:
        if not header.sealed or header.modality != "image":
            raise BitstreamError("a learned entropy model codes sealed (version 2) image streams")
        try:
            return header, model.learned.decode(payload, header.latent_shape)
        except ValueError as e:
            raise BitstreamError(f"entropy decoding failed: {e}") from None
    try:
        symbols = decode_symbols(payload, table, header.latent_shape, model.precision_bits, header.sealed)
    except ValueError as e:
        raise BitstreamError(f"entropy decoding failed: {e}") from None
    return header, symbols


def decode_with(model: StreamModel, data: bytes, engine: Engine,
                max_pixels: int = MAX_DECODE_PIXELS) -> Tuple[Header, np.ndarray]:
    """bytes -> (Header, output integers cropped to the original size) through any engine."""
    header, symbols = read_symbols(model, data, max_pixels)
    return header, _run(model, header, symbols, engine, max_pixels)


def decode_bitstream(prog: Program, data: bytes, engine: Union[str, Engine] = "ref",
                     max_pixels: int = MAX_DECODE_PIXELS, band_rows: Optional[int] = None) -> Tuple[Header, np.ndarray]:
    """bytes -> (Header, output integers cropped to the original size): unpack, ANS decode, run the program.

    The engine is resolved after the stream passed every check, so a refused stream costs no library load.
    A lossless program (idf-audio) decodes its PCM streams to int16 samples (channels, n): lossless_stream.py."""
    if prog.modality == "lossless":
        from .lossless_stream import decode_lossless
        return decode_lossless(prog, data, engine)
    model = StreamModel.of(prog, engine if engine in ENGINES else "ref")
    header, symbols = read_symbols(model, data, max_pixels)
    return header, _run(model, header, symbols, engine_for(prog, engine, band_rows), max_pixels)


def _run(model: StreamModel, header: Header, symbols: np.ndarray, engine: Engine, max_pixels: int) -> np.ndarray:
    expected = output_size(header, model.downsample, max_pixels)
    y = np.asarray(engine(symbols[None]))
    if y.shape[0] != 1 or y.shape[2:] != expected or model.out_channels not in (None, y.shape[1]):
        raise BitstreamError(f"decoder produced {y.shape}, the header implies (1, {model.out_channels}) + {expected}")
    if header.modality == "image":
        h, w = header.original_size
        return offset_output(y[:, :, :h, :w], header)
    return y[:, :, :-(-header.original_size[0] // AUDIO_HOP)]
