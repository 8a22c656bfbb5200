"""Datasets: image folders, speech clip folders, and the embedded defaults of each."""
from .audio import EMBEDDED_CLIP, MelCrops, audio_paths
from .images import EMBEDDED, ImageCrops, embedded_image_path, image_paths, load_rgb, to_signed_unit


def signal_crops(modality: str, source: str, crop: int, exclude=(), only=None):
    """The training/validation data of a modality: ImageCrops, MelCrops or PcmCrops (with held-out clip names)."""
    if modality == "audio":
        return MelCrops(source, crop, exclude, only)
    if modality == "lossless":
        from .pcm import PcmCrops
        return PcmCrops(source, crop, exclude, only)
    if exclude or only is not None:
        raise ValueError("held-out file lists are supported for audio data only")
    return ImageCrops(source, crop)


__all__ = ["EMBEDDED", "EMBEDDED_CLIP", "ImageCrops", "MelCrops", "audio_paths", "embedded_image_path",
           "image_paths", "load_rgb", "signal_crops", "to_signed_unit"]
