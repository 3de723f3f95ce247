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

The networks, their standardisation and their flood probability are metaflood's flood
network (`metaflood.model.flood_network`), trained as `metaflood.training.flood` trains
it; `metaflood train-flood` trains the product's, its defaults the recipe that did best
here (this benchmark's defaults are the recipe its first runs used).

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

from benchmarks.sar_threshold_ceiling import vv_evidence
from benchmarks.tables import FLOOD_SCORES, split_table
from metaflood.core.errors import InputError
from metaflood.core.settings import ChangeSettings, section_defaults
from metaflood.flood import sar_change
from metaflood.model.baselines import EarlyFusionNet
from metaflood.model.flood_network import (
    FLOOD_NETWORKS,
    STATISTICS,
    build_flood_network,
    flood_probability,
    with_presence_band,
)
from metaflood.realdata.scores import Tally, otsu_below
from metaflood.training.flood import (
    DROPS,
    FloodRecipe,
    FloodSet,
    flood_set,
    ombria_samples,
    train_flood_network,
)
from metaflood.training.layouts import TEST, TRAIN

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
# The benchmark's own defaults, the recipe its documented runs were first made with
# (metaflood's FloodRecipe defaults to the recipe that did best).
DEFAULTS = FloodRecipe(network="early_fusion", drop="any", dice=False, statistics="robust")


@dataclass
class Triplets:
    """A split's flood set, and what the SAR baselines read on the same pixels."""

    flood: FloodSet
    log_ratio: np.ndarray = field(repr=False)  # (n, h, w): VV after minus before, dB
    sar_change: np.ndarray = field(repr=False)  # (n, h, w): flagged by the SAR change


def load_split(root: Path, split: str, statistics: str = "robust") -> Triplets:
    samples = ombria_samples(root, split)
    change = ChangeSettings.from_section(section_defaults("change"))
    return Triplets(
        flood=flood_set(samples, statistics),
        log_ratio=np.stack([s.sar["post"][0] - s.sar["pre"][0] for s in samples]),
        sar_change=np.stack(
            [vv_evidence(s, change)[0].evidence == sar_change.FLOOD_SIGNAL for s in samples]
        ),
    )


def score(
    nets: list[EarlyFusionNet], data: Triplets, recipe: FloodRecipe, tta: bool = False
) -> dict[str, Tally]:
    """Pooled flood tallies per condition, of the network alone and joined to the SAR
    change, and of the SAR change and the log-ratio baseline on the same pixels."""
    lines = [*CONDITIONS, *WITH_SAR_CHANGE.values(), SAR_CHANGE, BASELINE]
    tallies = {name: Tally() for name in lines}
    flood = data.flood
    for i in range(len(flood.ids)):
        sar = torch.from_numpy(flood.sar[i : i + 1])
        optical = torch.from_numpy(flood.optical[i : i + 1])
        if recipe.presence_band:
            optical = with_presence_band(optical)
        label = flood.label[i]
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


def member_recipes(runs: list[Path]) -> list[FloodRecipe]:
    """The recipes of the networks that earlier runs wrote under their --out folders."""
    recipes = []
    for run in runs:
        for path in (run / "supervised_flood.json", run / WEIGHTS):
            if not path.is_file():
                raise SystemExit(f"{path}: not found; train with --out {run} first")
        recipe = FloodRecipe(**json.loads((run / "supervised_flood.json").read_text())["recipe"])
        first = recipes[0] if recipes else recipe
        differ = [f for f in SHARED_BY_MEMBERS if getattr(recipe, f) != getattr(first, f)]
        if differ:
            raise SystemExit(f"{run}: its {', '.join(differ)} differ from {runs[0]}'s")
        recipes.append(recipe)
    return recipes


def load_network(run: Path, recipe: FloodRecipe, optical_bands: tuple[str, ...]) -> EarlyFusionNet:
    net = build_flood_network(recipe.inputs(optical_bands))
    net.load_state_dict(torch.load(run / WEIGHTS, weights_only=True))
    return net.eval()


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    return split_table(results, FLOOD_SCORES)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="an OMBRIA-layout dataset root")
    parser.add_argument("--network", choices=sorted(FLOOD_NETWORKS), default=DEFAULTS.network)
    parser.add_argument("--drop", choices=DROPS, default=DEFAULTS.drop)
    parser.add_argument("--dice", action="store_true")
    parser.add_argument("--presence-band", action="store_true")
    parser.add_argument("--statistics", choices=sorted(STATISTICS), default=DEFAULTS.statistics)
    parser.add_argument("--iterations", type=int, default=DEFAULTS.iterations)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
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

    recipes = member_recipes(args.ensemble) if args.ensemble else [FloodRecipe.from_options(args)]
    recipe = recipes[0]
    try:
        splits = {s: load_split(args.root, s, recipe.statistics) for s in (TRAIN, TEST)}
    except InputError as err:  # no triplet in a split, a blank image
        raise SystemExit(str(err)) from err
    counts = {split: len(data.flood.ids) for split, data in splits.items()}
    print(f"{counts[TRAIN]} training, {counts[TEST]} held-out triplets")
    start = time.perf_counter()
    if args.ensemble:
        bands = splits[TRAIN].flood.optical_bands
        nets = [load_network(run, r, bands) for run, r in zip(args.ensemble, recipes, strict=True)]
        trained = None
    else:
        nets = [train_flood_network(splits[TRAIN].flood, recipe, lambda m: print(m, flush=True))]
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
        "triplets": {"training": counts[TRAIN], "held-out": counts[TEST]},
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
