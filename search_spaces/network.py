"""Build a NASSegNet (residual encoder, U-Net style decoder) from an ArchSpec.

Encoder: a stem conv (``k0`` x ``k0``, ``out_channel0`` channels) at full resolution, then M
stages; the first block of each stage halves the resolution (stride 2) and widens the channels,
the other ``R_i - 1`` blocks keep both. A block sums ``B_i`` parallel branches (AnalogNAS) plus a
shortcut; ``convblock`` picks the branch: 1 = basic (3x3, 3x3), 2 = bottleneck (1x1, 3x3, 1x1).

Decoder: from the deepest stage up, each level upsamples to the exact size of the matching
encoder feature map (so any input size works, odd ones included), fuses the skip connection
(concat, or add after a 1x1 projection where widths differ), then applies ``dec_blocks``
3x3 conv-BN-ReLU layers. ``up_i = "resize"`` is nearest-neighbour resize + 3x3 conv (fully
analog); ``"transpose"`` is a 2x2 stride-2 ``ConvTranspose2d``, which aihwkit keeps digital.
A 1x1 conv head gives ``out_channels`` logits at the input's H x W.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .arch_spec import ArchSpec
from .widths import bottleneck_width, decoder_widths, encoder_widths


def conv_bn_relu(cin: int, cout: int, k: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False),
                               nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def make_branch(convblock: int, cin: int, cout: int, stride: int) -> nn.Sequential:
    """One residual branch, ending without activation (the block adds, then activates)."""
    if convblock == 1:
        return nn.Sequential(conv_bn_relu(cin, cout, 3, stride), conv_bn_relu(cout, cout, 3, relu=False))
    mid = bottleneck_width(cout)
    return nn.Sequential(conv_bn_relu(cin, mid, 1), conv_bn_relu(mid, mid, 3, stride),
                         conv_bn_relu(mid, cout, 1, relu=False))


class ResidualBlock(nn.Module):
    """Sum of ``branches`` parallel branches and a shortcut, then ReLU (AnalogNAS block)."""

    def __init__(self, convblock: int, branches: int, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(make_branch(convblock, cin, cout, stride) for _ in range(branches))
        self.shortcut = (nn.Identity() if stride == 1 and cin == cout
                         else conv_bn_relu(cin, cout, 1, stride, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.shortcut(x)
        for branch in self.branches:
            out = out + branch(x)
        return F.relu(out)


class UpLevel(nn.Module):
    """Upsample to the skip's size, fuse the skip, refine with 3x3 convs."""

    def __init__(self, mode: str, cin: int, skip_ch: int, cout: int, skip: str, blocks: int) -> None:
        super().__init__()
        self.mode = mode
        if mode == "transpose":
            self.up: nn.Module = nn.ConvTranspose2d(cin, cout, kernel_size=2, stride=2)
        else:
            self.up = conv_bn_relu(cin, cout, 3)
        self.skip_mode = skip
        if skip == "concat":
            self.project: nn.Module = nn.Identity()
            fused = cout + skip_ch
        else:
            self.project = nn.Identity() if skip_ch == cout else conv_bn_relu(skip_ch, cout, 1, relu=False)
            fused = cout
        self.refine = nn.Sequential(*(conv_bn_relu(fused if j == 0 else cout, cout, 3) for j in range(blocks)))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        size = skip.shape[-2:]
        if self.mode == "transpose":
            x = self.up(x)[..., : size[0], : size[1]]  # 2*ceil(n/2) >= n: crop to the skip
        else:
            x = self.up(F.interpolate(x, size=size, mode="nearest"))
        if self.skip_mode == "concat":
            x = torch.cat([x, skip], dim=1)
        else:
            x = x + self.project(skip)
        return self.refine(x)


class NASSegNet(nn.Module):
    """Encoder-decoder segmentation network described by an ArchSpec."""

    def __init__(self, spec: ArchSpec, in_channels: int = 1, out_channels: int = 1) -> None:
        super().__init__()
        self.spec = spec
        enc = encoder_widths(spec)
        dec = decoder_widths(spec)
        self.stem = conv_bn_relu(in_channels, enc[0], spec.k0)
        self.stages = nn.ModuleList()
        for i, stage in enumerate(spec.stages()):
            blocks = [ResidualBlock(stage["convblock"], stage["B"], enc[i] if j == 0 else enc[i + 1],
                                    enc[i + 1], 2 if j == 0 else 1) for j in range(stage["R"])]
            self.stages.append(nn.Sequential(*blocks))
        self.ups = nn.ModuleList()
        for i in reversed(range(spec.M)):  # level i+1 -> level i
            cin = enc[spec.M] if i == spec.M - 1 else dec[i + 1]
            self.ups.append(UpLevel(spec.stages()[i]["up"], cin, enc[i], dec[i], spec.skip, spec.dec_blocks))
        self.head = nn.Conv2d(dec[0], out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [self.stem(x)]
        for stage in self.stages:
            feats.append(stage(feats[-1]))
        y = feats[-1]
        for up, skip in zip(self.ups, reversed(feats[:-1])):
            y = up(y, skip)
        return self.head(y)


def build(spec: ArchSpec, in_channels: int = 1, out_channels: int = 1, seed: int | None = None) -> NASSegNet:
    """The network of ``spec``; with ``seed`` its initial weights are reproducible."""
    if seed is None:
        return NASSegNet(spec, in_channels, out_channels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return NASSegNet(spec, in_channels, out_channels)
