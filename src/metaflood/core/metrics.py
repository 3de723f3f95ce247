"""Segmentation accuracy: confusion matrix, per-class IoU and mean IoU."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from metaflood.core.classes import CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES


def confusion_matrix(
    truth: np.ndarray,
    pred: np.ndarray,
    num_classes: int = NUM_CLASSES,
    ignore_index: int = IGNORE_INDEX,
) -> np.ndarray:
    """Counts[i, j] of pixels of true class i predicted as j.

    Pixels whose truth is `ignore_index` or whose prediction is outside the classes
    (nodata: an unmapped pixel) are left out, so accuracy is that of the mapped area.
    """
    truth = np.asarray(truth).ravel().astype(np.int64)
    pred = np.asarray(pred).ravel().astype(np.int64)
    if truth.shape != pred.shape:
        raise ValueError(f"truth has {truth.size} pixels, prediction {pred.size}")
    keep = (truth != ignore_index) & (truth >= 0) & (truth < num_classes)
    keep &= (pred >= 0) & (pred < num_classes)
    cm = np.bincount(truth[keep] * num_classes + pred[keep], minlength=num_classes**2)
    return cm.reshape(num_classes, num_classes)


def iou_per_class(cm: np.ndarray) -> np.ndarray:
    """IoU of each class; NaN for a class absent from both truth and prediction."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    union = cm.sum(axis=1) + cm.sum(axis=0) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def mean_iou(cm: np.ndarray) -> float:
    """Mean IoU over classes present in truth or prediction (NaN if there are none)."""
    iou = iou_per_class(cm)
    return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")


def summarize(cm: np.ndarray, class_names: Sequence[str] = CLASS_NAMES) -> dict:
    """JSON-ready summary: mIoU, per-class IoU (None when absent), pixel accuracy."""
    iou = iou_per_class(cm)
    cm = np.asarray(cm)
    total = cm.sum()
    return {
        "miou": _clean(mean_iou(cm)),
        "iou": {name: _clean(v) for name, v in zip(class_names, iou, strict=True)},
        "pixel_accuracy": _clean(np.trace(cm) / total if total else float("nan")),
        "pixels": int(total),
    }


def _clean(value: float) -> float | None:
    value = float(value)
    return None if np.isnan(value) else round(value, 6)
