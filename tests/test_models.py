"""The BPGAN image model: shapes, registry, latent quantizer, light budget, GAN losses."""
from pathlib import Path

import pytest
import torch

from bpgan.toolkit.losses import CodecLoss
from bpgan.toolkit.models import MODELS, MultiscaleDiscriminator, build_model, count_macs, model_config
from bpgan.toolkit.models.latent import CenterQuantizer
from bpgan.toolkit.quant import QuantSpec
from bpgan.toolkit.recipes import load_recipe

REPO = Path(__file__).resolve().parents[1]
TINY = {"latent_channels": 4, "num_centers": 4, "encoder_widths": [8, 8, 8, 8], "generator_widths": [16, 12, 8, 8, 8],
        "res_blocks": 1}


@pytest.mark.parametrize("upsample", ["conv_transpose", "pixel_shuffle"])
@pytest.mark.parametrize("quant", [None, QuantSpec(gradient_bits=8)])
def test_codec_shapes_and_output_range(upsample, quant):
    torch.manual_seed(0)
    m = build_model("bpgan-image", model_config("bpgan-image", {**TINY, "upsample": upsample}), quant)
    x = torch.rand(2, 3, 32, 48) * 2 - 1
    out = m(x)
    assert out["x_hat"].shape == x.shape and out["indices"].shape == (2, 4, 2, 3)
    m.eval()
    y = m(x)["x_hat"]
    if quant is not None:  # clamp to int8 at 2^-7
        assert y.min() >= -1 and y.max() <= 127 / 128
        assert torch.equal(y * 128, torch.round(y * 128))
    out["x_hat"].sum().backward() if quant is None else m.train()(x)["x_hat"].sum().backward()


def test_downsample_32_needs_matching_widths():
    with pytest.raises(ValueError, match="encoder_widths needs 5"):
        model_config("bpgan-image", {"downsample": 32})
    cfg = model_config("bpgan-image", {"downsample": 32, "encoder_widths": [8] * 5, "generator_widths": [8] * 6})
    m = build_model("bpgan-image", cfg, QuantSpec())
    assert m(torch.zeros(1, 3, 64, 64))["indices"].shape[-2:] == (2, 2)


def test_latent_centers_sit_on_the_int8_grid_and_harden_in_eval():
    q = CenterQuantizer(8, frac_bits=4)
    with torch.no_grad():
        q.centers.copy_(torch.tensor([-1.03, -0.5, 0.01, 0.3, 0.77, 1.2, 2.0, 9.0]))
    c = q.grid_centers()
    assert torch.equal(c * 16, torch.round(c * 16)) and c.max() <= 127 / 16
    assert torch.equal(q.integer_centers(), torch.round(c * 16).long())
    z = torch.randn(2, 3, 4, 4)
    q.eval()
    hard, idx = q(z)
    assert torch.equal(hard, c[idx])
    q.train()
    q.sigma.fill_(1.0)
    soft, _ = q(z.requires_grad_())
    soft.sum().backward()
    assert z.grad.abs().sum() > 0  # soft-to-hard: gradient reaches the encoder


def test_light_recipe_generator_within_20_kmac_per_pixel():
    r = load_recipe(REPO / "recipes" / "bpgan-image-light.yaml")
    m = build_model(r.model_name, r.model_cfg(), QuantSpec())
    macs = count_macs(m.generator, torch.zeros(1, r.model_cfg().latent_channels, 4, 4))["total"] / 64 ** 2
    assert 1000 < macs <= 20000


def test_adversarial_and_feature_matching_losses_reach_generator_and_discriminator():
    torch.manual_seed(0)
    m = build_model("bpgan-image", model_config("bpgan-image", TINY), None)
    disc = MultiscaleDiscriminator(scales=2, width=8, layers=2)
    loss = CodecLoss(mse=1.0, msssim=0.5, adversarial=0.1, feature_matching=0.2)
    assert loss.needs_discriminator and not CodecLoss(mse=1.0).needs_discriminator
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    x_hat = m(x)["x_hat"]
    total, parts = loss.generator(x, x_hat, disc)
    assert set(parts) == {"mse", "msssim", "adversarial", "feature_matching"}
    total.backward()
    assert m.generator.tail.conv.weight.grad.abs().sum() > 0
    d_loss = CodecLoss.discriminator(disc, x, x_hat)
    disc.zero_grad()
    d_loss.backward()
    assert all(p.grad is not None for p in disc.parameters())


def test_registry_names_every_model_once():
    assert "bpgan-image" in MODELS
    with pytest.raises(KeyError, match="unknown model"):
        model_config("nope", {})
