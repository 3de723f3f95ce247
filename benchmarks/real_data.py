"""metaflood on real labelled Sentinel sets: train the Sentinel model, fit the water fusion
and the flood confidence, and score every set beside the baselines of the same run.

    .venv/bin/python -m benchmarks.real_data --data ../shared/realdata [--steps train,fit,score]

Steps (each reuses what the previous wrote under --work, default results/realdata):
- train: a MetaRS at 10 m with scene normalisation, on synthetic tiles and the training
  splits of ETCI 2021 and OMBRIA (`train.real_sets`), SAR VV and optical green, NIR and
  SWIR 1.6 um: the bands all three public layouts have;
- fit: the water fusion (ETCI and OMBRIA training splits, and the held-out synthetic
  events of cases/calibration.yaml) and the flood confidence (those events and OMBRIA's
  training split), both for the checkpoint scored;
- score: `metaflood benchmark-real` on the held-out splits: ETCI with SAR only, OMBRIA
  with both modalities, SAR only and the post-event optical image missing, with and
  without event adaptation.

The splits are fixed in metaflood.training.layouts. Nothing here reads a test split
before the score step.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = {
    "backbone": "resnet18",
    "width": 32,
    "decoder_channels": 64,
    "sar_bands": ["VV"],
    "optical_bands": ["green", "nir", "swir16"],
}


def metaflood(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "metaflood", *args], cwd=ROOT, check=True)


def train(data: Path, work: Path, iterations: int, threads: int) -> Path:
    out = work / "metars_sentinel.pt"
    train_cfg = {
        "resolution": 10.0,
        "normalization": "scene",
        "iterations": iterations,
        "batch_size": 8,
        "crop": 128,
        "real_share": 0.7,
        "real_sets": [
            {"layout": "etci2021", "root": str(data / "etci2021")},
            {"layout": "ombria", "root": str(data / "ombria")},
        ],
    }
    # As rule train runs it: the sections with the schema's defaults, the model's keys
    # that shape the network.
    from metaflood.core.settings import section_defaults
    from metaflood.training.train import train_model
    from metaflood.workflow import model_training_section

    model = model_training_section({"model": section_defaults("model", MODEL)})
    train_model(
        model,
        section_defaults("train", train_cfg),
        out,
        work / "metars_sentinel_metrics.json",
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


def fit(data: Path, work: Path, checkpoint: Path) -> dict[str, Path]:
    """The water fusion, then (with it) the flood confidence, for this checkpoint."""
    dumps = {}
    for layout in ("etci2021", "ombria"):
        dumps[layout] = work / f"{layout}_train.npz"
        benchmark(
            data,
            layout,
            "train",
            work / f"{layout}_train",
            checkpoint,
            "--dump-evidence",
            str(dumps[layout]),
        )
    fusion = work / "water_fusion.json"
    metaflood(
        "fit-water-fusion",
        *map(str, dumps.values()),
        "--checkpoint",
        str(checkpoint),
        "--out",
        str(fusion),
    )
    flood_dump = work / "ombria_train_fused.npz"
    benchmark(
        data,
        "ombria",
        "train",
        work / "ombria_train_fused",
        checkpoint,
        "--fusion",
        str(fusion),
        "--dump-evidence",
        str(flood_dump),
    )
    calibration = work / "confidence_calibration.json"
    metaflood(
        "calibrate-confidence",
        "--real",
        str(flood_dump),
        "--checkpoint",
        str(checkpoint),
        "--out",
        str(calibration),
    )
    return {"fusion": fusion, "calibration": calibration}


def score(data: Path, work: Path, checkpoint: Path, fitted: dict[str, Path]) -> None:
    models = ["--fusion", str(fitted["fusion"]), "--calibration", str(fitted["calibration"])]
    benchmark(data, "etci2021", "test", work / "etci2021_test", checkpoint, *models)
    benchmark(data, "ombria", "test", work / "ombria_test", checkpoint, *models)
    benchmark(data, "ombria", "test", work / "ombria_test_adapted", checkpoint, *models, "--adapt")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "realdata")
    parser.add_argument("--work", type=Path, default=ROOT / "results" / "realdata")
    parser.add_argument("--steps", default="train,fit,score")
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    steps = set(args.steps.split(","))
    checkpoint = args.work / "metars_sentinel.pt"
    if "train" in steps:
        checkpoint = train(args.data, args.work, args.iterations, args.threads)
    fitted = {
        "fusion": args.work / "water_fusion.json",
        "calibration": args.work / "confidence_calibration.json",
    }
    if "fit" in steps:
        fitted = fit(args.data, args.work, checkpoint)
    if "score" in steps:
        score(args.data, args.work, checkpoint, fitted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
