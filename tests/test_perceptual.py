"""VGG19 perceptual loss: a torchvision-format state dict loads by key name (bad keys are one line), the loss
is 0 for identical images and > 0 otherwise, gradients reach the generator but not the frozen VGG, and a
recipe with loss.vgg validates its weights file and trains a few float steps."""
import json

import pytest
import torch
from torch import nn

from bpgan.toolkit.cli.quantize import main as quantize_main
from bpgan.toolkit.losses import CodecLoss
from bpgan.toolkit.losses.perceptual import (LAYERS, VGGPerceptualLoss, VGGWeightsError, load_vgg19_features,
                                             random_init, vgg19_features)
from bpgan.toolkit.recipes import RecipeError, load_recipe

from tiny_audio import write_tiny_audio
from tiny_recipe import write_tiny

CONV_SHAPES = {0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128), 10: (256, 128), 12: (256, 256),
               14: (256, 256), 16: (256, 256), 19: (512, 256), 21: (512, 512), 23: (512, 512), 25: (512, 512),
               28: (512, 512), 30: (512, 512), 32: (512, 512), 34: (512, 512)}


@pytest.fixture(scope="module")
def vgg_state():
    """A torchvision-format VGG19 state dict (seeded random init) plus a classifier key the loader ignores."""
    torch.manual_seed(1)
    feats = vgg19_features()
    for m in feats:
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0, 0.05)
            nn.init.normal_(m.bias, 0, 0.1)
    sd = {f"features.{k}": v.clone() for k, v in feats.state_dict().items()}
    sd["classifier.0.weight"] = torch.randn(8, 4)     # torchvision's head: not part of `features`
    sd["classifier.0.bias"] = torch.randn(8)
    return sd


@pytest.fixture(scope="module")
def vgg_file(vgg_state, tmp_path_factory):
    path = tmp_path_factory.mktemp("vgg") / "vgg19.pth"
    torch.save(vgg_state, path)
    return path


def test_the_layout_is_torchvisions_vgg19():
    feats = vgg19_features()
    assert len(feats) == 37
    convs = {i: (m.out_channels, m.in_channels) for i, m in enumerate(feats) if isinstance(m, nn.Conv2d)}
    assert convs == CONV_SHAPES
    assert all(isinstance(feats[i], nn.ReLU) for i in LAYERS.values())
    assert [i for i, m in enumerate(feats) if isinstance(m, nn.MaxPool2d)] == [4, 9, 18, 27, 36]


def test_a_torchvision_state_dict_loads_by_key_name(vgg_state, vgg_file):
    loss = VGGPerceptualLoss(vgg_file)
    direct = vgg19_features()
    direct.load_state_dict({k[len("features."):]: v for k, v in vgg_state.items() if k.startswith("features.")})
    for k, v in loss.features.state_dict().items():
        assert torch.equal(v, direct.state_dict()[k]), k
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    h = loss.normalize(x)
    want = []
    for i, layer in enumerate(direct):
        h = layer(h)
        if i in LAYERS.values():
            want.append(h)
    got = loss.tapped(x)
    assert len(got) == 5
    for a, b in zip(got, want):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not loss.substitute


