"""Pictures of a comparison: rate-distortion curves and side-by-side crops."""
from pathlib import Path
from typing import Dict, List

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


RATE_LABELS = {"bpp": "bits per pixel (file size)", "bps": "bits per second (file size)"}


def rd_plot(path: Path, model_points: Dict[str, dict], anchors: Dict[str, List[dict]], title: str,
            rate: str = "bpp", metrics=(("psnr", "PSNR (dB)"), ("msssim", "MS-SSIM"))):
    """Rate vs two quality metrics: anchors as curves (or points), the model's variants as points."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, (metric, label) in zip(axes, metrics):
        for codec, pts in anchors.items():
            pts = [p for p in pts if p.get(metric) is not None]
            ax.plot([p[rate] for p in pts], [p[metric] for p in pts], "o-", ms=3, label=codec)
        markers = iter("s^vD<>pP*Xh")
        for name, p in model_points.items():
            if p.get(metric) is not None:
                ax.plot([p[rate]], [p[metric]], next(markers, "o"), ms=8, label=f"bpgan {name}")
        ax.set_xlabel(RATE_LABELS[rate])
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def crops_plot(path: Path, panels: Dict[str, np.ndarray], size: int = 192):
    """Centre crops of the same image, one panel each (original, float, fixed point, anchor...)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6))
    for ax, (label, img) in zip(np.atleast_1d(axes), panels.items()):
        h, w = img.shape[:2]
        s = min(size, h, w)
        y, x = (h - s) // 2, (w - s) // 2
        ax.imshow(img[y:y + s, x:x + s], interpolation="nearest")
        ax.set_title(label, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def spectrogram_plot(path: Path, panels: Dict[str, np.ndarray]):
    """Mel spectrograms ([-1, 1] units, bands x frames) stacked: original, float, fixed point..."""
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 1.9 * len(panels)), sharex=True)
    for ax, (label, mel) in zip(np.atleast_1d(axes), panels.items()):
        ax.imshow(mel, origin="lower", aspect="auto", vmin=-1, vmax=1, cmap="magma", interpolation="nearest")
        ax.set_ylabel(label, fontsize=8)
    np.atleast_1d(axes)[-1].set_xlabel("mel frame (8 ms)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def training_curves_plot(path: Path, stages: Dict[str, dict]):
    """Training loss of every stage on one step axis (stages shaded), and the validation after each."""
    fig, (ax, ax_val) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [3, 1]})
    offset = 0
    for i, (stage, m) in enumerate(stages.items()):
        hist = m.get("history") or []
        if hist:
            ax.plot([offset + h["step"] for h in hist], [h["loss"] for h in hist], lw=1, label=stage)
            ax.axvspan(offset, offset + hist[-1]["step"], color=f"C{i}", alpha=0.06)
            offset += hist[-1]["step"]
    ax.set_yscale("log")
    ax.set_xlabel("training step (stages in order)")
    ax.set_ylabel("training loss (incl. ADMM penalty)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    key = next(iter(next(iter(stages.values()))["val"]), None) if stages else None
    if key is not None:
        ax_val.plot(list(stages), [m["val"][key] for m in stages.values()], "o-")
        ax_val.set_ylabel(f"validation {key}")
        ax_val.tick_params(axis="x", labelrotation=45, labelsize=7)
        ax_val.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
