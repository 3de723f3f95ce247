"""Tiles of a large event grid: their layout, blending weights and the gathered mosaic.

A grid larger than `tiling.tile_px` is cut into a regular layout of tiles whose *cores*
partition the grid exactly; each tile job works on its core grown by `overlap_px` on
every side (its *padded* window, clipped to the grid). Products whose value at a pixel
depends only on that pixel are gathered by copying each core into place. Products whose
value depends on context (land-cover probabilities: a CNN sees its neighbourhood, and
the edge of a tile sees less of it) are gathered by blending: across each core boundary
the two tiles' weights ramp linearly over the 2 x overlap pixels of their shared band,
so the weights of every pixel sum to one and no seam remains.

The layout is a pure function of the grid size and the two settings, so Snakemake can
list the tile jobs when it parses the workflow, and every job computes the same layout.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dask
import numpy as np
from rasterio.windows import Window

from metaflood.core.errors import ConfigError, InputError


@dataclass(frozen=True)
class Tile:
    """One tile: the pixels it owns (core) and the pixels it reads and maps (padded)."""

    id: str
    core: Window
    padded: Window


def axis_bounds(size: int, tile_px: int) -> list[int]:
    """Core boundaries along one axis: as few cores as fit in `tile_px`, of equal size
    (to a pixel), so no thin sliver of a tile is left at the far edge."""
    if size < 1 or tile_px < 1:
        raise InputError(f"cannot tile {size} pixels in tiles of {tile_px}")
    n = math.ceil(size / tile_px)
    return [round(i * size / n) for i in range(n + 1)]


def tile_layout(height: int, width: int, tile_px: int, overlap_px: int) -> list[Tile]:
    """Row-major tiles covering a (height, width) grid; one tile when the grid fits."""
    rows, cols = axis_bounds(height, tile_px), axis_bounds(width, tile_px)
    smallest = min(np.diff(rows).min(), np.diff(cols).min())
    # `rows` and `cols` are core boundaries: n tiles along an axis have n + 1 of them.
    # A grid that fits one tile has no overlap band to keep, however small it is.
    several = (len(rows) - 1) * (len(cols) - 1) > 1
    if several and smallest < 2 * overlap_px:
        raise ConfigError(
            f"tiling: tiles of {smallest} px are narrower than twice the overlap "
            f"({overlap_px} px); raise tiling.tile_px or lower tiling.overlap_px"
        )
    tiles = []
    for r, (r0, r1) in enumerate(zip(rows[:-1], rows[1:], strict=True)):
        for c, (c0, c1) in enumerate(zip(cols[:-1], cols[1:], strict=True)):
            pr0, pr1 = max(r0 - overlap_px, 0), min(r1 + overlap_px, height)
            pc0, pc1 = max(c0 - overlap_px, 0), min(c1 + overlap_px, width)
            tiles.append(
                Tile(
                    id=f"r{r}c{c}",
                    core=Window(c0, r0, c1 - c0, r1 - r0),
                    padded=Window(pc0, pr0, pc1 - pc0, pr1 - pr0),
                )
            )
    return tiles


def find_tile(tiles: Iterable[Tile], tile_id: str) -> Tile:
    for tile in tiles:
        if tile.id == tile_id:
            return tile
    raise InputError(f"no tile {tile_id!r} in the layout")


def _axis_weight(start: int, stop: int, core_start: int, core_stop: int, size: int, overlap: int):
    """Weights along one axis of a padded window: 1 in the core, and a linear ramp over
    the 2 x overlap band centred on each core boundary that has a neighbour beyond it."""
    centres = np.arange(start, stop, dtype=np.float64) + 0.5
    if overlap == 0:
        return ((centres > core_start) & (centres < core_stop)).astype(np.float64)
    weight = np.ones_like(centres)
    if core_start > 0:
        weight *= np.clip((centres - (core_start - overlap)) / (2 * overlap), 0.0, 1.0)
    if core_stop < size:
        weight *= np.clip(((core_stop + overlap) - centres) / (2 * overlap), 0.0, 1.0)
    return weight


def tile_weight(tile: Tile, height: int, width: int, overlap: int) -> np.ndarray:
    """(rows, cols) blending weight of a tile over its padded window."""
    p, c = tile.padded, tile.core
    wy = _axis_weight(
        int(p.row_off),
        int(p.row_off + p.height),
        int(c.row_off),
        int(c.row_off + c.height),
        height,
        overlap,
    )
    wx = _axis_weight(
        int(p.col_off),
        int(p.col_off + p.width),
        int(c.col_off),
        int(c.col_off + c.width),
        width,
        overlap,
    )
    return np.outer(wy, wx).astype(np.float32)


def _intersection(a: Window, b: Window) -> Window | None:
    r0, c0 = max(a.row_off, b.row_off), max(a.col_off, b.col_off)
    r1 = min(a.row_off + a.height, b.row_off + b.height)
    c1 = min(a.col_off + a.width, b.col_off + b.width)
    if r1 <= r0 or c1 <= c0:
        return None
    return Window(int(c0), int(r0), int(c1 - c0), int(r1 - r0))


def _slices(inner: Window, outer: Window) -> tuple[slice, slice]:
    """Array slices that cut `inner` out of an array covering `outer`."""
    r0, c0 = int(inner.row_off - outer.row_off), int(inner.col_off - outer.col_off)
    return slice(r0, r0 + int(inner.height)), slice(c0, c0 + int(inner.width))


Reader = Callable[[Tile, Window], np.ndarray]


def blend_core(
    target: Tile,
    tiles: list[Tile],
    read: Reader,
    *,
    height: int,
    width: int,
    overlap: int,
) -> np.ndarray:
    """Weighted mean of every tile's (bands, rows, cols) values over `target`'s core.

    `read(tile, window)` returns the tile's values over `window` (inside its padded
    window). Only tiles whose padded window reaches the core are read.
    """
    core = target.core
    total = None
    norm = np.zeros((int(core.height), int(core.width)), np.float32)
    for tile in tiles:
        part = _intersection(tile.padded, core)
        if part is None:
            continue
        weight = tile_weight(tile, height, width, overlap)[_slices(part, tile.padded)]
        if not weight.any():
            continue
        values = read(tile, part).astype(np.float32)
        if total is None:
            total = np.zeros((values.shape[0], *norm.shape), np.float32)
        rows, cols = _slices(part, core)
        total[:, rows, cols] += weight * values
        norm[rows, cols] += weight
    if total is None or not np.allclose(norm, 1.0, atol=1e-4):
        raise InputError(f"tile {target.id}: the gathered tiles do not cover its core")
    return total


@contextmanager
def dask_scheduler(threads: int, scheduler: str) -> Iterator[None]:
    """Run dask work on `threads` threads (the rule's count), in-process by default or on
    a dask.distributed LocalCluster of that many threads (compute.scheduler: distributed)."""
    threads = max(1, int(threads))
    if scheduler == "distributed":
        from dask.distributed import Client, LocalCluster

        with (
            LocalCluster(
                n_workers=1, threads_per_worker=threads, processes=False, dashboard_address=None
            ) as cluster,
            Client(cluster),
        ):
            yield
    elif scheduler == "threads":
        with dask.config.set(scheduler="threads", num_workers=threads):
            yield
    else:
        raise ConfigError(f"compute.scheduler: unknown scheduler {scheduler!r}")


def compute_in_order(
    tasks: list[Callable[[], np.ndarray]], threads: int
) -> Iterator[tuple[int, np.ndarray]]:
    """Run the tasks `threads` at a time through dask and yield (index, result) in order,
    so at most `threads` results are held before they are written."""
    step = max(1, int(threads))
    for start in range(0, len(tasks), step):
        batch = [dask.delayed(task)() for task in tasks[start : start + step]]
        for offset, result in enumerate(dask.compute(*batch)):
            yield start + offset, result
