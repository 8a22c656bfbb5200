"""Colour offsets: three header bytes that bring the decoded image's mean colour to the original's."""
import dataclasses

import numpy as np
import pytest
from PIL import Image

from bpgan.firmware_ref.bitstream import BitstreamError, Header, offset_output, pack, unpack
from bpgan.firmware_ref.bitstream_decode import decode_bitstream
from bpgan.firmware_ref.program import load_program
from bpgan.toolkit.cli.encode import main as encode_main
from bpgan.toolkit.codec.codec import colour_offsets_for
from bpgan.toolkit.codec.image_io import int8_to_pixels

HASH = bytes(range(16))


def _header(offsets=None, modality="image"):
    if modality == "audio":
        return Header("audio", HASH, 64, (128,), (0,), (4, 2), colour_offsets=offsets)
    return Header("image", HASH, 16, (30, 20), (2, 12), (4, 2, 2), colour_offsets=offsets)


def test_offsets_round_trip_through_the_header_and_are_checked():
    data = pack(_header((5, -127, 127)), b"\x01\x00\x00\x00\x01\x00\x00\x00")
    header, payload = unpack(data)
    assert header.colour_offsets == (5, -127, 127) and data[7] == 1
    assert len(data) == len(pack(_header(), payload)) + 4
    assert unpack(pack(_header(), payload))[0].colour_offsets is None
    for bad in [(128, 0, 0), (0, 0)]:
        with pytest.raises(ValueError, match="colour offsets"):
            pack(_header(bad), payload)
    with pytest.raises(ValueError, match="colour offsets"):
        pack(_header((1, 2, 3), "audio"), payload)


def test_offset_output_adds_and_clips_to_int8():
    y = np.array([-128, 0, 120], dtype=np.int8).reshape(1, 1, 1, 3).repeat(3, axis=1)
    out = offset_output(y, _header((10, -10, 0)))
    assert out.dtype == np.int8 and out[0, 0, 0].tolist() == [-118, 10, 127] and out[0, 1, 0].tolist() == [-128, -10, 110]
    assert offset_output(y, _header()) is y
    with pytest.raises(BitstreamError, match="3, H, W"):
        offset_output(y[:, :1], _header((1, 1, 1)))


def test_offsets_bring_the_mean_colour_to_the_original():
    rng = np.random.default_rng(0)
    pixels = np.clip(rng.normal([200, 60, 120], 30, (40, 50, 3)), 0, 255).astype(np.uint8)
    decoded = np.clip(pixels.astype(np.int64) - [[[-30, 20, 5]]] + rng.integers(-3, 4, pixels.shape), 0, 255)
    y = (np.clip(np.floor(decoded * 256 / 255 + 0.5), 0, 255) - 128).astype(np.int8).transpose(2, 0, 1)[None]
    off = colour_offsets_for(pixels, y)
    fixed = int8_to_pixels(np.clip(y.astype(np.int64) + np.array(off).reshape(1, 3, 1, 1), -128, 127))
    before = np.abs(int8_to_pixels(y).reshape(-1, 3).mean(0) - pixels.reshape(-1, 3).mean(0))
    after = np.abs(fixed.reshape(-1, 3).mean(0) - pixels.reshape(-1, 3).mean(0))
    assert before.max() > 15 and after.max() < 0.6


def test_bpgan_encode_colour_offsets_decode_the_same_on_every_engine(exported_tiny_run, tmp_path):
    rng = np.random.default_rng(1)
    img = np.clip(rng.normal([180, 160, 200], 10, (37, 45, 3)), 0, 255).astype(np.uint8)   # a bright cast
    Image.fromarray(img).save(tmp_path / "in.png")
    assert encode_main([str(exported_tiny_run), str(tmp_path / "in.png"), "-o", str(tmp_path / "c.bpg"), "--iters",
                        "0", "--colour-offsets"]) == 0
    assert encode_main([str(exported_tiny_run), str(tmp_path / "in.png"), "-o", str(tmp_path / "p.bpg"), "--iters",
                        "0"]) == 0
    prog = load_program(exported_tiny_run / "export")
    data = (tmp_path / "c.bpg").read_bytes()
    header = unpack(data)[0]
    assert header.colour_offsets is not None
    outs = {e: decode_bitstream(prog, data, e)[1] for e in ("ref", "tvm")}
    assert np.array_equal(outs["ref"], outs["tvm"])
    plain = decode_bitstream(prog, (tmp_path / "p.bpg").read_bytes(), "ref")[1]
    assert np.array_equal(outs["ref"], offset_output(plain, header))     # the same symbols, offsets added
    err = lambda y: np.abs(int8_to_pixels(y).reshape(-1, 3).mean(0) - img.reshape(-1, 3).mean(0)).max()  # noqa: E731
    assert err(outs["ref"]) < 1.0 and err(outs["ref"]) <= err(plain)
    assert dataclasses.replace(header, colour_offsets=None).header_bytes() + 4 == header.header_bytes()


def test_the_api_sends_colour_offsets_on_request():
    import bpgan
    model = bpgan.load_model("bpgan-image-light")
    img = np.full((32, 48, 3), [250, 250, 250], dtype=np.uint8)   # white snow: the shipped model tints it
    plain, fixed = bpgan.encode(model, img), bpgan.encode(model, img, colour_offsets=True)
    assert len(fixed) == len(plain) + 4 and unpack(fixed)[0].colour_offsets is not None
    err = lambda px: np.abs(px.reshape(-1, 3).mean(0) - 250).max()  # noqa: E731
    assert err(bpgan.decode(fixed)) < 1.0 <= err(bpgan.decode(plain))
