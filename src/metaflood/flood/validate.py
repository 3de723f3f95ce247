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

from metaflood.core.config import PERIODS
from metaflood.core.metrics import confusion_matrix, summarize
from metaflood.core.raster import atomic_path, read_checked
from metaflood.core.reliability import high_confidence_precision, reliability_table
from metaflood.flood.change import EXTENT_NODATA, FLOODED, flood_extent
from metaflood.flood.confidence import CONFIDENCE_NODATA
from metaflood.flood.sar_change import FLOOD_SIGNAL
from metaflood.flood.support import CODES


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


def _flood_scores(predicted: np.ndarray, truth: np.ndarray, known: np.ndarray) -> dict:
    return binary_scores(predicted & known, truth & known)


def validate_against_truth(
    extent_path: Path,
    confidence_path: Path,
    sar_evidence_path: Path,
    pre_path: Path,
    post_path: Path,
    truth_dir: Path,
    out: Path,
    *,
    support_path: Path,
    min_area_m2: float,
    unexcluded_path: Path | None = None,
) -> dict:
    """Flood accuracy of the product, of each line of evidence alone, and of the confidence.

    Every score is taken over the pixels the extent maps: a pixel the terrain exclusion
    made nodata is no claim of the product, and the same pixels are left out of every
    line, so the workflow's record and `metaflood validate` run by hand give one figure.
    `support_path` (flood/support.tif) splits the flooded pixels by what they rest on
    (`flood.support.SUPPORT`), each case with the share of its pixels truly flooded.
    With `unexcluded_path` (the extent before the terrain exclusion), `exclusion_effect`
    compares the two extents over the pixels the unexcluded one knows, an excluded pixel
    counting as not flooded: IoU and false-positive area with the exclusion and without.
    Without it, an `exclusion_effect` already in `out` is kept (the workflow's unexcluded
    extent is temporary)."""
    extent, profile = read_checked(extent_path)
    extent = extent[0]
    known = extent != EXTENT_NODATA
    flood_truth = truth_on_grid(truth_dir / "flood.tif", profile) == 1
    pixel_area = abs(profile["transform"].a * profile["transform"].e)
    effect = None
    if unexcluded_path is not None:
        unexcluded = read_checked(unexcluded_path)[0][0]
        effect = exclusion_effect(
            extent, unexcluded, flood_truth, unexcluded != EXTENT_NODATA, pixel_area
        )
    elif Path(out).exists():
        effect = json.loads(Path(out).read_text()).get("exclusion_effect")
    confidence = read_checked(confidence_path)[0][0]
    sar = read_checked(sar_evidence_path)[0][0]
    classes = [read_checked(p)[0][0] for p in (pre_path, post_path)]
    land_cover_only = flood_extent(*classes, min_pixels=int(np.ceil(min_area_m2 / pixel_area)))
    scored = known & (confidence != CONFIDENCE_NODATA)
    result: dict = {
        "flood": _flood_scores(extent == FLOODED, flood_truth, known),
        "evidence_alone": {
            "land_cover_change": _flood_scores(land_cover_only == FLOODED, flood_truth, known),
            "sar_change": _flood_scores(sar == FLOOD_SIGNAL, flood_truth, known),
        },
        "confidence": {
            "high_confidence": high_confidence_precision(confidence[scored], flood_truth[scored]),
            "reliability": reliability_table(confidence[scored], flood_truth[scored]),
        },
        "landcover": {},
    }
    support = read_checked(support_path)[0][0]
    result["flood_by_evidence"] = {
        name: _share_truly_flooded(support == code, flood_truth) for name, code in CODES.items()
    }
    if effect is not None:
        result["exclusion_effect"] = effect
    for period, predicted in zip(PERIODS, classes, strict=True):
        truth = truth_on_grid(truth_dir / f"landcover_{period}.tif", profile)
        result["landcover"][period] = summarize(confusion_matrix(truth, predicted))
    text = json.dumps(result, indent=2)
    # Rewritten only when it changes: `metaflood validate` run by hand after the workflow
    # must not make Snakemake see a newer input and redo the statistics and the report.
    if not (out.exists() and out.read_text() == text):
        with atomic_path(out) as tmp:
            tmp.write_text(text)
    return result


def _share_truly_flooded(flooded: np.ndarray, truth: np.ndarray) -> dict:
    n = int(flooded.sum())
    right = int((flooded & truth).sum())
    return {"flooded_px": n, "truly_flooded": round(right / n, 4) if n else None}


def exclusion_effect(
    extent: np.ndarray,
    unexcluded: np.ndarray,
    truth: np.ndarray,
    known: np.ndarray,
    pixel_area_m2: float,
) -> dict:
    """Flood IoU and false-positive area (km²) with the terrain exclusion and without it."""
    out = {}
    for name, product in (("with_exclusion", extent), ("without_exclusion", unexcluded)):
        scores = _flood_scores(product == FLOODED, truth, known)
        scores["false_positive_km2"] = scores["false_positive_px"] * pixel_area_m2 / 1e6
        out[name] = scores
    before = out["without_exclusion"]["false_positive_px"]
    after = out["with_exclusion"]["false_positive_px"]
    out["false_positive_reduction"] = 1 - after / before if before else 0.0
    return out


def summary_lines(event: str, result: dict) -> list[str]:
    """The figures an analyst quotes, one per line (`metaflood validate` prints them)."""
    flood, alone = result["flood"], result["evidence_alone"]
    high = result["confidence"]["high_confidence"]
    precision = "n/a" if high["precision"] is None else f"{high['precision']:.3f}"
    return [
        f"event {event}",
        f"  flood IoU {flood['iou']:.3f} (precision {flood['precision']:.3f}, "
        f"recall {flood['recall']:.3f})",
        f"  land-cover change alone IoU {alone['land_cover_change']['iou']:.3f}; "
        f"SAR change alone IoU {alone['sar_change']['iou']:.3f}",
        f"  confidence >= {high['threshold']}: precision {precision} over {high['pixels']} px",
        f"  land-cover mIoU pre {result['landcover']['pre']['miou']:.3f}, "
        f"post {result['landcover']['post']['miou']:.3f}",
        *_exclusion_lines(result.get("exclusion_effect")),
    ]


def _exclusion_lines(effect: dict | None) -> list[str]:
    if not effect:
        return []
    on, off = effect["with_exclusion"], effect["without_exclusion"]
    return [
        f"  terrain exclusion: false positives {off['false_positive_km2']:.4f} -> "
        f"{on['false_positive_km2']:.4f} km2 ({100 * effect['false_positive_reduction']:.0f}% "
        f"fewer), IoU {off['iou']:.3f} -> {on['iou']:.3f}"
    ]
