"""Mosaics of job tiles: the grid the tiles make up, read from their own geotransforms,
and tiles that partition it copied into one raster."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.windows import Window

from metaflood.core.errors import InputError
from metaflood.core.raster import cog_writer, compression_of, open_checked


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
