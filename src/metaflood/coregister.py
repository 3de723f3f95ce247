"""Co-registration: both periods and both modalities on one grid, ready for MetaRS.

SAR is resampled in linear power and only then converted to dB; optical reflectance is
averaged when the grid is coarser than the scene and interpolated otherwise; the cloud
mask is carried conservatively (a grid pixel is usable only if every scene pixel in it
is clear). Residual shifts (post SAR to pre SAR, optical to SAR) are estimated by phase
correlation and applied through the source geotransform, so each scene is resampled
once for the product.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.features import geometry_mask
from rasterio.transform import Affine
from rasterio.warp import reproject

from metaflood import optical as opt
from metaflood.align import (
    ShiftEstimate,
    estimate_shift,
    gradient_magnitude,
    log_intensity,
    shifted_transform,
)
from metaflood.config import Grid, aoi_polygon, event_grid, to_crs
from metaflood.errors import InputError
from metaflood.raster import atomic_path, read_checked, write_cog
from metaflood.sar import to_db

log = logging.getLogger(__name__)

SAR_VALID, OPTICAL_VALID = 1, 2
VALID_NODATA = 255
STACK_BANDS = ("VV", "VH", "blue", "green", "red", "nir")


@dataclass
class Scene:
    """A canonical scene as the acquisition stage wrote it."""

    path: Path
    data: np.ndarray
    crs: CRS
    transform: Affine
    absent: bool

    @property
    def resolution(self) -> float:
        return abs(self.transform.a)


def load_scene(path: Path, bands: int) -> Scene:
    data, profile = read_checked(path)
    if data.shape[0] != bands:
        raise InputError(f"{path}: expected {bands} bands, found {data.shape[0]}")
    with rasterio.open(path) as src:
        absent = src.tags().get("absent") == "true"
    if not absent and data.dtype.kind == "f" and np.isnan(data).all():
        raise InputError(f"{path}: every pixel is nodata")
    return Scene(path, data, profile["crs"], profile["transform"], absent)


def _resampling(scene: Scene, grid: Grid, coarser: Resampling) -> Resampling:
    return coarser if grid.resolution > scene.resolution * 1.01 else Resampling.bilinear


def to_grid(
    data: np.ndarray,
    crs: CRS,
    transform: Affine,
    grid: Grid,
    resampling: Resampling,
    nodata: float = np.nan,
) -> np.ndarray:
    """Reproject a (bands, rows, cols) array onto the grid."""
    out = np.full((data.shape[0], grid.height, grid.width), nodata, dtype=data.dtype)
    reproject(
        source=data,
        destination=out,
        src_transform=transform,
        src_crs=crs,
        src_nodata=nodata,
        dst_transform=grid.transform,
        dst_crs=grid.crs,
        dst_nodata=nodata,
        resampling=resampling,
    )
    return out


def sar_to_grid(scene: Scene, grid: Grid, transform: Affine | None = None) -> np.ndarray:
    """Linear power on the grid (averaged in linear power, never in dB)."""
    resampling = _resampling(scene, grid, Resampling.average)
    return to_grid(scene.data, scene.crs, transform or scene.transform, grid, resampling)


def optical_to_grid(scene: Scene, grid: Grid, transform: Affine | None = None) -> np.ndarray:
    resampling = _resampling(scene, grid, Resampling.average)
    return to_grid(scene.data, scene.crs, transform or scene.transform, grid, resampling)


def unusable_to_grid(mask: Scene, grid: Grid, transform: Affine | None = None) -> np.ndarray:
    """True where any scene pixel under a grid pixel is cloud, shadow or nodata."""
    unusable = (mask.data[:1] != opt.CLEAR).astype(np.uint8)
    resampling = _resampling(mask, grid, Resampling.max)
    if resampling == Resampling.bilinear:
        resampling = Resampling.nearest
    # 255 (not 1) is the fill value: nodata pixels are skipped by the resampling kernel.
    out = to_grid(unusable, mask.crs, transform or mask.transform, grid, resampling, nodata=255)
    return out[0] != 0


def aoi_mask(event: dict, key: str, grid: Grid) -> np.ndarray:
    """True inside the AOI polygon on the grid."""
    polygon = to_crs(aoi_polygon(event, key), grid.crs)
    return ~geometry_mask(
        [polygon], out_shape=(grid.height, grid.width), transform=grid.transform, all_touched=True
    )


def _sar_shift(reference: np.ndarray, moving: np.ndarray) -> ShiftEstimate:
    valid = np.isfinite(reference[0]) & np.isfinite(moving[0])
    ref = np.where(valid, log_intensity(np.nan_to_num(reference[0], nan=1.0)), 0.0)
    mov = np.where(valid, log_intensity(np.nan_to_num(moving[0], nan=1.0)), 0.0)
    return estimate_shift(ref, mov, valid, method="phase correlation, log VV")


def _optical_shift(sar_linear: np.ndarray, optical: np.ndarray, usable: np.ndarray):
    valid = usable & np.isfinite(sar_linear[0])
    sar_edges = gradient_magnitude(np.nan_to_num(log_intensity(sar_linear[0])), sigma=1.5)
    brightness = np.nan_to_num(optical.mean(axis=0))
    optical_edges = gradient_magnitude(brightness, sigma=1.0)
    return estimate_shift(
        sar_edges, optical_edges, valid, method="phase correlation, gradient magnitude"
    )


def coregister_period(
    event: dict,
    name: str,
    period: str,
    *,
    sar: Path,
    optical: Path,
    optical_mask: Path,
    reference: Path,
    out_stack: Path,
    out_valid: Path,
    out_report: Path,
) -> dict:
    key = f"events.{name}"
    grid = event_grid(event, key)
    inside = aoi_mask(event, key, grid)
    sar_scene = load_scene(sar, 2)
    optical_scene = load_scene(optical, 4)
    mask_scene = load_scene(optical_mask, 1)
    if optical_scene.data.shape[1:] != mask_scene.data.shape[1:]:
        raise InputError(f"{optical} and {optical_mask} have different sizes")
    report: dict = {"grid": grid.to_dict(), "period": period, "shifts": {}}

    sar_linear = sar_to_grid(sar_scene, grid)
    if period == "post" and not sar_scene.absent:
        reference_scene = load_scene(reference, 2)
        if not reference_scene.absent:
            estimate = _sar_shift(sar_to_grid(reference_scene, grid), sar_linear)
            report["shifts"]["sar_to_reference"] = _apply_if_reliable(estimate)
            if estimate.reliable:
                moved = shifted_transform(sar_scene.transform, estimate.shift, grid.resolution)
                sar_linear = sar_to_grid(sar_scene, grid, moved)

    reflectance = optical_to_grid(optical_scene, grid)
    unusable = unusable_to_grid(mask_scene, grid)
    if not sar_scene.absent and not optical_scene.absent:
        estimate = _optical_shift(sar_linear, reflectance, ~unusable)
        report["shifts"]["optical_to_sar"] = _apply_if_reliable(estimate)
        if estimate.reliable:
            moved_optical = shifted_transform(
                optical_scene.transform, estimate.shift, grid.resolution
            )
            moved_mask = shifted_transform(mask_scene.transform, estimate.shift, grid.resolution)
            reflectance = optical_to_grid(optical_scene, grid, moved_optical)
            unusable = unusable_to_grid(mask_scene, grid, moved_mask)

    sar_ok = np.isfinite(sar_linear).all(axis=0) & inside
    optical_ok = np.isfinite(reflectance).all(axis=0) & ~unusable & inside
    valid = (sar_ok * SAR_VALID + optical_ok * OPTICAL_VALID).astype(np.uint8)
    valid[~inside] = VALID_NODATA
    if not (sar_ok | optical_ok).any():
        raise InputError(f"{key}.{period}: no pixel of the AOI has a valid SAR or optical value")

    stack = np.concatenate([to_db(sar_linear), reflectance]).astype(np.float32)
    stack[:, ~inside] = np.nan
    report["coverage"] = {
        "sar_valid": float(sar_ok[inside].mean()),
        "optical_valid": float(optical_ok[inside].mean()),
    }
    common = {"crs": grid.crs, "transform": grid.transform}
    write_cog(
        out_stack,
        stack,
        nodata=np.nan,
        descriptions=STACK_BANDS,
        units=("dB", "dB") + ("reflectance",) * 4,
        **common,
    )
    write_cog(
        out_valid,
        valid,
        nodata=VALID_NODATA,
        descriptions=("availability",),
        categorical=True,
        tags={"bits": "bit 0 SAR valid, bit 1 optical valid; 255 outside the AOI"},
        **common,
    )
    with atomic_path(out_report) as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    log.info("%s %s: %s", name, period, json.dumps(report["shifts"]))
    return report


def _apply_if_reliable(estimate: ShiftEstimate) -> dict:
    record = estimate.to_dict()
    record["applied"] = estimate.reliable
    if not estimate.reliable:
        log.warning("shift not applied (%s): %s", estimate.method, estimate.reason)
    return record
