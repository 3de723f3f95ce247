"""The model's inference windows over a scene: their starts, overlap and blending weight."""

from __future__ import annotations

import numpy as np

from metaflood.model.metars import SIZE_MULTIPLE

# --- windows ---------------------------------------------------------------------------


def window_starts(size: int, window_px: int, overlap: int) -> list[int]:
    """Start offsets of windows covering 0..size; the last ends at the edge (no padding)."""
    if size <= window_px:
        return [0]
    stride = window_px - overlap
    starts = list(range(0, size - window_px, stride))
    starts.append(size - window_px)
    return starts


def window_weight(window_px: int, overlap: int) -> np.ndarray:
    """(window_px, window_px) blending weight: 1 inside, ramping down (never to 0) over the
    overlap."""
    if overlap <= 0:
        return np.ones((window_px, window_px), dtype=np.float32)
    i = np.arange(window_px, dtype=np.float64) + 0.5
    ramp = np.clip(np.minimum(i, window_px - i) / overlap, 0.0, 1.0)
    ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep: no kink where the ramp meets 1
    ramp = np.maximum(ramp, 1e-3)
    return np.outer(ramp, ramp).astype(np.float32)


def check_windows(window_px: int, overlap: int) -> None:
    """The window size (`model.tile` in the configuration) and overlap blending can use."""
    if window_px < SIZE_MULTIPLE or window_px % SIZE_MULTIPLE:
        raise ValueError(f"tile {window_px} must be a positive multiple of {SIZE_MULTIPLE}")
    if not 0 <= overlap < window_px // 2:
        raise ValueError(
            f"overlap {overlap} must be in 0..{window_px // 2 - 1} for tile {window_px}"
        )
