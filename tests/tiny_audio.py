"""Tiny audio recipe and model for tests: every stage in seconds on the embedded clip."""
import numpy as np
import torch
import yaml

TINY_AUDIO_MODEL = {"latent_channels": 4, "num_centers": 8, "encoder_widths": [16, 16, 16],
                    "generator_widths": [16, 16, 12, 12], "res_blocks": 1, "disc_width": 8, "disc_scales": 2}

TINY_AUDIO = {
    "name": "tiny-audio",
    "seed": 0,
    "model": {"name": "bpgan-audio", **TINY_AUDIO_MODEL},
    "data": {"crop": 32, "val_crop": 64, "val_count": 2},
    "loss": {"mse": 1.0, "adversarial": 0.05, "feature_matching": 1.0},
    "train": {"batch_size": 2, "save_every": 2, "log_every": 2},
    "stages": {
        "float": {"steps": 6},
        "qat": {"steps": 2},
        "admm_prune": {"steps": 2, "update_every": 1, "sparsity": 0.5},
        "finetune": {"steps": 2},
    },
}


def write_tiny_audio(path, **overrides):
    recipe = yaml.safe_load(yaml.safe_dump(TINY_AUDIO))
    recipe.update(overrides)
    path.write_text(yaml.safe_dump(recipe))
    return path


def tiny_audio_model(seed=0, gradient_bits=8):
    """A QAT tiny audio model with non-trivial biases (every requantize sees both signs)."""
    from bpgan.toolkit.models import build_model, model_config
    from bpgan.toolkit.quant import QuantSpec
    torch.manual_seed(seed)
    quant = QuantSpec(gradient_bits=gradient_bits)
    model = build_model("bpgan-audio", model_config("bpgan-audio", TINY_AUDIO_MODEL), quant).eval()
    with torch.no_grad():
        for m in model.generator.modules():
            if isinstance(getattr(m, "bias", None), torch.nn.Parameter):
                m.bias.uniform_(-0.5, 0.5)
    return model, quant


def speech_like(seconds=0.6, rate=8000, seed=0):
    """A synthetic voiced signal: a 120 Hz harmonic series with a slow formant sweep, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    y = sum(np.sin(2 * np.pi * 120 * k * t) / k * (1 + np.cos(2 * np.pi * (0.7 * k) * t)) for k in range(1, 20))
    return (0.1 * y / np.abs(y).max() + 0.003 * rng.normal(size=t.size)).astype(np.float32)
