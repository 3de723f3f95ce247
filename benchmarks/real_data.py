"""metaflood on real labelled Sentinel sets: train the Sentinel models, fit the water
fusion and the flood confidence for each, and score every set beside the baselines of the
same run.

    .venv/bin/python -m benchmarks.real_data --data ../shared/realdata \
        [--models dualpol,vv] [--steps train,fit,score] [--fit-limit N] [--adapt-limit N]
        [--normalization MODE --work results/realdata/OTHER]

Two models, because the sets do not share their radar bands (a model reads the bands it
names, and never one made up):
- dualpol: VV and VH, the bands ETCI 2021 and Sen1Floods11 carry, with the training set's
  normalisation (a pass tiled into chips keeps its brightness from chip to chip, and a
  chip's own statistics would erase whether it is mostly water); trained on synthetic
  tiles and ETCI's training blocks; scores ETCI (SAR only);
- vv: VV alone (OMBRIA has no VH) with each scene's own normalisation (OMBRIA's images are
  stretched one by one); trained on synthetic tiles and the training splits of ETCI and
  OMBRIA; scores OMBRIA (both modalities, SAR only, post-event optical missing).
Both read optical green, NIR and SWIR 1.6 um, the bands all three layouts have.

Steps (each reuses what the previous wrote under --work, default results/realdata):
- train: the model at 10 m;
- fit: the water fusion on the training splits of the sets the model scores, and, for a
  model scored on a flood set, the flood confidence on that set's training split;
- score: `metaflood benchmark-real` on the held-out splits, with and without event
  adaptation where the set has a before and an after.

`--fit-limit N` fits on the first N samples of each training split, `--adapt-limit N`
scores adaptation on the first N held-out samples (it fine-tunes once per sample and
condition, several times the cost of scoring it; docs/realdata.md has the times).

`--normalization` trains with another `train.normalization` than the recipe's; give it
its own `--work` folder, as checkpoints and fits are named after the model.

The splits are fixed in metaflood.training.layouts. Nothing here reads a test split
before the score step.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from metaflood.model.normalization import NORMALIZATION_MODES

ROOT = Path(__file__).resolve().parents[1]
OPTICAL = ["green", "nir", "swir16"]
SHIPPED_FUSION = ROOT / "src" / "metaflood" / "water" / "fusion.json"


@dataclass(frozen=True)
class Recipe:
    """One Sentinel model: the bands it reads, how it normalises, what it learns from and
    which sets it is scored on."""

    sar_bands: list[str]
    normalization: str
    train_sets: list[str]
    scored_sets: list[str]
    flood_sets: list[str] = field(default_factory=list)

    def model_section(self) -> dict:
        return {
            "backbone": "resnet18",
            "width": 32,
            "decoder_channels": 64,
            "sar_bands": self.sar_bands,
            "optical_bands": OPTICAL,
        }


RECIPES = {
    "dualpol": Recipe(["VV", "VH"], "dataset", ["etci2021"], ["etci2021"]),
    "vv": Recipe(["VV"], "scene", ["etci2021", "ombria"], ["ombria"], flood_sets=["ombria"]),
}


def metaflood(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "metaflood", *args], cwd=ROOT, check=True)


def checkpoint_path(work: Path, name: str) -> Path:
    return work / f"metars_{name}.pt"


def train(
    data: Path, work: Path, name: str, iterations: int, threads: int, normalization: str | None
) -> Path:
    recipe = RECIPES[name]
    out = checkpoint_path(work, name)
    train_cfg = {
        "resolution": 10.0,
        "normalization": normalization or recipe.normalization,
        "iterations": iterations,
        "batch_size": 8,
        "crop": 128,
        "real_share": 0.75,
        "real_sets": [{"layout": s, "root": str(data / s)} for s in recipe.train_sets],
    }
    # As rule train runs it: the sections with the schema's defaults, the model's keys
    # that shape the network.
    from metaflood.core.settings import section_defaults
    from metaflood.training.train import train_model
    from metaflood.workflow import model_training_section

    model = model_training_section({"model": section_defaults("model", recipe.model_section())})
    train_model(
        model,
        section_defaults("train", train_cfg),
        out,
        work / f"metars_{name}_metrics.json",
        threads=threads,
        log=lambda msg: print(msg, flush=True),
        device=model["device"],
    )
    return out


def benchmark(data: Path, layout: str, split: str, out: Path, checkpoint: Path, *extra: str):
    metaflood(
        "benchmark-real",
        str(data / layout),
        "--layout",
        layout,
        "--split",
        split,
        "--checkpoint",
        str(checkpoint),
        "--out",
        str(out),
        *extra,
    )


def limit_option(limit: int | None) -> list[str]:
    return ["--limit", str(limit)] if limit else []


def fit(data: Path, work: Path, name: str, checkpoint: Path, limit: int | None) -> list[str]:
    """The water fusion, then (with it) the flood confidence where the model scores a
    flood set: the benchmark's options that point at them."""
    recipe = RECIPES[name]
    dumps = []
    for layout in recipe.scored_sets:
        dumps.append(work / f"{name}_{layout}_train.npz")
        benchmark(
            data,
            layout,
            "train",
            work / f"{name}_{layout}_train",
            checkpoint,
            "--dump-evidence",
            str(dumps[-1]),
            *limit_option(limit),
        )
    fusion = work / f"{name}_water_fusion.json"
    # Variants the sets cannot fit (ETCI has no optical image) stay as shipped, marked so.
    metaflood(
        "fit-water-fusion",
        *map(str, dumps),
        "--checkpoint",
        str(checkpoint),
        "--keep-from",
        str(SHIPPED_FUSION),
        "--out",
        str(fusion),
    )
    fitted = ["--fusion", str(fusion)]
    for layout in recipe.flood_sets:
        flood_dump = work / f"{name}_{layout}_train_fused.npz"
        benchmark(
            data,
            layout,
            "train",
            work / f"{name}_{layout}_train_fused",
            checkpoint,
            *fitted,
            "--dump-evidence",
            str(flood_dump),
            *limit_option(limit),
        )
        calibration = work / f"{name}_confidence_calibration.json"
        metaflood(
            "calibrate-confidence",
            "--real",
            str(flood_dump),
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(calibration),
        )
        fitted += ["--calibration", str(calibration)]
    return fitted


