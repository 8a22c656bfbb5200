"""GC (Agustsson et al.'s generative compression): the QAT instance norm equals the integer op exactly, and a tiny
recipe trains, exports (instance_norm and reflect_pad in the program) and decodes identically on ref and TVM."""
import zlib

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from bpgan.export.onnx_to_program import onnx_to_program
from bpgan.firmware_ref.decoder import run_program
from bpgan.firmware_ref.ops.norm import instance_norm
from bpgan.firmware_ref.program import ProgramError, load_program
from bpgan.toolkit.models import build_model, model_config
from bpgan.toolkit.quant import RELU4, QuantSpec, signed
from bpgan.toolkit.quant.instance_norm import InstanceNormAct, QuantInstanceNormAct

from tiny_recipe import assert_ref_and_tvm_write_the_same_png, train_and_export, write_tiny

TINY_GC = {"name": "gc", "latent_channels": 4, "num_centers": 4, "encoder_widths": [4, 4, 6, 8, 8],
           "generator_widths": [8, 8, 6, 4, 4], "res_blocks": 1}


def _cfg(**over):
    return model_config("gc", dict({k: v for k, v in TINY_GC.items() if k != "name"}, **over))


def _reference(layer: QuantInstanceNormAct, x_int: np.ndarray, dtype: str) -> np.ndarray:
    gamma, frac, beta = layer.integer_params()
    shift = (frac + layer.z_frac - layer.out_frac).numpy()
    return instance_norm(x_int.astype(dtype), gamma.numpy().astype(np.int8), beta.numpy().astype(np.int32),
                         layer.z_frac, layer.eps_shift, shift, [layer.lo, layer.hi], layer.out_dtype)


SHAPES = [(1, 1, 1, 1), (2, 3, 1, 1), (1, 2, 1, 7), (2, 3, 5, 7), (1, 4, 9, 4), (1, 2, 16, 16)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("in_fmt", [signed(4), signed(0), signed(7), RELU4],
                         ids=["int8@4", "int8@0", "int8@7", "uint8"])
@pytest.mark.parametrize("out_fmt", [RELU4, signed(5)], ids=["relu4", "int8@5"])
@pytest.mark.parametrize("per_channel", [False, True], ids=["tensor", "channel"])
def test_the_qat_instance_norm_is_the_integer_op_exactly(shape, in_fmt, out_fmt, per_channel):
    rng = np.random.default_rng(zlib.crc32(repr((shape, in_fmt, out_fmt, per_channel)).encode()))
    dtype, (lo, hi) = ("uint8", (0, 256)) if in_fmt == RELU4 else ("int8", (-128, 128))
    n, c = shape[:2]
    for trial in range(4):
        x = rng.integers(lo, hi, shape)
        x[:, 0] = x[:, 0, :1, :1]                                 # a constant channel (variance 0)
        if trial == 1:
            x = rng.integers(lo, lo + 3, shape)                   # few levels: ties in the rounding
        layer = QuantInstanceNormAct(c, in_fmt, out_fmt, z_frac=int(rng.integers(4, 13)), per_channel=per_channel)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(rng.normal(0, 1.5, c) * 4.0 ** rng.integers(-2, 3, c)))
            layer.bias.copy_(torch.from_numpy(rng.normal(0, 1, c)))
        xf = torch.from_numpy(x * 2.0 ** -layer.in_frac).float().requires_grad_()
        y = layer.train(trial % 2 == 0)(xf)
        got = y.detach().double().numpy() * 2.0 ** layer.out_frac
        want = _reference(layer, x, dtype)
        assert np.array_equal(got, want.astype(np.float64)), (trial, np.abs(got - want).max())
        y.square().sum().backward()                               # straight through the float instance norm
        assert layer.weight.grad is not None and layer.bias.grad is not None and xf.grad is not None


