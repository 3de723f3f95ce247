"""SAR helpers: backscatter scale conversions.

Backscatter is averaged and resampled in linear power; decibels are only for display,
thresholds and model inputs, because averaging logarithms biases the mean low.
"""

from __future__ import annotations

import numpy as np

# Smallest linear power kept before taking a logarithm (-60 dB), so that zero pixels
# (no-echo areas or resampling edges) do not become -inf.
LINEAR_FLOOR = 1e-6


def to_db(linear: np.ndarray) -> np.ndarray:
    """Linear power to decibels; NaN stays NaN."""
    linear = np.asarray(linear, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        return (10.0 * np.log10(np.maximum(linear, LINEAR_FLOOR))).astype(np.float32)


def to_linear(db: np.ndarray) -> np.ndarray:
    """Decibels to linear power; NaN stays NaN."""
    return np.power(10.0, np.asarray(db, dtype=np.float32) / 10.0).astype(np.float32)
