"""stats.json: what was flooded, how it was mapped, and from what.

Everything an analyst quotes (areas by class, buildings affected, which modalities
the map rests on) and everything needed to reproduce it (scenes, config hash,
software versions, checkpoint digest) in one file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio

from metaflood import __version__
from metaflood.change import FLOODED, PERMANENT
from metaflood.classes import BARREN, BUILDING, CLASS_NAMES, NUM_CLASSES
from metaflood.config import config_hash
from metaflood.raster import atomic_path, read_checked

ROUTES = {1: "both", 2: "sar_only", 3: "optical_only", 0: "none"}
PACKAGES = ("numpy", "rasterio", "geopandas", "pystac", "torch", "timm", "snakemake")


def _km2(pixels: int | np.integer, pixel_area_m2: float) -> float:
    return round(float(pixels) * pixel_area_m2 / 1e6, 6)


def flood_figures(extent: np.ndarray, pre: np.ndarray, post: np.ndarray, area: float) -> dict:
    flooded = extent == FLOODED
    by_class = np.bincount(pre[flooded & (pre < NUM_CLASSES)], minlength=NUM_CLASSES)
    return {
        "flooded_area_km2": _km2(flooded.sum(), area),
        "permanent_water_km2": _km2((extent == PERMANENT).sum(), area),
        "flooded_by_pre_class_km2": {
            name: _km2(n, area) for name, n in zip(CLASS_NAMES, by_class, strict=True)
        },
        "buildings": {
            "flooded_building_km2": _km2((flooded & (pre == BUILDING)).sum(), area),
            "building_to_barren_km2": _km2(((pre == BUILDING) & (post == BARREN)).sum(), area),
            "note": "building to barren between the two dates is likely destruction",
        },
    }


def route_coverage(route: np.ndarray) -> dict:
    """Share of the AOI mapped from both modalities, one of them, or neither."""
    inside = route != 255
    total = max(int(inside.sum()), 1)
    return {
        name: round(float((route[inside] == code).sum()) / total, 6)
        for code, name in ROUTES.items()
    }


def software_versions() -> dict:
    versions = {"metaflood": __version__, "python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    versions["gdal"] = rasterio.__gdal_version__
    return versions


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_stats(
    event: str,
    config: dict,
    *,
    extent: Path,
    polygons: Path,
    transitions: Path,
    landcover: list[Path],
    routes: list[Path],
    scenes: list[Path],
    coregistration: list[Path],
    checkpoint: Path,
    validation: Path | None,
    out: Path,
) -> dict:
    extent_data, profile = read_checked(extent)
    transform = profile["transform"]
    area = abs(transform.a * transform.e)
    pre, post = (read_checked(p)[0][0] for p in landcover)
    import geopandas as gpd

    n_polygons = len(gpd.read_file(polygons))
    stats: dict = {
        "event": event,
        "crs": profile["crs"].to_string(),
        "pixel_size_m": abs(transform.a),
        "flood": flood_figures(extent_data[0], pre, post, area) | {"polygons": n_polygons},
        "transitions_km2": pd.read_csv(transitions, index_col=0).to_dict(orient="index"),
        "coverage": {
            period: route_coverage(read_checked(p)[0][0])
            for period, p in zip(("pre", "post"), routes, strict=True)
        },
        "coregistration": {
            period: json.loads(Path(p).read_text())["shifts"]
            for period, p in zip(("pre", "post"), coregistration, strict=True)
        },
        "provenance": {
            "scenes": {
                period: json.loads(Path(p).read_text())
                for period, p in zip(("pre", "post"), scenes, strict=True)
            },
            "config_hash": config_hash(config),
            "event_config": config["events"][event],
            "model": {"checkpoint": str(checkpoint), "sha256": file_digest(checkpoint)},
            "software": software_versions(),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
    }
    if validation is not None:
        stats["validation"] = json.loads(Path(validation).read_text())
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(stats, indent=2))
    return stats
