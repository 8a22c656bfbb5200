"""Models behind one registry; importing this package registers them all."""
from . import bpgan_audio, bpgan_image, gc, idf_audio, sae_spn  # noqa: F401  (register "bpgan-audio", "bpgan-image", "gc", ...)
from .discriminator import MultiscaleDiscriminator
from .macs import count_macs, count_params
from .registry import MODELS, build_model, model_config, register_model

__all__ = ["MultiscaleDiscriminator", "count_macs", "count_params", "MODELS", "build_model", "model_config",
           "register_model"]
