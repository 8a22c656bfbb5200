"""The codec end to end on a tiny exported model: file -> bitstream -> the same pixels from every engine."""
import numpy as np
import pytest
import torch
from PIL import Image

from bpgan.firmware_ref.decoder import decode_latent, symbols_to_latent
from bpgan.firmware_ref.program import load_program
from bpgan.toolkit.cli import encode as encode_cli
from bpgan.toolkit.codec.bitstream import BitstreamError, unpack
from bpgan.toolkit.codec.codec import bits_per_pixel, decode_image, encode_image, prior_from_batches, torch_engine
from bpgan.toolkit.codec.fingerprint import model_hash
from bpgan.toolkit.codec.image_io import int8_to_pixels, read_image, write_png
from bpgan.toolkit.codec.prior import load_prior
from bpgan.toolkit.codec.search import SearchConfig
from bpgan.toolkit.models import build_model, model_config
from bpgan.toolkit.quant import QuantSpec
from bpgan.toolkit.training.checkpoint import save_model

TINY = {"latent_channels": 4, "num_centers": 8, "generator_widths": [16, 12, 8, 8, 8], "encoder_widths": [8, 8, 8, 8],
        "res_blocks": 1}
SIZES = [(37, 50), (16, 16), (1, 1), (33, 70)]


def _tiny():
    torch.manual_seed(0)
    quant = QuantSpec(gradient_bits=8)
    return build_model("bpgan-image", model_config("bpgan-image", TINY), quant).eval(), quant


def _photo(path, h, w, seed=0):
    rng = np.random.default_rng(seed)
    smooth = np.cumsum(np.cumsum(rng.normal(0, 6, (h, w, 3)), 0), 1) / np.sqrt(h * w)  # structure, not just noise
    Image.fromarray(np.clip(128 + smooth, 0, 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run folder with a tiny QAT model, its prior from training-style crops, and its export."""
    from bpgan.toolkit.cli import export as export_cli
    run = tmp_path_factory.mktemp("codec_run")
    model, quant = _tiny()
    save_model(run / "qat" / "model.pt", model, "bpgan-image", quant, "qat")
    assert export_cli.main([str(run), "--target", "llvm"]) == 0
    gen = torch.Generator().manual_seed(5)
    train = [torch.rand(4, 3, 32, 32, generator=gen) * 2 - 1 for _ in range(2)]
    np.save(run / "qat" / "prior.npy", prior_from_batches(model, train))
    return run, model, _engines(run)


def _engines(run):
    from bpgan.export.tvm.lower import TvmDecoder
    prog = load_program(run / "export")
    tvm = TvmDecoder(run / "export" / "decoder-llvm.so")
    return {"ref": lambda s: decode_latent(prog, s), "tvm": lambda s: tvm(symbols_to_latent(prog, s))}


@pytest.mark.parametrize("h, w", SIZES)
def test_every_engine_decodes_the_same_pixels_for_any_size(run, tmp_path, h, w):
    run_dir, model, engines = run
    prior = load_prior(run_dir / "qat" / "prior.npy")
    mhash = model_hash(model, prior)
    image = read_image(_photo(tmp_path / "in.png", h, w), model.stride)
    enc = encode_image(model, prior, image, SearchConfig(iters=2), mhash)
    assert enc.data == encode_image(model, prior, image, SearchConfig(iters=2), mhash).data  # deterministic
    pngs = []
    for name, engine in engines.items():
        header, pixels = decode_image(enc.data, prior, mhash, engine, model.stride)
        assert pixels.shape == (h, w, 3) and header.original_size == (h, w)
        write_png(tmp_path / f"{name}.png", pixels)
        pngs.append((tmp_path / f"{name}.png").read_bytes())
    assert pngs[0] == pngs[1]
    # The pixels are the reference decoder's output of exactly the encoded symbols.
    prog = load_program(run_dir / "export")
    expected = int8_to_pixels(decode_latent(prog, enc.symbols[None]), (h, w))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "ref.png")), expected)


def test_torch_engine_round_trip_without_an_export(tmp_path):
    model, _ = _tiny()
    prior = np.full((4, 8), 1 << 21, dtype=np.uint32)
    image = read_image(_photo(tmp_path / "in.png", 20, 40), model.stride)
    enc = encode_image(model, prior, image)
    header, pixels = decode_image(enc.data, prior, model_hash(model, prior), torch_engine(model))
    direct = torch_engine(model)(enc.symbols[None])
    assert np.array_equal(pixels, int8_to_pixels(direct, (20, 40)))
    assert header.latent_shape == (4, 2, 3) and header.padding == (12, 8)


def test_a_stream_is_refused_by_another_model(run, tmp_path):
    run_dir, model, _ = run
    prior = load_prior(run_dir / "qat" / "prior.npy")
    image = read_image(_photo(tmp_path / "in.png", 16, 32), model.stride)
    data = encode_image(model, prior, image).data
    other = prior.copy()
    other[0, 0] += 1
    other[0, 1] -= 1
    with pytest.raises(BitstreamError, match="not this model"):
        decode_image(data, other, model_hash(model, other), torch_engine(model))


def test_cli_prints_size_and_bpp_from_the_real_file(run, tmp_path, capsys):
    run_dir = run[0]
    out = tmp_path / "out.bpg"
    assert encode_cli.main([str(run_dir), str(_photo(tmp_path / "in.png", 40, 24)), "-o", str(out), "--iters", "3"]) == 0
    text = capsys.readouterr().out
    size = out.stat().st_size
    assert f"{size} bytes, {bits_per_pixel(size, (40, 24)):.4f} bpp" in text
    assert "reference decoder" in text and "PSNR" in text and "encoder latent alone" in text
    assert unpack(out.read_bytes())[0].original_size == (40, 24)


def test_cli_errors_are_one_line_and_nonzero(run, tmp_path, capsys):
    run_dir = run[0]
    assert encode_cli.main([str(run_dir), str(tmp_path / "missing.png"), "-o", str(tmp_path / "o.bpg")]) == 2
    model, quant = _tiny()
    save_model(tmp_path / "bare" / "qat" / "model.pt", model, "bpgan-image", quant, "qat")
    img = _photo(tmp_path / "in.png", 16, 16)
    assert encode_cli.main([str(tmp_path / "bare"), str(img), "-o", str(tmp_path / "o.bpg")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "no image file" in err[0] and "no prior table" in err[1]


def test_forged_headers_are_refused_before_any_decoding(tmp_path):
    from bpgan.toolkit.codec.bitstream import Header, pack
    model, _ = _tiny()
    prior = np.full((4, 8), 1 << 21, dtype=np.uint32)
    mhash = model_hash(model, prior)

    def engine(symbols):
        raise AssertionError("the engine must not run")
    huge = pack(Header("image", mhash, 16, (16 * 4096, 16 * 2048), (0, 0), (4, 4096, 2048)), b"")
    with pytest.raises(BitstreamError, match="exceeds the decoder limit"):
        decode_image(huge, prior, mhash, engine, 16)
    audio = pack(Header("audio", mhash, 16, (32,), (0,), (4, 2)), b"")
    with pytest.raises(BitstreamError, match="holds audio"):
        decode_image(audio, prior, mhash, engine)
    with pytest.raises(BitstreamError, match="stride 32"):
        decode_image(pack(Header("image", mhash, 32, (32, 32), (0, 0), (4, 1, 1)), b""), prior, mhash, engine, 16)
