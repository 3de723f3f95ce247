"""`metaflood convert-checkpoint`: the EarthMiss authors' MetaRS weights as our checkpoint.

Their checkpoint (the `ever` trainer's {"model": state_dict, "global_step", "opt"}, keys
possibly prefixed "module.") names modules as their training code does (en_content,
en_sar, en_rgb, rgb_conv1, Project, Fuse, decoder_sar, decoder_rgb, decoder). Every
key is renamed to ours by the table below, every shape is checked against our network
of the same configuration, and the result is loaded strictly: a key left over, missing
or of another shape stops the conversion with the keys named.

The converted checkpoint records the authors' normalisation (their 8-bit image
statistics) and the assumed encoding of our bands into their input domain (see
`metaflood.model.encoding`), which inference applies.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from metaflood.core.classes import CLASS_NAMES
from metaflood.core.errors import ModelError
from metaflood.core.hashing import file_sha256
from metaflood.model.checkpoint import (
    build_model,
    load_checkpoint,
    read_torch_file,
    save_checkpoint,
)
from metaflood.model.encoding import InputEncoding
from metaflood.model.metars import MetaRS, MetaRSConfig
from metaflood.model.normalization import Normalization

# The authors' normalisation (configs/metadata/EarthMiss.py): 8-bit SAR and RGB images.
AUTHORS_NORMALIZATION = Normalization(
    sar_mean=[63.30051921735858],
    sar_std=[68.20405016],
    optical_mean=[111.97261949846957, 118.42392668739762, 115.031314378774],
    optical_std=[72.97088063, 72.98526569, 81.91774359],
)
SAR_BANDS = ["VV"]
OPTICAL_BANDS = ["red", "green", "blue"]  # EarthMiss RGB band order

# (their pattern, our replacement), applied in order; the first match renames a key.
PREFIXES: list[tuple[str, str]] = [
    (r"^en_content\.resnet\.", "meta_encoder."),
    (r"^rgb_conv1\.", "meta_encoder.optical_conv1."),
    (r"^en_sar\.resnet\.", "sar_encoder."),
    (r"^en_rgb\.resnet\.", "optical_encoder."),
    (r"^Project\.fuse_module_list\.(\d+)\.", r"project.units.\1."),
    (r"^Fuse\.fuse_module_list\.(\d+)\.", r"fuse.units.\1."),
    (r"^decoder_sar\.", "sar_decoder."),
    (r"^decoder_rgb\.", "optical_decoder."),
    (r"^decoder\.", "joint_decoder."),
]
# Inside a fusion unit and inside a decoder.
INNER: list[tuple[str, str]] = [
    (r"\.scse_1\.", ".gate_a."),
    (r"\.scse_2\.", ".gate_b."),
    (r"\.scse\.", ".gate_out."),
    (r"\.convblk\.conv\.", ".reduce.0."),
    (r"\.convblk\.bn\.", ".reduce.1."),
    (r"\.cSE\.", ".channel_gate."),
    (r"\.sSE\.", ".spatial_gate."),
    (r"_decoder\.0\.fpn_inner(\d+)\.0\.", lambda m: f"_decoder.fpn.lateral.{int(m[1]) - 1}."),
    (r"_decoder\.0\.fpn_layer(\d+)\.0\.", lambda m: f"_decoder.fpn.output.{int(m[1]) - 1}."),
    (r"_decoder\.1\.blocks\.", "_decoder.merge.branches."),
    (r"_decoder\.2\.", "_decoder.classifier."),
]
BLOCKS_TO_BACKBONE = {
    ("basic", (2, 2, 2, 2)): "resnet18",
    ("basic", (3, 4, 6, 3)): "resnet34",
    ("bottleneck", (3, 4, 6, 3)): "resnet50",
    ("bottleneck", (3, 4, 23, 3)): "resnet101",
}


def read_authors_state_dict(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """Their model weights, without "module." prefixes, and what else the file says."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: the authors' checkpoint does not exist")
    raw = read_torch_file(
        path, "a PyTorch checkpoint", zip_required=False, remedy="download it again"
    )
    info: dict[str, Any] = {}
    state = raw
    if isinstance(raw, dict):
        for key in ("model", "state_dict"):
            if isinstance(raw.get(key), dict):
                state = raw[key]
                break
        if isinstance(raw.get("global_step"), int):
            info["global_step"] = raw["global_step"]
    if not isinstance(state, dict) or not state:
        raise ModelError(f"{path}: holds no state dict of weights")
    weights = {}
    for key, value in state.items():
        if torch.is_tensor(value):
            weights[key.removeprefix("module.")] = value
    return weights, info


def rename(key: str) -> str | None:
    """Our name for one of their keys, or None when no rule covers it."""
    for pattern, repl in PREFIXES:
        if re.match(pattern, key):
            new = re.sub(pattern, repl, key, count=1)
            for inner, inner_repl in INNER:
                new = re.sub(inner, inner_repl, new)
            return new
    return None


