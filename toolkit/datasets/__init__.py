"""Datasets: image folders and the embedded default."""
from .images import EMBEDDED, ImageCrops, embedded_image_path, image_paths, load_rgb, to_signed_unit

__all__ = ["EMBEDDED", "ImageCrops", "embedded_image_path", "image_paths", "load_rgb", "to_signed_unit"]