def test_the_inputs_are_imagenet_normalized():
    loss = VGGPerceptualLoss()
    x = torch.zeros(1, 3, 4, 4)           # mid grey in [-1, 1] is 0.5 in [0, 1]
    want = (0.5 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    assert torch.allclose(loss.normalize(x)[0, :, 0, 0], want)


@pytest.mark.parametrize("bad", ["missing", "shape", "type"])
def test_a_bad_state_dict_is_one_line_naming_the_file_and_key(vgg_state, tmp_path, bad):
    sd = dict(vgg_state)
    if bad == "missing":
        del sd["features.7.weight"]
    elif bad == "shape":
        sd["features.7.weight"] = torch.zeros(128, 64, 3, 3)
    else:
        sd["features.7.weight"] = "not a tensor"
    path = tmp_path / "bad.pth"
    torch.save(sd, path)
    with pytest.raises(VGGWeightsError) as e:
        load_vgg19_features(vgg19_features(), path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and "features.7.weight" in msg


def test_a_file_that_is_no_state_dict_is_one_line(tmp_path):
    path = tmp_path / "junk.pth"
    path.write_bytes(b"not a torch file")
    with pytest.raises(VGGWeightsError) as e:
        VGGPerceptualLoss(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_the_substitute_is_seeded_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    a, b = VGGPerceptualLoss(), VGGPerceptualLoss()
    assert torch.equal(torch.get_rng_state(), state)
    assert a.substitute
    for (k, v), w in zip(a.features.state_dict().items(), b.features.state_dict().values()):
        assert torch.equal(v, w), k
    other = random_init(vgg19_features(), seed=1)
    assert not torch.equal(other[0].weight, a.features[0].weight)


@pytest.mark.parametrize("weights", ["substitute", "file"])
def test_zero_for_identical_images_positive_for_different(weights, vgg_file):
    loss = VGGPerceptualLoss(None if weights == "substitute" else vgg_file)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    assert float(loss(x, x.clone())) == 0.0
    y = (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    assert float(loss(y, x)) > 0
    assert float(loss(torch.flip(x, [3]), x)) > 0


def test_gradients_reach_the_generator_not_the_vgg():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    z = torch.randn(2, 4, 32, 32, generator=g, requires_grad=True)
    generator = nn.Sequential(nn.Conv2d(4, 3, 3, padding=1), nn.Tanh())
    codec_loss = CodecLoss(mse=0.0, vgg=1.0)
    total, parts = codec_loss.generator(x, generator(z))
    assert set(parts) == {"vgg"} and parts["vgg"] > 0
    total.backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in generator.parameters())
    vgg = codec_loss.vgg_net(x.device)
    assert not vgg.training
    assert all(not p.requires_grad and p.grad is None for p in vgg.parameters())
    assert codec_loss.vgg_net(x.device) is vgg      # built once
    vgg.train()
    assert not vgg.training                         # frozen in eval mode


def test_codec_loss_takes_the_recipe_loss_fields(tmp_path, vgg_file):
    import shutil
    shutil.copy(vgg_file, tmp_path / "vgg19.pth")
    recipe = load_recipe(write_tiny(tmp_path / "r.yaml", loss={"mse": 1.0, "vgg": 0.5, "vgg_weights": "vgg19.pth"}))
    assert recipe.loss.vgg_weights == str((tmp_path / "vgg19.pth").resolve())
    loss = CodecLoss(**recipe.loss.model_dump())
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    total, parts = loss.generator(x, x.flip(2))
    assert set(parts) == {"mse", "vgg"}
    assert float(total) == pytest.approx(parts["mse"] + 0.5 * parts["vgg"], rel=1e-5)
    assert not loss.vgg_net(x.device).substitute
    off = CodecLoss(**load_recipe(write_tiny(tmp_path / "off.yaml")).loss.model_dump())
    assert off.generator(x, x.flip(2))[1].keys() == {"mse"} and off._vgg is None


def test_a_missing_vgg_weights_file_is_one_recipe_error_line(tmp_path):
    path = write_tiny(tmp_path / "r.yaml", loss={"mse": 1.0, "vgg": 0.1, "vgg_weights": "nowhere/vgg19.pth"})
    with pytest.raises(RecipeError) as e:
        load_recipe(path)
    msg = str(e.value)
    assert "\n" not in msg and "loss.vgg_weights" in msg and "nowhere" in msg


def test_vgg_is_refused_for_audio_models(tmp_path):
    path = write_tiny_audio(tmp_path / "a.yaml", loss={"mse": 1.0, "vgg": 0.1})
    with pytest.raises(RecipeError) as e:
        load_recipe(path)
    assert "\n" not in str(e.value) and "loss.vgg" in str(e.value)


def test_a_bad_weights_file_stops_the_run_in_one_line(tmp_path, capsys):
    (tmp_path / "vgg19.pth").write_bytes(b"junk")
    path = write_tiny(tmp_path / "r.yaml", loss={"mse": 1.0, "vgg": 0.1, "vgg_weights": "vgg19.pth"})
    assert quantize_main([str(path), "--out", str(tmp_path / "out"), "--until", "float", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "vgg19.pth" in err


def test_a_tiny_recipe_with_the_vgg_loss_trains_float_steps(tmp_path):
    stages = {"float": {"steps": 3}, "qat": {"steps": 1}}
    path = write_tiny(tmp_path / "r.yaml", loss={"mse": 1.0, "vgg": 0.2}, stages=stages,
                      train={"batch_size": 2, "save_every": 2, "log_every": 1})
    assert load_recipe(path).data.crop == 32
    out = tmp_path / "out"
    assert quantize_main([str(path), "--out", str(out), "--until", "float", "--quiet"]) == 0
    history = json.loads((out / "float" / "metrics.json").read_text())["history"]
    assert len(history) == 3 and all(h["vgg"] > 0 and h["mse"] > 0 for h in history)


@pytest.mark.parametrize("name", ["gc-light.yaml", "compressgan-light.yaml"])
def test_the_gc_recipes_validate(name):
    from conftest import REPO, SHARED_DATA
    if not (SHARED_DATA / "bsds500" / "train").is_dir():
        pytest.skip("BSDS500 not in shared/data")
    r = load_recipe(REPO / "recipes" / name)
    cfg = r.model_cfg()
    assert r.model_name == "gc" and (cfg.latent_channels, cfg.num_centers, cfg.downsample) == (8, 5, 16)
    assert "kodak" not in (r.data.train + r.data.val).lower()
    assert (r.loss.vgg > 0) == (name == "compressgan-light.yaml") and r.loss.vgg_weights is None


def test_a_time_sliced_vgg_run_resumes_to_the_same_weights(tmp_path):
    """The VGG is built lazily on a run's first step, also after a resume; building it must not shift the global
    RNG (gc's training noise draws from it), so a sliced run ends at the unsliced run's weights."""
    from bpgan.toolkit.training.checkpoint import load_model
    model = {"name": "gc", "latent_channels": 4, "num_centers": 4, "encoder_widths": [4, 4, 6, 8, 8],
             "generator_widths": [8, 8, 6, 4, 4], "res_blocks": 1, "noise_channels": 1}
    path = write_tiny(tmp_path / "r.yaml", model=model, loss={"mse": 1.0, "vgg": 0.2},
                      stages={"float": {"steps": 4}, "qat": {"steps": 1}},
                      train={"batch_size": 2, "save_every": 100, "log_every": 4})
    assert quantize_main([str(path), "--out", str(tmp_path / "a"), "--until", "float", "--quiet"]) == 0
    args = [str(path), "--out", str(tmp_path / "b"), "--until", "float", "--quiet"]
    assert quantize_main(args + ["--max-minutes", "0"]) == 3
    assert quantize_main(args) == 0
    a, _ = load_model(tmp_path / "a" / "float" / "model.pt")
    b, _ = load_model(tmp_path / "b" / "float" / "model.pt")
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
