"""Recipe files: YAML validated by a schema; every error is one line naming the field."""
from pathlib import Path
from typing import Dict, List, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..datasets import EMBEDDED
from ..models import MODELS, model_config


class RecipeError(ValueError):
    """A recipe that cannot run; str() is one line naming the file and the field."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSpec(Strict):
    train: str = EMBEDDED          # folder of images / audio clips (relative to the recipe file) or "embedded"
    val: str = EMBEDDED
    crop: int = Field(128, ge=16)  # pixels a side (image) or mel frames of 8 ms (audio)
    val_crop: int = Field(256, ge=16)
    val_count: int = Field(8, ge=1)
    holdout: List[str] = []        # audio: clip names in `train` kept out of training; validation uses them


class LossSpec(Strict):
    mse: float = Field(1.0, ge=0)
    msssim: float = Field(0.0, ge=0)
    adversarial: float = Field(0.0, ge=0)
    feature_matching: float = Field(0.0, ge=0)
    colour: float = Field(0.0, ge=0)   # images: the per-crop mean colour difference (metrics.colour_cast)
    switch: float = Field(0.0, ge=0)   # sae-spn: the switch prediction network's cross-entropy (model loss)
    vgg: float = Field(0.0, ge=0)      # images: VGG19 perceptual loss (losses/perceptual.py)
    rate: float = Field(0.0, ge=0)     # lossless: the flow's bits per sample (model loss); images: the latent's
                                       # bits per pixel under the entropy_model net trained jointly (joint_rate.py)
    vgg_weights: Optional[str] = None  # torchvision-format VGG19 .pth (relative to the recipe); None: the
                                       # seeded random-feature substitute (same VGG19, fixed random weights)


class QuantRecipe(Strict):
    gradient_bits: Optional[Literal[8]] = 8
    per_channel_weights: bool = False
    stochastic_gradients: bool = False


class TrainSpec(Strict):
    batch_size: int = Field(8, ge=1)
    lr: float = Field(2e-4, gt=0)
    disc_lr: float = Field(2e-4, gt=0)
    sigma_start: float = Field(1.0, gt=0)   # soft-to-hard temperature, annealed over the float stage
    sigma_end: float = Field(50.0, gt=0)
    prior_crops: int = Field(128, ge=1)     # training crops the entropy coder's prior is estimated from
    save_every: int = Field(100, ge=1)
    log_every: int = Field(10, ge=1)


class StageSpec(Strict):
    steps: int = Field(0, ge=0)
    lr: Optional[float] = Field(None, gt=0)


class FloatStage(StageSpec):
    checkpoint: Optional[str] = None        # load a float model file instead of training


class PruneStage(StageSpec):
    rho: float = Field(1e-3, gt=0)
    rho_growth: float = Field(1.0, ge=1.0)  # rho *= rho_growth every rho_every steps
    rho_every: int = Field(100, ge=1)
    update_every: int = Field(20, ge=1)     # Z and U updates
    sparsity: Union[float, Dict[str, float]] = 0.5  # one target, or {"default": s, "<layer>": s}


class CodebookStage(StageSpec):
    bits: int = Field(4, ge=1, le=7)
    rho: float = Field(1e-3, gt=0)
    update_every: int = Field(20, ge=1)
    refit_every: int = Field(100, ge=1)


class Stages(Strict):
    float: FloatStage
    qat: StageSpec
    admm_prune: Optional[PruneStage] = None
    admm_quant: Optional[CodebookStage] = None
    finetune: Optional[StageSpec] = None


class EntropyModelSpec(Strict):
    """The learned entropy model (firmware_ref/entropy_model.py), trained on the finished codec's latents."""
    phases: Literal[1, 2, 4] = 2            # coding steps per channel: 1 channel-causal, 2 checkerboard, 4 a 2x2 lattice
    width: int = Field(32, ge=4, le=256)
    kernel: Literal[1, 3, 5, 7] = 5
    spatial: int = Field(1, ge=1, le=4)     # spatial convs: the kernel x kernel one, then 3x3 ones
    float_steps: int = Field(3000, ge=0)
    qat_steps: int = Field(1000, ge=1)
    lr: float = Field(3e-3, gt=0)
    batch_size: int = Field(16, ge=1)
    step_sample: int = Field(0, ge=0)       # train each batch on this many random coding steps (0: all of them)
    crop: int = Field(256, ge=16)           # training crops (pixels a side) whose latents it learns from
    crops: int = Field(512, ge=1)


