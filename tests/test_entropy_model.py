"""The learned entropy model: integer rows, the QAT net == its program, the coder, its work bound, the recipe stage."""
import time

import numpy as np
import pytest
import torch

from bpgan.firmware_ref.decoder import run_program
from bpgan.firmware_ref.entropy_model import (EXP2, LOGIT_CLIP, PRECISION, LearnedPrior, ideal_bits,
                                              most_peaked_row, phase_map, rows_from_logits)
from bpgan.toolkit.models.entropy_net import (EntropyNet, EntropyNetConfig, entropy_program, latent_bits,
                                              step_masks)
from bpgan.toolkit.training.entropy_stage import _train


def _qat_net(channels=3, centers=4, phases=2, width=8, kernel=3, seed=0, spatial=1):
    torch.manual_seed(seed)
    net = EntropyNet(EntropyNetConfig(channels, centers, phases, width, kernel, spatial))
    with torch.no_grad():
        for conv in net.convs:   # larger weights than the default init: logits that use their range
            conv.weight.mul_(4.0)
            conv.bias.uniform_(-1, 1)
    net.quant = True
    return net.eval()


def _prior(net):
    prog = entropy_program(net)
    table = np.full((net.cfg.channels, net.cfg.centers), (1 << 24) // net.cfg.centers, dtype=np.uint32)
    return LearnedPrior(prog, table)


def test_exp2_table_is_the_nearest_integer_to_the_power_of_two():
    d = np.arange(len(EXP2))
    assert EXP2[0] == 1 << 16 and np.all(np.diff(EXP2) < 0)
    assert np.all(np.abs(EXP2 - 2.0 ** (16 - d / 16)) <= 0.5)


def test_rows_sum_to_the_precision_and_follow_the_softmax():
    rng = np.random.default_rng(0)
    q = rng.integers(LOGIT_CLIP[0], LOGIT_CLIP[1] + 1, size=(500, 6))
    rows = rows_from_logits(q)
    assert rows.min() >= 1 and np.all(rows.sum(1) == 1 << PRECISION)
    p = 2.0 ** (q / 16)
    p /= p.sum(1, keepdims=True)
    assert np.abs(rows / 2 ** PRECISION - p).max() < 1e-3
    assert np.array_equal(rows_from_logits(q), rows)          # deterministic
    with pytest.raises(ValueError, match="outside"):
        rows_from_logits(np.array([[LOGIT_CLIP[1] + 1, 0]]))
    peaked = most_peaked_row(6)
    assert peaked[0] == rows_from_logits(np.array([[LOGIT_CLIP[1]] + [LOGIT_CLIP[0]] * 5]))[0].max()


@pytest.mark.parametrize("phases", [1, 2, 4])
def test_phases_cover_every_position_once_and_masks_are_causal(phases):
    ph = phase_map(5, 6, phases)
    assert set(np.unique(ph)) == set(range(phases))
    cfg = EntropyNetConfig(3, 4, phases, 4, 3)
    known, coded = step_masks(cfg, 5, 6)
    for t in range(cfg.steps):
        c = t // phases
        assert not (known[t, c] * coded[t]).any()              # what is coded is never an input
        assert known[t, c + 1:].sum() == 0 and bool((known[t, :c] == 1).all())
    assert coded.reshape(3, phases, 5, 6).sum(1).eq(1).all()   # each position coded once per channel


@pytest.mark.parametrize("spatial", [1, 2])
def test_qat_net_logits_equal_its_entropy_program(spatial):
    net = _qat_net(spatial=spatial)
    prog = entropy_program(net)
    ctx = torch.randint(0, net.cfg.centers + 1, (2, net.cfg.channels, 7, 9))
    ours = net.integer_logits(ctx)
    ref = run_program(prog, ctx.numpy().astype(np.int8))["logits"]
    assert np.array_equal(ours, ref) and ours.min() < ours.max()
    with pytest.raises(ValueError, match="QAT"):
        entropy_program(EntropyNet(net.cfg))


def test_round_trip_and_the_payload_is_the_ideal_code_length():
    lp = _prior(_qat_net())
    s = np.random.default_rng(1).integers(0, 4, (3, 9, 11))
    payload = lp.encode(s)
    assert np.array_equal(lp.decode(payload, s.shape), s)
    bits = ideal_bits(lp, s)
    assert bits < 8 * len(payload) <= bits + 64 + 32
    # the torch rate (what training minimises) is the same code length to within the rows' rounding
    assert abs(float(latent_bits(lp_net := _qat_net(), torch.from_numpy(s)[None])) - bits) < 0.01 * bits
    del lp_net


def test_bad_payloads_are_refused_in_one_line_and_bounded():
    calls = []
    net = _qat_net()
    prog = entropy_program(net)
    table = np.full((3, 4), 1 << 22, dtype=np.uint32)
    lp = LearnedPrior(prog, table, engine=lambda ctx: calls.append(1) or run_program(prog, ctx)["logits"])
    s = np.random.default_rng(2).integers(0, 4, (3, 8, 8))
    payload = lp.encode(s)
    calls.clear()
    with pytest.raises(ValueError, match="cannot carry"):      # far too short: refused before any step runs
        lp.decode(payload[:8], (3, 800, 800))
    assert not calls
    with pytest.raises(ValueError, match="beyond"):
        lp.decode(payload + bytes(4) + b"\x01\x00\x00\x00", s.shape)
    rng = np.random.default_rng(3)
    for _ in range(20):                                        # garbage: an error or other symbols, never a hang
        junk = rng.integers(0, 256, len(payload), dtype=np.uint8).tobytes()
        try:
            out = lp.decode(junk, s.shape)
            assert out.shape == s.shape
        except ValueError as e:
            assert "\n" not in str(e)
    with pytest.raises(ValueError, match="codes"):
        lp.encode(s[:2])


def test_the_net_learns_a_channel_context():
    """Channel 1 copies channel 0: the per-channel prior pays 2 bits for it, the learned model nearly nothing."""
    gen = torch.Generator().manual_seed(0)
    s = torch.randint(0, 4, (64, 2, 8, 8), generator=gen)
    s[:, 1] = s[:, 0]
    net = EntropyNet(EntropyNetConfig(2, 4, 1, 16, 1))
    _train(net, s, 300, 1e-2, 16, gen, None, "float")
    with torch.no_grad():
        bits = float(latent_bits(net, s)) / s.numel()
    assert bits < 1.25   # 2 bits for channel 0, ~0 for channel 1: the mean tends to 1.0


def test_recipe_stage_exports_and_decodes_the_same_on_ref_and_tvm(tmp_path):
    from tiny_recipe import assert_ref_and_tvm_write_the_same_png, train_and_export, write_tiny
    from bpgan.export.pipeline import export_run
    from bpgan.firmware_ref.program import load_program
    from bpgan.toolkit.cli import encode as encode_cli
    from bpgan.toolkit.cli import decode as decode_cli
    from bpgan.toolkit.recipes import RecipeError, load_recipe

    spec = {"phases": 2, "width": 8, "kernel": 3, "float_steps": 20, "qat_steps": 10, "batch_size": 4,
            "crop": 64, "crops": 8}
    run = train_and_export(write_tiny(tmp_path / "tiny.yaml", entropy_model=spec), tmp_path / "run")
    export = run / "export"
    prog = load_program(export)
    assert prog.meta["entropy_model"]["content_hash"] == load_program(export / "entropy").content_hash
    assert (export / "entropy" / "decoder-llvm.so").is_file()
    assert_ref_and_tvm_write_the_same_png(run, tmp_path)
    from bpgan.firmware_ref.bitstream import BitstreamError
    from bpgan.firmware_ref.bitstream_decode import decode_bitstream
    from bpgan.toolkit.codec.forgery import forged_1024
    forged = forged_1024(prog.model_hash(), prog.meta["config"]["downsample"], prog.prior().shape[0], 2)
    for engine in ("ref", "tvm"):   # a 56-byte stream claiming 1024x1024: refused before any program runs
        t0 = time.perf_counter()
        with pytest.raises(BitstreamError, match="cannot carry"):
            decode_bitstream(prog, forged, engine)
        assert time.perf_counter() - t0 < 0.1
    # the per-channel table codes the same symbols: the same pixels, from the torch side's own check
    img = tmp_path / "in.png"
    assert encode_cli.main([str(run), str(img), "-o", str(tmp_path / "plain.bpg"), "--per-channel-prior"]) == 0
    assert decode_cli.main([str(run), str(tmp_path / "plain.bpg"), "-o", str(tmp_path / "x.png")]) == 2  # other hash
    with pytest.raises(ValueError, match="C99"):
        export_run(run, "c99", out_dir=tmp_path / "c99")
    with pytest.raises(RecipeError, match="entropy_model"):
        load_recipe(write_tiny(tmp_path / "bad.yaml", entropy_model={**spec, "crop": 40}))


def test_bpgan_entropy_adds_a_model_to_a_finished_run(exported_tiny_run, tmp_path, capsys):
    import shutil
    from tiny_recipe import write_tiny
    from bpgan.toolkit.cli.entropy import main as entropy_main

    run = tmp_path / "run"
    shutil.copytree(exported_tiny_run, run)
    spec = {"width": 4, "kernel": 1, "float_steps": 4, "qat_steps": 2, "batch_size": 2, "crop": 64, "crops": 4}
    assert entropy_main([str(run), str(write_tiny(tmp_path / "plain.yaml")), "--quiet"]) == 2
    assert "no entropy_model section" in capsys.readouterr().err
    other = write_tiny(tmp_path / "other.yaml", entropy_model=spec,
                       model={**__import__("tiny_recipe").TINY["model"], "num_centers": 5})
    assert entropy_main([str(run), str(other), "--quiet"]) == 2
    assert "configuration" in capsys.readouterr().err
    assert entropy_main([str(run), str(write_tiny(tmp_path / "e.yaml", entropy_model=spec)), "--quiet"]) == 0
    assert "bits per symbol" in capsys.readouterr().out
    assert (run / "finetune" / "entropy_model.pt").is_file()


def test_the_bits_of_every_step_alone_add_up_to_the_whole():
    net = _qat_net(phases=4)
    s = torch.randint(0, 4, (2, 3, 6, 5))
    with torch.no_grad():
        parts = sum(float(latent_bits(net, s, torch.tensor([t]))) for t in range(net.cfg.steps))
        assert abs(parts - float(latent_bits(net, s))) < 1e-6 * parts
        assert abs(float(latent_bits(net, s, torch.tensor([5, 1]))) - float(latent_bits(net, s, torch.tensor([1])))
                   - float(latent_bits(net, s, torch.tensor([5])))) < 1e-3
