"""The entropy stage: a learned entropy model trained on the finished codec's latents (recipe entropy_model).

The codec is frozen, so the decoded pixels are those of the per-channel prior's streams: only the bits change.
Float steps, then QAT steps (the program's integers, straight-through), both on the rate alone (bits per
symbol, entropy_net.latent_bits). Training crops give the latents (never the images to be coded); the
validation crops measure bits per symbol under the per-channel prior and under the learned model.
Writes <folder>/entropy_model.pt; a rerun with the file present skips the stage. Where the codec trained with
loss.rate, its jointly trained net (<folder>/entropy_joint.pt, joint_rate.py) is the starting point.
"""
import json
from pathlib import Path

import numpy as np
import torch

from ..codec.codec import latent_indices
from ..codec.learned import ENTROPY_NAME
from ..codec.prior import cross_entropy_bits, estimate_prior
from ..datasets import signal_crops
from ..models.entropy_net import EntropyNet, latent_bits, load_entropy_net, save_entropy_net
from .joint_rate import JOINT_NAME, entropy_config


def _latents(model, crops: torch.Tensor, batch: int = 16) -> torch.Tensor:
    model.eval()
    return torch.cat([latent_indices(model, crops[i:i + batch]) for i in range(0, len(crops), batch)])


def _bits_per_symbol(net: EntropyNet, symbols: torch.Tensor) -> float:
    with torch.no_grad():
        return float(sum(latent_bits(net, symbols[i:i + 16]) for i in range(0, len(symbols), 16))) / symbols.numel()


def _train(net, symbols, steps, lr, batch_size, gen, bar, label, step_sample: int = 0) -> list:
    opt = torch.optim.Adam(net.parameters(), lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1), eta_min=lr / 20)
    history = []
    for step in range(1, steps + 1):
        idx = torch.randint(len(symbols), (batch_size,), generator=gen)
        s = symbols[idx]
        if torch.rand((), generator=gen) < 0.5:   # the latent of a transposed image is as likely
            s = s.transpose(2, 3)
        chosen, share = None, 1.0
        if step_sample and step_sample < net.cfg.steps:   # a random subset of the coding steps
            chosen, share = torch.randperm(net.cfg.steps, generator=gen)[:step_sample], step_sample / net.cfg.steps
        loss = latent_bits(net, s, chosen) / (s.numel() * share)   # bits per symbol of the steps coded
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == steps:
            history.append({"stage": label, "step": step, "bits_per_symbol": float(loss.detach())})
            if bar is not None:
                bar.set_postfix_str(f"{label} {float(loss.detach()):.3f} b/sym")
        if bar is not None:
            bar.update(1)
    return history


def train_entropy_model(model, recipe, folder: Path, show_progress: bool = True) -> Path:
    """-> folder/entropy_model.pt, trained (skipped when it exists)."""
    path = Path(folder) / ENTROPY_NAME
    if path.is_file():
        load_entropy_net(path)
        return path
    spec, cfg = recipe.entropy_model, model.cfg
    gen = torch.Generator().manual_seed(recipe.seed)
    torch.manual_seed(recipe.seed)
    train = _latents(model, signal_crops("image", recipe.data.train, spec.crop).random_batch(spec.crops, gen))
    val_data = signal_crops("image", recipe.data.val, spec.crop)
    val = _latents(model, val_data.fixed_crops(min(64, max(len(val_data.images), 1))))
    net, joint = EntropyNet(entropy_config(recipe)), Path(folder) / JOINT_NAME
    start = "joint" if joint.is_file() else "scratch"
    if joint.is_file():
        saved = load_entropy_net(joint)
        if saved.cfg != net.cfg:
            raise ValueError(f"{joint}: its entropy net {saved.cfg} is not the recipe's {net.cfg}")
        net.load_state_dict(saved.state_dict())
    joint_bits = _bits_per_symbol(net, val) if start == "joint" else None
    bar = None
    if show_progress:
        from tqdm import tqdm
        bar = tqdm(total=spec.float_steps + spec.qat_steps, desc="entropy model", leave=False)
    history = _train(net, train, spec.float_steps, spec.lr, spec.batch_size, gen, bar, "float", spec.step_sample)
    float_bits = _bits_per_symbol(net, val)
    net.quant = True
    history += _train(net, train, spec.qat_steps, spec.lr / 5, spec.batch_size, gen, bar, "qat", spec.step_sample)
    if bar is not None:
        bar.close()
    table = estimate_prior([train], cfg.latent_channels, cfg.num_centers)
    per_channel = sum(cross_entropy_bits(v.numpy(), table) for v in val) / val.numel()
    metrics = {"history": history, "val_bits_per_symbol": {"per_channel_prior": per_channel, "float": float_bits,
                                                           "qat": _bits_per_symbol(net.eval(), val)},
               "macs_per_symbol": net.macs_per_symbol(), "train_crops": spec.crops, "val_crops": len(val),
               "start": start}
    if joint_bits is not None:
        metrics["val_bits_per_symbol"]["joint"] = joint_bits
    save_entropy_net(path, net, metrics)
    path.with_name("entropy_metrics.json").write_text(json.dumps(metrics, indent=1))
    return path


def load_entropy_metrics(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)["metrics"]


def saving(metrics: dict) -> float:
    """The validation rate saving of the learned model against the per-channel prior (0.2 = 20% fewer bits)."""
    v = metrics["val_bits_per_symbol"]
    return 1.0 - v["qat"] / v["per_channel_prior"] if v["per_channel_prior"] else float(np.nan)
