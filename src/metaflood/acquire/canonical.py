"""The canonical scenes every later stage reads, written band by band.

sar.tif holds VV and VH in linear power, optical.tif the source's optical bands as
reflectance, in canonical order (blue, green, red, nir, swir16: those it has, named in
the band descriptions; float32, NaN nodata), optical_mask.tif 0 clear, 1 cloud, 2 cloud
shadow, 255 nodata. sar_spread.tif holds, per SAR band, the per-pixel standard deviation
in dB of the pre-event scenes the reference is the median of (all NaN, tagged scenes=1,
where there is one scene: always after the event). Each band goes to disk as soon as it
is mosaicked (raster.cog_writer), so a modality is held in memory once, whatever the
grid size; a modality with no scene is written block by block as an all-nodata raster
tagged absent=true.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from metaflood.acquire.scene import MASK
from metaflood.core import optical as opt
from metaflood.core import sar
from metaflood.core.bands import canonical_bands
from metaflood.core.blockwise import block_windows
from metaflood.core.grid import Grid
from metaflood.core.raster import cog_writer

ABSENT_BLOCK_PX = 2048
MASK_TAGS = {"codes": "0 clear, 1 cloud, 2 cloud shadow, 255 nodata"}
SPREAD_TAGS = {"statistic": "per-pixel standard deviation (dB) of the pre-event scenes"}


def mask_codes(values: np.ndarray, kind: str) -> np.ndarray:
    """Canonical cloud mask (0 clear, 1 cloud, 2 shadow, 255 nodata) from a mask band."""
    nodata = np.isnan(values)
    codes = np.nan_to_num(values, nan=0).astype(np.int64)
    if kind == "binary":
        mask = np.where(codes != 0, opt.CLOUD, opt.CLEAR).astype(np.uint8)
    else:
        mask = opt.mask_from_scl(np.clip(codes, 0, 255).astype(np.uint8))
    mask[nodata] = opt.MASK_NODATA
    return mask


def grid_args(grid: Grid) -> dict:
    """The grid keywords of raster.cog_writer."""
    return {
        "crs": grid.crs,
        "transform": grid.transform,
        "width": grid.width,
        "height": grid.height,
    }


def _float_bands(path: Path, names: tuple[str, ...], unit: str, grid: dict):
    return cog_writer(
        path,
        count=len(names),
        dtype="float32",
        nodata=np.nan,
        descriptions=names,
        units=(unit,) * len(names),
        **grid,
    )


def sar_writer(path: Path, names: tuple[str, ...], grid: dict):
    """sar.tif's writer: the bands `names` (canonical order) in linear power."""
    return _float_bands(path, names, "linear power", grid)


def spread_writer(path: Path, names: tuple[str, ...], grid: dict, *, scenes: int, **tags):
    """sar_spread.tif's writer: per SAR band, the spread in dB of `scenes` scenes."""
    return cog_writer(
        path,
        count=len(names),
        dtype="float32",
        nodata=np.nan,
        descriptions=names,
        units=("dB",) * len(names),
        tags={**SPREAD_TAGS, "scenes": str(scenes), **tags},
        **grid,
    )


def write_no_spread(names: tuple[str, ...], grid: dict, path: Path, *, scenes: int, **tags) -> None:
    """An all-NaN sar_spread.tif, block by block: one scene (or none) has no spread."""
    with spread_writer(path, names, grid, scenes=scenes, **tags) as dst:
        for window in block_windows(grid["height"], grid["width"], ABSENT_BLOCK_PX):
            shape = (len(names), int(window.height), int(window.width))
            dst.write(np.full(shape, np.nan, np.float32), window=window)


def write_sar(bands: dict[str, np.ndarray], scale: str, grid: dict, path: Path) -> None:
    """The polarisations the source has (VV, and VH where acquired; linear power or dB,
    as the source gives them) as linear power, named, in canonical order."""
    names = canonical_bands("sar", bands)
    with sar_writer(path, names, grid) as dst:
        for index, name in enumerate(names, start=1):
            band = bands[name]
            dst.write(sar.to_linear(band) if scale == "db" else np.asarray(band, np.float32), index)


def scene_mask(bands: dict[str, np.ndarray], mask_kind: str | None) -> np.ndarray | None:
    """The canonical cloud mask of a scene from its mask band (`MASK`); None when the
    source has none."""
    if mask_kind is None or MASK not in bands:
        return None
    return mask_codes(bands[MASK], mask_kind)


def write_optical(
    bands: dict[str, np.ndarray],
    names: Sequence[str],
    mask: np.ndarray | None,
    grid: dict,
    out: Path,
    out_mask: Path,
) -> None:
    """The reflectance bands `names` (the source's, in canonical order), then the cloud
    mask codes `mask` (`scene_mask`; None: all clear); a pixel missing in any band is
    nodata in the mask."""
    nodata = np.zeros((grid["height"], grid["width"]), bool)
    with _float_bands(out, tuple(names), "reflectance", grid) as dst:
        for index, name in enumerate(names, start=1):
            dst.write(np.asarray(bands[name], np.float32), index)
            nodata |= np.isnan(bands[name])
    mask = np.zeros(nodata.shape, np.uint8) if mask is None else np.array(mask, np.uint8)
    mask[nodata] = opt.MASK_NODATA
    with cog_writer(
        out_mask,
        count=1,
        dtype="uint8",
        nodata=opt.MASK_NODATA,
        descriptions=("cloud_mask",),
        categorical=True,
        tags=MASK_TAGS,
        **grid,
    ) as dst:
        dst.write(mask, 1)


def write_absent(modality: str, names: Sequence[str], grid: dict, paths: list[Path]) -> None:
    """All-nodata rasters on the event grid stand for a modality with no scene; they hold
    the source's bands `names`, so both periods' stacks have the same bands (SAR: then
    its spread, when `paths` name one)."""
    rasters = [(paths[0], "float32", np.nan, tuple(names))]
    if modality == "optical":
        rasters.append((paths[1], "uint8", opt.MASK_NODATA, ("cloud_mask",)))
    elif len(paths) > 1:
        write_no_spread(tuple(names), grid, paths[1], scenes=0, absent="true")
    for path, dtype, nodata, descriptions in rasters:
        with cog_writer(
            path,
            count=len(descriptions),
            dtype=dtype,
            nodata=nodata,
            descriptions=descriptions,
            categorical=dtype == "uint8",
            tags={"absent": "true"},
            **grid,
        ) as dst:
            for window in block_windows(grid["height"], grid["width"], ABSENT_BLOCK_PX):
                shape = (len(descriptions), int(window.height), int(window.width))
                dst.write(np.full(shape, nodata, dtype), window=window)
