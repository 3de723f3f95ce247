"""Set-up the Snakefile runs before any rule: job environment and configuration checks."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import yaml

from metaflood.acquire.auxiliary import check_auxiliary_sources
from metaflood.acquire.local import check_sources
from metaflood.core.config import (
    check_event,
    check_model_overlap,
    event_grid,
    event_tiles,
    normalise_dates,
)
from metaflood.core.errors import ConfigError
from metaflood.core.raster import GDAL_CACHE_MB
from metaflood.core.settings import schema_error
from metaflood.flood.checks import check_flood_network
from metaflood.model.checks import check_model_sections


def prepare_job_environment(src_dir: str | Path) -> None:
    """Let every job run `python -m metaflood` with this interpreter and this source tree.

    Jobs inherit the environment of Snakemake: putting the package's source on
    PYTHONPATH makes it importable without an install (conda environments, cluster
    nodes), and putting this interpreter's directory first on PATH means a virtual
    environment need not be activated. With --sdm conda, the environment's own bin
    directory is put in front again by Snakemake.
    """
    src = str(src_dir)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if src not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([src, *paths])
    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "").split(os.pathsep)
    if path[:1] != [bin_dir]:
        os.environ["PATH"] = os.pathsep.join([bin_dir, *path])
    # GDAL's block cache defaults to 5% of the node's memory: on a large cluster node that
    # alone can exceed a job's mem_mb. A fixed cap keeps a job's memory what its rule
    # declares, whatever node it lands on; a user's own setting wins.
    os.environ.setdefault("GDAL_CACHEMAX", str(GDAL_CACHE_MB))


def job_memory_mb(grid_pixels: int, base_mb: int, bytes_per_pixel: float) -> int:
    """Memory to ask for a job that holds arrays over the whole event grid: what it
    needs on a small grid plus what it was measured to add per grid pixel
    (benchmarks/tiled_scale.py), so a large AOI gets a large enough cluster job."""
    return math.ceil(base_mb + bytes_per_pixel * grid_pixels / 1e6)


def check_config(config: dict, base_dir: Path | str = ".") -> None:
    """Semantic checks that JSON schema cannot express; raise ConfigError naming the key."""
    for name, event in config["events"].items():
        key = f"events.{name}"
        grid = check_event(event, key, base_dir)
        check_sources(event, key, base_dir)
        check_auxiliary_sources(event, name, None, base_dir)
        event_tiles(grid, config.get("tiling"))
    check_model_overlap(config)
    check_model_sections(config, base_dir)
    check_flood_network(config, base_dir)


def semantic_errors(config: dict) -> str | None:
    """The first error the JSON schema cannot see, as a message naming the key."""
    try:
        check_config(config)
    except ConfigError as err:
        return str(err)
    return None


def read_config_file(path: str | Path) -> dict:
    """A configuration file's YAML; a ConfigError naming the file (and, for a syntax
    error, the line) where Snakemake would say only that it is not valid YAML."""
    try:
        config = yaml.safe_load(Path(path).read_text())
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read ({err.strerror})") from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from err
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: the configuration must be a mapping of keys")
    return config


def check_config_file(path: str | Path) -> dict:
    """Everything the workflow checks at start-up, for one file; each message starts with
    the file's name (and a YAML syntax error gives its line)."""
    config = normalise_dates(read_config_file(path))
    message = schema_error(config)
    if message:
        raise ConfigError(f"{path}: {message}")
    try:
        check_config(config)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err
    return config


def blocked_output(paths: Iterable[tuple[str, bool]], root: str | Path = ".") -> str | None:
    """The first of the workflow's outputs (path, whether it is a folder) that something
    already there keeps it from writing: a file where a folder must be (the output's
    own, or one on its way), or a folder where a file must be. Snakemake would find out
    only when the job ends, with an internal traceback."""
    root, checked = Path(root), set()
    for path, is_folder in paths:
        parts = Path(path).parts
        for depth in range(1, len(parts)):
            folder = Path(*parts[:depth])
            if folder in checked:
                continue
            checked.add(folder)
            if os.path.lexists(root / folder) and not (root / folder).is_dir():
                return (
                    f"{folder} is a file, but the workflow writes into a folder of that name "
                    f"(for example {path}): move or remove the file"
                )
        target = root / path
        if is_folder and os.path.lexists(target) and not target.is_dir():
            return f"{path} is a file, but the workflow writes a folder there: move or remove it"
        if not is_folder and target.is_dir():
            return f"{path} is a folder, but the workflow writes a file there: move or remove it"
    return None


# Keys of `model:` that only say which checkpoint maps an event and how inference runs:
# changing them (pointing model.checkpoint at the trained file, say) never retrains.
INFERENCE_ONLY_MODEL_KEYS = (
    "checkpoint",
    "checkpoint_sha256",
    "authors_checkpoint",
    "adapt",
    "tile",
    "overlap",
    "batch_size",
)


def model_training_section(config: dict) -> dict:
    """The `model:` keys that shape the network the train rule makes."""
    model = config.get("model", {})
    return {k: v for k, v in model.items() if k not in INFERENCE_ONLY_MODEL_KEYS}


def train_section(config: dict) -> dict:
    """The `train:` section with its resolution: the events' grid resolution unless set,
    so the model learns at the pixel size it will map."""
    train = dict(config.get("train", {}))
    if train.get("resolution") is None:
        resolutions = {
            event_grid(event, f"events.{name}").resolution
            for name, event in config["events"].items()
        }
        if len(resolutions) > 1:
            raise ConfigError(
                f"train.resolution: the events map at {sorted(resolutions)} m; set the one "
                "the model is trained at"
            )
        train["resolution"] = resolutions.pop()
    return train
