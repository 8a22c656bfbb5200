"""Codec losses: MSE, MS-SSIM, colour cast, VGG19 perceptual (perceptual.py), LSGAN adversarial, feature matching;
each weighted, any may be off."""
import torch
import torch.nn.functional as F

from ..metrics import colour_cast, msssim


class CodecLoss:
    def __init__(self, mse=1.0, msssim=0.0, adversarial=0.0, feature_matching=0.0, colour=0.0, switch=0.0,
                 vgg=0.0, vgg_weights=None, rate=0.0):
        """Weights of each term (the recipe's loss fields); vgg_weights: a torchvision VGG19 .pth for the vgg
        term (None: the seeded random-feature substitute, perceptual.py). It is not a weight: kept out of w."""
        self.w = {"mse": mse, "msssim": msssim, "adversarial": adversarial, "feature_matching": feature_matching,
                  "colour": colour, "switch": switch, "vgg": vgg,
                  "rate": rate}
        self.vgg_weights = vgg_weights
        self._vgg = None

    def vgg_net(self, device):
        """The frozen VGG19 of the vgg term, built (and its weights loaded) on first use, on `device`."""
        if self._vgg is None:
            from .perceptual import VGGPerceptualLoss
            self._vgg = VGGPerceptualLoss(self.vgg_weights)
        if self._vgg.mean.device != torch.device(device):
            self._vgg = self._vgg.to(device)
        return self._vgg

    @property
    def needs_discriminator(self) -> bool:
        return self.w["adversarial"] > 0 or self.w["feature_matching"] > 0

    def generator(self, x, x_hat, disc=None, model_losses=None):
        """Total generator loss and its parts (floats) for logging; model_losses: the model's own terms
        (forward's "losses", e.g. sae-spn's switch cross-entropy), weighted by the recipe key of that name."""
        parts = {k: v for k, v in (model_losses or {}).items() if self.w.get(k)}
        if self.w["mse"]:
            parts["mse"] = F.mse_loss(x_hat, x)
        if self.w["msssim"]:
            parts["msssim"] = 1 - msssim(x_hat, x, reduce=False).mean()
        if self.w["colour"]:
            parts["colour"] = colour_cast(x_hat, x)
        if self.w["vgg"]:
            parts["vgg"] = self.vgg_net(x_hat.device)(x_hat, x)
        if self.needs_discriminator:
            fake = disc(x_hat)
            if self.w["adversarial"]:  # LSGAN: push D(fake) towards 1
                parts["adversarial"] = sum(((f[-1] - 1) ** 2).mean() for f in fake) / len(fake)
            if self.w["feature_matching"]:
                with torch.no_grad():
                    real = disc(x)
                fm = [F.l1_loss(a, b.detach()) for fs, rs in zip(fake, real) for a, b in zip(fs[:-1], rs[:-1])]
                parts["feature_matching"] = sum(fm) / len(fm)
        total = sum(self.w[k] * v for k, v in parts.items())
        return total, {k: float(v.detach()) for k, v in parts.items()}

    @staticmethod
    def discriminator(disc, x, x_hat):
        """LSGAN: D(real) -> 1, D(fake) -> 0; real and fake go through D in one batch (one DDP forward)."""
        out = disc(torch.cat([x, x_hat.detach()]))
        n = x.shape[0]
        return sum(((o[-1][:n] - 1) ** 2).mean() + (o[-1][n:] ** 2).mean() for o in out) / len(out)
