"""stats.json: what was flooded, how it was mapped, and from what.

Everything an analyst quotes (areas by class, buildings affected, which modalities
the map rests on) and everything needed to reproduce it (scenes, config hash,
software versions, checkpoint digest) in one file.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import rasterio
import xarray as xr
from rasterio.errors import RasterioError

from metaflood import __version__
from metaflood.core.classes import BARREN, BUILDING, CLASS_NAMES, NUM_CLASSES
from metaflood.core.config import PERIODS, config_hash
from metaflood.core.datacube import open_raster
from metaflood.core.errors import InputError
from metaflood.core.hashing import file_sha256
from metaflood.core.raster import atomic_path
from metaflood.core.reliability import HIGH_CONFIDENCE
from metaflood.flood.change import (
    FLOODED,
    FLOODED_MIN_CONFIDENCE_BEFORE_TAG,
    FLOODED_MIN_CONFIDENCE_TAG,
    PERMANENT,
)
from metaflood.flood.confidence import DEFAULT_CALIBRATION, NETWORK_JOIN, load_calibration
from metaflood.flood.support import CODES, SUPPORT

ROUTES = {1: "both", 2: "sar_only", 3: "optical_only", 0: "none"}
ROUTE_OUTSIDE = 255
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


def pixel_counts(
    extent: xr.DataArray,
    confidence: xr.DataArray,
    landcover: list[xr.DataArray],
    routes: list[xr.DataArray],
    support: xr.DataArray,
) -> dict[str, xr.DataArray]:
    """Every pixel count behind stats.json's areas and shares, as lazy sums over (y, x):
    computed together, a chunk at a time, so the stage's memory does not grow with the
    grid. A comparison with a `class` or `route` coordinate counts every value at once."""
    pre, post = landcover
    classes = xr.DataArray(np.arange(NUM_CLASSES), dims="class")
    codes = xr.DataArray(list(ROUTES), dims="route")
    flooded = extent == FLOODED
    scored = flooded & (confidence <= 100)
    space = ("y", "x")
    return {
        "flooded": flooded.sum(space),
        "permanent": (extent == PERMANENT).sum(space),
        "by_pre_class": (flooded & (pre == classes)).sum(space),
        "building_to_barren": ((pre == BUILDING) & (post == BARREN)).sum(space),
        "high_confidence": (scored & (confidence >= HIGH_CONFIDENCE)).sum(space),
        "scored": scored.sum(space),
        "confidence_sum": confidence.astype(np.int64).where(scored, 0).sum(space),
        "flooded_by_post_route": (flooded & (routes[1] == codes)).sum(space),
        "by_route": [(route == codes).sum(space) for route in routes],
        "inside": [(route != ROUTE_OUTSIDE).sum(space) for route in routes],
        "flooded_by_evidence": [(support == code).sum(space) for code in CODES.values()],
    }


def flood_figures(counts: dict, area: float, flooded_min_confidence: int) -> dict:
    """The `flood` section of stats.json (without the polygon count) from `pixel_counts`
    and the confidence from which the extent is flooded."""
    flooded, scored = int(counts["flooded"]), int(counts["scored"])
    high = int(counts["high_confidence"])
    return {
        "flooded_area_km2": _km2(flooded, area),
        "flooded_min_confidence": flooded_min_confidence,
        "permanent_water_km2": _km2(counts["permanent"], area),
        "flooded_by_pre_class_km2": {
            name: _km2(n, area)
            for name, n in zip(CLASS_NAMES, counts["by_pre_class"].values, strict=True)
        },
        "buildings": {
            "flooded_building_km2": _km2(counts["by_pre_class"].values[BUILDING], area),
            "building_to_barren_km2": _km2(counts["building_to_barren"], area),
            "note": "building to barren between the two dates is likely destruction",
        },
        "flooded_high_confidence_km2": _km2(high, area),
        "flooded_lower_confidence_km2": _km2(flooded - high, area),
        "high_confidence_threshold": HIGH_CONFIDENCE,
        "mean_confidence_flooded": (
            round(int(counts["confidence_sum"]) / scored, 2) if scored else None
        ),
    }


def flooded_from(confidence: xr.DataArray) -> int:
    """The confidence (percent) from which the extent was mapped as flooded, as the
    confidence product records it."""
    return int(confidence.attrs.get(FLOODED_MIN_CONFIDENCE_TAG, FLOODED_MIN_CONFIDENCE_BEFORE_TAG))


def _shares(names: Iterable[str], counts: Iterable, total: int) -> dict:
    """Each named count as a share of `total` (every share 0 where the total is 0)."""
    total = max(int(total), 1)
    return {name: round(int(n) / total, 6) for name, n in zip(names, counts, strict=True)}


def network_provenance(network_summary: Path | None, calibration: Path | None) -> dict | None:
    """What the flood network read (flood/network.json) and how it was joined to the
    calibrated confidence: by the calibration's fitted join, or the higher of the two."""
    if network_summary is None:
        return None
    fitted = load_calibration(calibration).get(NETWORK_JOIN) is not None
    return json.loads(Path(network_summary).read_text()) | {
        "joined_by": "fitted join" if fitted else "the higher of the two"
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
    for period in PERIODS:
        rows += [
            (f"coverage {period}", f"mapped with {name}", share, "share")
            for name, share in stats["coverage"][period].items()
        ]
    rows += [
        ("coverage of the flooded area", f"mapped with {name}", share, "share")
        for name, share in stats["flood"]["flooded_by_post_route"].items()
    ]
    rows += [
        ("evidence of the flooded area", SUPPORT[name], share, "share")
        for name, share in stats["flood"]["flooded_by_evidence"].items()
    ]
    return rows


def write_impact_csv(stats: dict, out: Path) -> None:
    frame = pd.DataFrame(impact_rows(stats), columns=["section", "measure", "value", "unit"])
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False)


