"""The stage's products, block by block: the stack of both periods and modalities on the
grid (speckle-filtered SAR, optical, cloud mask) and the availability mask."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.features import geometry_mask
from rasterio.transform import Affine
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from metaflood.core.blockwise import block_windows, with_halo
from metaflood.core.errors import InputError
from metaflood.core.grid import Grid
from metaflood.core.raster import (
    ALIGNED_COMPRESSION,
    atomic_path,
    cog_writer,
    open_checked,
)
from metaflood.core.sar import to_db
from metaflood.coregister import cloudmask
from metaflood.coregister.scenes import (
    LOOKS_SAMPLE,
    OPTICAL_VALID,
    SAR_VALID,
    VALID_NODATA,
    Scene,
    Settings,
    inspect_scene,
    shifted_transform,
    warped,
)
from metaflood.coregister.speckle import estimate_looks, speckle_filter

# ---------------------------------------------------------------------------------------
# Products, block by block


def _aoi_block(polygon, transform: Affine, height: int, width: int) -> np.ndarray:
    return geometry_mask(
        [polygon], out_shape=(height, width), transform=transform, all_touched=True, invert=True
    )


def _nan_block(bands: int, window: Window) -> np.ndarray:
    return np.full((bands, int(window.height), int(window.width)), np.nan, np.float32)


class SarBlocks:
    """Linear power on the grid, block by block, speckle-filtered with a halo."""

    def __init__(
        self,
        vrt: WarpedVRT | None,
        grid: Grid,
        settings: Settings,
        count: int,
        looks: list[float] | None = None,
    ):
        self.vrt, self.grid, self.settings, self.count = vrt, grid, settings, count
        self.looks: list[float] | None = None
        if vrt is not None and settings.speckle_filter != "none":
            if looks is not None:  # estimated once for the scene, shared by its tiles
                self.looks = list(looks)
            elif settings.speckle_looks:
                self.looks = [settings.speckle_looks] * count
            else:
                self.looks = self._estimate_looks()

    def _estimate_looks(self) -> list[float]:
        size = min(LOOKS_SAMPLE, self.grid.height, self.grid.width)
        window = Window((self.grid.width - size) // 2, (self.grid.height - size) // 2, size, size)
        sample = self.vrt.read(window=window).astype(np.float64)
        try:
            return [estimate_looks(band) for band in sample]
        except ValueError as err:
            raise InputError(
                f"cannot estimate the number of looks for speckle filtering: {err}; "
                "set coregister.speckle_looks"
            ) from err

    def read(self, window: Window) -> np.ndarray:
        if self.vrt is None:
            return _nan_block(self.count, window)
        method = self.settings.speckle_filter
        if method == "none":
            return self.vrt.read(window=window).astype(np.float32)
        grown, inner = with_halo(
            window, self.settings.speckle_window, self.grid.height, self.grid.width
        )
        data = self.vrt.read(window=grown).astype(np.float32)
        filtered = np.stack(
            [
                speckle_filter(band, method, self.settings.speckle_window, looks)
                for band, looks in zip(data, self.looks, strict=True)
            ]
        )
        return filtered[(slice(None), *inner)]


@dataclass
class Plan:
    """What co-registering a period needs before any product is written: the checked
    scenes and the shifts (estimated once per scene, shared by every tile)."""

    grid: Grid
    polygon: object
    sar: Scene
    optical: Scene
    mask: Scene
    sar_shift: tuple[float, float]
    optical_shift: tuple[float, float]
    report: dict
    optical_bands: tuple[str, ...]
    sar_bands: tuple[str, ...]

    @property
    def stack_bands(self) -> tuple[str, ...]:
        return self.sar_bands + self.optical_bands


def cloud_mask_mode(settings: Settings, mask: Scene) -> str:
    """The configured mode, except that a mask the acquisition marked as carrying no
    information (tag mask_source=none: the source had no scene classification) gives way
    to the spectral test rather than calling every pixel clear."""
    if settings.cloud_mask == "provided" and mask.tag("mask_source") == "none":
        return "spectral"
    return settings.cloud_mask


def check_same_frame(optical: Path, optical_mask: Path) -> None:
    with open_checked(optical) as a, open_checked(optical_mask) as b:
        if (a.width, a.height) != (b.width, b.height) or a.transform != b.transform:
            raise InputError(f"{optical} and {optical_mask} have different sizes or grids")


def write_products(
    plan: Plan,
    settings: Settings,
    out_stack: Path,
    out_valid: Path,
    where: str,
    window: Window | None = None,
) -> dict:
    """The stack and availability over the grid, or over one `window` of it (a tile: no
    AOI-wide check then, the gather makes it)."""
    grid, polygon, report = plan.grid, plan.polygon, plan.report
    sar_scene, optical_scene, mask_scene = plan.sar, plan.optical, plan.mask
    sar_t = shifted_transform(grid.transform, plan.sar_shift)
    opt_t = shifted_transform(grid.transform, plan.optical_shift)
    size = (grid.width, grid.height)
    counts = {"inside": 0, "sar": 0, "optical": 0, "any": 0}
    area = window if window is not None else Window(0, 0, grid.width, grid.height)
    common = {
        "crs": grid.crs,
        "transform": rasterio.windows.transform(area, grid.transform),
        "width": int(area.width),
        "height": int(area.height),
    }
    with ExitStack() as stack:

        def open_warped(scene: Scene, transform: Affine, coarser: Resampling, finer: Resampling):
            if scene.absent:
                return None
            resampling = scene.resampling(grid, coarser, finer)
            return stack.enter_context(
                warped(scene, grid.crs, transform, *size, resampling, settings.threads)
            )

        sar_vrt = open_warped(sar_scene, sar_t, Resampling.average, Resampling.bilinear)
        opt_vrt = open_warped(optical_scene, opt_t, Resampling.average, Resampling.bilinear)
        mask_vrt = open_warped(mask_scene, opt_t, Resampling.max, Resampling.nearest)
        looks = report["speckle"].get("looks")
        sar_blocks = SarBlocks(sar_vrt, grid, settings, len(plan.sar_bands), looks)
        if sar_blocks.looks is not None:
            report["speckle"]["looks"] = [round(v, 2) for v in sar_blocks.looks]
        n_optical = len(plan.optical_bands)
        stack_dst = stack.enter_context(
            cog_writer(
                out_stack,
                count=len(plan.stack_bands),
                dtype="float32",
                nodata=np.nan,
                descriptions=plan.stack_bands,
                units=("dB",) * len(plan.sar_bands) + ("reflectance",) * n_optical,
                threads=settings.threads,
                compression=ALIGNED_COMPRESSION,
                **common,
            )
        )
        valid_dst = stack.enter_context(
            cog_writer(
                out_valid,
                count=1,
                dtype="uint8",
                nodata=VALID_NODATA,
                descriptions=("availability",),
                categorical=True,
                tags={"bits": "bit 0 SAR valid, bit 1 optical valid; 255 outside the AOI"},
                threads=settings.threads,
                **common,
            )
        )
        for local in block_windows(int(area.height), int(area.width), settings.block_size):
            block_window = Window(  # not `window`: the tile's, tested after the loop
                local.col_off + area.col_off,
                local.row_off + area.row_off,
                local.width,
                local.height,
            )
            h, w = int(block_window.height), int(block_window.width)
            block_transform = rasterio.windows.transform(block_window, grid.transform)
            inside = _aoi_block(polygon, block_transform, h, w)
            linear = sar_blocks.read(block_window)
            if opt_vrt is None:
                reflectance = _nan_block(n_optical, block_window)
                unusable = np.ones((h, w), bool)
            else:
                reflectance = opt_vrt.read(window=block_window).astype(np.float32)
                unusable = cloudmask.unusable(
                    mask_vrt.read(1, window=block_window),
                    reflectance,
                    plan.optical_bands,
                    report["cloud_mask"],
                )
            sar_ok = np.isfinite(linear).all(axis=0) & inside
            optical_ok = np.isfinite(reflectance).all(axis=0) & ~unusable & inside
            valid = (sar_ok * SAR_VALID + optical_ok * OPTICAL_VALID).astype(np.uint8)
            valid[~inside] = VALID_NODATA
            block = np.concatenate([to_db(linear), reflectance]).astype(np.float32)
            block[:, ~inside] = np.nan
            stack_dst.write(block, window=local)
            valid_dst.write(valid, 1, window=local)
            counts["inside"] += int(inside.sum())
            counts["sar"] += int(sar_ok.sum())
            counts["optical"] += int(optical_ok.sum())
            counts["any"] += int((sar_ok | optical_ok).sum())
        if counts["any"] == 0 and window is None:
            sar_state = "no scene" if sar_scene.absent else "no valid pixel"
            optical_state = (
                "no scene" if optical_scene.absent else "every pixel cloud, shadow or nodata"
            )
            raise InputError(
                f"{where}: no pixel of the AOI has a valid SAR or optical value (SAR: "
                f"{sar_state}; optical: {optical_state}), so there is nothing to map"
            )
    inside = max(counts["inside"], 1)
    return {"sar_valid": counts["sar"] / inside, "optical_valid": counts["optical"] / inside}


def reproject_to_grid(
    path: Path,
    bands: tuple[str, ...],
    grid: Grid,
    out: Path,
    *,
    resampling: Resampling,
    block_size: int,
    threads: int = 1,
) -> Path:
    """One scene onto the grid as a tiled GeoTIFF, block by block, through the same
    warped reads the stage makes its products from (benchmarked against `rio warp`)."""
    scene = inspect_scene(path, bands, grid)
    profile = {
        "driver": "GTiff",
        "count": scene.count,
        "crs": grid.crs,
        "transform": grid.transform,
        "width": grid.width,
        "height": grid.height,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "BIGTIFF": "IF_SAFER",
    }
    size = (grid.width, grid.height)
    with (
        warped(scene, grid.crs, grid.transform, *size, resampling, threads) as vrt,
        atomic_path(out) as tmp,
        rasterio.open(tmp, "w", dtype=vrt.dtypes[0], nodata=scene.nodata, **profile) as dst,
    ):
        for window in block_windows(grid.height, grid.width, block_size):
            dst.write(vrt.read(window=window), window=window)
    return Path(out)
