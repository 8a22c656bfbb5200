"""Broken recipes give one clear line naming the field; the shipped recipes validate."""
from pathlib import Path

import pytest
import yaml

from bpgan.toolkit.cli.quantize import main as quantize_main
from bpgan.toolkit.recipes import RecipeError, load_recipe

REPO = Path(__file__).resolve().parents[1]
BASE = {"name": "t", "model": {"name": "bpgan-image"}, "stages": {"float": {"steps": 1}, "qat": {"steps": 1}}}


def write(tmp_path, recipe, text=None):
    p = tmp_path / "r.yaml"
    p.write_text(text if text is not None else yaml.safe_dump(recipe))
    return p


def broken(**changes):
    r = yaml.safe_load(yaml.safe_dump(BASE))
    for dotted, value in changes.items():
        node, *path = dotted.split("__")
        cur = r
        keys = [node] + path
        for k in keys[:-1]:
            cur = cur.setdefault(k, {})
        cur[keys[-1]] = value
    return r


@pytest.mark.parametrize("changes, field", [
    ({"stages__qat__stpes": 3}, "stages.qat.stpes"),
    ({"stages__qat__steps": "many"}, "stages.qat.steps"),
    ({"train__batch_size": 0}, "train.batch_size"),
    ({"model__latent_channels": "x"}, "latent_channels"),
    ({"model__downsample": 8}, "downsample"),
    ({"model__name": "nope"}, "model.name"),
    ({"quant__gradient_bits": 4}, "quant.gradient_bits"),
    ({"bogus": 1}, "bogus"),
])
def test_schema_errors_name_the_field_in_one_line(tmp_path, changes, field):
    with pytest.raises(RecipeError) as err:
        load_recipe(write(tmp_path, broken(**changes)))
    msg = str(err.value)
    assert field in msg and "\n" not in msg


def test_missing_stage_is_named(tmp_path):
    r = broken()
    del r["stages"]["qat"]
    with pytest.raises(RecipeError, match="stages.qat"):
        load_recipe(write(tmp_path, r))


def test_missing_data_folder_is_named(tmp_path):
    with pytest.raises(RecipeError, match=r"data.train: no such folder"):
        load_recipe(write(tmp_path, broken(data__train="no/such/dir")))


def test_invalid_yaml_and_non_mapping(tmp_path):
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(write(tmp_path, None, text="name: [unclosed"))
    with pytest.raises(RecipeError, match="YAML mapping"):
        load_recipe(write(tmp_path, None, text="- a\n- b\n"))


def test_unknown_sparsity_layer_is_named(tmp_path):
    r = load_recipe(write(tmp_path, broken(stages__admm_prune={"steps": 1, "sparsity": {"head.cnv": 0.5}})))
    with pytest.raises(RecipeError, match="head.cnv"):
        r.sparsity_targets(["head.conv", "tail.conv"])


def test_cli_reports_a_broken_recipe_in_one_line(tmp_path, capsys):
    assert quantize_main([str(write(tmp_path, broken(stages__qat__steps=-1)))]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bpgan-quantize: error:") and "stages.qat.steps" in err and "\n" not in err
    assert quantize_main([str(tmp_path / "missing.yaml")]) == 2


@pytest.mark.parametrize("name", ["quickstart.yaml", "bpgan-image-light.yaml", "sae-spn-light.yaml"])
def test_shipped_recipes_validate(name):
    r = load_recipe(REPO / "recipes" / name)
    assert r.stages.admm_prune is not None and r.quant.gradient_bits == 8


@pytest.mark.parametrize("name", ["sae", "swwae", "sae-spn", "sae-spn-coarse"])
def test_the_compressnet_comparison_recipes_validate_at_one_budget(name):
    r = load_recipe(REPO / "recipes" / "compressnet" / f"{name}.yaml")
    assert (r.stages.float.steps, r.stages.qat.steps) == (1200, 200) and r.model_name == "sae-spn"
    assert (r.loss.switch > 0) == (r.model_cfg().switches == "predicted")
