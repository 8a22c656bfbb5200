"""The Python API: the documented examples run as written; arrays, paths and errors behave as documented."""
import re

import numpy as np
import pytest

import bpgan
from bpgan.firmware_ref.bitstream import BitstreamError
from bpgan.toolkit.audio.wav import read_audio
from bpgan.toolkit.datasets import EMBEDDED_CLIP, embedded_image_path, load_rgb
from conftest import REPO


def python_blocks(path):
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


@pytest.mark.parametrize("index", [0, 1])
def test_the_docs_examples_run(index, capsys):
    blocks = python_blocks(REPO / "docs" / "api.md")
    assert len(blocks) == 2
    exec(compile(blocks[index], f"docs/api.md example {index}", "exec"), {})
    if index == 0:
        assert re.search(r"\d+ bytes, [\d.]+ bpp, PSNR (\d\d)\.\d dB", capsys.readouterr().out)


def test_the_readme_example_runs_if_it_has_one():
    blocks = [b for b in python_blocks(REPO / "README.md") if "import bpgan" in b]
    for block in blocks:
        exec(compile(block, "README.md example", "exec"), {})


def test_a_path_and_an_array_give_the_same_stream(tmp_path):
    from PIL import Image
    photo = np.ascontiguousarray(load_rgb(embedded_image_path())[:70, :90])
    Image.fromarray(photo).save(tmp_path / "p.png")
    model = bpgan.load_model("bpgan-image-light")
    assert bpgan.encode(model, photo) == bpgan.encode(model, tmp_path / "p.png")
    assert bpgan.decode(bpgan.encode(model, photo), model, engine="ref").shape == (70, 90, 3)


def test_speech_decodes_to_samples_and_its_integers_are_the_mel():
    model = bpgan.load_model("bpgan-audio-light")
    samples = read_audio(EMBEDDED_CLIP).samples[:8000]
    data = bpgan.encode(model, samples)
    header, mel = bpgan.decode_integers(data)
    assert header.modality == "audio" and mel.shape == (1, 64, 125) and mel.dtype == np.int8
    wav = bpgan.decode(data)
    assert wav.dtype == np.float32 and wav.shape == (8000,)


def test_errors_are_one_line_value_errors(tmp_path):
    with pytest.raises(ValueError, match="no shipped model 'nope'"):
        bpgan.load_model("nope")
    model = bpgan.load_model("bpgan-image-light")
    with pytest.raises(ValueError, match=r"must be \(H, W, 3\) uint8"):
        bpgan.encode(model, np.zeros((4, 4), np.float32))
    data = bpgan.encode(model, np.full((32, 32, 3), 128, np.uint8))
    with pytest.raises(BitstreamError, match="CRC"):
        bpgan.decode(data[:-1] + bytes([data[-1] ^ 1]))
