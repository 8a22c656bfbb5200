"""SAE-SPN (CompressNet): the argmax_unpool op, the model's switches, and a tiny recipe end to end on every engine."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bpgan.firmware_ref.builder import ProgramBuilder
from bpgan.firmware_ref.decoder import run_program
from bpgan.firmware_ref.ops.unpool import argmax_unpool
from bpgan.firmware_ref.program import ProgramError, load_program
from bpgan.toolkit.models import build_model, model_config
from bpgan.toolkit.models.sae_spn import block_switches, unpool_at
from bpgan.toolkit.recipes.schema import RecipeError, load_recipe

from test_program_v2 import forge, op_named
from tiny_recipe import TINY, assert_ref_and_tvm_write_the_same_png, train_and_export, write_tiny

TINY_MODEL = {"name": "sae-spn", "latent_channels": 4, "num_centers": 4, "encoder_widths": [4, 4, 6, 8],
              "res_blocks": 1, "spn_kernels": [3, 1, 1, 1]}


def _torch_oracle(x, logits, k):
    """torch's max_unpool2d with the flat indices of each block's first largest logit (torch.argmax: first)."""
    n, c, h, w = x.shape
    cell = torch.from_numpy(logits.astype(np.int64)).view(n, c, k * k, h, w).argmax(2)
    rows = torch.arange(h).view(1, 1, h, 1) * k + cell // k
    cols = torch.arange(w).view(1, 1, 1, w) * k + cell % k
    y = F.max_unpool2d(torch.from_numpy(x.astype(np.float32)), rows * (w * k) + cols, k, output_size=(h * k, w * k))
    return y.numpy()


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16"])
def test_argmax_unpool_equals_torch_max_unpool_with_ties_to_the_lowest_index(k, dtype):
    rng = np.random.default_rng(k)
    lo, hi = {"uint8": (0, 256), "int8": (-128, 128), "int16": (-2 ** 15, 2 ** 15)}[dtype]
    x = rng.integers(lo, hi, (2, 3, 4, 5)).astype(dtype)
    logits = rng.integers(-2, 3, (2, 3 * k * k, 4, 5)).astype(np.int8)   # 5 levels: most blocks tie
    y = argmax_unpool(x, logits, k)
    assert y.dtype == x.dtype and y.shape == (2, 3, 4 * k, 5 * k)
    assert np.array_equal(y.astype(np.float64), _torch_oracle(x, logits, k))
    flat = logits.reshape(2, 3, k * k, 4, 5)
    assert (flat == flat.max(2, keepdims=True)).sum(2).max() > 1       # ties really happened


def _unpool_program():
    b = ProgramBuilder()
    x = b.input("x", "uint8", 6, 2)
    logits = b.input("logits", "int8", 4, 8)
    return b.build([b.argmax_unpool("up", x, logits, 2)])


@pytest.mark.parametrize("mutate, message", [
    (lambda d: op_named(d, "up")["attrs"].update(factor=5), r"attribute 'factor' must be an integer in \[2, 4\]"),
    (lambda d: d["tensors"]["logits"].update(channels=6), r"logits have 6 channels, 2 values with a 2x2 block need 8"),
    (lambda d: d["tensors"]["up"].update(dtype="int8"), r"output format .* differs from the input's"),
    (lambda d: op_named(d, "up")["inputs"].pop(), r"takes 2 inputs, got 1"),
])
def test_a_malformed_argmax_unpool_is_one_program_error_line(tmp_path, mutate, message):
    folder = forge(tmp_path, mutate, _unpool_program())
    with pytest.raises(ProgramError, match=message):
        load_program(folder)


def test_switches_are_the_max_pool_cells_and_unpooling_with_them_is_max_unpool():
    torch.manual_seed(0)
    y = torch.randn(2, 3, 8, 10)
    pooled, idx = F.max_pool2d(y, 2, return_indices=True)
    cell = block_switches(idx, 10)
    blocks = y.reshape(2, 3, 4, 2, 5, 2).permute(0, 1, 2, 4, 3, 5).reshape(2, 3, 4, 5, 4)
    assert torch.equal(cell, blocks.argmax(-1))
    assert torch.equal(unpool_at(pooled, cell), F.max_unpool2d(pooled, idx, 2, output_size=(8, 10)))


def test_the_spn_is_trained_towards_the_encoders_switches():
    torch.manual_seed(0)
    model = build_model("sae-spn", model_config("sae-spn", {k: v for k, v in TINY_MODEL.items() if k != "name"}))
    out = model(torch.rand(2, 3, 32, 32) * 2 - 1)
    assert set(out["losses"]) == {"switch"} and out["losses"]["switch"].requires_grad
    out["losses"]["switch"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.generator.spn.parameters()
               if p.dim() > 1)
    sae = build_model("sae-spn", model_config("sae-spn", dict(
        {k: v for k, v in TINY_MODEL.items() if k != "name"}, switches="none")))
    assert sae(torch.rand(1, 3, 32, 32))["losses"] == {} and len(sae.generator.spn) == 0


def test_the_switch_loss_needs_a_model_that_predicts_switches(tmp_path):
    path = write_tiny(tmp_path / "r.yaml", model=dict(TINY_MODEL, switches="none"),
                      loss={"mse": 1.0, "msssim": 0.0, "switch": 0.1})
    with pytest.raises(RecipeError, match="loss.switch: the switch cross-entropy needs"):
        load_recipe(path)


@pytest.fixture(scope="module")
def spn_run(tmp_path_factory):
    """The tiny recipe through every stage with the SPN and adversarial losses on, exported for llvm (verified)."""
    d = tmp_path_factory.mktemp("spn")
    stages = dict(TINY["stages"], admm_prune={"steps": 4, "update_every": 2,
                                             "sparsity": {"default": 0.5, "convs.3.conv": 0.25}})
    loss = {"mse": 1.0, "msssim": 0.0, "switch": 0.1, "adversarial": 0.05}   # the adversarial autoencoder too
    return train_and_export(write_tiny(d / "tiny-spn.yaml", model=TINY_MODEL, loss=loss, stages=stages), d / "run")


def test_tiny_recipe_exports_with_argmax_unpool_and_decodes_identically_on_ref_and_tvm(spn_run, tmp_path):
    prog = load_program(spn_run / "export")
    assert sum(op.kind == "argmax_unpool" for op in prog.ops) == 4
    env = run_program(prog, np.load(spn_run / "export" / "test_vectors.npz")["latent"], keep_all=True)
    logits = [env[op.inputs[1]] for op in prog.ops if op.kind == "argmax_unpool"]
    assert any(np.unique(lg).size > 1 for lg in logits)   # the SPN produces real choices, not constants
    assert_ref_and_tvm_write_the_same_png(spn_run, tmp_path)


def test_an_swwae_decoder_is_refused_at_export_in_one_line(tmp_path, capsys):
    from bpgan.toolkit.cli import export as export_cli
    from bpgan.toolkit.quant import QuantSpec
    from bpgan.toolkit.training.checkpoint import save_model
    cfg = dict({k: v for k, v in TINY_MODEL.items() if k != "name"}, switches="sent", switch_stages=1)
    model = build_model("sae-spn", model_config("sae-spn", cfg), QuantSpec())
    save_model(tmp_path / "qat" / "model.pt", model, "sae-spn", QuantSpec(), "qat")
    assert export_cli.main([str(tmp_path), "--target", "llvm"]) == 2
    err = capsys.readouterr().err
    assert "sent switches" in err and err.count("\n") == 1


def test_the_c99_decoder_streams_argmax_unpool_byte_identical_to_the_reference(spn_run, tmp_path):
    import shutil
    if shutil.which("gcc") is None:
        pytest.skip("no gcc: the C99 decoder cannot be built here")
    from bpgan.export.pipeline import export_run
    report = export_run(spn_run, "c99", out_dir=tmp_path / "c99")
    assert report.verified_on_host


def test_swwae_decodes_with_the_sent_switches_and_counts_its_macs():
    from bpgan.toolkit.models import count_macs
    cfg = dict({k: v for k, v in TINY_MODEL.items() if k != "name"}, switches="sent", switch_stages=1)
    model = build_model("sae-spn", model_config("sae-spn", cfg)).eval()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    z, switches = model.encoder.features(x)
    with torch.no_grad():
        a = model.generator(z, switches)
        flipped = [s if i < 3 else (s + 1) % 4 for i, s in enumerate(switches)]   # other cells at the coarsest
        b = model.generator(z, flipped)
    assert not torch.equal(a, b)                     # the sent switches steer the decoder
    with pytest.raises(ValueError, match="needs the sent switches"):
        model.generator(z)
    assert count_macs(model.generator, torch.zeros(1, 4, 2, 2))["total"] > 0
