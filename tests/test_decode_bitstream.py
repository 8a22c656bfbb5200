"""bpgan-encode -> bpgan-decode through the integer program: both engines, identical PNGs; bad streams refused."""
import numpy as np
import pytest
from PIL import Image

from bpgan.firmware_ref.decoder import decode_latent
from bpgan.firmware_ref.image import to_hwc_image
from bpgan.firmware_ref.program import load_program
from bpgan.toolkit.cli.decode import main as decode_main
from bpgan.toolkit.cli.encode import main as encode_main
from bpgan.toolkit.codec.bitstream import unpack
from bpgan.toolkit.codec.entropy import decode_symbols
from bpgan.toolkit.datasets import embedded_image_path


@pytest.fixture(scope="module")
def encoded(exported_tiny_run, tmp_path_factory):
    d = tmp_path_factory.mktemp("bits")
    photo = np.asarray(Image.open(embedded_image_path()).convert("RGB"))
    Image.fromarray(photo[200:250, 100:181]).save(d / "img.png")  # 50x81: padded to the stride
    assert encode_main([str(exported_tiny_run), str(d / "img.png"), "-o", str(d / "img.bpg"), "--iters", "0"]) == 0
    return exported_tiny_run, d


def test_program_carries_the_prior_and_hash(encoded):
    run, d = encoded
    prog = load_program(run / "export")
    header, _ = unpack((d / "img.bpg").read_bytes())
    assert header.model_hash == prog.model_hash()
    assert np.array_equal(prog.prior(), np.load(run / "finetune" / "prior.npy"))


def test_both_engines_write_identical_pngs_equal_to_the_reference(encoded):
    run, d = encoded
    for engine in ("ref", "tvm"):
        assert decode_main([str(run), str(d / "img.bpg"), "-o", str(d / f"{engine}.png"), "--engine", engine]) == 0
    assert (d / "ref.png").read_bytes() == (d / "tvm.png").read_bytes()
    prog = load_program(run / "export")
    header, payload = unpack((d / "img.bpg").read_bytes())
    symbols = decode_symbols(payload, prog.prior(), header.latent_shape)
    expected = to_hwc_image(decode_latent(prog, symbols[None]), 7)[:50, :81]
    assert np.array_equal(np.asarray(Image.open(d / "ref.png")), expected)


@pytest.mark.parametrize("mangle, message", [
    (lambda b: b[: len(b) // 2], "truncated"),
    (lambda b: b"JUNK" + b[4:], "magic"),
    (lambda b: b[:-1] + bytes([b[-1] ^ 0xFF]), "CRC"),
])
def test_broken_streams_give_one_line(encoded, tmp_path, capsys, mangle, message):
    run, d = encoded
    bad = tmp_path / "bad.bpg"
    bad.write_bytes(mangle((d / "img.bpg").read_bytes()))
    assert decode_main([str(run), str(bad), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bpgan-decode: error:") and message.lower() in err.lower() and "\n" not in err
    assert not (tmp_path / "x.png").exists()
