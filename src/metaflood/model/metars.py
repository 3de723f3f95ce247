"""MetaRS: a shared meta-modal encoder plus modality-specific encoders and three heads.

The SAR and optical heads each work from their own modality alone, so when one
modality is missing the other's head still maps; the joint head fuses the two meta
representations where both are present. Only the requested heads are computed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from metaflood.core.classes import NUM_CLASSES
from metaflood.core.errors import ModelError
from metaflood.model.backbone import MetaEncoder, MetaFeatures, ResNetEncoder
from metaflood.model.decoder import SegmentationDecoder, to_input_resolution
from metaflood.model.fusion import FusionStack

HEADS = ("sar", "optical", "joint")
# The heads that read each modality: its own, and the joint head, which fuses both.
HEADS_READING = {"sar": ("sar", "joint"), "optical": ("optical", "joint")}
# Inputs are padded to a multiple of the deepest stride so every level aligns.
SIZE_MULTIPLE = 32


@dataclass
class MetaRSConfig:
    """Architecture of a MetaRS network; stored in every checkpoint."""

    backbone: str = "resnet18"
    width: int | None = 32
    sar_bands: list[str] = field(default_factory=lambda: ["VV", "VH"])
    optical_bands: list[str] = field(default_factory=lambda: ["blue", "green", "red", "nir"])
    num_classes: int = NUM_CLASSES
    fpn_channels: int = 64
    decoder_channels: int = 64
    se_reduction: int = 16

    @classmethod
    def authors(cls, **overrides: Any) -> MetaRSConfig:
        """The published configuration (ResNet-50, 256-channel FPN, 128-channel decoder)."""
        base = {"backbone": "resnet50", "width": None, "fpn_channels": 256, "decoder_channels": 128}
        return cls(**{**base, **overrides})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, ignore_unknown: bool = False) -> MetaRSConfig:
        """Build from a dict; `ignore_unknown` lets the workflow's `model:` section (which
        also holds inference options such as tile and device) be passed as it is."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown and not ignore_unknown:
            raise ModelError(f"unknown model configuration keys: {unknown}")
        return cls(**{k: v for k, v in data.items() if k in names})


def modalities_read(heads: Iterable[str]) -> dict[str, bool]:
    """Whether each modality ("sar", "optical") is read by any of `heads`."""
    wanted = set(heads)
    return {m: bool(wanted.intersection(readers)) for m, readers in HEADS_READING.items()}


