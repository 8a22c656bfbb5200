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
