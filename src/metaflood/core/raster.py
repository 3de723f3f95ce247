"""Raster reading and writing: Cloud-Optimized GeoTIFFs, written atomically.

Every product goes through `write_cog`, so a job killed half-way never leaves a
truncated file under the final name, and every raster carries nodata, band
descriptions and overviews.

Writing is guarded (`write_guard`): GDAL reports some write failures only as an error
message (a block flushed when a file is closed, an overview level), not as an
exception, and the job would go on to fail later reading the truncated file back. A
failure stops the write where it happened, naming the file and the free space. A job
killed while it stages an output (SIGKILL skips every clean-up) leaves its staging
names behind; the next job writing that output removes them.
"""

from __future__ import annotations

import logging
import os
import re
import resource
import shutil
import tempfile
import threading
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

from metaflood.core.errors import InputError, WriteError

# GDAL's block cache (MB) defaults to 5% of the machine's memory; fixed sizes keep a job's
# memory independent of the machine. Every workflow job (unless GDAL_CACHEMAX is set in
# the environment; `workflow.prepare_job_environment`):
GDAL_CACHE_MB = 512
# The co-registration stage, independent of the scene too:
COREGISTER_GDAL_CACHE_MB = 256
# rasterio logs each failure GDAL signals (CE_Failure) at INFO on this logger.
GDAL_LOG = logging.getLogger("rasterio._env")
# GDAL's (and libtiff's) words for a failed write, as opposed to a failed read.
WRITE_FAILURE = re.compile(
    r"write (error|failed)|(failed|error|unable|cannot|could not) (to )?writ"
    r"|no space left|disk space|quota exceeded|file too large",
    re.IGNORECASE,
)


