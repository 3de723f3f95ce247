"""Flood extent and confidence from the land-cover change and the SAR change evidence.

New water is water after the event where there was none before; water in both maps is
permanent (sea, reservoirs) and is kept apart so it is never counted as flooding. A
pixel is mapped as flooded where the calibrated confidence (confidence.py), which weighs
the land-cover change against the independent SAR change, says it more likely than not;
regions smaller than the minimum mapping unit are dropped as noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from skimage.morphology import remove_small_objects

from metaflood.classes import CLASS_NAMES, NUM_CLASSES, WATER
from metaflood.confidence import (
    CONFIDENCE_NODATA,
    flood_probability,
    load_calibration,
    read_evidence,
    to_percent,
)
from metaflood.errors import InputError
from metaflood.raster import atomic_path, read_checked, write_cog
from metaflood.sar_change import same_grid
from metaflood.vector import flood_polygons, write_polygons

DRY, FLOODED, PERMANENT = 0, 1, 2
EXTENT_NODATA = 255
EXTENT_COLORMAP = {
    DRY: (235, 235, 235, 255),
    FLOODED: (0, 112, 255, 255),
    PERMANENT: (0, 38, 115, 255),
    EXTENT_NODATA: (0, 0, 0, 0),
}


FLOOD_PROBABILITY = 0.5


def flood_extent(pre: np.ndarray, post: np.ndarray, min_pixels: int) -> np.ndarray:
    """Land-cover change alone (the baseline the combined extent is measured against):
    0 dry, 1 flooded, 2 permanent water, 255 where either map has no class."""
    known = (pre < NUM_CLASSES) & (post < NUM_CLASSES)
    new_water = known & (post == WATER) & (pre != WATER)
    if min_pixels > 1:
        new_water = remove_small_objects(new_water, max_size=min_pixels - 1, connectivity=2)
    extent = np.full(pre.shape, EXTENT_NODATA, dtype=np.uint8)
    extent[known] = DRY
    extent[known & (pre == WATER) & (post == WATER)] = PERMANENT
    extent[new_water] = FLOODED
    return extent


def transition_matrix(pre: np.ndarray, post: np.ndarray, pixel_area_m2: float) -> pd.DataFrame:
    """Area (km2) that went from each pre-event class (rows) to each post-event class."""
    known = (pre < NUM_CLASSES) & (post < NUM_CLASSES)
    pairs = pre[known].astype(np.int64) * NUM_CLASSES + post[known]
    counts = np.bincount(pairs, minlength=NUM_CLASSES**2).reshape(NUM_CLASSES, NUM_CLASSES)
    frame = pd.DataFrame(counts * pixel_area_m2 / 1e6, index=CLASS_NAMES, columns=CLASS_NAMES)
    frame.index.name = "pre \\ post (km2)"
    return frame


def _read_classes(path: Path) -> tuple[np.ndarray, dict]:
    data, profile = read_checked(path)
    if data.shape[0] != 1 or data.dtype != np.uint8:
        raise InputError(f"{path}: expected a single-band uint8 class map")
    return data[0], profile


def combined_extent(
    probability: np.ndarray, pre: np.ndarray, post: np.ndarray, min_pixels: int
) -> np.ndarray:
    """Flooded where the calibrated probability of new water is at least one half."""
    known = (pre < NUM_CLASSES) & (post < NUM_CLASSES) & np.isfinite(probability)
    permanent = known & (pre == WATER) & (post == WATER)
    new_water = known & ~permanent & (np.nan_to_num(probability) >= FLOOD_PROBABILITY)
    if min_pixels > 1:
        new_water = remove_small_objects(new_water, max_size=min_pixels - 1, connectivity=2)
    extent = np.full(pre.shape, EXTENT_NODATA, dtype=np.uint8)
    extent[known] = DRY
    extent[permanent] = PERMANENT
    extent[new_water] = FLOODED
    return extent


def map_flood(
    landcover: list[Path],
    proba: list[Path],
    *,
    post_route: Path,
    sar_evidence: Path,
    sar_ratio: Path,
    sar_summary: Path,
    calibration: Path | None,
    out_extent: Path,
    out_confidence: Path,
    out_polygons: Path,
    out_transitions: Path,
    min_area_m2: float,
) -> dict:
    """The change stage: extent, confidence, polygons and transitions of one event."""
    calibration_model = load_calibration(calibration)
    (pre, profile), (post, post_profile) = (_read_classes(p) for p in landcover)
    evidence, proba_profile = read_evidence(proba, post_route, sar_evidence, sar_ratio, sar_summary)
    same_grid([(landcover[0], profile), (landcover[1], post_profile), (proba[0], proba_profile)])
    transform, crs = profile["transform"], profile["crs"]
    pixel_area = abs(transform.a * transform.e)
    probability = flood_probability(evidence, calibration_model)
    extent = combined_extent(
        probability, pre, post, min_pixels=int(np.ceil(min_area_m2 / pixel_area))
    )
    confidence = to_percent(probability)
    confidence[extent == EXTENT_NODATA] = CONFIDENCE_NODATA
    write_cog(
        out_extent,
        extent,
        crs=crs,
        transform=transform,
        nodata=EXTENT_NODATA,
        descriptions=("flood_extent",),
        colormap=EXTENT_COLORMAP,
        tags={"values": "0 dry, 1 flooded, 2 permanent water, 255 nodata"},
    )
    write_cog(
        out_confidence,
        confidence,
        crs=crs,
        transform=transform,
        nodata=CONFIDENCE_NODATA,
        descriptions=("flood_confidence",),
        units=("percent",),
        tags={
            "definition": "calibrated probability (percent) that the pixel is newly flooded",
            "flooded_at": f"{round(100 * FLOOD_PROBABILITY)} and above",
        },
    )
    polygons = flood_polygons(extent == FLOODED, pre, transform, crs.to_string(), confidence)
    write_polygons(polygons, out_polygons)
    with atomic_path(out_transitions) as tmp:
        transition_matrix(pre, post, pixel_area).to_csv(tmp, float_format="%.6f")
    return {"flooded_pixels": int((extent == FLOODED).sum()), "polygons": len(polygons)}
