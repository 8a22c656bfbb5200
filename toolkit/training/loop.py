"""One training loop for every stage: codec (+ discriminator) steps, ADMM hooks, masks, resume."""
import math
import time
from pathlib import Path
from typing import Callable, Dict, Optional

import torch
from tqdm import tqdm

from ..metrics import msssim, psnr
from ..losses import CodecLoss
from .distributed import Dist, unwrap
from .joint_rate import joint_rate


def validation_metrics(modality: str, x: torch.Tensor, x_hat: torch.Tensor) -> Dict[str, float]:
    """Images: PSNR and MS-SSIM; audio: log-spectral distance (dB) and PSNR of the [-1, 1] mel."""
    if modality == "audio":
        from ..evaluation.audio_metrics import mel_lsd
        lsd = [mel_lsd(a.numpy(), b.numpy()) for a, b in zip(x.cpu(), x_hat.cpu())]
        return {"mel_lsd_db": sum(lsd) / len(lsd), "mel_psnr": psnr(x, x_hat)}
    return {"psnr": psnr(x, x_hat), "msssim": msssim(x, x_hat)}


class TimeSliced(Exception):
    """The run's time slice (bpgan-quantize --max-minutes) ran out: the stage's state is saved; rerun to resume."""

    def __init__(self, stage: str, step: int, steps: int):
        super().__init__(f"stopped in stage {stage} at step {step} of {steps} (state saved)")
        self.stage, self.step, self.steps = stage, step, steps


class Session:
    """What every stage shares: recipe, data, loss, discriminator, output folder, process group, and
    the deadline (time.monotonic()) of a time-sliced run, or None."""

    def __init__(self, recipe, out_dir: Path, train_data, val_data, dist: Dist, show_progress=True,
                 deadline: Optional[float] = None):
        self.recipe, self.out_dir, self.dist, self.deadline = recipe, Path(out_dir), dist, deadline
        self.train_data, self.val_data = train_data, val_data
        self.modality = recipe.model_cfg().modality
        self.loss = CodecLoss(**recipe.loss.model_dump())
        self.rate = joint_rate(recipe, dist)   # images with loss.rate: the jointly trained entropy net
        self.show_progress = show_progress and dist.main

    @torch.no_grad()
    def validate(self, model) -> Dict[str, float]:
        model = unwrap(model)
        was = model.training
        model.eval()
        x = self.val_data.fixed_crops(self.recipe.data.val_count).to(self.dist.device)
        if self.modality == "lossless":   # the flow's estimate of its code length (bpgan-export measures the real one)
            bits = torch.cat([model(x[i:i + 4])["bits"] for i in range(0, len(x), 4)])
            model.train(was)
            bps = float(bits.sum()) / x.numel()
            return {"bits_per_sample": bps, "ratio": 16.0 / bps}
        outs = [model(x[i:i + 4]) for i in range(0, len(x), 4)]
        model.train(was)
        metrics = validation_metrics(self.modality, x, torch.cat([o["x_hat"] for o in outs]))
        if self.rate is not None:   # the latent's bits per pixel under the jointly trained (float) entropy net
            metrics["latent_bpp"] = sum(float(self.rate.bits_per_pixel(model, x[i * 4:i * 4 + 4], o, None))
                                        * len(o["x_hat"]) for i, o in enumerate(outs)) / len(x)
        return metrics


def sigma_schedule(recipe, stage: str, step: int, steps: int) -> float:
    """Soft-to-hard temperature: geometric from sigma_start to sigma_end over the float stage."""
    t = recipe.train
    if stage != "float" or steps <= 1:
        return t.sigma_end
    frac = min(step / (steps - 1), 1.0)
    return math.exp(math.log(t.sigma_start) + frac * (math.log(t.sigma_end) - math.log(t.sigma_start)))


