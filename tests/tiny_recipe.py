"""A tiny recipe for tests: runs every stage in seconds on the embedded image."""
import yaml

TINY = {
    "name": "tiny",
    "seed": 0,
    "model": {"name": "bpgan-image", "latent_channels": 4, "num_centers": 4, "encoder_widths": [8, 8, 8, 8],
              "generator_widths": [16, 12, 8, 8, 8], "res_blocks": 1},
    "data": {"crop": 32, "val_crop": 48, "val_count": 2},
    "loss": {"mse": 1.0, "msssim": 0.0},
    "train": {"batch_size": 2, "save_every": 2, "log_every": 2},
    "stages": {
        "float": {"steps": 6},
        "qat": {"steps": 4},
        "admm_prune": {"steps": 4, "update_every": 2, "sparsity": {"default": 0.5, "tail.conv": 0.25}},
        "admm_quant": {"steps": 2, "bits": 3, "update_every": 1},
        "finetune": {"steps": 2},
    },
}


def write_tiny(path, **overrides):
    recipe = yaml.safe_load(yaml.safe_dump(TINY))
    for k, v in overrides.items():
        recipe[k] = v
    path.write_text(yaml.safe_dump(recipe))
    return path


def train_and_export(recipe, run):
    """bpgan-quantize every stage of `recipe` into `run`, export for llvm, and check the export: the reference
    equals Brevitas fake-quant to the LSB and the TVM library the test vectors. -> run."""
    from bpgan.export.pipeline import export_run
    from bpgan.toolkit.cli.quantize import main as quantize_main
    assert quantize_main([str(recipe), "--out", str(run), "--quiet"]) == 0
    report = export_run(run, "llvm")
    assert report.verified_on_host and report.ref_vs_fake_quant["max_lsb"] == 0
    return run


def assert_ref_and_tvm_write_the_same_png(run, tmp_path, hw=(37, 45)):
    """bpgan-encode a random image of size hw (not a multiple of the stride), bpgan-decode it with --engine ref and
    --engine tvm: the two PNGs are the same bytes and the original size."""
    import numpy as np
    from PIL import Image
    from bpgan.toolkit.cli import decode as decode_cli
    from bpgan.toolkit.cli import encode as encode_cli
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (*hw, 3), dtype=np.uint8)).save(tmp_path / "in.png")
    assert encode_cli.main([str(run), str(tmp_path / "in.png"), "-o", str(tmp_path / "a.bpg"), "--iters", "2"]) == 0
    for engine in ("ref", "tvm"):
        assert decode_cli.main([str(run), str(tmp_path / "a.bpg"), "-o", str(tmp_path / f"{engine}.png"),
                                "--engine", engine]) == 0
    assert (tmp_path / "ref.png").read_bytes() == (tmp_path / "tvm.png").read_bytes()
    assert np.asarray(Image.open(tmp_path / "ref.png")).shape == (*hw, 3)
