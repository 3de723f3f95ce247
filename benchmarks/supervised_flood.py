"""How far a network trained on a flood set's own masks gets on its held-out triplets: a
reference for metaflood's flood extent, which learns land cover and weighs evidence but
never learns the set's flood outlines end to end.

    .venv/bin/python -m benchmarks.supervised_flood ../shared/realdata/ombria \
        [--network early_fusion|unet] [--drop any|optical] [--dice] [--presence-band] \
        [--statistics robust|moments] [--iterations 1500] [--threads 2] [--seed 0] \
        [--out results/realdata/supervised_flood]
    .venv/bin/python -m benchmarks.supervised_flood ../shared/realdata/ombria \
        --ensemble RUN [RUN ...] [--tta] --out results/realdata/NAME

Two networks, each with two classes (dry and flooded) over the same stacked bands, a
missing modality zero-filled: `early_fusion`, the project's early-fusion baseline (the
compact MetaRS's ResNet-18 at width 32 and its decoder, stride 4), and `unet`, a plain
four-level U-Net (16 to 128 channels) that keeps full resolution. Each reads the pre-
and post-event VV and optical bands of an OMBRIA-layout set, each band standardised by
its own image (median and interquartile spread, as `train.normalization: scene`, or with
`--statistics moments` mean and standard deviation, as `scene_moments`), and trains on
the set's training split only (the split of `metaflood.training.layouts`), dropping one
modality at random per sample, so that one network is scored with both modalities, with
SAR only and with optical only: either modality, each a third of the time
(`drop_modalities`, `--drop any`), or the optical bands half of the time (`--drop
optical`: the network never learns to map without SAR). `--dice` adds a soft Dice term
on the flood class to the cross-entropy. `--presence-band` gives the optical image one
more band, of ones, which the zero-filling of a missing image turns to zeros: the
network is told whether the optical image is there rather than left to tell a missing
image from a flat one. The same run scores, on the same pixels, the log-ratio of VV
below its Otsu threshold per sample, metaflood's SAR change evidence, and the network's
flood map joined to the SAR change's (either, or both: whether the two find different
floods). Held-out and training-split IoU are both reported: the gap says how much of
what it learnt were the training events themselves.

`--ensemble` trains nothing: it scores the networks earlier runs saved under their --out
folders, their flood probabilities averaged (seeds of one recipe, say). `--tta` averages
each network over the eight turns and mirrors of the image (test-time augmentation).

It writes `supervised_flood.json`, `supervised_flood.md` and, when it trains, the
network's state dict `network.pt` under --out.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from benchmarks.sar_threshold_ceiling import vv_evidence
from benchmarks.tables import FLOOD_SCORES, split_table
from metaflood.core.settings import ChangeSettings, section_defaults
from metaflood.flood import sar_change
from metaflood.model.baselines import EarlyFusionNet, drop_modalities
from metaflood.model.losses import segmentation_ce
from metaflood.model.metars import MetaRSConfig
from metaflood.model.normalization import SCENE, SCENE_MOMENTS, scene_statistics
from metaflood.realdata.scores import Tally, otsu_below
from metaflood.training.layouts import LABEL_NONE, TEST, TRAIN, discover, load_ombria

PERIODS = ("pre", "post")
CONDITIONS = {"both": "joint", "sar_only": "sar", "optical_only": "optical"}
BASELINE = "log-ratio Otsu (VV, per sample)"
SAR_CHANGE = "SAR change (VV, the change section's defaults)"
# The network's flood map joined to the SAR change's: whether the two find different floods.
WITH_SAR_CHANGE = {
    (condition, join): f"{condition} {word} SAR change"
    for condition in ("both", "sar_only")
    for join, word in ((np.logical_or, "or"), (np.logical_and, "and"))
}
WEIGHTS = "network.pt"  # the trained network's state dict, under --out


@dataclass
class Triplets:
    """Scene-standardised inputs and flood labels of one split, in memory."""

    ids: list[str]
    sar: np.ndarray  # (n, 2, h, w): VV before, VV after
    optical: np.ndarray  # (n, 2 * bands, h, w): the optical bands before, then after
    label: np.ndarray  # (n, h, w): 0 dry, 1 flooded, LABEL_NONE unlabelled
    log_ratio: np.ndarray = field(repr=False)  # (n, h, w): VV after minus before, dB
    sar_change: np.ndarray = field(repr=False)  # (n, h, w): flagged by the SAR change


# --statistics -> the scene normalisation mode (train.normalization) it matches.
STATISTICS = {"robust": SCENE, "moments": SCENE_MOMENTS}


def standardised(bands: np.ndarray, what: str = "image", statistics: str = "robust") -> np.ndarray:
    """Each band by its own centre and spread: median and robust spread (`robust`, the
    scene normalisation), or mean and standard deviation (`moments`, scene_moments)."""
    stats = scene_statistics(bands, STATISTICS[statistics])
    if stats is None:
        raise SystemExit(f"{what}: too few valid pixels to standardise the image")
    centre, spread = (np.asarray(v, np.float32)[:, None, None] for v in stats)
    return np.nan_to_num((bands - centre) / spread)


def load_split(root: Path, split: str, statistics: str = "robust") -> Triplets:
    refs = discover(root, "ombria", split)
    samples = [load_ombria(ref) for ref in refs]
    if not samples:
        raise SystemExit(f"{root}: no OMBRIA triplet in the {split} split")
    change = ChangeSettings.from_section(section_defaults("change"))
    sar, optical = [], []
    for s in samples:
        for out, bands, modality in ((sar, s.sar, "SAR"), (optical, s.optical, "optical")):
            out.append(
                np.concatenate(
                    [standardised(bands[p], f"{s.id} {modality} {p}", statistics) for p in PERIODS]
                )
            )
    return Triplets(
        ids=[s.id for s in samples],
        sar=np.stack(sar).astype(np.float32),
        optical=np.stack(optical).astype(np.float32),
        label=np.stack([s.flood for s in samples]),
        log_ratio=np.stack([s.sar["post"][0] - s.sar["pre"][0] for s in samples]),
        sar_change=np.stack(
            [vv_evidence(s, change)[0].evidence == sar_change.FLOOD_SIGNAL for s in samples]
        ),
    )


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
    """Early fusion (stacked bands, a missing modality zero-filled) through a U-Net."""

    def __init__(self, config: MetaRSConfig, widths: tuple[int, ...] = (16, 32, 64, 128)):
        nn.Module.__init__(self)
        self.config = config
        self.bands = (len(config.sar_bands), len(config.optical_bands))
        self.encoder = UNetDown(sum(self.bands), widths)
        self.decoder = UNetUp(widths, config.num_classes)


NETWORKS = {"early_fusion": EarlyFusionNet, "unet": UNetFusionNet}


def build_network(name: str, optical_bands: int) -> EarlyFusionNet:
    config = MetaRSConfig(
        sar_bands=["VV_pre", "VV_post"],
        optical_bands=[f"optical_{i}" for i in range(optical_bands)],
        num_classes=2,
    )
    return NETWORKS[name](config)


def random_batch(
    data: Triplets, rng: np.random.Generator, batch: int, crop: int
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
    """1 - Dice of the flooded class's probability over the labelled pixels."""
    labelled = (label != LABEL_NONE).to(logits.dtype)
    flooded = torch.softmax(logits, dim=1)[:, 1] * labelled
    truth = (label == 1).to(logits.dtype) * labelled
    return 1 - (2 * (flooded * truth).sum() + 1) / (flooded.sum() + truth.sum() + 1)


