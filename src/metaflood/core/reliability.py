"""Does the confidence mean what it says? Reliability per bin and high-confidence precision.

A confidence of 80 should be right about 80% of the time: per 10-point bin, the table
gives the share of pixels that were truly flooded, to be read against the bin's mean.
"""

from __future__ import annotations

import numpy as np

BIN_EDGES = tuple(range(0, 101, 10))
HIGH_CONFIDENCE = 80


def reliability_table(percent: np.ndarray, flooded: np.ndarray) -> list[dict]:
    """Per confidence bin: pixels, mean confidence, and the share truly flooded."""
    rows = []
    for low, high in zip(BIN_EDGES[:-1], BIN_EDGES[1:], strict=True):
        inside = (percent >= low) & ((percent < high) if high < 100 else (percent <= high))
        n = int(inside.sum())
        rows.append(
            {
                "confidence": f"{low}-{high}",
                "pixels": n,
                "mean_confidence": round(float(percent[inside].mean()), 2) if n else None,
                "observed_flooded_percent": round(100 * float(flooded[inside].mean()), 2)
                if n
                else None,
            }
        )
    return rows


def high_confidence_precision(percent: np.ndarray, flooded: np.ndarray) -> dict:
    high = percent >= HIGH_CONFIDENCE
    n = int(high.sum())
    return {
        "threshold": HIGH_CONFIDENCE,
        "pixels": n,
        "precision": round(float(flooded[high].mean()), 6) if n else None,
    }
