"""Flood extent from the pre- and post-event land-cover maps.

New water is water after the event where there was none before; water in both maps is
permanent (sea, reservoirs) and is kept apart so it is never counted as flooding.
Regions smaller than the minimum mapping unit are dropped as noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from skimage.morphology import remove_small_objects

from metaflood.classes import CLASS_NAMES, NUM_CLASSES, WATER
from metaflood.errors import InputError
from metaflood.raster import atomic_path, read_checked, write_cog
from metaflood.vector import flood_polygons, write_polygons

DRY, FLOODED, PERMANENT = 0, 1, 2
EXTENT_NODATA = 255
EXTENT_COLORMAP = {
    DRY: (235, 235, 235, 255),
    FLOODED: (0, 112, 255, 255),
    PERMANENT: (0, 38, 115, 255),
    EXTENT_NODATA: (0, 0, 0, 0),
}


def flood_extent(pre: np.ndarray, post: np.ndarray, min_pixels: int) -> np.ndarray:
    """0 dry, 1 flooded, 2 permanent water, 255 where either map has no class."""
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


def map_flood(
    pre_path: Path,
    post_path: Path,
    *,
    out_extent: Path,
    out_polygons: Path,
    out_transitions: Path,
    min_area_m2: float,
) -> dict:
    pre, profile = _read_classes(pre_path)
    post, post_profile = _read_classes(post_path)
    if (profile["crs"], profile["transform"], pre.shape) != (
        post_profile["crs"],
        post_profile["transform"],
        post.shape,
    ):
        raise InputError(f"{pre_path} and {post_path} are not on the same grid")
    transform = profile["transform"]
    pixel_area = abs(transform.a * transform.e)
    extent = flood_extent(pre, post, min_pixels=int(np.ceil(min_area_m2 / pixel_area)))
    write_cog(
        out_extent,
        extent,
        crs=profile["crs"],
        transform=transform,
        nodata=EXTENT_NODATA,
        descriptions=("flood_extent",),
        colormap=EXTENT_COLORMAP,
        tags={"values": "0 dry, 1 flooded, 2 permanent water, 255 nodata"},
    )
    polygons = flood_polygons(extent == FLOODED, pre, transform, profile["crs"].to_string())
    write_polygons(polygons, out_polygons)
    with atomic_path(out_transitions) as tmp:
        transition_matrix(pre, post, pixel_area).to_csv(tmp, float_format="%.6f")
    return {"flooded_pixels": int((extent == FLOODED).sum()), "polygons": len(polygons)}
