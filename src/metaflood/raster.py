"""Raster reading and writing: Cloud-Optimized GeoTIFFs, written atomically.

Every product goes through `write_cog`, so a job killed half-way never leaves a
truncated file under the final name, and every raster carries nodata, band
descriptions and overviews.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
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


# DEFLATE is the codec every GIS reads; level 1 encodes five times faster than the
# default 6 for files about 10% larger (an 8-band 1024 px probability COG: 0.07 s
# against 0.38 s), and products are wanted within the hour.
COG_COMPRESSION = {"COMPRESS": "DEFLATE", "LEVEL": 1}
# Downloaded scenes are kept between runs over the same area: ZSTD decodes floats twice
# as fast as DEFLATE at the same size (the demo's post-event stack: 22 ms against 48,
# 10.7 MB both). GDAL has read it since 2.3, so QGIS opens them too.
SCENE_COMPRESSION = {"COMPRESS": "ZSTD", "LEVEL": 1}
# Co-registered stacks are intermediates that land cover reads again strip by strip, with
# a halo: uncompressed they read in half ZSTD's time (a 1024 px scene's six bands: 14 ms
# against 32), for about twice the disk (the demo's post-event stack: 22.0 MB against
# 10.6; its grid padded to whole 256 px tiles). Set ZSTD here to trade back.
ALIGNED_COMPRESSION = {"COMPRESS": "NONE"}
CODECS = [ALIGNED_COMPRESSION, SCENE_COMPRESSION, COG_COMPRESSION]


def gtiff_compression(compression: Mapping[str, object]) -> dict[str, object]:
    """The same codec as GTiff creation options (the GTiff driver names each codec's
    level option apart: ZSTD_LEVEL, ZLEVEL), for files that are not COGs."""
    codec = str(compression["COMPRESS"]).upper()
    level_option = {"ZSTD": "ZSTD_LEVEL", "DEFLATE": "ZLEVEL"}[codec]
    return {"COMPRESS": codec, level_option: compression["LEVEL"]}


def compression_of(src: rasterio.DatasetReader) -> dict[str, object]:
    """The codec (ours) a raster was written with, for a mosaic of it to keep."""
    codec = src.compression.name.upper() if src.compression else "NONE"
    return next((c for c in CODECS if c["COMPRESS"] == codec), COG_COMPRESSION)


OVERVIEW_RESAMPLING = {True: Resampling.nearest, False: Resampling.average}


def overview_factors(height: int, width: int, blocksize: int) -> list[int]:
    """The overview levels GDAL's COG driver chooses: halve until both sides fit a block."""
    factors, factor = [], 1
    while height // factor > blocksize or width // factor > blocksize:
        factor *= 2
        factors.append(factor)
    return factors


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
    smooth: bool = False,
    blocksize: int = 256,
    threads: int = 1,
    compression: Mapping[str, object] = COG_COMPRESSION,
) -> Iterator[rasterio.io.DatasetWriter]:
    """Yield a tiled GeoTIFF to write windows into; on success it becomes a COG at `path`.

    The staging file is written beside the target, so memory does not grow with the
    raster. Its overviews are built in place before GDAL's COG driver copies it: the
    driver's own overview pass costs about six times as much. Where the caller wrote
    them itself (`overview_writers`), they are taken as they are.

    `smooth` marks integer values that change gradually from pixel to pixel (scaled
    probabilities): they are stored as differences from their left neighbour, which
    DEFLATE packs much better. Class codes are not smooth: there it makes files larger.
    """
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
        # Several bands in band order, as arrays are written: GDAL stores each window
        # without reordering it, and the COG copy interleaves the pixels once (the 8-band
        # probabilities of a 1024 px scene: 55 ms written and copied, against 61 ms from
        # pixel order). One band stays as it was: there GDAL takes another path for
        # nearest overviews, which picks other pixels at factors 4 and 8.
        "interleave": "band" if count > 1 else "pixel",
    }
    nearest = categorical or colormap is not None
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
            factors = overview_factors(height, width, blocksize)
            if factors and not external_overview_path(staging).exists():
                with rasterio.Env(GDAL_NUM_THREADS=str(threads)):
                    dst.build_overviews(factors, OVERVIEW_RESAMPLING[nearest])
        options = cog_copy_options(
            compression, dtype=dtype, smooth=smooth, blocksize=blocksize, threads=threads
        )
        with atomic_path(path) as out:
            rasterio.shutil.copy(staging, out, driver="COG", **options)


