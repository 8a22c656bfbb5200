"""The shipped speech model codes the embedded clip from the CLI at its documented rate and quality."""
import re
import shutil

from bpgan.toolkit.cli.encode import main as encode_main

from conftest import REPO

ZOO = REPO / "zoo" / "bpgan-audio-quick"
CLIP = REPO / "toolkit" / "datasets" / "lj001-0013-8k.wav"


def test_shipped_audio_model_codes_the_embedded_clip(tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(ZOO, run)
    assert encode_main([str(run), str(CLIP), "-o", str(tmp_path / "s.bpg"), "--iters", "0", "--gl-iters", "8"]) == 0
    out = capsys.readouterr().out
    rate = float(re.search(r"([\d.]+) bit/s", out).group(1))
    lsd = float(re.search(r"mel LSD ([\d.]+) dB", out).group(1))
    print(out)
    assert 300 < rate < 1000 and lsd < 7.0  # measured: 656 bit/s, 6.0 dB (docs/audio.md)