@dataclass(frozen=True)
class Recipe:
    """How the reference network learns."""

    network: str = "early_fusion"
    drop: str = "any"  # "any": either modality, a third of the time each; "optical"
    dice: bool = False
    presence_band: bool = False
    statistics: str = "robust"  # how each image is standardised: see STATISTICS
    iterations: int = 1500
    seed: int = 0


def with_presence_band(optical: torch.Tensor) -> torch.Tensor:
    """The optical bands and a band of ones: zero-filled with them where the image is
    missing, so the network knows it is."""
    return torch.cat([optical, optical.new_ones(optical[:, :1].shape)], dim=1)


def train(data: Triplets, recipe: Recipe, log_every: int = 100) -> EarlyFusionNet:
    iterations = recipe.iterations
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    generator = torch.Generator().manual_seed(recipe.seed)
    net = build_network(recipe.network, data.optical.shape[1] + recipe.presence_band)
    optimiser = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, 2e-3, total_steps=iterations)
    crop = min(128, data.sar.shape[-1])
    start = time.perf_counter()
    net.train()
    for step in range(iterations):
        sar, optical, label = random_batch(data, rng, batch=16, crop=crop)
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
            print(
                f"step {step}: loss {loss.item():.3f}, {time.perf_counter() - start:.0f} s",
                flush=True,
            )
    return net.eval()


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
    """Per head, the flooded class's softmax averaged over the networks and, with `tta`,
    over the eight turns and mirrors of the input (each turned back)."""
    total = dict.fromkeys(heads, 0.0)
    views = VIEWS[tta]
    for net in nets:
        for turns, mirror in views:
            view = (dihedral(x, turns, mirror) for x in (sar, optical))
            for head, logits in net(*view, heads=heads).items():
                flooded = torch.softmax(logits, dim=1)[:, 1:2]
                total[head] = total[head] + undo_dihedral(flooded, turns, mirror)
    return {head: (t / (len(nets) * len(views)))[0, 0].numpy() for head, t in total.items()}


