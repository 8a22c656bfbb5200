"""Multiscale PatchGAN discriminator (pix2pixHD style) for LSGAN and feature-matching losses.

dims 2 for images; dims 1 for signals over time (mel bands as channels, the audio model's layout).
Float only: it never ships to the device.
"""
from torch import nn
import torch.nn.functional as F


class PatchDiscriminator(nn.Module):
    def __init__(self, in_ch=3, width=32, layers=3, dims=2):
        super().__init__()
        conv = nn.Conv1d if dims == 1 else nn.Conv2d
        blocks, c = [], in_ch
        for i in range(layers):
            out = width * 2 ** i
            blocks.append(nn.Sequential(conv(c, out, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)))
            c = out
        blocks.append(conv(c, 1, 3, 1, 1))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x):
        feats = []
        for b in self.blocks:
            x = b(x)
            feats.append(x)
        return feats  # the last entry is the patch score map


class MultiscaleDiscriminator(nn.Module):
    """The same patch discriminator applied at 1, 1/2, 1/4 ... resolution."""

    def __init__(self, scales=2, width=32, layers=3, in_ch=3, dims=2):
        super().__init__()
        self.pool = F.avg_pool1d if dims == 1 else F.avg_pool2d
        self.nets = nn.ModuleList(PatchDiscriminator(in_ch, width, layers, dims) for _ in range(scales))

    def forward(self, x):
        out = []
        for i, net in enumerate(self.nets):
            if i:
                x = self.pool(x, 3, 2, 1, count_include_pad=False)
            out.append(net(x))
        return out
