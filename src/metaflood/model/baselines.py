"""Baselines MetaRS is measured against (DESIGN.md section 5).

Both take the same inputs and `heads` as MetaRS, where a head names the modality
condition it serves ("sar": SAR only, "optical": optical only, "joint": both), so one
evaluation loop serves every model:

- SingleModalityNet: a plain network of the same backbone on SAR alone.
- EarlyFusionNet: SAR and optical bands stacked at the input of one network; a missing
  modality is zero-filled (zero is the training mean after normalisation). Trained on
  complete pairs, or with random modality dropout (see `drop_modalities`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from metaflood.model.backbone import ResNetEncoder
from metaflood.model.decoder import SegmentationDecoder
from metaflood.model.metars import HEADS, MetaRS, MetaRSConfig, _pad

ARCHITECTURES = ("metars", "sar_only", "early_fusion")


def _decoder(channels: tuple[int, ...], cfg: MetaRSConfig) -> SegmentationDecoder:
    return SegmentationDecoder(
        list(channels), cfg.fpn_channels, cfg.decoder_channels, cfg.num_classes
    )


class SingleModalityNet(nn.Module):
    """ResNet + the MetaRS decoder on the SAR bands only; it ignores any optical input."""

    heads = ("sar", "joint")

    def __init__(self, config: MetaRSConfig):
        super().__init__()
        self.config = config
        self.encoder = ResNetEncoder(config.backbone, config.width, len(config.sar_bands))
        self.decoder = _decoder(self.encoder.channels, config)

    def forward(
        self,
        sar: torch.Tensor | None,
        optical: torch.Tensor | None = None,
        heads: Iterable[str] = ("sar",),
        features: bool | None = None,
    ) -> dict[str, Any]:
        heads = tuple(dict.fromkeys(heads))
        if set(heads) - set(self.heads):
            raise ValueError(f"the SAR-only network serves {self.heads}, not {heads}")
        if sar is None:
            raise ValueError("the SAR-only network needs the SAR input")
        h, w = sar.shape[-2:]
        logits = self.decoder(self.encoder(_pad(sar)))[..., :h, :w]
        return dict.fromkeys(heads, logits)


class EarlyFusionNet(nn.Module):
    """One ResNet on the stacked SAR and optical bands; missing bands are zero-filled."""

    heads = HEADS

    def __init__(self, config: MetaRSConfig):
        super().__init__()
        self.config = config
        n_sar, n_opt = len(config.sar_bands), len(config.optical_bands)
        self.bands = (n_sar, n_opt)
        self.encoder = ResNetEncoder(config.backbone, config.width, n_sar + n_opt)
        self.decoder = _decoder(self.encoder.channels, config)

    def forward(
        self,
        sar: torch.Tensor | None,
        optical: torch.Tensor | None,
        heads: Iterable[str] = ("joint",),
        features: bool | None = None,
    ) -> dict[str, Any]:
        heads = tuple(dict.fromkeys(heads))
        ref = sar if sar is not None else optical
        if ref is None:
            raise ValueError("early fusion needs at least one input")
        n, _, h, w = ref.shape
        out = {}
        for head in heads:
            s = sar if head in ("sar", "joint") else None
            o = optical if head in ("optical", "joint") else None
            if head == "joint" and (s is None or o is None):
                raise ValueError("the joint condition needs both inputs")
            s = s if s is not None else ref.new_zeros(n, self.bands[0], h, w)
            o = o if o is not None else ref.new_zeros(n, self.bands[1], h, w)
            x = _pad(torch.cat([s, o], dim=1))
            out[head] = self.decoder(self.encoder(x))[..., :h, :w]
        return out


def drop_modalities(
    sar: torch.Tensor, optical: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample, keep both modalities or zero one of them, each with probability 1/3."""
    choice = torch.randint(0, 3, (sar.shape[0],), generator=generator)
    keep_sar = (choice != 1).to(sar.dtype).view(-1, 1, 1, 1).to(sar.device)
    keep_opt = (choice != 2).to(optical.dtype).view(-1, 1, 1, 1).to(optical.device)
    return sar * keep_sar, optical * keep_opt


def build_network(architecture: str, config: MetaRSConfig) -> nn.Module:
    """The network of a given architecture name (see ARCHITECTURES)."""
    if architecture == "metars":
        return MetaRS(config)
    if architecture == "sar_only":
        return SingleModalityNet(config)
    if architecture == "early_fusion":
        return EarlyFusionNet(config)
    raise ValueError(f"unknown architecture {architecture!r}; expected one of {ARCHITECTURES}")