def water_figures(summary: dict, area: float) -> dict:
    """Where the water is in one period (the fused map at 50% and above), and what each
    line of evidence found and from what threshold."""
    pixels = summary["pixels"]
    return {
        "water_km2": _km2(pixels["water"], area),
        "mapped_km2": _km2(pixels["mapped"], area),
        "sar_water_km2": _km2(pixels["sar_water"], area),
        "index_water_km2": _km2(pixels["index_water"], area),
        "index": summary["index"],
        "thresholds": {name: t["value"] for name, t in summary["thresholds"].items()},
        "thresholds_from_fallback": [n for n, t in summary["thresholds"].items() if t["fallback"]],
        "fusion": summary["fusion"],
    }


def terrain_figures(
    exclusion: Path | None, reference_water: Path | None, auxiliary: Path | None
) -> dict:
    """How much of the AOI the terrain exclusion removed and why, the water before the
    event by source, and which auxiliary layers the event had (absent ones named)."""

    def read(path: Path | None) -> dict | None:
        return json.loads(Path(path).read_text()) if path is not None else None

    out: dict = {}
    record = read(exclusion)
    if record is not None:
        out["exclusion"] = {
            "enabled": record["enabled"],
            "thresholds": record["thresholds"],
            "viewing_geometry": record["viewing_geometry"],
            "absent": record["absent"],
            "areas": record["areas"],
        }
    record = read(reference_water)
    if record is not None:
        out["reference_water"] = record
    record = read(auxiliary)
    if record is not None:
        out["layers"] = {
            name: {k: v for k, v in layer.items() if k not in ("items",)}
            for name, layer in record.items()
            if isinstance(layer, dict)
        }
    return out


def software_versions() -> dict:
    versions = {"metaflood": __version__, "python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    versions["gdal"] = rasterio.__gdal_version__
    return versions


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
    water: list[Path],
    support: Path,
    checkpoint: Path,
    calibration: Path | None,
    validation: Path | None,
    out: Path,
    out_impact: Path,
    exclusion: Path | None = None,
    reference_water: Path | None = None,
    auxiliary: Path | None = None,
    network_summary: Path | None = None,
) -> dict:
    """`water` are the water stage's summaries (water/{period}.json), `support` what the
    flood rests on (flood/support.tif); `network_summary` (flood/network.json) records
    the flood network the confidence was joined to, where there was one."""
    with xr.set_options(arithmetic_join="exact"):  # one grid, or an error
        cube = [open_raster(p) for p in (extent, confidence, *landcover, *routes, support)]
        counts = pixel_counts(cube[0], cube[1], cube[2:4], cube[4:6], cube[6])
        try:
            (counts,) = dask.compute(counts, scheduler="synchronous")  # the rule's 1 thread
        except RasterioError as err:
            raise InputError(f"a product the statistics read is corrupt ({err})") from err
    crs, transform = cube[0].rio.crs, cube[0].rio.transform()
    area = abs(transform.a * transform.e)
    import pyogrio

    n_polygons = pyogrio.read_info(polygons)["features"]  # counted, not read
    checkpoint_sha = file_sha256(checkpoint)
    stats: dict = {
        "event": event,
        "crs": crs.to_string(),
        "pixel_size_m": abs(transform.a),
        "flood": flood_figures(counts, area, flooded_from(cube[1]))
        | {
            "polygons": n_polygons,
            # the share of the flood whose post-event land cover came from each modality
            "flooded_by_post_route": _shares(
                ROUTES.values(), counts["flooded_by_post_route"].values, counts["flooded"]
            ),
            # the share of the flood each line of evidence supports, alone or together
            "flooded_by_evidence": _shares(
                SUPPORT, counts["flooded_by_evidence"], counts["flooded"]
            ),
        },
        "sar_change": json.loads(Path(sar_summary).read_text()),
        "water": {
            period: water_figures(json.loads(Path(p).read_text()), area)
            for period, p in zip(PERIODS, water, strict=True)
        },
        "confidence_calibration": calibration_provenance(calibration, checkpoint_sha),
        "flood_network": network_provenance(network_summary, calibration),
        "transitions_km2": pd.read_csv(transitions, index_col=0).to_dict(orient="index"),
        "coverage": {
            period: _shares(ROUTES.values(), counts["by_route"][i].values, counts["inside"][i])
            for i, period in enumerate(PERIODS)
        },
        "coregistration": {
            period: json.loads(Path(p).read_text())["shifts"]
            for period, p in zip(PERIODS, coregistration, strict=True)
        },
        "provenance": {
            "scenes": {
                period: json.loads(Path(p).read_text())
                for period, p in zip(PERIODS, scenes, strict=True)
            },
            "config_hash": config_hash(config),
            "event_config": config["events"][event],
            "model": {"checkpoint": str(checkpoint), "sha256": checkpoint_sha},
            "software": software_versions(),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
    }
    stats["terrain"] = terrain_figures(exclusion, reference_water, auxiliary)
    if validation is not None:
        stats["validation"] = json.loads(Path(validation).read_text())
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(stats, indent=2))
    write_impact_csv(stats, out_impact)
    return stats
