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
from metaflood.confidence import DEFAULT_CALIBRATION
from metaflood.config import config_hash
from metaflood.raster import atomic_path, read_checked
from metaflood.reliability import HIGH_CONFIDENCE

ROUTES = {1: "both", 2: "sar_only", 3: "optical_only", 0: "none"}
PACKAGES = (
    "numpy",
    "rasterio",
    "geopandas",
    "pystac",
    "scikit-image",
    "scikit-learn",
    "torch",
    "timm",
    "snakemake",
)


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


def confidence_figures(extent: np.ndarray, confidence: np.ndarray, area: float) -> dict:
    """Flooded area split by how sure the map is."""
    flooded = extent == FLOODED
    high = flooded & (confidence >= HIGH_CONFIDENCE) & (confidence <= 100)
    values = confidence[flooded & (confidence <= 100)]
    return {
        "flooded_high_confidence_km2": _km2(high.sum(), area),
        "flooded_lower_confidence_km2": _km2((flooded & ~high).sum(), area),
        "high_confidence_threshold": HIGH_CONFIDENCE,
        "mean_confidence_flooded": round(float(values.mean()), 2) if values.size else None,
    }


def flooded_by_route(extent: np.ndarray, route: np.ndarray) -> dict:
    """Share of the flooded area whose post-event land cover came from each modality."""
    flooded = extent == FLOODED
    total = max(int(flooded.sum()), 1)
    return {
        name: round(float((flooded & (route == code)).sum()) / total, 6)
        for code, name in ROUTES.items()
    }


def calibration_provenance(path: Path | None, checkpoint_sha256: str) -> dict:
    """Which calibration the confidence used, and whether it was fitted with this model."""
    path = Path(path) if path else DEFAULT_CALIBRATION
    fitted = json.loads(path.read_text()).get("fitted_on", {})
    same = fitted.get("checkpoint_sha256") == checkpoint_sha256
    return {
        "file": str(path) if path != DEFAULT_CALIBRATION else "packaged default",
        "fitted_on_events": fitted.get("events"),
        "fitted_with_this_checkpoint": same,
        "note": "calibrated for this model"
        if same
        else "fitted with another checkpoint: refit with `metaflood calibrate-confidence` "
        "(benchmarks/flood_calibration.py) before trusting the numbers as probabilities",
    }


def impact_rows(stats: dict) -> list[tuple[str, str, float | None, str]]:
    """The figures of stats.json an analyst tabulates, as (section, measure, value, unit)."""
    flood = stats["flood"]
    rows = [
        ("flood", "flooded area", flood["flooded_area_km2"], "km2"),
        ("flood", "flooded, high confidence", flood["flooded_high_confidence_km2"], "km2"),
        ("flood", "flooded, lower confidence", flood["flooded_lower_confidence_km2"], "km2"),
        ("flood", "permanent water", flood["permanent_water_km2"], "km2"),
        ("flood", "flood polygons", flood["polygons"], "count"),
    ]
    rows += [
        ("flooded by pre-event class", name, value, "km2")
        for name, value in flood["flooded_by_pre_class_km2"].items()
    ]
    buildings = flood["buildings"]
    rows += [
        ("buildings", "flooded building area", buildings["flooded_building_km2"], "km2"),
        (
            "buildings",
            "building to barren (likely destroyed)",
            buildings["building_to_barren_km2"],
            "km2",
        ),
    ]
    for period in ("pre", "post"):
        rows += [
            (f"coverage {period}", f"mapped with {name}", share, "share")
            for name, share in stats["coverage"][period].items()
        ]
    rows += [
        ("coverage of the flooded area", f"mapped with {name}", share, "share")
        for name, share in stats["flood"]["flooded_by_post_route"].items()
    ]
    return rows


def write_impact_csv(stats: dict, out: Path) -> None:
    frame = pd.DataFrame(impact_rows(stats), columns=["section", "measure", "value", "unit"])
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False)


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
    confidence: Path,
    polygons: Path,
    transitions: Path,
    landcover: list[Path],
    routes: list[Path],
    scenes: list[Path],
    coregistration: list[Path],
    sar_summary: Path,
    checkpoint: Path,
    calibration: Path | None,
    validation: Path | None,
    out: Path,
    out_impact: Path,
) -> dict:
    extent_data, profile = read_checked(extent)
    extent_data = extent_data[0]
    confidence_data = read_checked(confidence)[0][0]
    transform = profile["transform"]
    area = abs(transform.a * transform.e)
    pre, post = (read_checked(p)[0][0] for p in landcover)
    post_route = read_checked(routes[1])[0][0]
    import geopandas as gpd

    n_polygons = len(gpd.read_file(polygons))
    checkpoint_sha = file_digest(checkpoint)
    stats: dict = {
        "event": event,
        "crs": profile["crs"].to_string(),
        "pixel_size_m": abs(transform.a),
        "flood": flood_figures(extent_data, pre, post, area)
        | confidence_figures(extent_data, confidence_data, area)
        | {
            "polygons": n_polygons,
            "flooded_by_post_route": flooded_by_route(extent_data, post_route),
        },
        "sar_change": json.loads(Path(sar_summary).read_text()),
        "confidence_calibration": calibration_provenance(calibration, checkpoint_sha),
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
            "model": {"checkpoint": str(checkpoint), "sha256": checkpoint_sha},
            "software": software_versions(),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
    }
    if validation is not None:
        stats["validation"] = json.loads(Path(validation).read_text())
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(stats, indent=2))
    write_impact_csv(stats, out_impact)
    return stats