def test_gamma_and_beta_follow_the_weight_rule_and_the_float_layer_loads_into_the_qat_one():
    flt = InstanceNormAct(3)
    with torch.no_grad():
        flt.weight.copy_(torch.tensor([1.0, -0.3, 0.49]))
        flt.bias.copy_(torch.tensor([0.5, -0.25, 2.0 ** -20]))
    q = QuantInstanceNormAct(3, signed(4), RELU4, z_frac=8)
    q.load_state_dict(flt.state_dict(), strict=True)              # the same parameter names
    gamma, frac, beta = q.integer_params()
    assert frac.tolist() == [7, 7, 7]                             # Brevitas: 2^ceil(log2(max|g| / 128))
    assert gamma.tolist() == [127, -38, 63]                       # 1.0 clips to 127; -38.4 -> -38; 62.72 -> 63
    assert beta.tolist() == [2 ** 14, -2 ** 13, 0]                # at 2^-(z + gamma_frac) = 2^-15, half up
    x = torch.randn(2, 3, 6, 5).mul(16).round().clamp(-128, 127) / 16
    assert torch.allclose(q(x), flt(x), atol=0.1)                 # close to torch's own float instance norm


def test_the_float_and_qat_builds_share_every_name_and_the_generator_trains():
    cfg = _cfg()
    flt, qat = build_model("gc", cfg), build_model("gc", cfg, QuantSpec())
    assert set(flt.state_dict()) == set(qat.state_dict())
    assert isinstance(qat.generator.head.norm, QuantInstanceNormAct) and qat.generator.head.conv.out_channels == 8
    out = qat(torch.rand(2, 3, 32, 32) * 2 - 1)
    assert out["x_hat"].shape == (2, 3, 32, 32) and out["z"].shape == (2, 4, 2, 2)
    out["x_hat"].square().mean().backward()
    assert all(p.grad is not None for n, p in qat.generator.named_parameters() if n.endswith(".norm.weight"))


def _scale():
    return [helper.make_tensor("s", TensorProto.FLOAT, [], [1 / 16]),
            helper.make_tensor("zp", TensorProto.INT8, [], [0])]


def _graph(nodes, inits):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("latent", TensorProto.FLOAT, [1, 2, 4, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("mode, pads, message", [
    ("constant", [0, 0, 1, 1, 0, 0, 1, 1], r"only Pad\(mode=reflect\) has an integer form \(got mode constant; zero"),
    ("edge", [0, 0, 1, 1, 0, 0, 1, 1], r"got mode edge"),
    ("reflect", [0, 1, 1, 1, 0, 0, 1, 1], r"must pad the spatial axes only"),
])
def test_the_importer_refuses_any_other_pad_in_one_line(tmp_path, mode, pads, message):
    inits = _scale() + [helper.make_tensor("pads", TensorProto.INT64, [8], pads)]
    nodes = [helper.make_node("QuantizeLinear", ["latent", "s", "zp"], ["q"], name="/in/Q"),
             helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["x"], name="/in/DQ"),
             helper.make_node("Pad", ["x", "pads"], ["p"], name="/pad/Pad", mode=mode),
             helper.make_node("QuantizeLinear", ["p", "s", "zp"], ["q2"], name="/out/Q"),
             helper.make_node("DequantizeLinear", ["q2", "s", "zp"], ["y"], name="/out/DQ")]
    onnx.save(_graph(nodes, inits), tmp_path / "m.onnx")
    with pytest.raises(ProgramError, match=message) as e:
        onnx_to_program(tmp_path / "m.onnx")
    assert "\n" not in str(e.value)


def test_onnx_float_instance_normalization_is_refused_in_one_line(tmp_path):
    inits = _scale() + [helper.make_tensor("g", TensorProto.FLOAT, [2], [1, 1]),
                        helper.make_tensor("b", TensorProto.FLOAT, [2], [0, 0])]
    nodes = [helper.make_node("QuantizeLinear", ["latent", "s", "zp"], ["q"], name="/in/Q"),
             helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["x"], name="/in/DQ"),
             helper.make_node("InstanceNormalization", ["x", "g", "b"], ["y"], name="/norm/InstanceNormalization")]
    onnx.save(_graph(nodes, inits), tmp_path / "m.onnx")
    with pytest.raises(ProgramError, match=r"layer 'norm': ONNX op InstanceNormalization has no integer-program form"):
        onnx_to_program(tmp_path / "m.onnx")


