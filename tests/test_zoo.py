"""The shipped models: consistent files, CLI defaults, and the quality they were shipped with."""
import json
import re

import numpy as np
import pytest
from PIL import Image

from bpgan.firmware_ref.decoder import run_program
from bpgan.firmware_ref.image import to_hwc_image
from bpgan.firmware_ref.program import load_program
from bpgan.toolkit.cli.decode import main as decode_main
from bpgan.toolkit.cli.encode import main as encode_main
from bpgan.toolkit.codec.fingerprint import model_hash
from bpgan.toolkit.codec.prior import load_prior
from bpgan.toolkit.datasets import embedded_image_path
from bpgan.toolkit.training.checkpoint import final_model_path, load_model
from bpgan.toolkit.zoo import DEFAULTS, ZOO
from conftest import REPO

SHIPPED = sorted(p.name for p in ZOO.iterdir() if (p / "export" / "program.json").is_file())
LOSSLESS = [n for n in SHIPPED if "lossless" in json.loads((ZOO / n / "export" / "program.json").read_text())["meta"]]
LOSSY = [n for n in SHIPPED if n not in LOSSLESS]


def test_the_defaults_are_shipped():
    assert set(DEFAULTS.values()) <= set(SHIPPED)


@pytest.mark.parametrize("name", LOSSY)
def test_shipped_program_is_the_shipped_model_and_prior(name):
    model_file = final_model_path(ZOO / name)
    model, blob = load_model(model_file)
    prog = load_program(ZOO / name / "export")  # verifies the content hash
    assert prog.model_hash() == model_hash(model, load_prior(model_file.parent / "prior.npy"))
    assert blob["quant"] is not None and blob["masks"]


@pytest.mark.parametrize("name", LOSSY)
def test_shipped_test_vectors_decode_bit_exactly(name):
    prog = load_program(ZOO / name / "export")
    with np.load(ZOO / name / "export" / "test_vectors.npz") as z:
        latent, output = z["latent"], z["output"]
        layers = {k[len("layer/"):]: z[k] for k in z.files if k.startswith("layer/")}
    out = run_program(prog, latent, keep_all=True)
    assert np.array_equal(out[prog.outputs[0]], output)
    assert layers and all(np.array_equal(out[k], v) for k, v in layers.items())


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_golden_streams_decode_bit_exactly_through_the_one_decode_path(name, tmp_path, capsys):
    """export/golden.bpg (scripts/golden_streams.py) -> the stored integers; bpgan-decode picks the model by hash."""
    from bpgan.firmware_ref.bitstream_decode import decode_bitstream
    prog = load_program(ZOO / name / "export")
    data = (ZOO / name / "export" / "golden.bpg").read_bytes()
    with np.load(ZOO / name / "export" / "golden.npz") as z:
        want = z["output"]
    header, got = decode_bitstream(prog, data)
    assert header.version == 2 and got.dtype == want.dtype and np.array_equal(got, want)
    out = tmp_path / {"image": "g.png", "audio": "g.npz", "lossless": "g.wav"}[header.modality]
    assert decode_main([str(ZOO / name / "export" / "golden.bpg"), "-o", str(out)]) == 0
    assert f"zoo/{name}" in capsys.readouterr().out
    if header.modality == "image":
        with Image.open(out) as im:
            assert np.array_equal(np.asarray(im), to_hwc_image(want, 7))
    elif header.modality == "lossless":
        import soundfile as sf
        back, rate = sf.read(out, dtype="int16", always_2d=True)
        assert rate == header.sample_rate and np.array_equal(back.T, want)
    else:
        with np.load(out) as z:
            assert np.array_equal(z["mel"], want[0])


def test_encode_and_decode_default_to_the_shipped_image_model(tmp_path, capsys):
    with Image.open(embedded_image_path()) as im:  # an odd size: 200x136
        im.convert("RGB").crop((100, 100, 300, 236)).save(tmp_path / "photo.png")
    assert encode_main([str(tmp_path / "photo.png"), "-o", str(tmp_path / "p.bpg"), "--iters", "0"]) == 0
    out = capsys.readouterr().out
    assert f"zoo/{DEFAULTS['image']}" in out
    psnr = float(re.search(r"PSNR ([\d.]+) dB", out).group(1))
    assert decode_main([str(tmp_path / "p.bpg"), "-o", str(tmp_path / "p.png")]) == 0
    assert "matched by the bitstream's model hash" in capsys.readouterr().out
    with Image.open(tmp_path / "p.png") as im:
        assert im.size == (200, 136)
    assert psnr > 20.0  # a trained codec, not noise: measured 20.6 dB