def train(session: Session, stage: str, model, disc, steps: int, lr: float, params=None,
          admm=None, admm_every: int = 0, admm_hook: Optional[Callable[[int], None]] = None,
          masks: Optional[Dict[str, torch.nn.Parameter]] = None) -> list:
    """Train `model` for `steps`; resumes from <out>/<stage>/state.pt. Returns the log history.

    params: the parameters to optimize (default all); masks: {param: bool mask} re-applied after
    every step (pruned weights stay zero); admm: an ADMM object whose penalty joins the loss and
    whose update() runs every admm_every steps, then admm_hook(step) (e.g. rho schedules).
    """
    r, d = session.recipe, session.dist
    state_path = session.out_dir / stage / "state.pt"
    ddp_model = d.wrap(model)
    ddp_disc = d.wrap(disc) if disc is not None else None
    opt = torch.optim.Adam(params if params is not None else model.parameters(), lr=lr)
    opt_d = torch.optim.Adam(disc.parameters(), lr=r.train.disc_lr) if disc is not None else None
    gen = torch.Generator().manual_seed(r.seed * 7919 + 1000 * d.rank + len(stage))
    start, history, running, since_log = 0, [], {}, 0
    if session.rate is not None:
        session.rate.begin_stage()
    if state_path.is_file():
        s = torch.load(state_path, map_location=d.device, weights_only=False)
        model.load_state_dict(s["model"])
        opt.load_state_dict(s["opt"])
        if disc is not None:
            disc.load_state_dict(s["disc"])
            opt_d.load_state_dict(s["opt_d"])
        if admm is not None:
            admm.load_state_dict(s["admm"])
        if session.rate is not None:
            session.rate.load_state_dict(s["rate"])
        gen.set_state(s["rng"][d.rank] if d.rank < len(s["rng"]) else s["rng"][0])
        if s.get("torch_rng") is not None:   # the global generator too (stochastic gradient rounding draws from it)
            torch.set_rng_state(s["torch_rng"])
        start, history = s["step"], s["history"]
        running, since_log = s.get("running", {}), s.get("since_log", 0)
    bar = tqdm(total=steps, initial=start, desc=stage, disable=not session.show_progress, leave=False)
    t0 = time.time()
    model.train()
    for step in range(start, steps):
        model.quantizer.sigma.fill_(sigma_schedule(r, stage, step, steps))
        x = session.train_data.random_batch(r.train.batch_size, gen).to(d.device)
        out = ddp_model(x)
        if session.rate is not None:   # loss.rate weighs it (CodecLoss's model terms)
            out["losses"] = {**out.get("losses", {}), "rate": session.rate.bits_per_pixel(model, x, out, gen)}
        if ddp_disc is not None:
            opt_d.zero_grad(set_to_none=True)
            d_loss = session.loss.discriminator(ddp_disc, x, out["x_hat"])
            d_loss.backward()
            opt_d.step()
            running["disc"] = running.get("disc", 0.0) + float(d_loss.detach())
        loss, parts = session.loss.generator(x, out["x_hat"], disc, out.get("losses"))
        if admm is not None:
            penalty = admm.penalty()
            loss = loss + penalty
            parts["admm_penalty"] = float(penalty.detach())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if session.rate is not None:
            session.rate.step()
        if disc is not None:
            disc.zero_grad(set_to_none=True)  # the generator step left gradients in D
        if masks:
            with torch.no_grad():
                for p, m in masks.items():
                    p.mul_(m)
        if admm is not None and (step + 1) % admm_every == 0:
            admm.update()
            if admm_hook:
                admm_hook(step + 1)
        parts["loss"] = float(loss.detach())
        for k, v in parts.items():
            running[k] = running.get(k, 0.0) + v
        since_log += 1
        bar.update(1)
        if (step + 1) % r.train.log_every == 0 or step + 1 == steps:
            entry = {k: d.mean(v / since_log) for k, v in running.items()}
            entry["step"] = step + 1
            history.append(entry)
            bar.set_postfix(loss=f"{entry['loss']:.4f}")
            running, since_log = {}, 0
        sliced = session.deadline is not None and step + 1 < steps and d.any(time.monotonic() >= session.deadline)
        if ((step + 1) % r.train.save_every == 0 or sliced) and step + 1 < steps:
            _save_state(state_path, model, disc, opt, opt_d, admm, gen, step + 1, history, d, running, since_log,
                        session.rate)
        if sliced:
            bar.close()
            raise TimeSliced(stage, step + 1, steps)
    bar.close()
    if history:
        history[-1]["seconds"] = time.time() - t0
    return history


def _save_state(path: Path, model, disc, opt, opt_d, admm, gen, step, history, d: Dist, running, since_log,
                rate=None):
    rng = [None] * d.world
    if d.enabled:
        torch.distributed.all_gather_object(rng, gen.get_state())
    else:
        rng = [gen.get_state()]
    if not d.main:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "history": history, "rng": rng,
            "torch_rng": torch.get_rng_state(), "running": running, "since_log": since_log,
            "disc": disc.state_dict() if disc is not None else None,
            "opt_d": opt_d.state_dict() if opt_d is not None else None,
            "admm": admm.state_dict() if admm is not None else None,
            "rate": rate.state_dict() if rate is not None else None}
    tmp = path.with_suffix(".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)
