"""loss.rate for image codecs: the latent's code length under a learned entropy model trained with the codec.

The recipe's entropy_model section sizes the net (firmware_ref/entropy_model.py's network, in float here). Every
training step of every stage (float, QAT, ADMM, finetune) codes the batch's hard symbols with it and adds
loss.rate x bits per pixel to the codec's loss; the gradient reaches the encoder through the quantizer's soft
assignment (entropy_net.latent_bits, straight through) and the net learns from the same bits with its own
optimizer. Each finished stage keeps the net beside its model (entropy_joint.pt), a time-sliced stage keeps
it in its state; the entropy stage (entropy_stage.py) starts from the last one, then trains and rounds it.
"""
from pathlib import Path
from typing import Optional

import torch

from ..models.entropy_net import EntropyNet, EntropyNetConfig, latent_bits, load_entropy_net, save_entropy_net

JOINT_NAME = "entropy_joint.pt"


def entropy_config(recipe) -> EntropyNetConfig:
    spec, cfg = recipe.entropy_model, recipe.model_cfg()
    return EntropyNetConfig(cfg.latent_channels, cfg.num_centers, spec.phases, spec.width, spec.kernel, spec.spatial)


class JointRate:
    """The jointly trained entropy net, its optimizer and the rate of one batch."""

    def __init__(self, recipe, dist):
        self.spec, self.dist = recipe.entropy_model, dist
        self.net = EntropyNet(entropy_config(recipe)).to(dist.device)
        self.wrapped = dist.wrap(self.net)
        self.begin_stage()

    def begin_stage(self):
        """A fresh optimizer, as each stage gives the codec (so a stage resumed from files trains as one run)."""
        self.opt = torch.optim.Adam(self.net.parameters(), self.spec.lr)

    def bits_per_pixel(self, model, x: torch.Tensor, out: dict, gen: Optional[torch.Generator]) -> torch.Tensor:
        """The batch's latent bits per pixel (a tensor with gradients to the encoder and the net). gen: sample
        step_sample coding steps (training); None: every step (validation)."""
        steps, share, cfg = None, 1.0, self.net.cfg
        if gen is not None and self.spec.step_sample and self.spec.step_sample < cfg.steps:
            steps = torch.randperm(cfg.steps, generator=gen)[:self.spec.step_sample]
            share = self.spec.step_sample / cfg.steps
        assign = model.quantizer.assign(out["z"]) if gen is not None else None
        bits = latent_bits(self.wrapped if gen is not None else self.net, out["indices"], steps, assign)
        return bits / (share * x.shape[0] * x[0, 0].numel())

    def step(self):
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict):
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])

    def save(self, folder: Path, metrics: dict):
        save_entropy_net(Path(folder) / JOINT_NAME, self.net, metrics)

    def load(self, folder: Path) -> bool:
        """The net a finished stage kept (False where it kept none: a stage run without loss.rate)."""
        path = Path(folder) / JOINT_NAME
        if not path.is_file():
            return False
        saved = load_entropy_net(path)
        if saved.cfg != self.net.cfg:
            raise ValueError(f"{path}: its entropy net {saved.cfg} is not the recipe's {self.net.cfg}")
        self.net.load_state_dict(saved.state_dict())
        return True


def joint_rate(recipe, dist) -> Optional[JointRate]:
    """The session's JointRate where an image recipe trains with loss.rate (schema checks entropy_model is set)."""
    if recipe.loss.rate and recipe.model_cfg().modality == "image":
        return JointRate(recipe, dist)
    return None
