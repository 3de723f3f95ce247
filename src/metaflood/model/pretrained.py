"""ImageNet initialisation of every ResNet body of a network from a local weights file.

The file is a torchvision/timm ResNet state dict (possibly under "state_dict" or
"model"), read with `weights_only=True`. The stem kernels are adapted to the bands:
SAR bands share the sum of the RGB kernels (divided among them), as the authors do;
optical bands take the kernel of their colour by name, other bands (near-infrared) the
mean of the three, all scaled so a flat image gives the response of an RGB one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from metaflood.core.errors import ModelError
from metaflood.model.checkpoint import read_torch_file

RGB_INDEX = {"red": 0, "green": 1, "blue": 2}
STEM_KEYS = ("conv1.weight", "optical_conv1.weight")


def read_resnet_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model.pretrained: {path} does not exist")
    try:
        state = read_torch_file(
            path, "a weights file", zip_required=False, remedy="download it again"
        )
    except ModelError as err:
        raise ModelError(f"model.pretrained: {err}") from err
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or "conv1.weight" not in state:
        raise ModelError(f"model.pretrained: {path} is not a ResNet state dict (no conv1.weight)")
    return {k.removeprefix("module."): v for k, v in state.items() if torch.is_tensor(v)}


def sar_stem(rgb_kernel: torch.Tensor, n_bands: int) -> torch.Tensor:
    summed = rgb_kernel.sum(dim=1, keepdim=True)
    return summed.repeat(1, n_bands, 1, 1) / n_bands


def optical_stem(rgb_kernel: torch.Tensor, bands: Sequence[str]) -> torch.Tensor:
    mean = rgb_kernel.mean(dim=1)
    parts = [rgb_kernel[:, RGB_INDEX[b]] if b in RGB_INDEX else mean for b in bands]
    return torch.stack(parts, dim=1) * (3.0 / len(bands))


def _load_body(body: nn.Module, source: dict[str, torch.Tensor], stems: dict) -> int:
    target = {}
    for key, value in body.state_dict().items():
        if key in stems:
            target[key] = stems[key]
        elif key in source and source[key].shape == value.shape:
            target[key] = source[key]
        elif key in source:
            raise ModelError(
                f"model.pretrained: {key} has shape {tuple(source[key].shape)}, the network "
                f"{tuple(value.shape)} (ImageNet weights need the standard widths: width null)"
            )
        else:
            raise ModelError(f"model.pretrained: the weights file lacks {key}")
    body.load_state_dict(target, strict=True)
    return len(target)


def load_imagenet_weights(model: nn.Module, path: str | os.PathLike) -> list[str]:
    """Initialise every ResNet body of `model` in place; returns lines for the log."""
    source = read_resnet_weights(path)
    rgb = source["conv1.weight"]
    if rgb.shape[1] != 3:
        raise ModelError(f"model.pretrained: conv1 takes {rgb.shape[1]} bands, expected RGB")
    cfg = model.config
    sar = sar_stem(rgb, len(cfg.sar_bands))
    opt = optical_stem(rgb, cfg.optical_bands)
    bodies: list[tuple[str, nn.Module, dict]] = []
    if hasattr(model, "meta_encoder"):
        stems = {"conv1.weight": sar, "optical_conv1.weight": opt}
        bodies += [
            ("meta_encoder", model.meta_encoder, stems),
            ("sar_encoder", model.sar_encoder, {"conv1.weight": sar}),
            ("optical_encoder", model.optical_encoder, {"conv1.weight": opt}),
        ]
    elif getattr(model, "bands", None):  # early fusion: SAR then optical bands stacked
        both = torch.cat([sar, opt], dim=1) / 2  # a flat image still responds as RGB
        bodies.append(("encoder", model.encoder, {"conv1.weight": both}))
    else:
        bodies.append(("encoder", model.encoder, {"conv1.weight": sar}))
    lines = []
    for name, body, stems in bodies:
        n = _load_body(body, source, stems)
        lines.append(f"pretrained: {name} initialised from {Path(path).name} ({n} tensors)")
    return lines
