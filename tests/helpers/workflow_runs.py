"""Running the workflow on tiny demo events, shared by the integration and cluster tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.helpers.events import demo_event_config

ROOT = Path(__file__).resolve().parents[2]

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
    """The tiny demo with its DEM and reference water (terrain exclusion on)."""
    layers = {"dem": {"source": "demo"}, "reference_water": {"source": "demo"}}
    return {
        "events": {"tiny": demo_event_config(**(layers | event_overrides))},
        "model": {"tile": 128, "overlap": 16, "batch_size": 4},
        "train": TINY_TRAIN,
        "change": {"min_area_m2": 40},
    }


def snakemake_command(workdir: Path, *args: str) -> list[str]:
    """The repository's Snakefile run in `workdir` (targets must come before --configfile)."""
    return [
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


def snakemake(
    workdir: Path, *args: str, timeout: int = 1500, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run `snakemake_command` to the end; `env` adds variables to this process's."""
    return subprocess.run(
        snakemake_command(workdir, *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def write_config(workdir: Path, config: dict) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


# Tiles for the tiny demo (about 150 x 150 px): 2 x 2 tiles of about 75 px, each read
# with 24 px of context on every side.
TINY_TILING = {"tile_px": 80, "overlap_px": 24}


def tiled_config(checkpoint: Path) -> dict:
    """The tiny demo cut into 4 tiles, mapped with an already trained checkpoint."""
    config = tiny_config()
    config["tiling"] = dict(TINY_TILING)
    config["model"]["checkpoint"] = str(checkpoint)
    return config


def run_tiny(workdir: Path, *args: str, config: dict | None = None) -> Path:
    """The tiny demo, run to completion (fails the calling test with the log tail if not)."""
    config = write_config(workdir, config or tiny_config())
    result = snakemake(workdir, "--configfile", str(config), *args)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return workdir
