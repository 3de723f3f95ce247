"""Running the workflow on tiny demo events, shared by the integration and cluster tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import demo_event_config

ROOT = Path(__file__).resolve().parents[1]

TINY_TRAIN = {
    "iterations": 60,
    "batch_size": 4,
    "crop": 64,
    "scenes": 6,
    "val_scenes": 2,
    "scene_size_m": 300,
    "save_every": 30,
    "seed": 1,
}


def tiny_config(**event_overrides) -> dict:
    return {
        "events": {"tiny": demo_event_config(**event_overrides)},
        "model": {"tile": 128, "overlap": 16, "batch_size": 4},
        "train": TINY_TRAIN,
        "change": {"min_area_m2": 40},
    }


def snakemake(workdir: Path, *args: str, timeout: int = 1500) -> subprocess.CompletedProcess:
    """Run the repository's Snakefile in `workdir` (targets must come before --configfile)."""
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def write_config(workdir: Path, config: dict) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_tiny(workdir: Path, *args: str) -> Path:
    """The tiny demo, run to completion (fails the calling test with the log tail if not)."""
    config = write_config(workdir, tiny_config())
    result = snakemake(workdir, "--configfile", str(config), *args)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return workdir
