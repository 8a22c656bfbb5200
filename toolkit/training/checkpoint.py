"""Model files of a run: what `bpgan-quantize` writes and every later command reads.

A model file (`RUN_DIR/<stage>/model.pt`) is a dict:
  format: "bpgan-model/1", model: registry name, config: model config dict,
  quant: QuantSpec fields or None (float), state_dict, masks: {param name: bool tensor} (pruned weights),
  codebooks: {param name: int tensor of int8 values} (ADMM weight quantization), stage: name.
"""
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import torch

from ..models import build_model, model_config
from ..quant import QuantSpec

FORMAT = "bpgan-model/1"
STAGE_ORDER = ("float", "qat", "admm_prune", "admm_quant", "finetune")


def save_model(path: Path, model, name: str, quant: Optional[QuantSpec], stage: str, masks=None, codebooks=None):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"format": FORMAT, "model": name, "config": model.cfg.model_dump(),
            "quant": asdict(quant) if quant is not None else None, "state_dict": model.state_dict(),
            "masks": masks or {}, "codebooks": codebooks or {}, "stage": stage}
    tmp = path.with_suffix(".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)  # atomic: an interrupted save never leaves a half-written model


def load_model(path: Path):
    """-> (model in eval mode, blob). Raises ValueError with one line on a file that is not ours."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no model file at {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same one-line answer
        raise ValueError(f"{path} is not a readable model file ({type(e).__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"{path} is not a bpgan model file (expected format {FORMAT})")
    quant = QuantSpec(**blob["quant"]) if blob["quant"] is not None else None
    model = build_model(blob["model"], model_config(blob["model"], blob["config"]), quant)
    model.load_state_dict(blob["state_dict"])
    return model.eval(), blob


def final_model_path(run_dir: Path) -> Path:
    """The last stage's model of a run directory (finetune > admm_quant > admm_prune > qat > float)."""
    run_dir = Path(run_dir)
    for stage in reversed(STAGE_ORDER):
        p = run_dir / stage / "model.pt"
        if p.is_file():
            return p
    raise ValueError(f"{run_dir} holds no stage model (expected {run_dir}/<stage>/model.pt)")
