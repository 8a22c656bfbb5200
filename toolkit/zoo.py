"""The shipped models: defaults for bpgan-encode, bpgan-decode and bpgan.load_model.

Each zoo entry is a run folder: <stage>/model.pt (float encoder + 8-bit generator), prior.npy beside
it, export/program.json + program.npz (the integer program), golden.bpg with its expected output,
report.md and curves.png. Where the zoo is: $BPGAN_ZOO if set, else the package data `bpgan.zoo`
(the repository's zoo/ folder, installed with the package).
"""
import importlib.util
import json
import os
from pathlib import Path
from typing import Optional

DEFAULTS = {"image": "bpgan-image-light", "audio": "bpgan-audio-light"}
# Inputs routed to the speech model: every format soundfile reads (datasets.audio lists only the
# training-clip formats, and importing it would load librosa for every image encode).
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au")


def zoo_dir() -> Path:
    if os.environ.get("BPGAN_ZOO"):
        return Path(os.environ["BPGAN_ZOO"])
    spec = importlib.util.find_spec("bpgan.zoo")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parent.parent / "zoo"


ZOO = zoo_dir()


def zoo_entry(name: str) -> Path:
    path = ZOO / name
    if not (path / "export" / "program.json").is_file():
        shipped = sorted(p.parent.parent.name for p in ZOO.glob("*/export/program.json"))
        raise ValueError(f"no shipped model {name!r} in {ZOO} (shipped: {', '.join(shipped) or 'none'}; "
                         f"BPGAN_ZOO points elsewhere); pass a run folder")
    return path


def default_for_input(input_path) -> Path:
    """The shipped model for a file to encode: speech for audio files, else the light image model."""
    audio = Path(input_path).suffix.lower() in AUDIO_SUFFIXES
    return zoo_entry(DEFAULTS["audio" if audio else "image"])


def find_by_model_hash(model_hash: bytes) -> Optional[Path]:
    """The zoo entry whose integer program carries this bitstream model hash, or None."""
    for program in sorted(ZOO.glob("*/export/program.json")):
        meta = json.loads(program.read_text()).get("meta", {})
        if meta.get("model_hash") == model_hash.hex():
            return program.parent.parent
    return None
