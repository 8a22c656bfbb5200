"""bpgan-edge: learned GAN codecs with bit-exact integer decoders. The Python API (docs/api.md):

    import bpgan
    model = bpgan.load_model("bpgan-image-light")   # a shipped model's name, a run folder or a model.pt
    data = bpgan.encode(model, "photo.png")         # -> the .bpg bitstream (bytes)
    pixels = bpgan.decode(data)                     # -> (H, W, 3) uint8; the model is found by the stream's hash

Decoding needs only NumPy (the integer reference decoder); encoding loads PyTorch.
Subpackages: bpgan.toolkit (training, codec, CLIs), bpgan.export, bpgan.firmware_ref (the reference decoder).
"""
from .api import Model, decode, decode_integers, encode, load_model, model_for_stream

__all__ = ["Model", "load_model", "encode", "decode", "decode_integers", "model_for_stream"]
