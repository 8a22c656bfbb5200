"""The shipped models (the repository's zoo/ folder): defaults for bpgan-encode and bpgan-decode.

Each zoo entry is a run folder: <stage>/model.pt (float encoder + 8-bit generator), prior.npy beside
it, export/program.json + program.npz (the integer program), report.md and curves.png.
"""
import json
from pathlib import Path
from typing import Optional

ZOO = Path(__file__).resolve().parent.parent / "zoo"
DEFAULTS = {"image": "bpgan-image-light", "audio": "bpgan-audio-light"}
# Inputs routed to the speech model: every format soundfile reads (datasets.audio lists only the
# training-clip formats, and importing it would load librosa for every image encode).
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au")


def _entry(name: str) -> Path:
    path = ZOO / name
    if not path.is_dir():
        raise ValueError(f"no shipped model {name} in {ZOO} (the zoo lives in the repository); pass MODEL")
    return path


def default_for_input(input_path) -> Path:
    """The shipped model for a file to encode: speech for audio files, else the light image model."""
    audio = Path(input_path).suffix.lower() in AUDIO_SUFFIXES
    return _entry(DEFAULTS["audio" if audio else "image"])


def find_by_model_hash(model_hash: bytes) -> Optional[Path]:
    """The zoo entry whose integer program carries this bitstream model hash, or None."""
    for program in sorted(ZOO.glob("*/export/program.json")):
        meta = json.loads(program.read_text()).get("meta", {})
        if meta.get("model_hash") == model_hash.hex():
            return program.parent.parent
    return None