def cog_copy_options(
    compression: Mapping[str, object],
    *,
    dtype: str | np.dtype,
    smooth: bool,
    blocksize: int,
    threads: int,
) -> dict[str, object]:
    """The COG driver's options that finish a `cog_writer` staging raster: its own
    overviews taken as they are, floats and `smooth` integers stored as differences.
    Apart so that benchmarks/product_codecs.py times the copy the products get."""
    options = {
        **compression,
        "BLOCKSIZE": blocksize,
        "OVERVIEWS": "FORCE_USE_EXISTING",
        "BIGTIFF": "IF_SAFER",
        "NUM_THREADS": str(threads),
    }
    if np.dtype(dtype).kind == "f":
        options["PREDICTOR"] = 3
    elif smooth:
        options["PREDICTOR"] = 2
    return options


def external_overview_path(path: str | os.PathLike) -> Path:
    """GDAL's external overviews of a raster: `name.ovr` holds the first level, and
    `name.ovr.ovr` the next (the overviews of the overviews), and so on."""
    return Path(f"{path}.ovr")


@contextmanager
def overview_writers(dst: rasterio.io.DatasetWriter) -> Iterator[list[rasterio.io.DatasetWriter]]:
    """Writers of a `cog_writer` staging raster's overview levels (factors 2, 4, ...,
    as the COG driver chooses them), for a caller that computes them as it writes.

    Each level is a GeoTIFF like the raster, at its size (GDAL's: the ceiling of half
    the level above), saved as GDAL's external overviews of it, so the COG copy takes
    them as the raster's own. Close them (leave this context) before the raster.
    """
    factors = overview_factors(dst.height, dst.width, dst.block_shapes[0][0])
    profile = {k: v for k, v in dst.profile.items() if k not in ("width", "height", "transform")}
    profile["BIGTIFF"] = "IF_SAFER"  # a creation option: the profile does not carry it
    height, width, path = dst.height, dst.width, Path(dst.name)
    with ExitStack() as stack:
        levels = []
        for _ in factors:
            height, width, path = -(-height // 2), -(-width // 2), external_overview_path(path)
            transform = dst.transform @ Affine.scale(dst.width / width, dst.height / height)
            levels.append(
                stack.enter_context(
                    rasterio.open(
                        path, "w", **profile, width=width, height=height, transform=transform
                    )
                )
            )
        yield levels


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
    compression: Mapping[str, object] = COG_COMPRESSION,
) -> Path:
    """Write a (bands, rows, cols) or (rows, cols) array as a COG with overviews."""
    if data.ndim == 2:
        data = data[np.newaxis]
    count, height, width = data.shape
    if descriptions is not None and len(descriptions) != count:
        raise ValueError(f"{len(descriptions)} descriptions for {count} bands")
    with cog_writer(
        path,
        count=count,
        dtype=data.dtype,
        crs=crs,
        transform=transform,
        width=width,
        height=height,
        nodata=nodata,
        descriptions=descriptions,
        units=units,
        tags=tags,
        colormap=colormap,
        categorical=categorical,
        blocksize=blocksize,
        compression=compression,
    ) as dst:
        dst.write(data)
    return Path(path)


def open_checked(path: str | os.PathLike, **open_options: str) -> rasterio.DatasetReader:
    """Open a raster, turning GDAL's failure on a corrupt or missing file into InputError.

    `open_options` go to the driver (for a GeoTIFF, `num_threads` decodes the blocks of
    one read in parallel)."""
    try:
        return rasterio.open(path, **open_options)
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
