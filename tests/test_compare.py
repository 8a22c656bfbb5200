"""bpgan-compare on a tiny run: its JSON numbers equal direct computation on the saved outputs."""
import io
import json

import numpy as np
import pytest
from PIL import Image

from bpgan.toolkit.cli.compare import main as compare_main
from bpgan.toolkit.codec.codec import encode_image
from bpgan.toolkit.codec.fingerprint import model_hash
from bpgan.toolkit.codec.image_io import read_image
from bpgan.toolkit.codec.search import SearchConfig
from bpgan.toolkit.datasets import embedded_image_path
from bpgan.toolkit.training.checkpoint import final_model_path, load_model


@pytest.fixture(scope="module")
def run_and_images(exported_tiny_run, tmp_path_factory):
    d = tmp_path_factory.mktemp("cmp")
    photo = np.asarray(Image.open(embedded_image_path()).convert("RGB"))
    images = d / "images"
    images.mkdir()
    Image.fromarray(photo[100:164, 150:246]).save(images / "a.png")
    Image.fromarray(photo[300:370, 200:290]).save(images / "b.png")  # 70x90: not a multiple of 16
    return exported_tiny_run, images, d


def test_compare_refuses_a_run_without_prior(tmp_path, run_and_images, capsys):
    run, images, _ = run_and_images
    bare = tmp_path / "bare"
    (bare / "qat").mkdir(parents=True)
    (bare / "qat" / "model.pt").write_bytes((run / "qat" / "model.pt").read_bytes())  # no prior.npy beside it
    assert compare_main([str(bare), "--data", str(images), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "prior.npy" in err and "\n" not in err


def test_compare_numbers_match_direct_computation(run_and_images):
    run, images, d = run_and_images
    out = d / "compare"
    assert compare_main([str(run), "--data", str(images), "--out", str(out), "--quiet"]) == 0
    rep = json.loads((out / "compare.json").read_text())
    assert rep["images"] == 2 and rep["ref_vs_tvm_max_lsb"] == 0
    assert {"float", "float_weights", "qat", "admm_prune", "admm_quant", "finetune", "reference", "tvm"} \
        <= set(rep["variants"])

    model, _ = load_model(final_model_path(run))
    prior = np.load(final_model_path(run).parent / "prior.npy")
    for row in rep["per_image"]:
        original = np.asarray(Image.open(images / row["image"]).convert("RGB")).astype(np.float64)
        enc = encode_image(model, prior, read_image(images / row["image"], model.stride), None,
                           model_hash(model, prior))
        assert row["bytes"] == len(enc.data)
        assert row["bpp"] == pytest.approx(8 * len(enc.data) / (original.shape[0] * original.shape[1]))
        for name in ("reference", "tvm", "float"):
            saved = np.asarray(Image.open(out / "outputs" / name / row["image"])).astype(np.float64)
            assert saved.shape == original.shape
            psnr = 10 * np.log10(255 ** 2 / np.mean((saved - original) ** 2))
            assert row["variants"][name]["psnr"] == pytest.approx(psnr, abs=1e-9)
            cast = np.abs(saved.mean(axis=(0, 1)) - original.mean(axis=(0, 1)))   # a colour cast per channel
            assert row["variants"][name]["colour_error"] == pytest.approx(cast.tolist(), abs=1e-9)
        ref = np.asarray(Image.open(out / "outputs" / "reference" / row["image"]))
        tvm = np.asarray(Image.open(out / "outputs" / "tvm" / row["image"]))
        assert np.array_equal(ref, tvm)

    # table = mean over images; reference and the final fake-quant model decode identically
    ref = rep["variants"]["reference"]
    assert ref["psnr"] == pytest.approx(np.mean([r["variants"]["reference"]["psnr"] for r in rep["per_image"]]))
    assert ref["psnr"] == pytest.approx(rep["variants"]["finetune"]["psnr"])
    errors = np.array([r["variants"]["reference"]["colour_error"] for r in rep["per_image"]])
    assert ref["colour_error"]["mean"] == pytest.approx(errors.mean(0).tolist())
    assert ref["colour_error"]["worst"] == pytest.approx(errors.max(0).tolist())
    assert "colour error R/G/B (worst)" in (out / "compare.md").read_text()
    assert rep["variants"]["float"]["size_bytes"] > rep["variants"]["qat"]["size_bytes"] > ref["size_bytes"]
    for codec, pts in rep["anchors"].items():  # anchor bpp = mean file size of Pillow's encoding
        q, bpps = pts[0]["quality"], []
        for row in rep["per_image"]:
            buf = io.BytesIO()
            im = Image.open(images / row["image"]).convert("RGB")
            im.save(buf, format=codec, quality=q)
            bpps.append(8 * len(buf.getvalue()) / (im.width * im.height))
        assert pts[0]["bpp"] == pytest.approx(np.mean(bpps))
    for f in ("compare.md", "rd.png", "crops.png"):
        assert (out / f).stat().st_size > 0


def test_compare_searches_with_the_given_msssim_weight(run_and_images):
    run, images, d = run_and_images
    out = d / "compare-msssim"
    assert compare_main([str(run), "--data", str(images), "--out", str(out), "--iters", "3", "--msssim", "0.5",
                         "--no-anchors", "--quiet"]) == 0
    rep = json.loads((out / "compare.json").read_text())
    assert rep["search"]["iters"] == 3 and rep["search"]["msssim"] == 0.5 and rep["search"]["mse"] == 1.0
    model, _ = load_model(final_model_path(run))
    prior = np.load(final_model_path(run).parent / "prior.npy")
    cfg = SearchConfig(**rep["search"])
    for row in rep["per_image"]:
        enc = encode_image(model, prior, read_image(images / row["image"], model.stride), cfg, model_hash(model, prior))
        assert row["bytes"] == len(enc.data)
