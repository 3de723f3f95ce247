"""Block-by-block processing of rasters larger than memory.

Products are written block by block into a tiled GeoTIFF beside the target, then
turned into a Cloud-Optimized GeoTIFF by GDAL's COG driver (which builds the overviews
from the file, not from memory) and moved into place only when complete: memory does
not grow with the scene, and an interrupted run leaves no product behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.windows import Window

from metaflood.raster import atomic_path


def block_windows(height: int, width: int, size: int) -> Iterator[Window]:
    """Row-major square blocks covering a raster; the last row and column may be smaller."""
    for row in range(0, height, size):
        for col in range(0, width, size):
            yield Window(col, row, min(size, width - col), min(size, height - row))


def with_halo(window: Window, halo: int, height: int, width: int) -> tuple[Window, tuple]:
    """`window` grown by `halo` pixels (clipped to the raster) and the slices that cut the
    original window back out of the grown one."""
    row0 = max(int(window.row_off) - halo, 0)
    col0 = max(int(window.col_off) - halo, 0)
    row1 = min(int(window.row_off + window.height) + halo, height)
    col1 = min(int(window.col_off + window.width) + halo, width)
    grown = Window(col0, row0, col1 - col0, row1 - row0)
    inner = (
        slice(int(window.row_off) - row0, int(window.row_off) - row0 + int(window.height)),
        slice(int(window.col_off) - col0, int(window.col_off) - col0 + int(window.width)),
    )
    return grown, inner


@contextmanager
def cog_writer(
    path: str | os.PathLike,
    *,
    count: int,
    dtype: str | np.dtype,
    crs: CRS | str,
    transform: Affine,
    width: int,
    height: int,
    nodata: float | int | None,
    descriptions: Sequence[str] | None = None,
    units: Sequence[str] | None = None,
    tags: dict[str, str] | None = None,
    colormap: dict[int, tuple[int, int, int, int]] | None = None,
    categorical: bool = False,
    blocksize: int = 256,
    threads: int = 1,
) -> Iterator[rasterio.io.DatasetWriter]:
    """Yield a tiled GeoTIFF to write windows into; on success it becomes a COG at `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dtype = np.dtype(dtype)
    profile = {
        "driver": "GTiff",
        "count": count,
        "dtype": dtype.name,
        "crs": CRS.from_user_input(crs),
        "transform": transform,
        "width": width,
        "height": height,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": blocksize,
        "blockysize": blocksize,
        "BIGTIFF": "IF_SAFER",
    }
    with tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=path.parent) as tmp_dir:
        staging = Path(tmp_dir) / "staging.tif"
        with rasterio.open(staging, "w", **profile) as dst:
            yield dst
            if descriptions is not None:
                dst.descriptions = tuple(descriptions)
            if units is not None:
                dst.units = tuple(units)
            if tags:
                dst.update_tags(**tags)
            if colormap is not None:
                dst.write_colormap(1, colormap)
        options = {
            "COMPRESS": "DEFLATE",
            "BLOCKSIZE": blocksize,
            "OVERVIEW_RESAMPLING": "NEAREST" if categorical or colormap is not None else "AVERAGE",
            "BIGTIFF": "IF_SAFER",
            "NUM_THREADS": str(threads),
        }
        if dtype.kind == "f":
            options["PREDICTOR"] = 3
        with atomic_path(path) as out:
            rasterio.shutil.copy(staging, out, driver="COG", **options)
