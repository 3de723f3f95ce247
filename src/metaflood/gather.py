"""Gathering the tiles of a tiled event into the products an untiled run writes.

Tiles carry their own geotransform, so the mosaic's grid and each tile's place in it
are read from the files, never assumed. Every gathered product has the untiled
product's path, format (COG, nodata, band descriptions, colour table) and values
where the stage is pixelwise; land-cover probabilities are blended across tile
overlaps before the argmax (see `tiling`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.windows import Window

from metaflood.errors import InputError
from metaflood.raster import atomic_path, cog_writer, compression_of, open_checked
from metaflood.settings import TilingSettings
from metaflood.tiling import (
    Tile,
    blend_core,
    compute_in_order,
    dask_scheduler,
    tile_layout,
)


@dataclass(frozen=True)
class Frame:
    """The mosaic grid the tiles make up, and each tile's window in it."""

    crs: CRS
    transform: Affine
    height: int
    width: int
    windows: tuple[Window, ...]


def tile_frame(paths: list[Path]) -> Frame:
    """The grid covered by the tiles (their union), from their own geotransforms."""
    if not paths:
        raise InputError("no tile to gather")
    metas = []
    for path in paths:
        with open_checked(path) as src:
            metas.append((src.crs, src.transform, src.height, src.width))
    crs, first = metas[0][0], metas[0][1]
    x0 = min(m[1].c for m in metas)
    y0 = max(m[1].f for m in metas)
    windows = []
    for path, (tcrs, t, h, w) in zip(paths, metas, strict=True):
        if tcrs != crs or (t.a, t.b, t.d, t.e) != (first.a, first.b, first.d, first.e):
            raise InputError(f"{path}: not on the grid of {paths[0]}")
        col, row = (t.c - x0) / t.a, (t.f - y0) / t.e
        if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
            raise InputError(f"{path}: not aligned with the pixels of {paths[0]}")
        windows.append(Window(round(col), round(row), w, h))
    height = max(int(w.row_off + w.height) for w in windows)
    width = max(int(w.col_off + w.width) for w in windows)
    transform = Affine(first.a, first.b, x0, first.d, first.e, y0)
    return Frame(crs, transform, height, width, tuple(windows))


def _check_layout(frame: Frame, tiles: list[Tile], which: str, paths: list[Path]) -> None:
    """The tiles must be the layout's, in its order, each over its `which` window."""
    if len(tiles) != len(paths):
        raise InputError(f"{len(paths)} tiles given, the layout has {len(tiles)}")
    for tile, window, path in zip(tiles, frame.windows, paths, strict=True):
        if getattr(tile, which) != window:
            raise InputError(f"{path}: covers {window}, tile {tile.id} is {getattr(tile, which)}")


def copy_gather(
    paths: list[Path],
    out: Path,
    *,
    threads: int = 1,
    tags: dict[str, str] | None = None,
    categorical: bool = False,
) -> Frame:
    """Mosaic of tiles that partition the grid (each tile its core): copied into place,
    with the first tile's bands, nodata, descriptions, units and tags."""
    frame = tile_frame(paths)
    with open_checked(paths[0]) as src:
        meta = {
            "count": src.count,
            "dtype": src.dtypes[0],
            "nodata": src.nodata,
            "descriptions": src.descriptions,
            "units": src.units if any(src.units) else None,
            "tags": {**src.tags(), **(tags or {})},
            "compression": compression_of(src),
        }
    covered = sum(int(w.width * w.height) for w in frame.windows)
    if covered != frame.height * frame.width:
        raise InputError(f"the tiles of {out} do not cover its grid exactly")
    with cog_writer(
        out,
        crs=frame.crs,
        transform=frame.transform,
        width=frame.width,
        height=frame.height,
        categorical=categorical,
        threads=threads,
        **meta,
    ) as dst:
        for path, window in zip(paths, frame.windows, strict=True):
            with open_checked(path) as src:
                dst.write(src.read(), window=window)
    return frame


def gather_aligned(
    shifts: Path,
    stacks: list[Path],
    valid: list[Path],
    *,
    out_stack: Path,
    out_valid: Path,
    out_report: Path,
    where: str,
    threads: int = 1,
) -> dict:
    """The co-registered stack and availability of a tiled period, and its report: the
    shared shifts plus the coverage of the whole AOI."""
    report = json.loads(Path(shifts).read_text())
    copy_gather(stacks, out_stack, threads=threads)
    copy_gather(valid, out_valid, threads=threads, categorical=True)
    inside = sar = optical = 0
    with open_checked(out_valid) as src:
        for _, window in src.block_windows(1):
            v = src.read(1, window=window)
            ok = v != 255
            inside += int(ok.sum())
            sar += int((ok & (v & 1 > 0)).sum())
            optical += int((ok & (v & 2 > 0)).sum())
    if sar + optical == 0:
        out_stack.unlink()
        out_valid.unlink()
        raise InputError(f"{where}: no pixel of the AOI has a valid SAR or optical value")
    if "looks" in report["speckle"]:
        report["speckle"]["looks"] = [round(v, 2) for v in report["speckle"]["looks"]]
    report["coverage"] = {
        "sar_valid": sar / max(inside, 1),
        "optical_valid": optical / max(inside, 1),
    }
    with atomic_path(out_report) as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    return report


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
    from metaflood.infer import encode_products, landcover_writers

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