def infer_config(weights: dict[str, torch.Tensor]) -> MetaRSConfig:
    """The configuration of their network, read from the shapes of its weights."""
    try:
        kind = "bottleneck" if "en_content.resnet.layer1.0.conv3.weight" in weights else "basic"
        blocks = tuple(
            1
            + max(
                int(m[1])
                for k in weights
                if (m := re.match(rf"en_content\.resnet\.layer{i}\.(\d+)\.", k))
            )
            for i in range(1, 5)
        )
        backbone = BLOCKS_TO_BACKBONE.get((kind, blocks))
        if backbone is None:
            raise ModelError(f"unsupported ResNet: {kind} blocks {blocks}")
        first = weights["en_content.resnet.layer1.0.conv1.weight"].shape[0]
        width = None if first == 64 else first
        fpn = weights["decoder_sar.0.fpn_inner1.0.weight"].shape[0]
        decoder = weights["decoder_sar.1.blocks.0.0.0.weight"].shape[0]
        classes = weights["decoder_sar.2.weight"].shape[0]
        hidden = weights["Project.fuse_module_list.0.scse_1.cSE.1.weight"].shape[0]
        channels = weights["Project.fuse_module_list.0.scse_1.cSE.1.weight"].shape[1]
        sar_in = weights["en_sar.resnet.conv1.weight"].shape[1]
        rgb_in = weights["en_rgb.resnet.conv1.weight"].shape[1]
    except (KeyError, ValueError) as err:
        raise ModelError(f"not the authors' MetaRS layout: {err!r} is missing") from err
    if (sar_in, rgb_in) != (len(SAR_BANDS), len(OPTICAL_BANDS)):
        raise ModelError(
            f"the authors' network takes {sar_in} SAR and {rgb_in} optical bands; "
            f"expected {len(SAR_BANDS)} and {len(OPTICAL_BANDS)}"
        )
    return MetaRSConfig(
        backbone=backbone,
        width=width,
        sar_bands=list(SAR_BANDS),
        optical_bands=list(OPTICAL_BANDS),
        num_classes=classes,
        fpn_channels=fpn,
        decoder_channels=decoder,
        se_reduction=channels // hidden,
    )


def map_state_dict(weights: dict[str, torch.Tensor], model: MetaRS) -> dict[str, torch.Tensor]:
    """Their weights under our names, checked key by key and shape by shape."""
    ours = model.state_dict()
    mapped, unknown = {}, []
    for key, value in weights.items():
        new = rename(key)
        if new is None:
            unknown.append(key)
        else:
            mapped[new] = value
    missing = sorted(set(ours) - set(mapped))
    extra = sorted(set(mapped) - set(ours))
    shapes = [
        f"{k} {tuple(mapped[k].shape)} vs ours {tuple(ours[k].shape)}"
        for k in sorted(set(mapped) & set(ours))
        if mapped[k].shape != ours[k].shape
    ]
    problems = []
    if unknown:
        problems.append(f"{len(unknown)} keys no rule maps (first: {unknown[:3]})")
    if missing:
        problems.append(f"{len(missing)} of our keys have no source (first: {missing[:3]})")
    if extra:
        problems.append(f"{len(extra)} mapped keys we do not have (first: {extra[:3]})")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatches (first: {shapes[:2]})")
    if problems:
        raise ModelError("the authors' weights do not map onto MetaRS: " + "; ".join(problems))
    return {k: mapped[k].to(ours[k].dtype) for k in ours}


def convert_authors_checkpoint(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    sar_full_scale_db: float,
    optical_full_scale: float,
) -> dict[str, Any]:
    """Convert; the written checkpoint is read back and rebuilt strictly before returning."""
    weights, info = read_authors_state_dict(src)
    try:
        cfg = infer_config(weights)
    except ModelError as err:
        raise ModelError(f"{src}: {err}") from err
    if cfg.num_classes != len(CLASS_NAMES):
        raise ModelError(
            f"{src}: the network predicts {cfg.num_classes} classes; the workflow expects "
            f"the {len(CLASS_NAMES)} EarthMiss classes"
        )
    model = MetaRS(cfg)
    try:
        state = map_state_dict(weights, model)
    except ModelError as err:
        raise ModelError(f"{src}: {err}") from err
    model.load_state_dict(state, strict=True)
    source = {
        "kind": "earthmiss-authors",
        "file": Path(src).name,
        "sha256": file_sha256(src),
        **info,
    }
    encoding = InputEncoding.earthmiss(sar_full_scale_db, optical_full_scale)
    save_checkpoint(out, model, AUTHORS_NORMALIZATION, encoding=encoding, source=source)
    build_model(load_checkpoint(out), out)  # strict round trip of what was written
    return {"config": cfg.to_dict(), "source": source, "encoding": encoding.to_dict()}
