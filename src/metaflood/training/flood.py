"""Training of the flood network (`metaflood.model.flood_network`) on a set's own flood
masks: the training split of an OMBRIA-layout set, each image standardised by its own
statistics as the network will read it, random crops turned and mirrored, one modality
dropped per sample so that the one network maps with both, or with SAR alone.

The recipe's defaults are the recipe that did best on OMBRIA's held-out triplets
(`benchmarks.supervised_flood`, docs/realdata.md): a U-Net, the optical image dropped
half of the time, cross-entropy and soft Dice, mean and standard deviation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from metaflood.core.config import PERIODS
from metaflood.core.errors import InputError
from metaflood.model.baselines import EarlyFusionNet, drop_modalities
from metaflood.model.flood_network import (
    FLOOD_NETWORKS,
    STATISTICS,
    FloodNetworkInputs,
    build_flood_network,
    save_flood_network,
    standardised,
    with_presence_band,
)
from metaflood.model.losses import segmentation_ce
from metaflood.training.layouts import FIT, LABEL_NONE, TRAIN, Sample, discover, load_ombria

DROPS = ("any", "optical")  # see FloodRecipe.drop
BATCH, CROP = 16, 128


@dataclass
class FloodSet:
    """Standardised inputs and flood labels of one split, in memory."""

    ids: list[str]
    sar: np.ndarray  # (n, 2, h, w): VV before, VV after
    optical: np.ndarray  # (n, 2 * bands, h, w): the optical bands before, then after
    label: np.ndarray  # (n, h, w): 0 dry, 1 flooded, LABEL_NONE unlabelled
    optical_bands: tuple[str, ...]  # the optical bands by name, as the samples carry them


def ombria_samples(root: Path, split: str) -> list[Sample]:
    """The triplets of one split of an OMBRIA-layout root; none is an error naming it."""
    samples = [load_ombria(ref) for ref in discover(root, "ombria", split)]
    if not samples:
        raise InputError(f"{root}: no OMBRIA triplet in the {split} split")
    return samples


def flood_set(samples: list[Sample], statistics: str) -> FloodSet:
    """The samples stacked, each period's image standardised by its own statistics (so
    that a set's stretch, not its floods, is what the standardisation removes)."""
    sar, optical = [], []
    for s in samples:
        for out, bands, modality in ((sar, s.sar, "SAR"), (optical, s.optical, "optical")):
            out.append(
                np.concatenate(
                    [standardised(bands[p], statistics, f"{s.id} {modality} {p}") for p in PERIODS]
                )
            )
    return FloodSet(
        ids=[s.id for s in samples],
        sar=np.stack(sar).astype(np.float32),
        optical=np.stack(optical).astype(np.float32),
        label=np.stack([s.flood for s in samples]),
        optical_bands=samples[0].optical_bands,
    )


def load_flood_set(root: Path, split: str, statistics: str) -> FloodSet:
    return flood_set(ombria_samples(root, split), statistics)


