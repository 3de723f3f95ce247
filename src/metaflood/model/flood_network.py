"""A network that maps flood directly from a before/after stack, learnt from a set's own
flood masks: a line of evidence beside the SAR change, for events like those it learnt.

MetaRS learns land cover and metaflood weighs the change of the water maps; this network
instead learns flood outlines end to end, from the pre- and post-event VV and optical
bands stacked (early fusion), each image standardised by its own statistics so that 8-bit
stretched sets and calibrated dB meet. A missing or clouded optical image is zero-filled,
as in training (the `sar` head: the same weights, optical zeros).

A checkpoint is a plain dictionary (tensors, strings, numbers) loaded with
`torch.load(..., weights_only=True)`: the state dict and what reading its inputs takes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from metaflood.core.config import PERIODS
from metaflood.core.errors import InputError
from metaflood.model.baselines import EarlyFusionNet
from metaflood.model.metars import MetaRSConfig
from metaflood.model.normalization import SCENE, SCENE_MOMENTS, scene_statistics

FORMAT = "metaflood-flood-network/1"
# How each image is standardised (the flood network's `statistics`) -> the scene
# normalisation mode it matches.
STATISTICS = {"robust": SCENE, "moments": SCENE_MOMENTS}
FLOODED = 1  # the flooded class of the network's two (dry, flooded)


def _convolutions(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, padding=1),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
        nn.Conv2d(outputs, outputs, 3, padding=1),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
    )


class UNetDown(nn.Module):
    """The contracting half: a map per level, each half the size of the one before."""

    def __init__(self, inputs: int, widths: tuple[int, ...]):
        super().__init__()
        channels = (inputs, *widths)
        self.levels = nn.ModuleList(
            _convolutions(a, b) for a, b in zip(channels[:-1], widths, strict=True)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = []
        for i, level in enumerate(self.levels):
            x = level(x if i == 0 else nn.functional.max_pool2d(x, 2))
            maps.append(x)
        return maps


class UNetUp(nn.Module):
    """The expanding half: each level upsampled and joined to the map of its size."""

    def __init__(self, widths: tuple[int, ...], classes: int):
        super().__init__()
        pairs = list(zip(widths[:0:-1], widths[-2::-1], strict=True))  # (deeper, shallower)
        self.up = nn.ModuleList(nn.ConvTranspose2d(a, b, 2, stride=2) for a, b in pairs)
        self.merge = nn.ModuleList(_convolutions(2 * b, b) for _, b in pairs)
        self.classifier = nn.Conv2d(widths[0], classes, 1)

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        x = maps[-1]
        for up, merge, skip in zip(self.up, self.merge, maps[-2::-1], strict=True):
            x = merge(torch.cat([up(x), skip], dim=1))
        return self.classifier(x)


class UNetFusionNet(EarlyFusionNet):
    """Early fusion (stacked bands, a missing modality zero-filled) through a plain
    four-level U-Net (16 to 128 channels) that keeps full resolution."""

    def __init__(self, config: MetaRSConfig, widths: tuple[int, ...] = (16, 32, 64, 128)):
        nn.Module.__init__(self)
        self.config = config
        self.bands = (len(config.sar_bands), len(config.optical_bands))
        self.encoder = UNetDown(sum(self.bands), widths)
        self.decoder = UNetUp(widths, config.num_classes)


# `early_fusion`: the compact MetaRS's ResNet-18 at width 32 and its decoder (stride 4).
FLOOD_NETWORKS = {"early_fusion": EarlyFusionNet, "unet": UNetFusionNet}


@dataclass(frozen=True)
class FloodNetworkInputs:
    """What a flood network reads, recorded in its checkpoint: the network, the optical
    bands by name (each before, then after, behind VV before and VV after), whether a
    band of ones tells it the optical image is there, and how images are standardised."""

    network: str
    optical_bands: tuple[str, ...]
    presence_band: bool = False
    statistics: str = "moments"

    def __post_init__(self) -> None:
        if self.network not in FLOOD_NETWORKS:
            raise ValueError(f"flood network {self.network!r}: one of {sorted(FLOOD_NETWORKS)}")
        if self.statistics not in STATISTICS:
            raise ValueError(f"statistics {self.statistics!r}: one of {sorted(STATISTICS)}")

    @property
    def optical_channels(self) -> int:
        return len(PERIODS) * len(self.optical_bands) + self.presence_band


def build_flood_network(inputs: FloodNetworkInputs) -> EarlyFusionNet:
    config = MetaRSConfig(
        sar_bands=[f"VV_{p}" for p in PERIODS],
        optical_bands=[f"optical_{i}" for i in range(inputs.optical_channels)],
        num_classes=2,
    )
    return FLOOD_NETWORKS[inputs.network](config)


def save_flood_network(path: Path, net: nn.Module, inputs: FloodNetworkInputs, **meta) -> None:
    """The checkpoint: the state dict, the inputs and any plain `meta` (the recipe, the
    training set), written under a temporary name and renamed when complete."""
    fields = asdict(inputs)
    fields["optical_bands"] = list(inputs.optical_bands)
    checkpoint = {"format": FORMAT, "inputs": fields, "meta": meta, "state_dict": net.state_dict()}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(checkpoint, partial)
    partial.replace(path)


def load_flood_network(
    path: Path, map_location: str | torch.device = "cpu"
) -> tuple[EarlyFusionNet, FloodNetworkInputs]:
    """The network in evaluation mode and what it reads; a file that is not a flood
    network checkpoint is named."""
    if not Path(path).is_file():
        raise InputError(f"{path}: flood network checkpoint not found")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a pickle with code, a truncated file
        raise InputError(f"{path}: not a readable flood network checkpoint ({exc})") from exc
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise InputError(f"{path}: not a flood network checkpoint (format {FORMAT} expected)")
    fields = dict(checkpoint["inputs"])
    inputs = FloodNetworkInputs(**{**fields, "optical_bands": tuple(fields["optical_bands"])})
    net = build_flood_network(inputs)
    try:
        net.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as exc:
        raise InputError(f"{path}: its weights do not fit a {inputs.network} network") from exc
    return net.to(map_location).eval(), inputs


def standardised(bands: np.ndarray, statistics: str, what: str = "image") -> np.ndarray:
    """Each band by its own centre and spread over its finite pixels (see STATISTICS);
    0, the centre, where a value is missing."""
    stats = scene_statistics(bands, STATISTICS[statistics])
    if stats is None:
        raise InputError(f"{what}: too few valid pixels to standardise the image")
    return apply_statistics(bands, stats)


def apply_statistics(bands: np.ndarray, stats: tuple[list[float], list[float]]) -> np.ndarray:
    """(bands, h, w) standardised by (centre, spread) per band; 0, the centre, where a
    value is missing or not finite (no backscatter at all reads -inf dB)."""
    centre, spread = (np.asarray(v, np.float32)[:, None, None] for v in stats)
    out = ((bands - centre) / spread).astype(np.float32)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def with_presence_band(optical: torch.Tensor) -> torch.Tensor:
    """The optical bands and a band of ones: zero-filled with them where the image is
    missing, so the network knows it is."""
    return torch.cat([optical, optical.new_ones(optical[:, :1].shape)], dim=1)


def dihedral(x: torch.Tensor, turns: int, mirror: bool) -> torch.Tensor:
    """`x` turned by `turns` quarter turns, then maybe mirrored (last two dimensions)."""
    x = torch.rot90(x, turns, dims=(-2, -1))
    return x.flip(-1) if mirror else x


def undo_dihedral(x: torch.Tensor, turns: int, mirror: bool) -> torch.Tensor:
    x = x.flip(-1) if mirror else x
    return torch.rot90(x, -turns, dims=(-2, -1))


# Every turn and mirror of the square (test-time augmentation), or the image as it is.
VIEWS = {True: [(t, m) for t in range(4) for m in (False, True)], False: [(0, False)]}


@torch.no_grad()
def flood_probability(
    nets: list[EarlyFusionNet],
    sar: torch.Tensor,
    optical: torch.Tensor,
    heads: tuple[str, ...],
    tta: bool = False,
) -> dict[str, np.ndarray]:
    """Per head, the flooded class's softmax (one image: `sar` and `optical` of batch 1)
    averaged over the networks and, with `tta`, over the eight turns and mirrors of the
    input (each turned back). The `sar` head zero-fills the optical bands."""
    total = dict.fromkeys(heads, 0.0)
    views = VIEWS[tta]
    for net in nets:
        for turns, mirror in views:
            view = (dihedral(x, turns, mirror) for x in (sar, optical))
            for head, logits in net(*view, heads=heads).items():
                flooded = torch.softmax(logits, dim=1)[:, FLOODED : FLOODED + 1]
                total[head] = total[head] + undo_dihedral(flooded, turns, mirror)
    return {head: (t / (len(nets) * len(views)))[0, 0].cpu().numpy() for head, t in total.items()}
