"""Latent search: never worse than the encoder's latent, actually finds better latents, leaves the model alone."""
import numpy as np
import pytest
import torch
from torch import nn

from bpgan.toolkit.codec.fingerprint import model_hash
from bpgan.toolkit.codec.search import SearchConfig, distortion, latent_search
from bpgan.toolkit.models import build_model, model_config
from bpgan.toolkit.models.latent import CenterQuantizer
from bpgan.toolkit.quant import QuantSpec

TINY = {"latent_channels": 4, "num_centers": 8, "generator_widths": [16, 12, 8, 8, 8], "encoder_widths": [8, 8, 8, 8],
        "res_blocks": 1}


def _tiny(quant):
    torch.manual_seed(0)
    return build_model("bpgan-image", model_config("bpgan-image", TINY), quant).eval()


def _image(h=48, w=48, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, h, w, generator=g) * 2 - 1


def _loss_of(model, idx, x, cfg, size=None):
    with torch.no_grad():
        y = model.generator(model.quantizer.dequantize(idx[None]))
    if size:
        y, x = y[..., :size[0], :size[1]], x[..., :size[0], :size[1]]
    return float(distortion(y, x, cfg))


@pytest.mark.parametrize("quant", [QuantSpec(gradient_bits=8), None], ids=["qat-grad8", "float"])
def test_search_is_never_worse_than_the_encoder_latent_and_gives_valid_indices(quant):
    model, x = _tiny(quant), _image()
    cfg = SearchConfig(iters=8, lr=0.1, mse=1.0, msssim=0.1)
    result = latent_search(model, x, cfg, original_size=(44, 40))
    with torch.no_grad():
        encoder_idx = model.quantizer.indices(model.encoder(x))[0]
    assert result.indices.shape == (4, 3, 3) and result.indices.dtype == torch.int64
    assert 0 <= int(result.indices.min()) and int(result.indices.max()) < 8
    # Independent re-evaluation of both latents through the generator, on the unpadded region.
    searched = _loss_of(model, result.indices, x, cfg, (44, 40))
    encoder = _loss_of(model, encoder_idx, x, cfg, (44, 40))
    assert searched <= encoder
    assert searched == pytest.approx(result.best_loss, rel=1e-6) and encoder == pytest.approx(result.encoder_loss, rel=1e-6)
    assert len(result.losses) == cfg.iters + 1 and result.losses[result.best_iteration] == result.best_loss


def test_search_leaves_the_model_and_its_hash_unchanged():
    model, x = _tiny(QuantSpec(gradient_bits=8)), _image()
    prior = np.full((4, 8), 1 << 21, dtype=np.uint32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    hash_before = model_hash(model, prior)
    latent_search(model, x, SearchConfig(iters=3))
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model_hash(model, prior) == hash_before and not model.training
    assert all(p.grad is None for p in model.parameters())


class _Toy(nn.Module):
    """Latent = the image's own 1x1 code: a fixed invertible-ish linear generator, an encoder that is off by noise."""

    def __init__(self, z_encoder):
        super().__init__()
        self.quantizer = CenterQuantizer(8, 4)
        self.generator = nn.Sequential(nn.Conv2d(2, 3, 1), nn.Tanh())
        with torch.no_grad():
            self.generator[0].weight.copy_(torch.tensor([[0.6, 0.1], [-0.2, 0.5], [0.3, 0.3]]).view(3, 2, 1, 1))
            self.generator[0].bias.zero_()
        self.z_encoder = z_encoder

    def encoder(self, x):
        return self.z_encoder


def test_search_recovers_a_reachable_target_much_better_than_a_noisy_encoder():
    g = torch.Generator().manual_seed(0)
    true_idx = torch.randint(0, 8, (1, 2, 6, 6), generator=g)
    toy = _Toy(torch.zeros(1, 2, 6, 6))
    z_true = toy.quantizer.dequantize(true_idx).detach()
    toy.z_encoder = z_true + 0.8 * torch.randn(z_true.shape, generator=g)  # ~1.5 center spacings of noise
    with torch.no_grad():
        x = toy.generator(z_true)
    result = latent_search(toy, x, SearchConfig(iters=60, lr=0.1, rho=0.01))
    assert result.best_loss < 0.1 * result.encoder_loss
    encoder_hits = (toy.quantizer.indices(toy.z_encoder) == true_idx).float().mean()
    assert encoder_hits < 0.6 and (result.indices == true_idx[0]).float().mean() > 0.95


def test_bad_settings_are_refused():
    model = _tiny(None)
    with pytest.raises(ValueError, match="one image"):
        latent_search(model, torch.zeros(2, 3, 16, 16))
    with pytest.raises(ValueError, match="not all zero"):
        latent_search(model, torch.zeros(1, 3, 16, 16), SearchConfig(mse=0, msssim=0))


@pytest.mark.parametrize("quantized", [True, False])
def test_search_uses_8_bit_gradients_only_when_asked(monkeypatch, quantized):
    from bpgan.toolkit.quant.gradient import GradQuant8
    calls = []
    original = GradQuant8.quantize
    monkeypatch.setattr(GradQuant8, "quantize", lambda self, g: calls.append(1) or original(self, g))
    model = _tiny(QuantSpec(gradient_bits=8))
    latent_search(model, _image(), SearchConfig(iters=2, quantized_gradients=quantized))
    assert (len(calls) > 0) == quantized
    assert all("quantize" not in m.__dict__ for m in model.modules() if isinstance(m, GradQuant8))


def test_the_colour_term_weighs_a_cast_that_mse_hardly_sees():
    """A uniform shift of one channel (a colour cast) against zero-mean noise of the same MSE: the colour
    term sees only the cast, exactly as the squared difference of the channel means."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand((1, 3, 16, 16), generator=gen) * 2 - 1
    cast = x.clone()
    cast[:, 1] += 0.1
    noise = x + 0.1 * torch.sign(torch.randn((1, 3, 16, 16), generator=gen)) * (torch.arange(3) == 1).view(1, 3, 1, 1)
    noise[:, 1] -= noise[:, 1].mean() - x[:, 1].mean()   # same channel means as x
    plain, coloured = SearchConfig(), SearchConfig(colour=30.0)
    assert float(distortion(cast, x, plain)) == pytest.approx(float(distortion(noise, x, plain)), rel=0.05)
    assert float(distortion(cast, x, coloured) - distortion(cast, x, plain)) == pytest.approx(30 * 0.1 ** 2 / 3)
    assert float(distortion(noise, x, coloured) - distortion(noise, x, plain)) == pytest.approx(0, abs=1e-9)


def test_the_training_loss_has_the_same_colour_term():
    from bpgan.toolkit.losses import CodecLoss
    from bpgan.toolkit.metrics import colour_cast
    x = torch.zeros((2, 3, 8, 8))
    x_hat = x.clone()
    x_hat[:, 2] += 0.2
    total, parts = CodecLoss(mse=0.0, colour=5.0).generator(x, x_hat)
    assert parts["colour"] == pytest.approx(0.2 ** 2 / 3) and float(total) == pytest.approx(5 * 0.2 ** 2 / 3)
    assert float(colour_cast(x_hat, x)) == pytest.approx(parts["colour"])