def test_decode_without_a_model_refuses_a_stream_of_an_unshipped_model(exported_tiny_run, tmp_path, capsys):
    with Image.open(embedded_image_path()) as im:
        im.convert("RGB").crop((0, 0, 64, 64)).save(tmp_path / "x.png")
    assert encode_main([str(exported_tiny_run), str(tmp_path / "x.png"), "-o", str(tmp_path / "x.bpg"),
                        "--iters", "0"]) == 0
    assert decode_main([str(tmp_path / "x.bpg"), "-o", str(tmp_path / "decoded.png")]) == 2
    err = capsys.readouterr().err
    assert "none of the shipped models" in err and err.count("\n") == 1
    assert not (tmp_path / "decoded.png").exists()


def test_encode_and_decode_default_to_the_shipped_speech_model(tmp_path, capsys):
    clip = REPO / "toolkit" / "datasets" / "lj001-0013-8k.wav"
    assert encode_main([str(clip), "-o", str(tmp_path / "s.bpg"), "--iters", "0", "--gl-iters", "4"]) == 0
    out = capsys.readouterr().out
    assert f"zoo/{DEFAULTS['audio']}" in out
    rate = float(re.search(r"([\d.]+) bit/s", out).group(1))
    lsd = float(re.search(r"mel LSD ([\d.]+) dB", out).group(1))
    assert 300 < rate < 1000 and lsd < 6.0  # measured: 669 bit/s, 5.2 dB (zoo/README.md)
    assert decode_main([str(tmp_path / "s.bpg"), "-o", str(tmp_path / "s.wav"), "--gl-iters", "4"]) == 0
    assert "matched by the bitstream's model hash" in capsys.readouterr().out
    assert (tmp_path / "s.wav").stat().st_size > 1000


@pytest.mark.parametrize("main", [encode_main, decode_main])
def test_more_than_model_and_input_is_a_usage_error(main, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["a", "b", "c", "-o", str(tmp_path / "out.png")])
    assert e.value.code == 2 and "give at most" in capsys.readouterr().err


@pytest.mark.parametrize("name", SHIPPED)
def test_the_shipped_recipe_copy_is_the_recipe_and_validates_where_it_lies(name):
    from bpgan.toolkit.recipes.schema import load_recipe
    from conftest import SHARED_DATA
    copy = (ZOO / name / "recipe.yaml").read_text()
    assert copy == (REPO / "recipes" / f"{name}.yaml").read_text().replace(": ../../shared", ": ../../../shared")
    if not SHARED_DATA.is_dir():
        pytest.skip(f"no {SHARED_DATA}: the data paths cannot be checked")
    assert load_recipe(ZOO / name / "recipe.yaml").name


@pytest.mark.parametrize("name", LOSSLESS)
def test_shipped_lossless_model_is_its_program_and_its_vectors_decode(name):
    """The QAT model rebuilds the shipped program byte for byte (so the model hash too); the test vectors' every
    level and stream decode exactly; silence costs next to nothing; the embedded clip comes back exactly."""
    from bpgan.firmware_ref.lossless import split_levels
    from bpgan.firmware_ref.lossless_stream import decode_lossless, encode_lossless, reference_engine
    from bpgan.toolkit.audio.pcm import read_pcm
    from bpgan.toolkit.models.idf_program import idf_program
    model, blob = load_model(final_model_path(ZOO / name))
    prog = load_program(ZOO / name / "export")
    rebuilt = idf_program(model, {"model": blob["model"], "stage": blob["stage"], "config": blob["config"]})
    assert rebuilt.meta["model_hash"] == prog.meta["model_hash"] and blob["quant"] is not None
    run = reference_engine(prog)
    with np.load(ZOO / name / "export" / "test_vectors.npz") as z:
        x, stream = z["samples"], z["stream"].tobytes()
        for c, signal in enumerate(x):
            for level, a in enumerate(split_levels(signal, prog.meta["lossless"]["levels"])[1:]):
                mu, s = run(level, a.astype(np.int16))
                assert np.array_equal(mu, z[f"ch{c}/mu{level}"]) and np.array_equal(s, z[f"ch{c}/scale{level}"])
    assert np.array_equal(decode_lossless(prog, stream)[1], x)
    assert len(encode_lossless(prog, np.zeros((1, 22050), np.int16), 22050)) < 1000   # 1 s of silence
    clip, rate = read_pcm(REPO / "toolkit" / "datasets" / "lj001-0013-8k.wav")
    data = encode_lossless(prog, clip, rate)
    assert np.array_equal(decode_lossless(prog, data)[1], clip) and len(data) < clip.nbytes / 1.3
