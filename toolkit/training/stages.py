"""The recipe's stages in order: float -> qat -> admm_prune -> admm_quant (optional) -> finetune.

Each stage writes <out>/<stage>/model.pt (+ disc.pt, metrics.json) when done and is skipped on a
rerun; an interrupted stage resumes from <out>/<stage>/state.pt.
"""
import json
from pathlib import Path

import torch

from ..models import MultiscaleDiscriminator, build_model
from ..quant import QuantSpec, fold_batchnorm
from ..quant.extract import quant_conv_layers
from ..compression import ADMMCodebook, ADMMPruner
from .checkpoint import STAGE_ORDER, load_model, save_model
from .loop import Session, train


def quant_spec(recipe) -> QuantSpec:
    q = recipe.quant
    return QuantSpec(per_channel_weights=q.per_channel_weights, gradient_bits=q.gradient_bits,
                     stochastic_gradients=q.stochastic_gradients)


def generator_weights(model) -> dict:
    """Prunable parameters: every conv weight of the generator, by layer name."""
    return {name: layer.weight for name, layer in quant_conv_layers(model.generator).items()}


def load_qat_from_float(recipe, float_model):
    """Fold the generator's BN into its convs and load the float weights into the QAT build.

    The encoder stays float (it runs on the sender) and keeps its BN."""
    model = build_model(recipe.model_name, recipe.model_cfg(), quant_spec(recipe))
    state = {k: v for k, v in float_model.state_dict().items() if not k.startswith("generator.")}
    state.update({f"generator.{k}": v for k, v in fold_batchnorm(float_model.generator).items()})
    missing, unexpected = model.load_state_dict(state, strict=False)
    real_missing = [k for k in missing if k.endswith(("weight", "bias")) and "quant" not in k]
    if real_missing or unexpected:
        raise RuntimeError(f"float -> qat weights do not line up: missing {real_missing[:3]}, "
                           f"unexpected {unexpected[:3]}")
    return model


