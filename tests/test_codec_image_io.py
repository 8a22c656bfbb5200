"""Image I/O: any size and mode in, conversions noted, exact integer int8 -> pixel mapping out."""
import struct
import zlib

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from bpgan.toolkit.codec.image_io import (
    ImageError,
    int8_to_pixels,
    output_to_int8,
    pixels_to_tensor,
    read_image,
    write_png,
)


def _png16(path, samples: np.ndarray, color_type: int):
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit colour)."""
    h, w = samples.shape[:2]
    raw = b"".join(b"\x00" + samples[i].astype(">u2").tobytes() for i in range(h))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))


@pytest.mark.parametrize("h, w, stride", [(37, 50, 16), (64, 32, 16), (1, 1, 32), (33, 95, 32)])
def test_any_size_is_padded_to_the_stride_by_repeating_edges(tmp_path, h, w, stride):
    rng = np.random.default_rng(h * w)
    pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "in.png")
    img = read_image(tmp_path / "in.png", stride)
    H, W = img.x.shape[-2:]
    assert H % stride == 0 and W % stride == 0 and (H, W) == (h + img.padding[0], w + img.padding[1])
    assert img.original_size == (h, w) and img.notes == ()
    assert np.array_equal(img.pixels, pixels)
    assert torch.equal(img.x[..., :h, :w], pixels_to_tensor(pixels))
    assert torch.equal(img.x[..., h:, :w], pixels_to_tensor(pixels[-1:]).expand(-1, -1, H - h, -1))


def test_input_convention_maps_0_and_255_to_minus_one_and_one():
    x = pixels_to_tensor(np.array([[[0, 255, 51]]], dtype=np.uint8))
    assert x.flatten().tolist() == pytest.approx([-1.0, 1.0, 2 * 51 / 255 - 1], abs=1e-7)


@pytest.mark.parametrize("mode, note", [("L", "grayscale"), ("RGBA", "alpha channel dropped"), ("LA", "grayscale"),
                                        ("P", "palette")])
def test_non_rgb_inputs_are_converted_with_a_notice(tmp_path, mode, note):
    Image.new(mode, (20, 10)).save(tmp_path / "in.png")
    img = read_image(tmp_path / "in.png", 16)
    assert any(note in n for n in img.notes)
    assert img.pixels.shape == (10, 20, 3)


def test_16_bit_pngs_keep_the_high_byte_with_a_notice(tmp_path):
    gray = np.array([[0, 300, 65535, 257 * 9 + 200]], dtype=np.uint16)
    _png16(tmp_path / "g.png", gray, 0)
    img = read_image(tmp_path / "g.png", 16)
    assert img.pixels[0, :, 0].tolist() == [0, 1, 255, 9]
    assert any("16-bit" in n for n in img.notes) and any("grayscale" in n for n in img.notes)
    rgb = np.array([[[0, 300, 65535], [257 * 7, 257 * 7 + 200, 1000]]], dtype=np.uint16)
    _png16(tmp_path / "c.png", rgb, 2)
    img = read_image(tmp_path / "c.png", 16)
    assert img.pixels[0].tolist() == [[0, 1, 255], [7, 7, 3]] and any("16-bit" in n for n in img.notes)


def test_unreadable_files_get_one_clear_line(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"\x89PNG not really")
    for path in (tmp_path / "junk.png", tmp_path / "missing.png"):
        with pytest.raises(ImageError) as err:
            read_image(path, 16)
        assert "\n" not in str(err.value)
    Image.new("F", (4, 4)).save(tmp_path / "float.tiff")
    with pytest.raises(ImageError, match="unsupported image mode F"):
        read_image(tmp_path / "float.tiff", 16)


@given(y=st.integers(-128, 127))
def test_int8_to_pixel_is_the_rounded_inverse_of_the_input_convention(y):
    p = int(int8_to_pixels(np.full((3, 1, 1), y, dtype=np.int8))[0, 0, 0])
    exact = (y / 128 + 1) * 255 / 2
    assert p == int(np.floor(exact + 0.5))
    assert 0 <= p <= 254


def test_every_pixel_survives_input_then_exact_int8_then_output_within_one_level():
    p = np.arange(256, dtype=np.uint8).reshape(1, 256, 1).repeat(3, axis=2)
    y = output_to_int8(pixels_to_tensor(p))  # the best the int8 output grid can do
    back = int8_to_pixels(y)
    assert np.abs(back.astype(int) - p.astype(int)).max() <= 1


def test_output_is_cropped_and_written_as_byte_identical_pngs(tmp_path):
    rng = np.random.default_rng(3)
    y = rng.integers(-128, 128, (1, 3, 32, 48)).astype(np.int8)
    pixels = int8_to_pixels(y, (30, 41))
    assert pixels.shape == (30, 41, 3)
    write_png(tmp_path / "a.png", pixels)
    write_png(tmp_path / "b.png", int8_to_pixels(y.astype(np.int32), (30, 41)))  # another engine's dtype
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), pixels)


def test_read_only_pixels_convert_without_a_torch_warning():
    """np.asarray of a PIL image is read-only; torch warned about it in the middle of make demo's output."""
    import warnings

    from bpgan.toolkit.codec.image_io import pixels_to_tensor
    pixels = np.full((4, 5, 3), 255, np.uint8)
    pixels.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = pixels_to_tensor(pixels)
    assert t.shape == (1, 3, 4, 5) and float(t.min()) == 1.0
