"""Accuracy of the demo products against the simulator's truth.

Only for demo events: the truth sits beside the generated catalog, and only this
stage reads it, never the stages that make the products.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.warp import reproject

from metaflood.change import EXTENT_NODATA, FLOODED
from metaflood.metrics import confusion_matrix, summarize
from metaflood.raster import atomic_path, read_checked


def truth_on_grid(truth_path: Path, like: dict) -> np.ndarray:
    """Truth (native grid) brought to the product grid by majority vote."""
    with rasterio.open(truth_path) as src:
        out = np.full((like["height"], like["width"]), 255, dtype=np.uint8)
        reproject(
            source=rasterio.band(src, 1),
            destination=out,
            dst_transform=like["transform"],
            dst_crs=like["crs"],
            dst_nodata=255,
            resampling=Resampling.mode,
        )
    return out


def binary_scores(predicted: np.ndarray, truth: np.ndarray) -> dict:
    tp = int((predicted & truth).sum())
    fp = int((predicted & ~truth).sum())
    fn = int((~predicted & truth).sum())
    union = tp + fp + fn
    return {
        "iou": tp / union if union else 1.0,
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "true_positive_px": tp,
        "false_positive_px": fp,
        "false_negative_px": fn,
    }


def validate_against_truth(
    extent_path: Path, pre_path: Path, post_path: Path, truth_dir: Path, out: Path
) -> dict:
    extent, profile = read_checked(extent_path)
    extent = extent[0]
    known = extent != EXTENT_NODATA
    flood_truth = truth_on_grid(truth_dir / "flood.tif", profile)
    result: dict = {
        "flood": binary_scores((extent == FLOODED) & known, (flood_truth == 1) & known),
        "landcover": {},
    }
    for period, path in (("pre", pre_path), ("post", post_path)):
        predicted = read_checked(path)[0][0]
        truth = truth_on_grid(truth_dir / f"landcover_{period}.tif", profile)
        result["landcover"][period] = summarize(confusion_matrix(truth, predicted))
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    return result