def fitted_options(work: Path, name: str) -> list[str]:
    """What an earlier fit step wrote for this model."""
    options = ["--fusion", str(work / f"{name}_water_fusion.json")]
    calibration = work / f"{name}_confidence_calibration.json"
    if RECIPES[name].flood_sets:
        options += ["--calibration", str(calibration)]
    return options


def score(
    data: Path, work: Path, name: str, checkpoint: Path, fitted: list[str], adapt_limit: int | None
) -> None:
    recipe = RECIPES[name]
    for layout in recipe.scored_sets:
        out = work / f"{name}_{layout}_test"
        benchmark(data, layout, "test", out, checkpoint, *fitted)
        if layout in recipe.flood_sets:
            if adapt_limit:  # the same samples without adaptation, to compare with
                unadapted = out.with_name(f"{out.name}_first{adapt_limit}")
                benchmark(
                    data,
                    layout,
                    "test",
                    unadapted,
                    checkpoint,
                    *fitted,
                    "--limit",
                    str(adapt_limit),
                )
            benchmark(
                data,
                layout,
                "test",
                out.with_name(f"{out.name}_adapted"),
                checkpoint,
                *fitted,
                "--adapt",
                *limit_option(adapt_limit),
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "realdata")
    parser.add_argument("--work", type=Path, default=ROOT / "results" / "realdata")
    parser.add_argument("--models", default=",".join(RECIPES), help="of: " + ", ".join(RECIPES))
    parser.add_argument("--steps", default="train,fit,score")
    parser.add_argument("--iterations", type=int, default=2500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fit-limit", type=int, help="samples of each training split to fit on")
    parser.add_argument("--adapt-limit", type=int, help="held-out samples to adapt on")
    parser.add_argument(
        "--normalization", choices=NORMALIZATION_MODES, help="instead of the recipe's"
    )
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    steps = set(args.steps.split(","))
    for name in args.models.split(","):
        if name not in RECIPES:
            parser.error(f"--models: {name!r} is not one of {', '.join(RECIPES)}")
        checkpoint = checkpoint_path(args.work, name)
        if "train" in steps:
            checkpoint = train(
                args.data, args.work, name, args.iterations, args.threads, args.normalization
            )
        fitted = None
        if "fit" in steps:
            fitted = fit(args.data, args.work, name, checkpoint, args.fit_limit)
        if "score" in steps:
            fitted = fitted or fitted_options(args.work, name)
            score(args.data, args.work, name, checkpoint, fitted, args.adapt_limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
