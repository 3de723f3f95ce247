"""The model's inference windows over a scene: their starts, overlap and blending weight."""

from __future__ import annotations

import numpy as np

from metaflood.model.metars import SIZE_MULTIPLE

# --- windows ---------------------------------------------------------------------------


def window_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles covering 0..size; the last tile ends at the edge (no padding)."""
    if size <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, size - tile, stride))
    starts.append(size - tile)
    return starts


def window_weight(tile: int, overlap: int) -> np.ndarray:
    """(tile, tile) blending weight: 1 inside, ramping down (never to 0) over the overlap."""
    if overlap <= 0:
        return np.ones((tile, tile), dtype=np.float32)
    i = np.arange(tile, dtype=np.float64) + 0.5
    ramp = np.clip(np.minimum(i, tile - i) / overlap, 0.0, 1.0)
    ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep: no kink where the ramp meets 1
    ramp = np.maximum(ramp, 1e-3)
    return np.outer(ramp, ramp).astype(np.float32)


def check_tiling(tile: int, overlap: int) -> None:
    if tile < SIZE_MULTIPLE or tile % SIZE_MULTIPLE:
        raise ValueError(f"tile {tile} must be a positive multiple of {SIZE_MULTIPLE}")
    if not 0 <= overlap < tile // 2:
        raise ValueError(f"overlap {overlap} must be in 0..{tile // 2 - 1} for tile {tile}")
