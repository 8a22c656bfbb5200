"""Audio recipes: the tiny one runs every stage through bpgan-quantize; schema errors are one line."""
import json

import pytest
import yaml

from bpgan.toolkit.cli.quantize import main as quantize_main
from bpgan.toolkit.recipes import RecipeError, load_recipe

from conftest import REPO, SHARED_DATA
from tiny_audio import write_tiny_audio


def test_tiny_audio_recipe_runs_every_stage_with_mel_validation(tmp_path):
    recipe = write_tiny_audio(tmp_path / "tiny.yaml")
    assert quantize_main([str(recipe), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    rep = json.loads((tmp_path / "run" / "report.json").read_text())
    assert list(rep["stages"]) == ["float", "qat", "admm_prune", "finetune"]
    for m in rep["stages"].values():
        assert set(m["val"]) == {"mel_lsd_db", "mel_psnr"} and 0 < m["val"]["mel_lsd_db"] < 100
    assert rep["output_unit"] == "frame" and rep["generator_macs_per_pixel"] > 0
    for name, s in rep["sparsity"].items():
        assert abs(s["pruned"] - 0.5) <= 0.01, name
    md = (tmp_path / "run" / "report.md").read_text()
    assert "val mel LSD dB" in md and "MACs per output frame" in md


@pytest.mark.parametrize("change, field", [
    ({"loss": {"mse": 1.0, "msssim": 0.5}}, "loss.msssim"),
    ({"data": {"crop": 36, "val_crop": 64}}, "data.crop"),
    ({"data": {"crop": 32, "holdout": ["missing.wav"]}}, "data.holdout"),
])
def test_audio_recipe_errors_name_the_field(tmp_path, capsys, change, field):
    recipe = write_tiny_audio(tmp_path / "bad.yaml", **change)
    assert quantize_main([str(recipe), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and field in err


def test_holdout_is_refused_for_image_models(tmp_path):
    raw = {"name": "x", "model": {"name": "bpgan-image"}, "data": {"holdout": ["a.png"]},
           "stages": {"float": {"steps": 1}, "qat": {"steps": 1}}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(RecipeError, match="data.holdout"):
        load_recipe(tmp_path / "r.yaml")


@pytest.mark.skipif(not (SHARED_DATA / "ljspeech").is_dir(), reason="LJ Speech not present")
@pytest.mark.parametrize("name", ["bpgan-audio-light.yaml", "bpgan-audio-quick.yaml"])
def test_shipped_audio_recipes_hold_out_four_named_clips(name):
    recipe = load_recipe(REPO / "recipes" / name)
    assert recipe.model_name == "bpgan-audio" and len(recipe.data.holdout) == 4
    assert recipe.model_cfg().num_centers == 16 and recipe.model_cfg().downsample == 8


