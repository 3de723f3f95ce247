"""Gathering the tiles of a tiled event into the products an untiled run writes.

Tiles carry their own geotransform, so the mosaic's grid and each tile's place in it
are read from the files, never assumed. Every gathered product has the untiled
product's path, format (COG, nodata, band descriptions, colour table) and values
where the stage is pixelwise; land-cover probabilities are blended across tile
overlaps before the argmax (see `tiling`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from metaflood.core.errors import InputError
from metaflood.core.mosaic import Frame, tile_frame
from metaflood.core.raster import open_checked
from metaflood.core.settings import TilingSettings
from metaflood.core.tiling import (
    Tile,
    blend_core,
    compute_in_order,
    dask_scheduler,
    tile_layout,
)
from metaflood.landcover.writers import encode_products, landcover_writers


def _check_layout(frame: Frame, tiles: list[Tile], which: str, paths: list[Path]) -> None:
    """The tiles must be the layout's, in its order, each over its `which` window."""
    if len(tiles) != len(paths):
        raise InputError(f"{len(paths)} tiles given, the layout has {len(tiles)}")
    for tile, window, path in zip(tiles, frame.windows, paths, strict=True):
        if getattr(tile, which) != window:
            raise InputError(f"{path}: covers {window}, tile {tile.id} is {getattr(tile, which)}")


def gather_landcover(
    proba_tiles: list[Path],
    route_tiles: list[Path],
    tiling: TilingSettings,
    *,
    out_class: Path,
    out_proba: Path,
    out_route: Path,
    threads: int = 1,
    scheduler: str,
) -> dict:
    """Blend the tiles' probabilities over their overlaps, then classes, 8-bit
    probabilities and routes as `infer.predict_scene` writes them. Cores are computed
    in parallel by dask (`threads` at a time) and written in order."""
    frame = tile_frame(route_tiles)
    tiles = tile_layout(frame.height, frame.width, tiling.tile_px, tiling.overlap_px)
    _check_layout(frame, tiles, "padded", route_tiles)
    if tile_frame(proba_tiles).windows != frame.windows:
        raise InputError("the probability and route tiles do not cover the same windows")
    proba_of = dict(zip((t.id for t in tiles), proba_tiles, strict=True))
    route_of = dict(zip((t.id for t in tiles), route_tiles, strict=True))
    with open_checked(proba_tiles[0]) as src:
        class_names, tags = src.descriptions, src.tags()

    def read_window(path: Path, tile: Tile, window: Window) -> np.ndarray:
        local = Window(
            window.col_off - tile.padded.col_off,
            window.row_off - tile.padded.row_off,
            window.width,
            window.height,
        )
        with rasterio.open(path) as src:
            return src.read(window=local)

    def task(target: Tile):
        def run():
            proba = blend_core(
                target,
                tiles,
                lambda tile, window: read_window(proba_of[tile.id], tile, window),
                height=frame.height,
                width=frame.width,
                overlap=tiling.overlap_px,
            )
            route = read_window(route_of[target.id], target, target.core)[0]
            return (*encode_products(proba, route), route)

        return run

    grid = {
        "crs": frame.crs,
        "transform": frame.transform,
        "width": frame.width,
        "height": frame.height,
        "threads": threads,
    }
    checkpoint = {"checkpoint": tags.get("checkpoint", "")}
    with (
        landcover_writers(
            out_class, out_proba, out_route, class_names=class_names, tags=checkpoint, **grid
        ) as (w_class, w_proba, w_route),
        dask_scheduler(threads, scheduler),
    ):
        for i, (classes, proba_u8, route) in compute_in_order([task(t) for t in tiles], threads):
            core = tiles[i].core
            w_class.write(classes, 1, window=core)
            w_proba.write(proba_u8, window=core)
            w_route.write(route, 1, window=core)
    return {"tiles": len(tiles), "grid": [frame.height, frame.width]}
