"""Writing a raster strip by strip, finished as a Cloud-Optimized GeoTIFF.

A COG needs its overviews and its tiles in a fixed order, so it cannot be appended to.
The strips go into a tiled GeoTIFF beside the product; on success GDAL's COG driver
copies it (block by block, overviews included) to a temporary name that is then renamed
to the product, so memory stays bounded and a failed run leaves no product behind.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.windows import Window

from metaflood.raster import atomic_path


class BlockwiseCOG:
    """Context manager: `write(rows, row_offset)` full-width strips, get a COG on exit."""

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        count: int,
        dtype: str,
        width: int,
        height: int,
        crs: CRS | str,
        transform: Affine,
        nodata: float | int | None,
        descriptions: Sequence[str] | None = None,
        colormap: dict[int, tuple[int, int, int, int]] | None = None,
        tags: dict[str, str] | None = None,
        categorical: bool = False,
        blocksize: int = 256,
    ):
        self.path = Path(path)
        self.profile = {
            "driver": "GTiff",
            "count": count,
            "dtype": dtype,
            "width": width,
            "height": height,
            "crs": CRS.from_user_input(crs),
            "transform": transform,
            "nodata": nodata,
            "tiled": True,
            "blockxsize": blocksize,
            "blockysize": blocksize,
            "BIGTIFF": "IF_SAFER",  # uncompressed: the strips are rewritten once, compressed
        }
        self.descriptions = descriptions
        self.colormap = colormap
        self.tags = tags or {}
        self.blocksize = blocksize
        self.resampling = "NEAREST" if categorical or colormap is not None else "AVERAGE"
        self.rows_written = 0
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.strips.tif")
        self._dst = None

    def __enter__(self) -> BlockwiseCOG:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._dst = rasterio.open(self._tmp, "w", **self.profile)
        if self.descriptions is not None:
            self._dst.descriptions = tuple(self.descriptions)
        if self.colormap is not None:
            self._dst.write_colormap(1, self.colormap)
        if self.tags:
            self._dst.update_tags(**self.tags)
        return self

    def write(self, data: np.ndarray, row_offset: int) -> None:
        """(bands, rows, width) or (rows, width) strip starting at `row_offset`."""
        if data.ndim == 2:
            data = data[np.newaxis]
        rows = data.shape[1]
        self._dst.write(data, window=Window(0, row_offset, self.profile["width"], rows))
        self.rows_written += rows

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._dst.close()
            if exc_type is None:
                with atomic_path(self.path) as out:
                    rasterio.shutil.copy(
                        self._tmp,
                        out,
                        driver="COG",
                        COMPRESS="DEFLATE",
                        BLOCKSIZE=self.blocksize,
                        OVERVIEW_RESAMPLING=self.resampling,
                        BIGTIFF="IF_SAFER",
                    )
        finally:
            self._tmp.unlink(missing_ok=True)
            Path(f"{self._tmp}.aux.xml").unlink(missing_ok=True)