class StageRunner:
    def __init__(self, session: Session):
        self.s = session
        self.r = session.recipe
        self.disc = None
        if session.loss.needs_discriminator:
            cfg = self.r.model_cfg()
            self.disc = MultiscaleDiscriminator(cfg.disc_scales, cfg.disc_width, cfg.disc_layers,
                                                in_ch=cfg.signal_channels, dims=cfg.signal_dims).to(session.dist.device)

    def path(self, stage) -> Path:
        return self.s.out_dir / stage / "model.pt"

    def _finish(self, stage, model, quant, history, masks=None, codebooks=None, extra=None):
        metrics = {"stage": stage, "history": history, "val": self.s.validate(model), **(extra or {})}
        if self.s.dist.main:
            save_model(self.path(stage), model, self.r.model_name, quant, stage, masks, codebooks)
            if self.disc is not None:
                torch.save(self.disc.state_dict(), self.path(stage).with_name("disc.pt"))
            if self.s.rate is not None:
                self.s.rate.save(self.path(stage).parent, {"stage": stage, "val": metrics["val"]})
            (self.path(stage).parent / "metrics.json").write_text(json.dumps(metrics, indent=1))
            state = self.path(stage).with_name("state.pt")
            state.unlink(missing_ok=True)
        self.s.dist.barrier()
        return metrics

    def _load_done(self, stage):
        model, blob = load_model(self.path(stage))
        disc_path = self.path(stage).with_name("disc.pt")
        if self.disc is not None and disc_path.is_file():
            self.disc.load_state_dict(torch.load(disc_path, map_location="cpu"))
        if self.s.rate is not None:
            self.s.rate.load(self.path(stage).parent)
        metrics = json.loads((self.path(stage).parent / "metrics.json").read_text())
        return model.to(self.s.dist.device), blob, metrics

    def run(self, until=None) -> dict:
        """Run the recipe's stages in order, up to and including `until`; returns {stage: metrics}."""
        results, model, blob = {}, None, None
        for st in STAGE_ORDER:
            if getattr(self.r.stages, st) is None:
                continue
            if self.path(st).is_file():
                model, blob, results[st] = self._load_done(st)
            else:
                model, blob, results[st] = getattr(self, f"stage_{st}")(model, blob)
            if st == until:
                break
        return results

    def stage_float(self, _model, _blob):
        spec = self.r.stages.float
        if spec.checkpoint:
            model, blob = load_model(spec.checkpoint)
            if blob["quant"] is not None or blob["config"] != self.r.model_cfg().model_dump():
                raise ValueError(f"{spec.checkpoint}: not a float model of this recipe's configuration")
            history = []
        else:
            model = build_model(self.r.model_name, self.r.model_cfg(), None).to(self.s.dist.device)
            history = train(self.s, "float", model, self.disc, spec.steps, spec.lr or self.r.train.lr)
        metrics = self._finish("float", model, None, history)
        return model, None, metrics

    def stage_qat(self, model, _blob):
        spec = self.r.stages.qat
        model = load_qat_from_float(self.r, model).to(self.s.dist.device)
        history = train(self.s, "qat", model, self.disc, spec.steps, spec.lr or self.r.train.lr)
        return model, None, self._finish("qat", model, quant_spec(self.r), history)

    def stage_admm_prune(self, model, _blob):
        spec = self.r.stages.admm_prune
        weights = generator_weights(model)
        admm = ADMMPruner(weights, self.r.sparsity_targets(list(weights)), spec.rho)

        def grow_rho(step):
            if step % spec.rho_every == 0:
                admm.rho *= spec.rho_growth

        history = train(self.s, "admm_prune", model, self.disc, spec.steps, spec.lr or self.r.train.lr,
                        admm=admm, admm_every=spec.update_every, admm_hook=grow_rho)
        residual = admm.residual()
        masks = admm.hard_prune()
        extra = {"admm_residual_before_prune": residual, "targets": admm.targets}
        metrics = self._finish("admm_prune", model, quant_spec(self.r), history, masks=masks, extra=extra)
        return model, {"masks": masks, "codebooks": {}}, metrics

    def _masks_by_param(self, model, blob):
        weights = generator_weights(model)
        return {weights[n]: m.to(self.s.dist.device) for n, m in (blob or {}).get("masks", {}).items()}

    def stage_admm_quant(self, model, blob):
        spec = self.r.stages.admm_quant
        weights = generator_weights(model)
        masks = (blob or {}).get("masks", {})
        admm = ADMMCodebook(weights, quant_conv_layers(model.generator), spec.bits, spec.rho, masks)

        def refit(step):
            if step % spec.refit_every == 0:
                admm.refit()

        history = train(self.s, "admm_quant", model, self.disc, spec.steps, spec.lr or self.r.train.lr,
                        admm=admm, admm_every=spec.update_every, admm_hook=refit,
                        masks=self._masks_by_param(model, blob))
        residual = admm.residual()
        books = admm.hard_assign()
        codebooks = {n: {"values": books[n].cpu(), "scale": admm.scales[n].cpu()} for n in books}
        extra = {"admm_residual_before_assign": residual, "bits": spec.bits}
        metrics = self._finish("admm_quant", model, quant_spec(self.r), history, masks, codebooks, extra)
        return model, {"masks": masks, "codebooks": codebooks}, metrics

    def stage_finetune(self, model, blob):
        """Masked fine-tuning; with a codebook the generator's weights stay frozen on it (biases train)."""
        spec = self.r.stages.finetune
        blob = blob or {}
        codebooks = blob.get("codebooks", {})
        frozen = set(map(id, generator_weights(model).values())) if codebooks else set()
        params = [p for p in model.parameters() if id(p) not in frozen]
        history = train(self.s, "finetune", model, self.disc, spec.steps, spec.lr or self.r.train.lr,
                        params=params, masks=self._masks_by_param(model, blob))
        metrics = self._finish("finetune", model, quant_spec(self.r), history, blob.get("masks"), codebooks)
        return model, blob, metrics
