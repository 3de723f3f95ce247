"""The segmentation decoder shared by every MetaRS head: FPN, semantic-FPN merge, classifier."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from metaflood.model.backbone import FEATURE_STRIDES

# The decoder classifies at a quarter of the input's resolution.
OUTPUT_STRIDE = 4


def to_input_resolution(x: torch.Tensor) -> torch.Tensor:
    """Bilinear x4 of the decoder's output (align_corners=True, as the authors'
    nn.UpsamplingBilinear2d: converted weights were trained with this geometry)."""
    return F.interpolate(x, scale_factor=OUTPUT_STRIDE, mode="bilinear", align_corners=True)


class FPN(nn.Module):
    """Feature pyramid: gives the shallow, precisely located levels the deep levels' context."""

    def __init__(self, in_channels: Sequence[int], out_channels: int):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, out_channels, 1, bias=False) for c in in_channels)
        self.output = nn.ModuleList(
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False) for _ in in_channels
        )
        for conv in [*self.lateral, *self.output]:
            nn.init.kaiming_uniform_(conv.weight, a=1)

    def forward(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        inner = self.lateral[-1](feats[-1])
        outs = [self.output[-1](inner)]
        for i in range(len(feats) - 2, -1, -1):
            lateral = self.lateral[i](feats[i])
            inner = lateral + F.interpolate(inner, size=lateral.shape[-2:], mode="nearest")
            outs.insert(0, self.output[i](inner))
        return outs


def _merge_block(in_ch: int, out_ch: int, upsample: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    ]
    if upsample:
        # align_corners=True, as the authors' nn.UpsamplingBilinear2d: converted weights
        # were trained with this geometry.
        layers.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True))
    return nn.Sequential(*layers)


class SemanticFPNMerge(nn.Module):
    """Brings every pyramid level to stride 4 (conv-BN-ReLU + 2x steps) and averages them."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        strides: Sequence[int] = FEATURE_STRIDES,
        out_stride: int = OUTPUT_STRIDE,
    ):
        super().__init__()
        self.branches = nn.ModuleList()
        for stride in strides:
            steps = int(math.log2(stride // out_stride))
            blocks = [
                _merge_block(in_channels if i == 0 else out_channels, out_channels, True)
                for i in range(steps)
            ] or [_merge_block(in_channels, out_channels, False)]
            self.branches.append(nn.Sequential(*blocks))

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        total = None
        for branch, f in zip(self.branches, feats, strict=True):
            out = branch(f)
            total = out if total is None else total + out  # no stacked copy
        return total / len(self.branches)


class SegmentationDecoder(nn.Module):
    """Multi-scale features (strides 4..32) to full-resolution class logits."""

    def __init__(
        self,
        in_channels: Sequence[int],
        fpn_channels: int,
        decoder_channels: int,
        num_classes: int,
    ):
        super().__init__()
        self.fpn = FPN(in_channels, fpn_channels)
        self.merge = SemanticFPNMerge(fpn_channels, decoder_channels)
        self.classifier = nn.Conv2d(decoder_channels, num_classes, 1)

    def forward(self, feats: Sequence[torch.Tensor], full_resolution: bool = True) -> torch.Tensor:
        """Class logits at the input's resolution, or (`full_resolution=False`) at
        OUTPUT_STRIDE, for a caller that interpolates something else (probabilities)."""
        logits = self.classifier(self.merge(self.fpn(feats)))
        return to_input_resolution(logits) if full_resolution else logits
