"""Refit the flood confidence on the held-out events of cases/calibration.yaml.

Run after the demo (it reuses the demo's checkpoint, results/models/metars.pt):

    .venv/bin/python -m benchmarks.flood_calibration

It maps each held-out event up to its SAR change evidence with snakemake, fits the
confidence (metaflood calibrate-confidence) into src/metaflood/flood/confidence_calibration.json,
and prints the leave-one-event-out reliability table: per confidence bin, the share of
pixels truly flooded. About 40 s of CPU per event on top of what is already mapped.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CASE = ROOT / "cases" / "calibration.yaml"
OUT = ROOT / "src" / "metaflood" / "flood" / "confidence_calibration.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", default="all")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    config = yaml.safe_load(CASE.read_text())
    events = list(config["events"])
    targets = [
        f"results/{event}/{product}"
        for event in events
        for product in (
            "flood/sar_change.json",
            "water/pre.tif",
            "water/post.tif",
        )
    ]
    snakemake = [sys.executable, "-m", "snakemake", "--cores", args.cores, *targets]
    subprocess.run([*snakemake, "--configfile", str(CASE)], cwd=ROOT, check=True)
    checkpoint = config["model"]["checkpoint"]
    command = [sys.executable, "-m", "metaflood", "calibrate-confidence", *events]
    command += ["--checkpoint", checkpoint, "--out", args.out]
    subprocess.run(command, cwd=ROOT, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