def score(
    nets: list[EarlyFusionNet], data: Triplets, recipe: Recipe, tta: bool = False
) -> dict[str, Tally]:
    """Pooled flood tallies per condition, of the network alone and joined to the SAR
    change, and of the SAR change and the log-ratio baseline on the same pixels."""
    lines = [*CONDITIONS, *WITH_SAR_CHANGE.values(), SAR_CHANGE, BASELINE]
    tallies = {name: Tally() for name in lines}
    for i in range(len(data.ids)):
        sar = torch.from_numpy(data.sar[i : i + 1])
        optical = torch.from_numpy(data.optical[i : i + 1])
        if recipe.presence_band:
            optical = with_presence_band(optical)
        label = data.label[i]
        everywhere = np.ones(label.shape, bool)
        probability = flood_probability(nets, sar, optical, tuple(CONDITIONS.values()), tta)
        flooded = {name: probability[head] > 0.5 for name, head in CONDITIONS.items()}
        sar_flagged = data.sar_change[i]
        for (condition, join), name in WITH_SAR_CHANGE.items():
            flooded[name] = join(flooded[condition], sar_flagged)
        flooded[SAR_CHANGE] = sar_flagged
        ratio = data.log_ratio[i]
        flooded[BASELINE] = otsu_below(ratio, np.isfinite(ratio))
        for name, predicted in flooded.items():
            tallies[name].add(predicted, everywhere, label)
    return tallies


# What two networks must share to be averaged: their layers and how their inputs are read.
SHARED_BY_MEMBERS = ("network", "presence_band", "statistics")


def member_recipes(runs: list[Path]) -> list[Recipe]:
    """The recipes of the networks that earlier runs wrote under their --out folders."""
    recipes = []
    for run in runs:
        for path in (run / "supervised_flood.json", run / WEIGHTS):
            if not path.is_file():
                raise SystemExit(f"{path}: not found; train with --out {run} first")
        recipe = Recipe(**json.loads((run / "supervised_flood.json").read_text())["recipe"])
        first = recipes[0] if recipes else recipe
        differ = [f for f in SHARED_BY_MEMBERS if getattr(recipe, f) != getattr(first, f)]
        if differ:
            raise SystemExit(f"{run}: its {', '.join(differ)} differ from {runs[0]}'s")
        recipes.append(recipe)
    return recipes


def load_network(run: Path, recipe: Recipe, optical_bands: int) -> EarlyFusionNet:
    net = build_network(recipe.network, optical_bands + recipe.presence_band)
    net.load_state_dict(torch.load(run / WEIGHTS, weights_only=True))
    return net.eval()


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    return split_table(results, FLOOD_SCORES)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="an OMBRIA-layout dataset root")
    parser.add_argument("--network", choices=sorted(NETWORKS), default=Recipe.network)
    parser.add_argument("--drop", choices=("any", "optical"), default=Recipe.drop)
    parser.add_argument("--dice", action="store_true")
    parser.add_argument("--presence-band", action="store_true")
    parser.add_argument("--statistics", choices=sorted(STATISTICS), default=Recipe.statistics)
    parser.add_argument("--iterations", type=int, default=Recipe.iterations)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=Recipe.seed)
    parser.add_argument(
        "--ensemble",
        type=Path,
        nargs="+",
        metavar="RUN",
        help="score, without training, the networks earlier runs wrote under these --out "
        "folders, their flood probabilities averaged (the recipe is theirs)",
    )
    parser.add_argument(
        "--tta", action="store_true", help="average over the eight turns and mirrors"
    )
    parser.add_argument("--out", type=Path, default=Path("results/realdata/supervised_flood"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    logging.getLogger("metaflood").setLevel(logging.ERROR)  # the SAR change's level warnings

    if args.ensemble:
        recipes = member_recipes(args.ensemble)
    else:
        recipes = [
            Recipe(
                network=args.network,
                drop=args.drop,
                dice=args.dice,
                presence_band=args.presence_band,
                statistics=args.statistics,
                iterations=args.iterations,
                seed=args.seed,
            )
        ]
    recipe = recipes[0]
    splits = {split: load_split(args.root, split, recipe.statistics) for split in (TRAIN, TEST)}
    print(f"{len(splits[TRAIN].ids)} training, {len(splits[TEST].ids)} held-out triplets")
    start = time.perf_counter()
    if args.ensemble:
        bands = splits[TRAIN].optical.shape[1]
        nets = [load_network(run, r, bands) for run, r in zip(args.ensemble, recipes, strict=True)]
        trained = None
    else:
        nets = [train(splits[TRAIN], recipe)]
        trained = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    results = {
        name: {
            line: {"iou": t.iou, "precision": t.precision, "recall": t.recall}
            for line, t in score(nets, data, recipe, args.tta).items()
        }
        for name, data in (("held-out", splits[TEST]), ("training", splits[TRAIN]))
    }
    summary = {
        "root": str(args.root),
        "triplets": {"training": len(splits[TRAIN].ids), "held-out": len(splits[TEST].ids)},
        "recipe": dataclasses.asdict(recipe),
        "members": [str(d) for d in args.ensemble or [args.out]],
        "member_recipes": [dataclasses.asdict(r) for r in recipes],
        "test_time_augmentation": args.tta,
        "training_seconds": trained,
        "scoring_seconds": round(time.perf_counter() - start, 1),
        "scores": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "supervised_flood.json").write_text(json.dumps(summary, indent=2) + "\n")
    (args.out / "supervised_flood.md").write_text(table(results))
    if not args.ensemble:
        torch.save(nets[0].state_dict(), args.out / WEIGHTS)
    print(table(results))


if __name__ == "__main__":
    main()
