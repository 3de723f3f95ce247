"""ResNet encoders built from timm: the modality-specific ones and the shared meta encoder.

Module names stay those of torchvision/timm (conv1, bn1, layer1.0.conv1, ...), so that
published ResNet weights, and the authors' MetaRS checkpoint, map onto ours by name.
"""

from __future__ import annotations

from typing import NamedTuple

import timm
import torch
import torch.nn.functional as F
from timm.models.resnet import ResNet
from torch import nn

from metaflood.core.errors import ModelError

MODALITIES = ("sar", "optical")
# Output strides of the four feature maps every encoder returns.
FEATURE_STRIDES = (4, 8, 16, 32)


def create_resnet(name: str, width: int | None, in_chans: int) -> ResNet:
    """A randomly initialised timm ResNet; `width` scales every stage (None = standard)."""
    kwargs: dict = {}
    if width is not None:
        # Stage widths only; timm keeps the 64-channel stem, so resnet18 with width 64 is
        # exactly the standard resnet18.
        kwargs["channels"] = (width, 2 * width, 4 * width, 8 * width)
    try:
        net = timm.create_model(name, pretrained=False, in_chans=in_chans, num_classes=0, **kwargs)
    except (RuntimeError, TypeError) as err:
        raise ModelError(f"backbone {name!r} cannot be built by timm ({err})") from err
    if not isinstance(net, ResNet):
        raise ModelError(f"backbone {name!r} is not a timm ResNet")
    return net


class ResNetEncoder(nn.Module):
    """A batch-norm ResNet body (no classifier): four maps at strides 4, 8, 16, 32."""

    def __init__(self, backbone: str, width: int | None, in_chans: int):
        super().__init__()
        net = create_resnet(backbone, width, in_chans)
        self.conv1 = net.conv1
        self.bn1 = net.bn1
        self.act1 = net.act1
        self.maxpool = net.maxpool
        self.layer1 = net.layer1
        self.layer2 = net.layer2
        self.layer3 = net.layer3
        self.layer4 = net.layer4
        self.channels: tuple[int, ...] = tuple(info["num_chs"] for info in net.feature_info[-4:])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [c2, c3, c4, c5]


class MetaFeatures(NamedTuple):
    """What the meta encoder returns for one modality."""

    features: list[torch.Tensor]  # strides 4, 8, 16, 32
    in_maps: list[torch.Tensor]  # instance-normalised stem, layer1 and layer2 maps


class InstanceNorm(nn.Module):
    """Instance normalisation without affine parameters, as group norm with one channel
    per group: the same numbers as nn.InstanceNorm2d, without its reshaping copies."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.channels, self.eps = channels, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x, self.channels, eps=self.eps)


class InstanceNormReLU(nn.Module):
    """Instance normalisation (no affine parameters) then ReLU, keeping the normalised map.

    It replaces the activation after the residual sum of a stage's last block, the place
    RobustNet's instance-selective whitening uses; the normalised map, before the ReLU,
    is what the MMR regulariser measures. It holds no parameters, so weights trained
    with or without it load either way.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.norm = InstanceNorm(channels)
        self.last: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.last = self.norm(x)
        return torch.relu(self.last)


def _last_activation_name(block: nn.Module) -> str:
    # timm: BasicBlock ends with act2, Bottleneck with act3 (after the residual sum).
    return "act3" if hasattr(block, "conv3") else "act2"


class MetaEncoder(nn.Module):
    """One ResNet body shared by both modalities, entered through a stem per modality.

    Instance normalisation without affine parameters in the stem and at the end of the
    first two stages removes each image's channel statistics (its modality "style"), so
    that the deeper, shared layers see comparable inputs from SAR and optical; the
    normalised maps are also where the MMR regulariser measures modality-specific
    correlations. The SAR stem keeps the name conv1 and the optical one is a separate
    convolution, as in the authors' model (en_content.conv1 and rgb_conv1).
    """

    def __init__(self, backbone: str, width: int | None, sar_chans: int, optical_chans: int):
        super().__init__()
        net = create_resnet(backbone, width, sar_chans)
        stem = create_resnet(backbone, width, optical_chans)
        self.conv1 = net.conv1
        self.optical_conv1 = stem.conv1
        stem_chs = net.bn1.num_features
        self.bn1 = InstanceNorm(stem_chs)
        self.maxpool = net.maxpool
        self.layer1 = net.layer1
        self.layer2 = net.layer2
        self.layer3 = net.layer3
        self.layer4 = net.layer4
        self.channels: tuple[int, ...] = tuple(info["num_chs"] for info in net.feature_info[-4:])
        self._in_taps: list[InstanceNormReLU] = []
        for layer, chs in ((self.layer1, self.channels[0]), (self.layer2, self.channels[1])):
            tap = InstanceNormReLU(chs)
            setattr(layer[-1], _last_activation_name(layer[-1]), tap)
            self._in_taps.append(tap)
        # Channel counts of the instance-normalised maps (stem, layer1, layer2).
        self.in_channels_list: tuple[int, ...] = (stem_chs, self.channels[0], self.channels[1])

    def stem(self, modality: str) -> nn.Module:
        if modality == "sar":
            return self.conv1
        if modality == "optical":
            return self.optical_conv1
        raise ValueError(f"unknown modality {modality!r} (expected one of {MODALITIES})")

    def forward(self, x: torch.Tensor, modality: str) -> MetaFeatures:
        s = self.bn1(self.stem(modality)(x))
        x = self.maxpool(torch.relu(s))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        in_maps = [s] + [tap.last for tap in self._in_taps]
        for tap in self._in_taps:
            tap.last = None  # no reference to the graph outlives the call
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return MetaFeatures([c2, c3, c4, c5], in_maps)
