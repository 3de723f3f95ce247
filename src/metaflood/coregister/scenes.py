"""The stage's settings and its view of a scene: bands, footprint, and reads warped onto
a grid (optionally shifted)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import Affine
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window, from_bounds

from metaflood.core.bands import (
    canonical_bands,
    missing_bands_message,
    unknown_band,
    unknown_band_message,
)
from metaflood.core.blockwise import block_windows
from metaflood.core.errors import ConfigError, InputError
from metaflood.core.grid import Grid
from metaflood.core.raster import (
    open_checked,
    read_window,
)
from metaflood.core.settings import CoregisterSettings
from metaflood.coregister import align, cloudmask
from metaflood.coregister.speckle import FILTERS

SAR_VALID, OPTICAL_VALID = 1, 2
VALID_NODATA = 255
# Optical bands left out of the optical-to-SAR shift estimate (20 m on Sentinel-2).
COARSE_OPTICAL_BANDS = ("swir16",)
# Clear pixels this close (estimation pixels) to a cloud do not vote on the optical
# shift: haze at cloud edges makes gradients the SAR does not have.
CLOUD_MARGIN_PX = 3
# Largest sample (pixels per side) the number of looks is estimated from.
LOOKS_SAMPLE = 512
# GDAL warper's working memory (MB) per warped read: large enough that a block is
# warped in one piece.
WARP_MEMORY_MB = 256
# When a shift is trusted, in grid pixels: half of the accuracy the stage promises
# (0.2 px SAR to SAR, 0.5 px optical to SAR) for the uncertainty of the estimate.
SAR_TOLERANCE = align.Tolerance(max_error=0.1, max_spread=0.5)
OPTICAL_TOLERANCE = align.Tolerance(max_error=0.25, max_spread=1.0)


@dataclass(frozen=True)
class Settings(CoregisterSettings):
    """The `coregister` section (its fields, checked) and the job's threads: what the
    stage's functions take. Built by `of`, the one place a section becomes one."""

    threads: int

    @classmethod
    def of(cls, section: CoregisterSettings, *, threads: int) -> Settings:
        settings = cls(**section.to_dict(), threads=threads)
        if settings.speckle_filter not in FILTERS:
            raise ConfigError(
                f"coregister.speckle_filter: unknown filter {settings.speckle_filter!r}"
            )
        if settings.speckle_window < 3 or settings.speckle_window % 2 == 0:
            raise ConfigError(
                f"coregister.speckle_window: must be odd and at least 3, got "
                f"{settings.speckle_window}"
            )
        if settings.cloud_mask not in cloudmask.MODES:
            raise ConfigError(f"coregister.cloud_mask: unknown mode {settings.cloud_mask!r}")
        return settings


@dataclass(frozen=True)
class Scene:
    """A canonical scene as the acquisition stage wrote it, checked but not read."""

    path: Path
    crs: CRS
    count: int
    absent: bool
    footprint: tuple[float, float, float, float]  # in the grid CRS
    resolution: float  # metres in the grid CRS
    nodata: float | int
    tags: tuple[tuple[str, str], ...] = ()

    def tag(self, name: str) -> str | None:
        return dict(self.tags).get(name)

    def resampling(self, grid: Grid, coarser: Resampling, finer: Resampling) -> Resampling:
        return coarser if grid.resolution > self.resolution * 1.01 else finer


def _overlaps(a: tuple, b: tuple) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _has_data(src: rasterio.DatasetReader, grid: Grid, block: int = 1024) -> bool:
    """Whether any pixel over the grid holds data; stops at the first block that does."""
    bounds = transform_bounds(grid.crs, src.crs, *grid.bounds, densify_pts=21)
    win = from_bounds(*bounds, transform=src.transform).round_offsets().round_lengths()
    win = win.intersection(Window(0, 0, src.width, src.height))
    for sub in block_windows(int(win.height), int(win.width), block):
        sub = Window(win.col_off + sub.col_off, win.row_off + sub.row_off, sub.width, sub.height)
        values = read_window(src, sub, 1, masked=True)
        data = values.compressed()
        if data.size and (data.dtype.kind != "f" or np.isfinite(data).any()):
            return True
    return False


def inspect_scene(path: Path, bands: tuple[str, ...], grid: Grid) -> Scene:
    """Check a scene before any heavy work; InputError names the file and the problem."""
    with open_checked(path) as src:
        if src.crs is None:
            raise InputError(f"{path}: has no coordinate reference system")
        if src.count != len(bands):
            raise InputError(
                f"{path}: expected {len(bands)} bands ({', '.join(bands)}), found {src.count}"
            )
        tags = src.tags()
        absent = tags.get("absent") == "true"
        footprint = transform_bounds(src.crs, grid.crs, *src.bounds, densify_pts=21)
        if not _overlaps(footprint, grid.bounds):
            raise InputError(
                f"{path}: the scene does not overlap the AOI (scene bounds "
                f"{[round(v) for v in footprint]}, AOI grid bounds "
                f"{[round(v) for v in grid.bounds]} in {grid.crs})"
            )
        if not absent and not _has_data(src, grid):
            raise InputError(f"{path}: every pixel over the AOI is nodata")
        nodata = src.nodata
        if nodata is None:
            nodata = np.nan if np.dtype(src.dtypes[0]).kind == "f" else 0
        resolution = (footprint[2] - footprint[0]) / src.width
        return Scene(
            Path(path),
            src.crs,
            src.count,
            absent,
            footprint,
            resolution,
            nodata,
            tuple(sorted(tags.items())),
        )


def scene_band_names(path: Path, modality: str) -> tuple[str, ...]:
    """The bands of a canonical scene of `modality`, from its band descriptions: known
    names, in canonical order, the required ones there (InputError naming the file
    otherwise)."""
    with open_checked(path) as src:
        names = tuple(d or "" for d in src.descriptions)
    unknown = unknown_band(names, modality)
    if unknown is not None:
        what = (
            "a band without a description"
            if not unknown
            else unknown_band_message(unknown, modality)
        )
        raise InputError(f"{path}: {what}; its bands must be named (descriptions {list(names)})")
    if names != canonical_bands(modality, names) or len(set(names)) != len(names):
        raise InputError(
            f"{path}: bands {list(names)} are not in canonical order "
            f"({', '.join(canonical_bands(modality, names))})"
        )
    missing = missing_bands_message(names, modality)
    if missing:
        raise InputError(f"{path}: {missing}")
    return names


@contextmanager
def warped(
    scene: Scene,
    crs: str,
    transform: Affine,
    width: int,
    height: int,
    resampling: Resampling,
    threads: int = 1,
) -> Iterator[WarpedVRT]:
    """The scene as seen on a target grid; windows read from it are warped on demand."""
    with (
        rasterio.open(scene.path) as src,
        WarpedVRT(
            src,
            crs=crs,
            transform=transform,
            width=width,
            height=height,
            resampling=resampling,
            src_nodata=scene.nodata,
            nodata=scene.nodata,
            dtype=src.dtypes[0],
            num_threads=threads,
            warp_mem_limit=WARP_MEMORY_MB,
        ) as vrt,
    ):
        yield vrt


def shifted_transform(transform: Affine, shift: tuple[float, float]) -> Affine:
    """Target transform under which warped content moves by `shift` (rows, cols) pixels."""
    return transform @ Affine.translation(-shift[1], -shift[0])
