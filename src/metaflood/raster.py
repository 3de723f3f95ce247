"""Raster reading and writing: Cloud-Optimized GeoTIFFs, written atomically.

Every product goes through `write_cog`, so a job killed half-way never leaves a
truncated file under the final name, and every raster carries nodata, band
descriptions and overviews.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.transform import Affine
from rasterio.windows import Window

from metaflood.errors import InputError


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside `path` and move it into place only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name keeps the real suffix: some drivers choose the format by it.
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=f".part{path.suffix}", dir=path.parent
    )
    os.close(fd)
    # mkstemp creates 0600; products get the permissions of any other new file.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_cog(
    path: str | os.PathLike,
    data: np.ndarray,
    *,
    crs: CRS | str,
    transform: Affine,
    nodata: float | int | None,
    descriptions: Sequence[str] | None = None,
    colormap: dict[int, tuple[int, int, int, int]] | None = None,
    units: Sequence[str] | None = None,
    tags: dict[str, str] | None = None,
    categorical: bool = False,
    blocksize: int = 256,
) -> Path:
    """Write a (bands, rows, cols) or (rows, cols) array as a COG with overviews."""
    if data.ndim == 2:
        data = data[np.newaxis]
    count, height, width = data.shape
    if descriptions is not None and len(descriptions) != count:
        raise ValueError(f"{len(descriptions)} descriptions for {count} bands")
    resampling = "NEAREST" if categorical or colormap is not None else "AVERAGE"
    profile = {
        "driver": "COG",
        "count": count,
        "height": height,
        "width": width,
        "dtype": data.dtype,
        "crs": CRS.from_user_input(crs),
        "transform": transform,
        "nodata": nodata,
        "compress": "DEFLATE",
        "blocksize": blocksize,
        "overview_resampling": resampling,
        "BIGTIFF": "IF_SAFER",
    }
    if data.dtype.kind == "f":
        profile["predictor"] = 3
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(data)
        if descriptions is not None:
            dst.descriptions = tuple(descriptions)
        if units is not None:
            dst.units = tuple(units)
        if colormap is not None:
            dst.write_colormap(1, colormap)
        if tags:
            dst.update_tags(**tags)
    return Path(path)


def open_checked(path: str | os.PathLike) -> rasterio.DatasetReader:
    """Open a raster, turning GDAL's failure on a corrupt or missing file into InputError."""
    try:
        return rasterio.open(path)
    except RasterioError as err:
        raise InputError(f"{path}: cannot be read as a raster ({err})") from err


def open_georeferenced(path: str | os.PathLike) -> rasterio.DatasetReader:
    """`open_checked`, and a raster without a CRS is an InputError (it cannot be overlaid)."""
    src = open_checked(path)
    if src.crs is None:
        src.close()
        raise InputError(f"{path}: has no coordinate reference system")
    return src


def read_window(
    src: rasterio.DatasetReader,
    window: Window | None = None,
    indexes: int | list[int] | None = None,
    *,
    masked: bool = False,
) -> np.ndarray:
    """`src.read`, turning GDAL's failure on a truncated file into an InputError naming it."""
    try:
        return src.read(indexes, window=window, masked=masked)
    except RasterioError as err:
        raise InputError(f"{src.name}: is corrupt or truncated ({err})") from err


def read_checked(path: str | os.PathLike, *, need_crs: bool = True) -> tuple[np.ndarray, dict]:
    """Read every band of a raster; a corrupt file or one without a CRS is an InputError."""
    with open_georeferenced(path) if need_crs else open_checked(path) as src:
        data = read_window(src)
        profile = dict(src.profile)
        profile["descriptions"] = src.descriptions
    return data, profile


def band_index(src: rasterio.DatasetReader, name: str) -> int:
    """1-based index of the band whose description is `name`."""
    for i, desc in enumerate(src.descriptions, start=1):
        if desc == name:
            return i
    raise InputError(f"{src.name}: no band named {name!r} (bands: {src.descriptions})")


OVERVIEW_RESAMPLING = {True: Resampling.nearest, False: Resampling.average}
