"""Fusion of two feature maps of the same width, used at every scale of the MetaRS heads."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class SCSE(nn.Module):
    """Concurrent spatial and channel squeeze-and-excitation.

    The channel gate says which channels of a modality matter for this image, the spatial
    gate where; applied before fusing, they let each input down-weight what it cannot see
    (e.g. texture-less SAR over roads) instead of averaging it in.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        # As segmentation-models-pytorch's SCSEModule (the authors' unit): channels // 16.
        hidden = max(channels // reduction, 1)
        self.channel_gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )
        self.spatial_gate = nn.Sequential(nn.Conv2d(channels, 1, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.channel_gate(x) + x * self.spatial_gate(x)


class FusionUnit(nn.Module):
    """scSE on each input, concatenation, 1x1 conv-BN-ReLU back to the input width, scSE."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.gate_a = SCSE(channels, reduction)
        self.gate_b = SCSE(channels, reduction)
        self.reduce = nn.Sequential(
            nn.Conv2d(2 * channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        )
        self.gate_out = SCSE(channels, reduction)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        fused = self.reduce(torch.cat([self.gate_a(a), self.gate_b(b)], dim=1))
        return self.gate_out(fused)


class FusionStack(nn.Module):
    """One fusion unit per scale; with `residual`, the first input is added back.

    The residual form is the authors' projection of a modality-specific feature onto the
    meta feature (fuse(specific, meta) + specific); one such stack is shared by the SAR
    and the optical head, so both project through the same weights.
    """

    def __init__(self, channels: Sequence[int], reduction: int = 16, *, residual: bool = False):
        super().__init__()
        self.units = nn.ModuleList(FusionUnit(c, reduction) for c in channels)
        self.residual = residual

    def forward(self, a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for unit, x, y in zip(self.units, a, b, strict=True):
            fused = unit(x, y)
            out.append(fused + x if self.residual else fused)
        return out
