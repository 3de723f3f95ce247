"""Shift estimation on the overlap of two scenes, at native resolution: SAR to SAR and
optical to SAR, with the tolerance that decides whether a shift is applied."""

from __future__ import annotations

import logging
import math

import numpy as np
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.windows import Window
from scipy import ndimage

from metaflood.core import optical as opt
from metaflood.core.grid import Grid
from metaflood.coregister import align
from metaflood.coregister.scenes import (
    CLOUD_MARGIN_PX,
    COARSE_OPTICAL_BANDS,
    OPTICAL_TOLERANCE,
    SAR_TOLERANCE,
    Scene,
    Settings,
    warped,
)

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------
# Shift estimation on the overlap, at native resolution


def estimation_frame(grid: Grid, a: Scene, b: Scene) -> Grid | None:
    """The estimation grid: the overlap of two scenes and the AOI at native resolution."""
    res = max(min(a.resolution, b.resolution), grid.resolution / 4)
    g_left, g_bottom, g_right, g_top = grid.bounds
    left = max(g_left, a.footprint[0], b.footprint[0])
    bottom = max(g_bottom, a.footprint[1], b.footprint[1])
    right = min(g_right, a.footprint[2], b.footprint[2])
    top = min(g_top, a.footprint[3], b.footprint[3])
    # Snap inward to the grid's origin, so identical native grids are read unchanged.
    left = g_left + math.ceil(round((left - g_left) / res, 6)) * res
    top = g_top - math.ceil(round((g_top - top) / res, 6)) * res
    width, height = math.floor((right - left) / res), math.floor((top - bottom) / res)
    if min(width, height) < 3 * 32:
        return None
    return Grid(grid.crs, from_origin(left, top, res, res), width, height)


def _frame_reader(scene: Scene, frame: Grid, resampling: Resampling, threads: int):
    return warped(scene, frame.crs, frame.transform, frame.width, frame.height, resampling, threads)


def _too_small(method: str) -> align.ShiftEstimate:
    reason = "the overlap is too small to estimate a shift (under 96 x 96 pixels)"
    return align.ShiftEstimate((0.0, 0.0), False, float("nan"), method, reason)


def _tolerance(base: align.Tolerance, settings: Settings) -> align.Tolerance:
    return align.Tolerance(
        max_error=base.max_error,
        max_spread=base.max_spread,
        min_peak=base.min_peak,
        max_shift=settings.max_shift_px,
    )


def _window(part: align.Window2D) -> Window:
    return Window.from_slices(*part)


def _polarisations(scene: Scene) -> str:
    """How the methods name the SAR bands summed: a scene holds VV, or VV and VH."""
    return "VV+VH" if scene.count == 2 else "VV"


def estimate_sar_shift(
    reference: Scene, moving: Scene, grid: Grid, settings: Settings
) -> align.ShiftEstimate:
    """Shift (grid pixels) that puts `moving` SAR onto `reference` SAR."""
    method = (
        f"cross-correlation of band-passed log intensity ({_polarisations(moving)}), "
        "native resolution"
    )
    frame = estimation_frame(grid, reference, moving)
    if frame is None:
        return _too_small(method)
    with (
        _frame_reader(reference, frame, Resampling.bilinear, settings.threads) as ref,
        _frame_reader(moving, frame, Resampling.bilinear, settings.threads) as mov,
    ):

        def read(ref_part: align.Window2D, mov_part: align.Window2D):
            a, b = ref.read(window=_window(ref_part)), mov.read(window=_window(mov_part))
            valid = np.isfinite(a).all(axis=0) & np.isfinite(b).all(axis=0)
            return align.sar_feature(a), align.sar_feature(b), valid

        return align.estimate_from_chips(
            read,
            (frame.height, frame.width),
            scale=frame.resolution / grid.resolution,
            tolerance=_tolerance(SAR_TOLERANCE, settings),
            method=method,
        )


def registration_bands(optical_bands: tuple[str, ...]) -> list[int]:
    """1-based indexes of the optical bands whose brightness is matched to the SAR: all
    but SWIR, which Sentinel-2 acquires at 20 m (its gradients are coarser, and a scene
    read with it resampled or at full resolution would register differently)."""
    return [i for i, b in enumerate(optical_bands, start=1) if b not in COARSE_OPTICAL_BANDS]


def estimate_optical_shift(
    sar: Scene,
    optical: Scene,
    mask: Scene,
    grid: Grid,
    settings: Settings,
    optical_bands: tuple[str, ...],
) -> align.ShiftEstimate:
    """Shift (grid pixels) that puts the optical scene onto its period's SAR scene."""
    method = (
        f"cross-correlation of gradient orientation (SAR log {_polarisations(sar)}, "
        "optical brightness)"
    )
    indexes = registration_bands(optical_bands)
    frame = estimation_frame(grid, sar, optical)
    if frame is None:
        return _too_small(method)
    with (
        _frame_reader(sar, frame, Resampling.bilinear, settings.threads) as s_vrt,
        _frame_reader(optical, frame, Resampling.bilinear, settings.threads) as o_vrt,
        _frame_reader(mask, frame, Resampling.nearest, settings.threads) as m_vrt,
    ):

        def read(sar_part: align.Window2D, optical_part: align.Window2D):
            s = s_vrt.read(window=_window(sar_part))
            o = o_vrt.read(indexes, window=_window(optical_part))
            m = m_vrt.read(1, window=_window(optical_part))
            clear = ndimage.binary_erosion(m == opt.CLEAR, iterations=CLOUD_MARGIN_PX)
            valid = clear & np.isfinite(s).all(axis=0) & np.isfinite(o).all(axis=0)
            sar_log = align.log_intensity(np.nan_to_num(s, nan=1.0)).sum(axis=0)
            brightness = np.log(np.maximum(np.nan_to_num(o, nan=0.0).mean(axis=0), 1e-4))
            return (
                align.orientation_feature(sar_log),
                align.orientation_feature(brightness),
                valid,
            )

        return align.estimate_from_chips(
            read,
            (frame.height, frame.width),
            scale=frame.resolution / grid.resolution,
            tolerance=_tolerance(OPTICAL_TOLERANCE, settings),
            method=method,
        )


def shift_record(estimate: align.ShiftEstimate, grid: Grid, applied_shift, applied: bool) -> dict:
    record = estimate.to_dict()
    record["shift"] = [float(v) for v in applied_shift]
    record["shift_m"] = [
        float(applied_shift[1] * grid.resolution),
        float(-applied_shift[0] * grid.resolution),
    ]
    record["applied"] = applied
    if not applied:
        log.warning("shift not applied (%s): %s", estimate.method, estimate.reason)
    return record
