"""The Python API: load a model, encode an image or a clip to bytes, decode bytes to pixels or samples.

Every call goes through the same functions as the command-line tools: encoding through the codec
(toolkit/codec, toolkit/audio), decoding through firmware_ref.decode_bitstream, the one decode path,
then the modality glue (integer pixel conversion; for speech, the integer Griffin-Lim back end of
firmware_ref/speech.py after the bit-exact int8 mel, so the samples too are identical everywhere).
Errors are ValueErrors with one-line messages (BitstreamError, ProgramError, ImageError, ...).
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np

from bpgan.firmware_ref.bitstream import MAX_DECODE_PIXELS, Header, unpack
from bpgan.firmware_ref.bitstream_decode import decode_bitstream
from bpgan.firmware_ref.image import to_hwc_image
from bpgan.firmware_ref.program import Program, load_program

Source = Union[str, Path, np.ndarray]


@dataclass
class Model:
    """A run folder (a shipped model is one): its integer program for decoding, its torch model for encoding."""
    folder: Path
    _program: Optional[Program] = field(default=None, repr=False)
    _torch: Optional[tuple] = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.folder.name

    def program(self) -> Program:
        """The exported integer program (folder/export): what decoding runs."""
        if self._program is None:
            export = self.folder / "export"
            if not (export / "program.json").is_file():
                raise ValueError(f"{self.folder} has no export/program.json; run bpgan-export {self.folder}")
            self._program = load_program(export)
        return self._program

    def torch_model(self):
        """-> (model, prior table or learned prior, model hash): what encoding runs (loads PyTorch)."""
        if self._torch is None:
            from bpgan.toolkit.codec.fingerprint import model_hash
            from bpgan.toolkit.codec.learned import load_stream_prior
            from bpgan.toolkit.training.checkpoint import final_model_path, load_model as load_checkpoint

            model_file = final_model_path(self.folder)
            model, _ = load_checkpoint(model_file)
            prior_file = next((p for p in (model_file.parent / "prior.npy", self.folder / "prior.npy") if p.is_file()),
                              None)
            if prior_file is None:
                raise ValueError(f"{self.folder} has no prior.npy; make one with bpgan-encode --prior-from DATA")
            prior = load_stream_prior(prior_file)
            self._torch = (model, prior, model_hash(model, prior))
        return self._torch

    @property
    def modality(self) -> str:
        if self._torch is None and (self.folder / "export" / "program.json").is_file():
            return self.program().modality
        return getattr(self.torch_model()[0], "modality", "image")


def load_model(name_or_path: Union[str, Path]) -> Model:
    """A shipped model's name (`bpgan-image-light`), a run folder, or a model.pt inside one."""
    from bpgan.toolkit.zoo import zoo_entry

    path = Path(name_or_path)
    if path.is_file() and path.suffix == ".pt":
        path = path.parent.parent
    if not path.is_dir():
        path = zoo_entry(str(name_or_path))
    return Model(path.resolve())


