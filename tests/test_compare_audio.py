"""bpgan-compare on a tiny speech run: same bitstream for every variant, numbers equal direct computation."""
import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from bpgan.export.pipeline import export_run
from bpgan.toolkit.audio.codec import bits_per_second, encode_audio
from bpgan.toolkit.audio.wav import read_audio
from bpgan.toolkit.cli.compare import main as compare_main
from bpgan.toolkit.cli.quantize import main as quantize_main
from bpgan.toolkit.codec.fingerprint import model_hash
from bpgan.toolkit.datasets.audio import EMBEDDED_CLIP
from bpgan.toolkit.evaluation.audio_metrics import stoi
from bpgan.toolkit.training.checkpoint import final_model_path, load_model
from tiny_audio import speech_like, write_tiny_audio


@pytest.fixture(scope="module")
def audio_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("acmp")
    assert quantize_main([str(write_tiny_audio(d / "tiny.yaml")), "--out", str(d / "run"), "--quiet"]) == 0
    export_run(d / "run", "llvm")
    clips = d / "clips"
    clips.mkdir()
    sf.write(clips / "synthetic.wav", speech_like(0.7), 8000, subtype="PCM_16")
    shutil.copy(EMBEDDED_CLIP, clips / "lj.wav")
    return d / "run", clips, d


def test_audio_compare_numbers_match_direct_computation(audio_run):
    run, clips, d = audio_run
    out = d / "compare"
    assert compare_main([str(run), "--data", str(clips), "--out", str(out), "--quiet", "--no-anchors"]) == 0
    rep = json.loads((out / "compare.json").read_text())
    assert rep["rate_unit"] == "bps" and rep["images"] == 2 and rep["ref_vs_tvm_max_lsb"] == 0
    assert {"float", "float_weights", "qat", "admm_prune", "finetune", "reference", "tvm"} <= set(rep["variants"])
    model, _ = load_model(final_model_path(run))
    prior = np.load(final_model_path(run).parent / "prior.npy")
    for row in rep["per_image"]:
        audio = read_audio(clips / row["image"])
        enc, prep = encode_audio(model, prior, audio, None, model_hash(model, prior))
        assert row["bytes"] == len(enc.data)
        assert row["bps"] == pytest.approx(bits_per_second(len(enc.data), prep.num_samples))
        stem = row["image"].rsplit(".", 1)[0]
        ref = (out / "outputs" / "reference" / f"{stem}.wav").read_bytes()
        assert ref == (out / "outputs" / "tvm" / f"{stem}.wav").read_bytes()
        saved, _ = sf.read(out / "outputs" / "reference" / f"{stem}.wav", dtype="float32")
        # the saved file is the scored waveform rounded to 16 bits: STOI agrees to that precision
        assert row["variants"]["reference"]["stoi"] == pytest.approx(stoi(audio.samples, saved), abs=2e-3)
    assert (out / "spectrograms.png").stat().st_size > 0 and (out / "rd.png").stat().st_size > 0
    assert "MAC/mel frame" in (out / "compare.md").read_text()
