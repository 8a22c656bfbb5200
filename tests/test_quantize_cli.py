"""bpgan-quantize end to end on a tiny recipe: stages, report, sparsity, sizes, resume, data parallel."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from bpgan.toolkit.cli.quantize import main as quantize_main
from bpgan.toolkit.training import loop
from bpgan.toolkit.training.checkpoint import load_model
from tiny_recipe import write_tiny


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    recipe = write_tiny(d / "tiny.yaml")
    assert quantize_main([str(recipe), "--out", str(d / "out"), "--quiet"]) == 0
    return d / "out"


def test_every_stage_writes_a_model_and_the_report(tiny_run):
    for stage in ("float", "qat", "admm_prune", "admm_quant", "finetune"):
        assert (tiny_run / stage / "model.pt").is_file()
        assert not (tiny_run / stage / "state.pt").exists()
    rep = json.loads((tiny_run / "report.json").read_text())
    assert list(rep["stages"]) == ["float", "qat", "admm_prune", "admm_quant", "finetune"]
    for m in rep["stages"].values():
        assert 0 < m["val"]["psnr"] < 100 and 0 < m["val"]["msssim"] <= 1
    assert "| finetune |" in (tiny_run / "report.md").read_text()


def test_achieved_sparsity_within_one_point_of_target(tiny_run):
    rep = json.loads((tiny_run / "report.json").read_text())
    for name, s in rep["sparsity"].items():
        expected = 0.25 if name == "tail.conv" else 0.5
        assert s["target"] == expected
        assert abs(s["pruned"] - expected) <= 0.01, name
        assert s["int8_zeros"] >= s["pruned"]  # pruned weights are int8 zeros in the final model


def test_final_model_is_int8_on_its_codebook(tiny_run):
    model, blob = load_model(tiny_run / "finetune" / "model.pt")
    assert blob["quant"]["gradient_bits"] == 8 and blob["codebooks"]
    for name, conv in [(n, m) for n, m in model.generator.named_modules() if hasattr(m, "quant_weight")]:
        ints = conv.quant_weight().int().numpy()
        assert np.abs(ints).max() <= 127
        assert len(set(np.unique(ints).tolist()) - {0}) <= 2 ** 3


def test_sizes_shrink_in_the_reported_order(tiny_run):
    z = json.loads((tiny_run / "report.json").read_text())["sizes_bytes"]
    assert z["float32_dense"] > z["int8_dense"] > z["int8_sparse"] > z["codebook_sparse"] > 0
    rep = json.loads((tiny_run / "report.json").read_text())
    assert rep["generator_macs_per_pixel"] > 0 and rep["generator_params"] > 0


def test_rerun_skips_finished_stages(tiny_run, tmp_path):
    before = (tiny_run / "finetune" / "model.pt").stat().st_mtime_ns
    recipe = write_tiny(tmp_path / "tiny.yaml")
    assert quantize_main([str(recipe), "--out", str(tiny_run), "--quiet"]) == 0
    assert (tiny_run / "finetune" / "model.pt").stat().st_mtime_ns == before


def test_interrupted_stage_resumes_to_the_same_weights(tmp_path, monkeypatch):
    recipe = write_tiny(tmp_path / "tiny.yaml")
    assert quantize_main([str(recipe), "--out", str(tmp_path / "a"), "--until", "float", "--quiet"]) == 0

    calls = {"n": 0}
    real = loop.Session.validate

    def crash_once(self, model):  # the float stage dies after its last checkpoint, before finishing
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt
        return real(self, model)

    monkeypatch.setattr(loop.Session, "validate", crash_once)
    with pytest.raises(KeyboardInterrupt):
        quantize_main([str(recipe), "--out", str(tmp_path / "b"), "--until", "float", "--quiet"])
    assert (tmp_path / "b" / "float" / "state.pt").is_file()
    assert quantize_main([str(recipe), "--out", str(tmp_path / "b"), "--until", "float", "--quiet"]) == 0
    a, _ = load_model(tmp_path / "a" / "float" / "model.pt")
    b, _ = load_model(tmp_path / "b" / "float" / "model.pt")
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k


@pytest.mark.skipif(sys.platform != "linux", reason="torchrun with gloo")
def test_float_stage_runs_data_parallel_on_two_cpu_processes(tmp_path):
    recipe = write_tiny(tmp_path / "tiny.yaml")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29513",
           "-m", "bpgan.toolkit.cli.quantize", str(recipe), "--out", str(tmp_path / "ddp"), "--until", "qat",
           "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "data parallel over 2 processes" in done.stdout
    model, blob = load_model(tmp_path / "ddp" / "qat" / "model.pt")
    assert blob["stage"] == "qat"


def test_a_time_sliced_run_resumes_to_the_same_weights_and_history(tmp_path, capsys):
    """--max-minutes 0: the float stage stops after its first step (state saved, exit status 3); the same
    command without the limit then finishes it to the weights and log of an unsliced run."""
    recipe = write_tiny(tmp_path / "tiny.yaml", train={"batch_size": 2, "save_every": 100, "log_every": 4})
    assert quantize_main([str(recipe), "--out", str(tmp_path / "a"), "--until", "float", "--quiet"]) == 0
    args = [str(recipe), "--out", str(tmp_path / "b"), "--until", "float", "--quiet"]
    assert quantize_main(args + ["--max-minutes", "0"]) == 3
    assert "stopped in stage float at step 1 of 6 (state saved); run the same command again" in capsys.readouterr().out
    assert torch.load(tmp_path / "b" / "float" / "state.pt", weights_only=False)["step"] == 1
    assert not (tmp_path / "b" / "float" / "model.pt").exists()
    assert quantize_main(args) == 0
    a, _ = load_model(tmp_path / "a" / "float" / "model.pt")
    b, _ = load_model(tmp_path / "b" / "float" / "model.pt")
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    history = [json.loads((tmp_path / r / "float" / "metrics.json").read_text())["history"] for r in "ab"]
    for h in history:
        h[-1].pop("seconds")
    assert history[0] == history[1]


def test_device_cuda_without_a_gpu_is_one_line(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    recipe = write_tiny(tmp_path / "tiny.yaml")
    assert quantize_main([str(recipe), "--out", str(tmp_path / "c"), "--device", "cuda", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "torch sees no CUDA device" in err