def _pad(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    ph, pw = -h % SIZE_MULTIPLE, -w % SIZE_MULTIPLE
    return F.pad(x, (0, pw, 0, ph)) if ph or pw else x


class MetaRS(nn.Module):
    """The MetaRS network; inputs are normalised (SAR dB, optical reflectance) tensors."""

    def __init__(self, config: MetaRSConfig | None = None):
        super().__init__()
        cfg = config or MetaRSConfig()
        self.config = cfg
        n_sar, n_opt = len(cfg.sar_bands), len(cfg.optical_bands)
        self.meta_encoder = MetaEncoder(cfg.backbone, cfg.width, n_sar, n_opt)
        self.sar_encoder = ResNetEncoder(cfg.backbone, cfg.width, n_sar)
        self.optical_encoder = ResNetEncoder(cfg.backbone, cfg.width, n_opt)
        chans = self.meta_encoder.channels
        # One projection of specific onto meta features, shared by both modality heads
        # (the authors' `Project`); the joint head fuses the two meta features (`Fuse`).
        self.project = FusionStack(chans, cfg.se_reduction, residual=True)
        self.fuse = FusionStack(chans, cfg.se_reduction)
        wide = [2 * c for c in chans]  # projected feature concatenated with the meta feature
        decoder = (cfg.fpn_channels, cfg.decoder_channels, cfg.num_classes)
        self.sar_decoder = SegmentationDecoder(wide, *decoder)
        self.optical_decoder = SegmentationDecoder(wide, *decoder)
        self.joint_decoder = SegmentationDecoder(list(chans), *decoder)

    def _modality_head(
        self, modality: str, x: torch.Tensor, meta: list[torch.Tensor], full_resolution: bool
    ) -> torch.Tensor:
        encoder = self.sar_encoder if modality == "sar" else self.optical_encoder
        decoder = self.sar_decoder if modality == "sar" else self.optical_decoder
        projected = self.project(encoder(x), meta)
        wide = [torch.cat([p, m], dim=1) for p, m in zip(projected, meta, strict=True)]
        return decoder(wide, full_resolution)

    def _check(self, x: torch.Tensor | None, modality: str) -> torch.Tensor:
        bands = self.config.sar_bands if modality == "sar" else self.config.optical_bands
        if x is None:
            raise ValueError(f"the requested heads need the {modality} input")
        if x.ndim != 4 or x.shape[1] != len(bands):
            raise ModelError(
                f"{modality} input has shape {tuple(x.shape)}; expected (N, {len(bands)}, H, W) "
                f"for bands {bands}"
            )
        return _pad(x)

    def forward(
        self,
        sar: torch.Tensor | None,
        optical: torch.Tensor | None,
        heads: Iterable[str] = HEADS,
        features: bool | None = None,
        full_resolution: bool = True,
    ) -> dict[str, Any]:
        """Logits (N, classes, H, W) of each requested head, keyed by head name.

        With `features` (default: in training mode) also the meta features
        ("meta_sar", "meta_optical": lists of 4 maps) and instance-normalised maps
        ("in_sar", "in_optical": lists of 3 maps) of each modality that was encoded.
        With `full_resolution=False` the logits are the decoders' own, at stride 4 of
        the input padded to SIZE_MULTIPLE (see `probabilities`).
        """
        heads = tuple(dict.fromkeys(heads))
        unknown = set(heads) - set(HEADS)
        if unknown:
            raise ValueError(f"unknown heads {sorted(unknown)}; expected some of {HEADS}")
        features = self.training if features is None else features
        need_sar, need_opt = modalities_read(heads).values()
        ref = sar if need_sar else optical
        size = ref.shape[-2:] if ref is not None else None

        both = need_sar and need_opt and sar is not None and optical is not None
        if both and (sar.shape[-2:] != optical.shape[-2:] or sar.shape[0] != optical.shape[0]):
            raise ValueError(
                f"SAR {tuple(sar.shape)} and optical {tuple(optical.shape)} inputs differ "
                "in batch or size"
            )
        meta: dict[str, MetaFeatures] = {}
        if need_sar:
            sar = self._check(sar, "sar")
            meta["sar"] = self.meta_encoder(sar, "sar")
        if need_opt:
            optical = self._check(optical, "optical")
            meta["optical"] = self.meta_encoder(optical, "optical")

        out: dict[str, Any] = {}
        if "sar" in heads:
            out["sar"] = self._modality_head("sar", sar, meta["sar"].features, full_resolution)
        if "optical" in heads:
            out["optical"] = self._modality_head(
                "optical", optical, meta["optical"].features, full_resolution
            )
        if "joint" in heads:
            fused = self.fuse(meta["sar"].features, meta["optical"].features)
            out["joint"] = self.joint_decoder(fused, full_resolution)
        if full_resolution:
            for name in heads:
                out[name] = out[name][..., : size[0], : size[1]]
        if features:
            for modality, m in meta.items():
                out[f"meta_{modality}"] = m.features
                out[f"in_{modality}"] = m.in_maps
        return out

    def probabilities(
        self, sar: torch.Tensor | None, optical: torch.Tensor | None, heads: Iterable[str]
    ) -> dict[str, torch.Tensor]:
        """Class probabilities (N, classes, H, W) of each requested head, for inference.

        The softmax runs on the decoders' stride-4 logits and the probabilities are
        interpolated to the input's resolution, the same bilinear step the logits take
        in `forward`: a softmax over 16 times fewer pixels, and an interpolation of
        probabilities is itself a distribution (what the full-resolution softmax cost is
        in docs/performance.md). The class taken
        (argmax) differs from the full-resolution softmax's only where two classes
        score alike within a 4-pixel cell.

        The probabilities come in channels-last order, as the logits of a model
        prepared for inference do: `torch.softmax` returns the default order, in which
        the x4 interpolation is slower on the CPU (measured in docs/performance.md).
        """
        heads = tuple(dict.fromkeys(heads))
        out = self.forward(sar, optical, heads, features=False, full_resolution=False)
        ref = sar if modalities_read(heads)["sar"] else optical  # as `forward` reads
        h, w = ref.shape[-2:]
        return {
            name: to_input_resolution(
                torch.softmax(out[name].float(), dim=1).contiguous(
                    memory_format=torch.channels_last
                )
            )[..., :h, :w]
            for name in heads
        }