@pytest.fixture(scope="module")
def gc_run(tmp_path_factory):
    """The tiny recipe through every stage with the gc model (instance norm), exported for llvm (verified)."""
    d = tmp_path_factory.mktemp("gc")
    return train_and_export(write_tiny(d / "tiny-gc.yaml", model=TINY_GC), d / "run")


def test_tiny_gc_recipe_exports_instance_norm_and_reflect_pad_and_decodes_identically_on_ref_and_tvm(gc_run, tmp_path):
    prog = load_program(gc_run / "export")
    kinds = [op.kind for op in prog.ops]
    assert kinds.count("instance_norm") == 7 and kinds.count("reflect_pad") == 4   # head, 2 per block, 4 ups; tail
    env = run_program(prog, np.load(gc_run / "export" / "test_vectors.npz")["latent"], keep_all=True)
    assert all(np.unique(env[op.output]).size > 1 for op in prog.ops if op.kind == "instance_norm")
    assert_ref_and_tvm_write_the_same_png(gc_run, tmp_path)


def test_gc_with_batch_norm_folds_it_and_exports_with_nearest_upsampling(tmp_path):
    model = dict(TINY_GC, norm="batch", upsample="nearest")
    stages = {"float": {"steps": 2}, "qat": {"steps": 2}}
    train_and_export(write_tiny(tmp_path / "tiny-gc-bn.yaml", model=model, stages=stages), tmp_path / "run")
    from bpgan.toolkit.training.checkpoint import load_model
    flt, _ = load_model(tmp_path / "run" / "float" / "model.pt")
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in flt.generator.modules()) == 7
    kinds = [op.kind for op in load_program(tmp_path / "run" / "export").ops]
    assert "instance_norm" not in kinds and kinds.count("upsample_nearest") == 4
    assert kinds.count("reflect_pad") == 8                        # head, 2 per block, after each upsampling, tail


def test_noise_channels_train_but_export_is_refused_in_one_line(tmp_path, capsys):
    from bpgan.toolkit.cli import export as export_cli
    from bpgan.toolkit.training.checkpoint import save_model
    model = build_model("gc", _cfg(noise_channels=2), QuantSpec())
    assert model.generator.head.conv.in_channels == 6
    z = torch.zeros(1, 4, 2, 2)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model.generator(z), model.generator(z))   # eval: zeros, deterministic
    model.train()
    out = model(torch.rand(2, 3, 32, 32) * 2 - 1)
    out["x_hat"].mean().backward()
    save_model(tmp_path / "qat" / "model.pt", model, "gc", QuantSpec(), "qat")
    assert export_cli.main([str(tmp_path), "--target", "llvm"]) == 2
    err = capsys.readouterr().err
    assert "noise_channels 2 has no integer-program form" in err and err.count("\n") == 1


def test_tiny_compressgan_recipe_trains_with_vgg_codes_with_the_context_prior_and_decodes_identically(tmp_path,
                                                                                                     capsys):
    """recipes/compressgan-light.yaml in miniature: gc with batch norm and the VGG19 term (the seeded substitute),
    the context prior estimated by bpgan-encode --context-prior, exported after it: the program carries the
    (C, (L+1) L, L) table and reference and TVM write the same PNG."""
    from bpgan.export.pipeline import export_run
    from bpgan.toolkit.cli import encode as encode_cli
    from bpgan.toolkit.datasets import embedded_image_path
    model = dict(TINY_GC, norm="batch")
    stages = {"float": {"steps": 2}, "qat": {"steps": 2}}
    run = tmp_path / "run"
    train_and_export(write_tiny(tmp_path / "tiny-cg.yaml", model=model, stages=stages,
                                loss={"mse": 1.0, "vgg": 1.0}), run)
    assert "vgg" in (run / "qat" / "metrics.json").read_text()
    assert encode_cli.main([str(run), str(embedded_image_path()), "-o", str(tmp_path / "p.bpg"), "--iters", "0",
                            "--prior-from", "embedded", "--prior-crops", "4", "--context-prior"]) == 0
    capsys.readouterr()
    export_run(run, "llvm")
    prior = load_program(run / "export").prior()
    assert prior.shape == (4, 5 * 4, 4)
    assert_ref_and_tvm_write_the_same_png(run, tmp_path)