class Recipe(Strict):
    name: str
    seed: int = 0
    model: Dict[str, object]
    data: DataSpec = DataSpec()
    loss: LossSpec = LossSpec()
    quant: QuantRecipe = QuantRecipe()
    train: TrainSpec = TrainSpec()
    stages: Stages
    entropy_model: Optional[EntropyModelSpec] = None

    @model_validator(mode="after")
    def _model_known(self):
        fields = dict(self.model)
        name = fields.pop("name", None)
        if name not in MODELS:
            raise ValueError(f"model.name must be one of {sorted(MODELS)}, got {name!r}")
        cfg = model_config(name, fields)  # raises ValidationError naming the field
        for field in ("crop", "val_crop"):
            if getattr(self.data, field) % cfg.downsample:
                raise ValueError(f"data.{field} must be a multiple of the model's downsample {cfg.downsample}")
        if cfg.modality != "image" and self.loss.msssim:
            raise ValueError(f"loss.msssim: MS-SSIM is an image loss; set it to 0 for {cfg.modality} models")
        if cfg.modality != "image" and self.loss.colour:
            raise ValueError(f"loss.colour: the colour term is an image loss; set it to 0 for {cfg.modality} models")
        if cfg.modality != "image" and self.loss.vgg:
            raise ValueError(f"loss.vgg: the VGG perceptual loss is an image loss; set it to 0 for "
                             f"{cfg.modality} models")
        if cfg.modality == "lossless" and (self.loss.mse or not self.loss.rate or self.loss.adversarial
                                           or self.loss.feature_matching):
            raise ValueError("a lossless model trains on its rate alone: loss.rate > 0, mse, adversarial and "
                             "feature_matching 0")
        if self.loss.rate and cfg.modality not in ("lossless", "image"):
            raise ValueError(f"loss.rate: a rate term for the lossless flow's bits per sample or an image latent's "
                             f"bits per pixel; {cfg.modality} models have none")
        if self.loss.rate and cfg.modality == "image" and self.entropy_model is None:
            raise ValueError("loss.rate: an image codec's rate is its latent's bits per pixel under the learned "
                             "entropy model; add an entropy_model section to size it")
        if self.loss.switch and getattr(cfg, "switches", None) != "predicted":
            raise ValueError("loss.switch: the switch cross-entropy needs a model that predicts switches "
                             "(sae-spn with switches: predicted)")
        if self.entropy_model is not None and (cfg.modality != "image" or self.entropy_model.crop % cfg.downsample):
            raise ValueError(f"entropy_model: a learned entropy model codes image latents; its crop must be a "
                             f"multiple of the model's downsample {cfg.downsample}")
        if cfg.modality == "image" and self.data.holdout:
            raise ValueError("data.holdout: held-out clip lists are for audio models only")
        return self

    @property
    def model_name(self) -> str:
        return self.model["name"]

    def model_cfg(self):
        return model_config(self.model_name, {k: v for k, v in self.model.items() if k != "name"})

    def sparsity_targets(self, layer_names) -> Dict[str, float]:
        s = self.stages.admm_prune.sparsity
        table = {"default": s} if isinstance(s, (int, float)) else dict(s)
        unknown = sorted(set(table) - set(layer_names) - {"default"})
        if unknown:
            raise RecipeError(f"stages.admm_prune.sparsity: unknown layer {unknown[0]!r} "
                              f"(layers: {', '.join(layer_names)})")
        bad = [k for k, v in table.items() if not 0.0 <= v < 1.0]
        if bad:
            raise RecipeError(f"stages.admm_prune.sparsity.{bad[0]}: must be in [0, 1)")
        return {n: table.get(n, table.get("default", 0.0)) for n in layer_names}


def _one_line(err: ValidationError) -> str:
    e = err.errors()[0]
    loc = ".".join(str(p) for p in e["loc"] if not str(p).startswith("function-after"))
    return f"{loc or 'recipe'}: {e['msg']}"


def load_recipe(path: Union[str, Path]) -> Recipe:
    """Parse and validate; data folders are resolved relative to the recipe and must exist."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: no such recipe file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise RecipeError(f"{path}: not valid YAML{where}") from None
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: a recipe is a YAML mapping")
    try:
        recipe = Recipe(**raw)
    except ValidationError as e:
        raise RecipeError(f"{path}: {_one_line(e)}") from None
    for field in ("train", "val"):
        src = getattr(recipe.data, field)
        if src != EMBEDDED:
            folder = (path.parent / src).resolve()
            packed = folder.suffix == ".npz" and folder.is_file()   # bpgan-pack's crops (images only)
            if not (folder.is_dir() or packed):
                raise RecipeError(f"{path}: data.{field}: no such folder (or packed .npz file) {folder}")
            if packed and recipe.model_cfg().modality != "image":
                raise RecipeError(f"{path}: data.{field}: packed crop files hold images, not audio")
            setattr(recipe.data, field, str(folder))
    if recipe.data.holdout:
        from ..datasets import audio_paths
        try:
            audio_paths(recipe.data.train, only=recipe.data.holdout)
        except ValueError as e:
            raise RecipeError(f"{path}: data.holdout: {e}") from None
    if recipe.loss.vgg_weights is not None:
        p = (path.parent / recipe.loss.vgg_weights).resolve()
        if not p.is_file():
            raise RecipeError(f"{path}: loss.vgg_weights: no such file {p}")
        recipe.loss.vgg_weights = str(p)
    ckpt = recipe.stages.float.checkpoint
    if ckpt is not None:
        p = (path.parent / ckpt).resolve()
        if not p.is_file():
            raise RecipeError(f"{path}: stages.float.checkpoint: no such file {p}")
        recipe.stages.float.checkpoint = str(p)
    return recipe
