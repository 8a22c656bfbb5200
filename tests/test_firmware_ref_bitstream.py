"""firmware_ref decodes a .bpg end to end (no torch, no constriction) and equals the toolkit decode path."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from bpgan.firmware_ref.bitstream import BitstreamError
from bpgan.firmware_ref.bitstream_decode import decode_bitstream
from bpgan.firmware_ref.decoder import decode_latent
from bpgan.firmware_ref.image import to_hwc_image
from bpgan.firmware_ref.program import load_program
from bpgan.toolkit.cli.encode import main as encode_main
from bpgan.toolkit.codec import bitstream
from bpgan.toolkit.codec.codec import decode_image
from bpgan.toolkit.datasets import embedded_image_path

HEAVY = ("torch", "constriction", "tvm", "onnx", "brevitas")


@pytest.fixture(scope="module")
def stream(exported_tiny_run, tmp_path_factory):
    d = tmp_path_factory.mktemp("fw_bits")
    photo = np.asarray(Image.open(embedded_image_path()).convert("RGB"))
    Image.fromarray(photo[120:167, 60:130]).save(d / "img.png")  # 47x70: padded to the stride, cropped back
    assert encode_main([str(exported_tiny_run), str(d / "img.png"), "-o", str(d / "img.bpg"), "--iters", "0"]) == 0
    return exported_tiny_run / "export", d / "img.bpg"


def test_toolkit_reexports_the_firmware_layout_and_decoder():
    from bpgan.firmware_ref import bitstream as fw
    assert bitstream.unpack is fw.unpack and bitstream.Header is fw.Header and bitstream.BitstreamError is BitstreamError


def test_decode_bitstream_equals_the_toolkit_path(stream):
    folder, path = stream
    prog = load_program(folder)
    data = path.read_bytes()
    header, y = decode_bitstream(prog, data)
    assert header.original_size == (47, 70) and y.shape == (1, 3, 47, 70)
    frac_bits = prog.fmt(prog.outputs[0])[1]
    stride = prog.meta.get("config", {}).get("downsample")
    _, pixels = decode_image(data, prog.prior(), prog.model_hash(), lambda s: decode_latent(prog, s), stride)
    assert np.array_equal(to_hwc_image(y, frac_bits), pixels)


@pytest.mark.parametrize("mangle, message", [
    (lambda b: b[: len(b) // 2], "truncated"),
    (lambda b: b[:8] + bytes(16) + b[24:], "CRC"),
    (lambda b: b + b"\0\0\0\0", "trailing"),
])
def test_bad_streams_are_one_line_bitstream_errors(stream, mangle, message):
    folder, path = stream
    with pytest.raises(BitstreamError, match=message) as e:
        decode_bitstream(load_program(folder), mangle(path.read_bytes()))
    assert "\n" not in str(e.value)


def test_decoding_needs_no_heavy_module(stream):
    folder, path = stream
    code = (
        "import sys, numpy as np\n"
        "from bpgan.firmware_ref.program import load_program\n"
        "from bpgan.firmware_ref.bitstream_decode import decode_bitstream\n"
        f"h, y = decode_bitstream(load_program({str(folder)!r}), open({str(path)!r}, 'rb').read())\n"
        "assert y.shape == (1, 3, 47, 70), y.shape\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "assert not heavy, heavy\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