def random_batch(
    data: FloodSet, rng: np.random.Generator, batch: int, crop: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random crops, each turned by a multiple of 90 degrees and maybe mirrored."""
    n, _, h, w = data.sar.shape
    picks = rng.integers(0, n, batch)
    sar, optical, label = [], [], []
    for i in picks:
        y, x = rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
        window = np.s_[y : y + crop, x : x + crop]
        turns, mirror = rng.integers(0, 4), rng.random() < 0.5
        for out, array in ((sar, data.sar[i]), (optical, data.optical[i])):
            a = np.rot90(array[(slice(None), *window)], turns, axes=(1, 2))
            out.append(a[..., ::-1] if mirror else a)
        lab = np.rot90(data.label[i][window], turns)
        label.append(lab[..., ::-1] if mirror else lab)
    as_tensor = lambda arrays: torch.from_numpy(np.ascontiguousarray(np.stack(arrays)))  # noqa: E731
    return as_tensor(sar), as_tensor(optical), as_tensor(label).long()


def drop_optical(optical: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per sample, zero the optical bands with probability 1/2."""
    keep = torch.rand(optical.shape[0], generator=generator) < 0.5
    return optical * keep.to(optical.dtype).view(-1, 1, 1, 1)


def soft_dice(logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """1 - Dice of the flooded class's probability over the labelled pixels: weighs the
    flood, a small share of the pixels, as much as the dry land."""
    labelled = (label != LABEL_NONE).to(logits.dtype)
    flooded = torch.softmax(logits, dim=1)[:, 1] * labelled
    truth = (label == 1).to(logits.dtype) * labelled
    return 1 - (2 * (flooded * truth).sum() + 1) / (flooded.sum() + truth.sum() + 1)


@dataclass(frozen=True)
class FloodRecipe:
    """How the flood network learns (its fields are those of the benchmark's JSON)."""

    network: str = "unet"  # see FLOOD_NETWORKS
    # "any": either modality dropped, a third of the time each; "optical": the optical
    # bands half of the time (the network never learns to map without SAR).
    drop: str = "optical"
    dice: bool = True  # a soft Dice term on the flood class beside the cross-entropy
    presence_band: bool = False  # see flood_network.with_presence_band
    statistics: str = "moments"  # how each image is standardised: see STATISTICS
    iterations: int = 1500
    seed: int = 0

    def __post_init__(self) -> None:
        for name, allowed in (
            ("network", FLOOD_NETWORKS),
            ("drop", DROPS),
            ("statistics", STATISTICS),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} {getattr(self, name)!r}: one of {sorted(allowed)}")

    @classmethod
    def from_options(cls, options: object) -> FloodRecipe:
        """The recipe a command line's options (one attribute per field) ask for."""
        return cls(**{f.name: getattr(options, f.name) for f in fields(cls)})

    def inputs(self, optical_bands: tuple[str, ...]) -> FloodNetworkInputs:
        """What a network of this recipe reads, over these optical bands."""
        return FloodNetworkInputs(
            network=self.network,
            optical_bands=tuple(optical_bands),
            presence_band=self.presence_band,
            statistics=self.statistics,
        )


def train_flood_network(
    data: FloodSet,
    recipe: FloodRecipe,
    log: Callable[[str], None] = print,
    log_every: int = 100,
) -> EarlyFusionNet:
    """The network trained by `recipe` on `data`, in evaluation mode; the seed fixes the
    weights, the crops and the dropped modalities."""
    iterations = recipe.iterations
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    generator = torch.Generator().manual_seed(recipe.seed)
    net = build_flood_network(recipe.inputs(data.optical_bands))
    optimiser = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, 2e-3, total_steps=iterations)
    crop = min(CROP, data.sar.shape[-1])
    start = time.perf_counter()
    net.train()
    for step in range(iterations):
        sar, optical, label = random_batch(data, rng, batch=BATCH, crop=crop)
        if recipe.presence_band:
            optical = with_presence_band(optical)
        if recipe.drop == "optical":
            optical = drop_optical(optical, generator)
        else:
            sar, optical = drop_modalities(sar, optical, generator)
        logits = net(sar, optical, heads=("joint",))["joint"]
        loss = segmentation_ce(logits, label, ignore_index=LABEL_NONE)
        if recipe.dice:
            loss = loss + soft_dice(logits, label)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % log_every == 0 or step == iterations - 1:
            log(f"step {step}: loss {loss.item():.3f}, {time.perf_counter() - start:.0f} s")
    return net.eval()


def train_flood(
    root: Path,
    out: Path,
    recipe: FloodRecipe,
    threads: int = 1,
    log: Callable[[str], None] = print,
    split: str = TRAIN,
) -> dict:
    """Train on the training split of an OMBRIA-layout root (or its `fit` part, leaving
    the validation part for fitting the network's join) and write the checkpoint to
    `out`, the recipe and the set it learnt from recorded beside the weights."""
    if split not in (TRAIN, FIT):
        raise InputError(f"the flood network trains on the {TRAIN} split or its {FIT} part")
    torch.set_num_threads(max(1, int(threads)))
    data = load_flood_set(root, split, recipe.statistics)
    n = len(data.ids)
    log(f"{n} training triplets ({split}) from {root}")
    start = time.perf_counter()
    net = train_flood_network(data, recipe, log)
    seconds = round(time.perf_counter() - start, 1)
    save_flood_network(
        out,
        net,
        recipe.inputs(data.optical_bands),
        recipe=asdict(recipe),
        trained_on=str(root),
        split=split,
        triplets=n,
        training_seconds=seconds,
    )
    log(f"wrote {out}")
    return {
        "checkpoint": str(out),
        "triplets": n,
        "training_seconds": seconds,
        "recipe": asdict(recipe),
    }
