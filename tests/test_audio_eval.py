"""audio_eval on a tiny exported run: the table's rows and columns, anchors' delay removal."""
import json
import shutil

import numpy as np
import pytest

from bpgan.toolkit.audio.wav import write_wav
from bpgan.toolkit.evaluation import audio_eval, speech_anchors
from bpgan.toolkit.training.checkpoint import save_model

from tiny_audio import speech_like, tiny_audio_model, write_tiny_audio


def test_remove_delay_recovers_a_known_lag():
    x = speech_like(0.5)
    delayed = np.concatenate([np.zeros(37, np.float32), x])[:len(x)]
    aligned, lag = speech_anchors.remove_delay(x, delayed)
    assert lag == 37 and np.array_equal(aligned[:len(x) - 37], x[:len(x) - 37])


def test_eval_table_has_the_ceiling_float_and_integer_rows(tmp_path, capsys):
    from bpgan.toolkit.cli import export as export_cli
    run = tmp_path / "run"
    model, quant = tiny_audio_model()
    from bpgan.toolkit.models import build_model
    float_model = build_model("bpgan-audio", model.cfg, None)
    save_model(run / "float" / "model.pt", float_model, "bpgan-audio", None, "float")
    save_model(run / "qat" / "model.pt", model, "bpgan-audio", quant, "qat")
    assert export_cli.main([str(run), "--target", "c"]) == 0  # the reference decoder needs only the program
    write_wav(tmp_path / "clip.wav", speech_like(0.6))
    recipe = write_tiny_audio(tmp_path / "tiny.yaml")
    assert audio_eval.main([str(run), "--recipe", str(recipe), "--clips", str(tmp_path / "clip.wav"),
                            "--gl-iters", "4", "--no-anchors", "--search-iters", "2"]) == 0
    result = json.loads((run / "audio_eval.json").read_text())
    rows = result["table"]
    assert list(rows) == ["mel + Griffin-Lim (ceiling)", "BPGAN float", "BPGAN fixed-point",
                          "BPGAN fixed-point + latent search (2 it.)"]
    assert rows["mel + Griffin-Lim (ceiling)"]["bps"] is None and rows["BPGAN fixed-point"]["bps"] > 0
    assert all(set(r) == set(audio_eval.COLUMNS) for r in rows.values()) and result["notes"] == []
    assert "| BPGAN fixed-point |" in capsys.readouterr().out


@pytest.mark.skipif(shutil.which("c2enc") is None or shutil.which("c2dec") is None, reason="codec2 not installed")
def test_codec2_anchor_rate_is_its_mode():
    out = speech_anchors.run_anchor("Codec2 3200", speech_like(1.0))
    assert abs(8 * out["bytes"] - 3200) <= 64 and len(out["samples"]) == 8000