class _GdalFailures(logging.Handler):
    """The write failures GDAL signals in one thread while a guard is open."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread or record.levelno > logging.INFO:
            return
        args = record.args if isinstance(record.args, tuple) else ()
        message = str(args[-1]) if args else record.getMessage()  # (err_no, msg)
        if WRITE_FAILURE.search(message):
            self.messages.append(message)


def space_left(path: str | os.PathLike) -> str:
    """The free space where `path` is written, and the file-size limit when one is set
    (`ulimit -f`, which fails a write as a full disk does)."""
    folder = Path(path).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    text = f"{shutil.disk_usage(folder).free / 1e9:.2f} GB free in {folder}"
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY:
        text += f", and files may not exceed {limit / 1e6:.1f} MB here (ulimit -f)"
    return text


@contextmanager
def write_guard(path: str | os.PathLike, staged: str | os.PathLike | None = None) -> Iterator[None]:
    """Turn a failed write inside into a WriteError naming `path` and the space left.

    A write failed when GDAL signalled it (raised, or only reported and otherwise
    ignored), when an OSError says the disk is full or a file too large, or when the
    writer failed in its own words while `staged` (the file or folder being written)
    had reached the file-size limit or the disk was full. Other errors (a corrupt input
    read inside, say) pass unchanged."""
    failures = _GdalFailures()
    if not GDAL_LOG.isEnabledFor(logging.INFO):
        GDAL_LOG.setLevel(logging.INFO)  # so rasterio reports GDAL's failures at all
    GDAL_LOG.addHandler(failures)
    try:
        yield
    except WriteError:
        raise  # from a guard inside this one
    except Exception as err:
        # Once GDAL signalled a failed write here, what failed after it (a read of the
        # truncated file, a flush) is its consequence.
        said = [m for m in _chain(err) if WRITE_FAILURE.search(m)]
        if failures.messages or said:
            raise WriteError(_write_failure(path, [*failures.messages, *said[::-1]][0])) from err
        if _out_of_space(path, staged):
            raise WriteError(_write_failure(path, f"{type(err).__name__}: {err}")) from err
        raise
    finally:
        GDAL_LOG.removeHandler(failures)
    if failures.messages:
        raise WriteError(_write_failure(path, failures.messages[0]))


def _chain(err: BaseException | None) -> list[str]:
    """The messages of a GDAL or OS error and of those it was raised from (rasterio
    raises "Write failed. See previous exception" from GDAL's own message)."""
    messages = []
    while err is not None and len(messages) < 8:
        if isinstance(err, OSError) or type(err).__module__.startswith("rasterio"):
            messages.append(str(err))
        err = err.__cause__ or err.__context__
    return messages


def _out_of_space(path: str | os.PathLike, staged: str | os.PathLike | None) -> bool:
    """The disk holding `path` is full, or a file of `staged` reached the size limit."""
    folder = Path(path).parent
    if folder.is_dir() and shutil.disk_usage(folder).free < 1 << 20:
        return True
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if staged is None or limit == resource.RLIM_INFINITY or not Path(staged).exists():
        return False
    staged = Path(staged)
    files = [staged] if staged.is_file() else [f for f in staged.rglob("*") if f.is_file()]
    return any(f.stat().st_size >= limit - (1 << 16) for f in files)


def _write_failure(path: str | os.PathLike, detail: str) -> str:
    return f"{path}: could not be written ({detail}); {space_left(path)}"


# Staging names: tempfile's, ".{output's name}." then 8 random characters, then a suffix.
STAGING_RANDOM = r"[a-z0-9_]{8}"


def remove_stale_staging(path: str | os.PathLike, suffix: str, *, folders: bool) -> list[Path]:
    """Remove what a killed job left while staging `path`: the files (or folders) beside
    it named as this module stages that output, and nothing else. Called by the job that
    writes `path` (Snakemake runs one at a time), before it stages its own."""
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.{STAGING_RANDOM}{re.escape(suffix)}")
    removed = []
    if not path.parent.is_dir():
        return removed
    for entry in path.parent.iterdir():
        if not pattern.fullmatch(entry.name) or entry.is_symlink():
            continue
        if folders and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        elif not folders and entry.is_file():
            entry.unlink(missing_ok=True)
        else:
            continue
        removed.append(entry)
    return removed


@contextmanager
def atomic_path(path: str | os.PathLike, *, owned: bool = True):
    """Yield a temporary path beside `path` and move it into place only on success.

    A write that fails for want of space raises WriteError (`write_guard`). `owned`:
    the caller is the only writer of `path` (a job's output), so staging files a killed
    writer left are removed first; a shared cache, written by concurrent jobs, is not."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = f".part{path.suffix}"
    if owned:
        remove_stale_staging(path, suffix, folders=False)
    # The temporary name keeps the real suffix: some drivers choose the format by it.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    # mkstemp creates 0600; products get the permissions of any other new file.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        with write_guard(path, staged=tmp):
            yield Path(tmp)
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# DEFLATE is the codec every GIS reads; level 1 encodes several times faster than the
# default 6 for files slightly larger, and products are wanted within the hour
# (docs/performance.md).
COG_COMPRESSION = {"COMPRESS": "DEFLATE", "LEVEL": 1}
# Downloaded scenes are kept between runs over the same area: ZSTD decodes floats faster
# than DEFLATE at the same size (docs/performance.md). GDAL has read it since 2.3, so
# QGIS opens them too.
SCENE_COMPRESSION = {"COMPRESS": "ZSTD", "LEVEL": 1}
# Co-registered stacks are intermediates that land cover reads again strip by strip, with
# a halo: uncompressed they read faster than from ZSTD, for about twice the disk (its
# grid padded to whole 256 px tiles; both in docs/performance.md). Set ZSTD here to
# trade back.
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
        # without reordering it, and the COG copy interleaves the pixels once (faster
        # than writing in pixel order: docs/performance.md). One band stays as it was:
        # there GDAL takes another path for
        # nearest overviews, which picks other pixels at factors 4 and 8.
        "interleave": "band" if count > 1 else "pixel",
    }
    nearest = categorical or colormap is not None
    remove_stale_staging(path, "", folders=True)
    with tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=path.parent) as tmp_dir:
        staging = Path(tmp_dir) / "staging.tif"
        with write_guard(path, staged=tmp_dir), rasterio.open(staging, "w", **profile) as dst:
            if colormap is not None:
                # Before any pixel is written: libtiff cannot set the palette
                # interpretation of a directory that already holds data.
                dst.write_colormap(1, colormap)
            yield dst
            if descriptions is not None:
                dst.descriptions = tuple(descriptions)
            if units is not None:
                dst.units = tuple(units)
            if tags:
                dst.update_tags(**tags)
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


def read_sampled(src: rasterio.DatasetReader, indexes: list[int], max_side: int) -> np.ndarray:
    """The bands over the whole raster, every n-th pixel (nearest) so that neither side
    exceeds `max_side`: a sample to measure a scene's statistics on. Rasters of one
    grid give samples of one shape."""
    step = max(1, -(-max(src.height, src.width) // max_side))
    shape = (max(1, src.height // step), max(1, src.width // step))
    return src.read(indexes, out_shape=(len(indexes), *shape), resampling=Resampling.nearest)


def band_index(src: rasterio.DatasetReader, name: str) -> int:
    """1-based index of the band whose description is `name`."""
    for i, desc in enumerate(src.descriptions, start=1):
        if desc == name:
            return i
    raise InputError(f"{src.name}: no band named {name!r} (bands: {src.descriptions})")