def encode(model: Model, source: Source, iters: int = 0, sample_rate: Optional[int] = None,
           colour_offsets: bool = False) -> bytes:
    """An image (path, or (H, W, 3) uint8 array) or a clip (path, or 1-D float samples at 8 kHz) -> bitstream.

    iters > 0 refines the encoder's latent by that many latent-search iterations (slower, better).
    colour_offsets (images): the stream carries 4 bytes that match the decoded mean colour to the original's.
    A lossless model (idf-audio) takes a PCM file, or int16 samples (n,) or (channels, n) with sample_rate."""
    from bpgan.toolkit.codec.search import SearchConfig

    if model.modality == "lossless":
        from bpgan.firmware_ref.lossless_stream import encode_lossless
        from bpgan.toolkit.audio.pcm import read_pcm

        if isinstance(source, np.ndarray):
            if source.dtype != np.int16 or source.ndim not in (1, 2) or not sample_rate:
                raise ValueError("lossless samples must be int16 (n,) or (channels, n), with sample_rate")
            samples, rate = np.atleast_2d(source), int(sample_rate)
        else:
            samples, rate = read_pcm(source)
        return encode_lossless(model.program(), samples, rate)

    net, prior, mhash = model.torch_model()
    search = SearchConfig(iters) if iters > 0 else None
    if getattr(net, "modality", "image") == "audio":
        from bpgan.toolkit.audio.codec import encode_audio
        from bpgan.toolkit.audio.wav import SAMPLE_RATE, read_audio, to_mono_8k

        audio = to_mono_8k(np.asarray(source, dtype=np.float32), SAMPLE_RATE) if isinstance(source, np.ndarray) \
            else read_audio(source)
        return encode_audio(net, prior, audio, search, mhash)[0].data
    from bpgan.toolkit.codec.codec import encode_image
    return encode_image(net, prior, _image(source, net.stride), search, mhash, colour_offsets).data


def _image(source: Source, stride: int):
    from bpgan.toolkit.codec.image_io import ImageError, LoadedImage, pad_to_stride, pixels_to_tensor, read_image

    if not isinstance(source, np.ndarray):
        return read_image(source, stride)
    if source.dtype != np.uint8 or source.ndim != 3 or source.shape[2] != 3 or min(source.shape[:2]) < 1:
        raise ImageError(f"an image array must be (H, W, 3) uint8, got {source.shape} {source.dtype}")
    padded, padding = pad_to_stride(source, stride)
    return LoadedImage(pixels_to_tensor(padded), source, source.shape[:2], padding, ())


def decode_integers(data: bytes, model: Optional[Model] = None, engine: str = "ref",
                    max_pixels: int = MAX_DECODE_PIXELS, band_rows: Optional[int] = None) -> Tuple[Header, np.ndarray]:
    """bytes -> (Header, the program's output integers): the bit-exact part, identical on every engine.

    band_rows (reference engine): decode that many output rows at a time, in memory that grows with the
    width only (firmware_ref/stripes.py); the integers are the same."""
    if model is None:
        model = model_for_stream(data)
    return decode_bitstream(model.program(), data, engine, max_pixels, band_rows)


def decode(data: bytes, model: Optional[Model] = None, engine: str = "ref",
           max_pixels: int = MAX_DECODE_PIXELS, float_backend: bool = False) -> np.ndarray:
    """bytes -> (H, W, 3) uint8 pixels, for speech float32 samples at 8 kHz, for a lossless stream its int16
    samples (channels, n) exactly (the rate is in the header: bpgan.decode_integers).

    Speech: the integer back end's PCM16 / 32768 (exact; 32 Griffin-Lim iterations), or with
    float_backend=True librosa's float Griffin-Lim (mel.py mel_to_wav, may differ across machines).
    Without a model the shipped model whose hash the stream carries decodes it."""
    if model is None:
        model = model_for_stream(data)
    header, y = decode_integers(data, model, engine, max_pixels)
    prog = model.program()
    if header.modality == "image":
        return to_hwc_image(y, prog.fmt(prog.outputs[0])[1])
    if header.modality == "lossless":
        return y
    from bpgan.toolkit.audio.backend import codes_to_samples
    return codes_to_samples(y[0], header.original_size[0], float_backend=float_backend)


def model_for_stream(data: bytes, hint: str = "pass model=bpgan.load_model(...)") -> Model:
    """The shipped model whose integer program carries the stream's model hash (bpgan-decode uses it too)."""
    from bpgan.toolkit.zoo import ZOO, find_by_model_hash

    header = unpack(data)[0]
    found = find_by_model_hash(header.model_hash)
    if found is None:
        raise ValueError(f"the stream was made for model {header.model_hash.hex()}, none of the shipped models "
                         f"in {ZOO}; {hint}")
    return Model(found)
