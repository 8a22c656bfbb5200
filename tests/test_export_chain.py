"""The export chain on real Brevitas generators: ONNX, reference vs fake-quant, reference == TVM, CLIs."""
import numpy as np
import onnx
import pytest
import torch

from bpgan.firmware_ref.decoder import decode_latent, symbols_to_latent
from bpgan.firmware_ref.program import load_program
from bpgan.toolkit.cli import decode as decode_cli
from bpgan.toolkit.cli import export as export_cli
from bpgan.toolkit.models import build_model, model_config
from bpgan.toolkit.quant import QuantSpec
from bpgan.toolkit.training.checkpoint import save_model

from conftest import fake_quant_lsb, float64_copy, max_partial_sum

TINY = {"latent_channels": 4, "generator_widths": [16, 12, 8, 8, 8], "encoder_widths": [8, 8, 8, 8], "res_blocks": 1}
VARIANTS = {"convT": ({}, QuantSpec()), "shuffle": ({"upsample": "pixel_shuffle"}, QuantSpec(per_channel_weights=True))}


def tiny_model(variant, seed=0):
    extra, quant = VARIANTS[variant]
    torch.manual_seed(seed)
    model = build_model("bpgan-image", model_config("bpgan-image", dict(TINY, **extra)), quant).eval()
    with torch.no_grad():  # non-trivial biases so every requantize sees both signs
        for m in model.generator.modules():
            if isinstance(getattr(m, "bias", None), torch.nn.Parameter):
                m.bias.uniform_(-0.5, 0.5)
    return model, quant


@pytest.fixture(scope="module", params=list(VARIANTS))
def exported(request, tmp_path_factory):
    """A run folder per variant, exported once through the CLI (in-process)."""
    run = tmp_path_factory.mktemp(request.param)
    model, quant = tiny_model(request.param)
    save_model(run / "qat" / "model.pt", model, "bpgan-image", quant, "qat")
    assert export_cli.main([str(run), "--target", "llvm"]) == 0
    return run, model


def test_export_writes_every_artifact(exported, capsys):
    run, _ = exported
    names = {p.name for p in (run / "export").iterdir()}
    assert {"model.qcdq.onnx", "program.json", "program.npz", "test_vectors.npz", "decoder-llvm.so"} <= names
    onnx.checker.check_model(onnx.load(str(run / "export" / "model.qcdq.onnx")), full_check=True)


def test_ort_on_qcdq_is_close_to_fake_quant(exported):
    """ORT's QuantizeLinear rounds ties to even, ours half up: a tie may move one output LSB (2^-7)."""
    from bpgan.export.onnx_export import ort_vs_fake_quant
    run, model = exported
    prog = load_program(run / "export")
    lat = symbols_to_latent(prog, np.random.default_rng(3).integers(0, 8, (1, 4, 6, 5)))
    diff = ort_vs_fake_quant(run / "export" / "model.qcdq.onnx", model.generator, lat * 2.0 ** -4)
    print(f"ORT vs fake-quant max |diff| = {diff}")
    assert diff <= 4 * 2.0 ** -7


def test_reference_equals_fake_quant_exactly(exported):
    """The integer reference == Brevitas fake-quant on the whole generator, every element, 0 LSB.

    Fake-quant holds every tensor as an integer times a power of two (int8/uint8 activations, int8 weights,
    int32 bias at the accumulator scale); a product is exact and every partial sum is an integer below
    max_partial_sum (< 2**22 here), so the conv sums exactly in any order, and floor(x + 0.5) then sees the
    same number the integer shift does: no tie can move. float64 leaves 2**53 of room; the float32 model
    (the one exported, and the codec's torch engine) is exact too, as long as that bound stays below 2**24.
    """
    run, model = exported
    prog = load_program(run / "export")
    frac = prog.fmt(prog.outputs[0])[1]
    assert max_partial_sum(prog) < 2 ** 24, "partial sums no longer exact in float32: compare the float64 copy only"
    symbols = np.random.default_rng(4).integers(0, 8, (2, 4, 8, 12))
    ref = np.concatenate([decode_latent(prog, s[None]) for s in symbols])
    for m in (float64_copy(model), model):
        fq = fake_quant_lsb(m, symbols, frac)
        print(f"reference vs {m.quantizer.centers.dtype} fake-quant: {100 * (ref == fq).mean():.4f}% exact, "
              f"max |diff| {np.abs(ref - fq).max()} LSB")
        assert fq.shape == ref.shape and np.array_equal(ref, fq)


def test_symbol_table_decodes_to_the_generator_input(exported):
    run, model = exported
    prog = load_program(run / "export")
    assert np.array_equal(prog.symbols(), model.quantizer.integer_centers().numpy())


def test_tvm_equals_reference_on_vectors_and_random_latents(exported):
    from bpgan.export.tvm.lower import TvmDecoder
    run, _ = exported
    prog = load_program(run / "export")
    dec = TvmDecoder(run / "export" / "decoder-llvm.so")
    with np.load(run / "export" / "test_vectors.npz") as v:
        assert np.array_equal(dec(v["latent"]), v["output"])
        assert np.array_equal(decode_latent(prog, v["latent"]), v["output"])
        assert prog.content_hash in str(v["provenance"])
    for seed, hw in [(0, (3, 5)), (1, (7, 2)), (2, (1, 1))]:
        lat = symbols_to_latent(prog, np.random.default_rng(seed).integers(0, 8, (1, 4, *hw)))
        assert np.array_equal(dec(lat), decode_latent(prog, lat))


def test_decode_engines_write_identical_pngs(exported, tmp_path):
    run, _ = exported
    vectors = run / "export" / "test_vectors.npz"
    for engine in ("ref", "tvm"):
        assert decode_cli.main([str(run), str(vectors), "-o", str(tmp_path / f"{engine}.png"), "--engine", engine]) == 0
    assert (tmp_path / "ref.png").read_bytes() == (tmp_path / "tvm.png").read_bytes()
    np.savez(tmp_path / "sym.npz", symbols=np.load(vectors)["symbols"])
    assert decode_cli.main([str(run / "export"), str(tmp_path / "sym.npz"), "-o", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").read_bytes() == (tmp_path / "ref.png").read_bytes()


def test_cli_errors_are_one_line_and_nonzero(tmp_path, capsys):
    assert decode_cli.main([str(tmp_path), "x.npz", "-o", str(tmp_path / "o.png")]) == 2
    assert export_cli.main([str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith(("bpgan-decode: error:", "bpgan-export: error:")) for line in err)


def test_export_refuses_a_model_whose_accumulator_can_overflow(tmp_path, capsys):
    model, quant = tiny_model("convT")
    conv = model.generator.head.conv
    acc_scale = 2.0 ** -4 * conv.quant_weight().scale.reshape(-1)[0].item()
    with torch.no_grad():  # a bias just below 2**31 at the accumulator scale: any positive sum overflows
        conv.bias[0] = (2 ** 31 - 2 ** 10) * acc_scale
    save_model(tmp_path / "qat" / "model.pt", model, "bpgan-image", quant, "qat")
    assert export_cli.main([str(tmp_path), "--target", "llvm"]) == 2
    err = capsys.readouterr().err
    assert "head.conv" in err and "overflow" in err
