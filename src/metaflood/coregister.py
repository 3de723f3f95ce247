"""Co-registration: both periods and both modalities on one grid, ready for MetaRS.

Order of work, so that bad input fails before anything heavy runs:
1. every scene is checked from its metadata and a scan for data over the AOI (CRS,
   band count, overlap with the AOI, not all nodata);
2. residual shifts are estimated on chips of the overlap at the scenes' native
   resolution (post SAR to pre SAR, optical to its period's SAR; see `align`), and
   applied only when reliable;
3. the products are made block by block: each source is warped onto the (shifted)
   event grid through GDAL's warper, SAR in linear power (speckle-filtered there, then
   converted to dB), reflectance averaged or interpolated, the cloud mask carried
   conservatively; memory does not depend on the scene size.

The stack holds VV and VH (dB), then the optical bands optical.tif has (its band
descriptions: the source's, in canonical order), each named in the stack's descriptions.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.features import geometry_mask
from rasterio.transform import Affine, from_origin
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window, from_bounds
from scipy import ndimage

from metaflood import align, cloudmask
from metaflood import optical as opt
from metaflood.bands import (
    canonical_bands,
    missing_bands_message,
    unknown_band,
    unknown_band_message,
)
from metaflood.blockwise import block_windows, with_halo
from metaflood.config import Grid, aoi_polygon, event_grid, to_crs
from metaflood.errors import ConfigError, InputError
from metaflood.raster import (
    ALIGNED_COMPRESSION,
    atomic_path,
    cog_writer,
    open_checked,
    read_window,
)
from metaflood.sar import to_db
from metaflood.settings import section_defaults
from metaflood.speckle import FILTERS, estimate_looks, speckle_filter

log = logging.getLogger(__name__)

SAR_VALID, OPTICAL_VALID = 1, 2
VALID_NODATA = 255
# Optical bands left out of the optical-to-SAR shift estimate (20 m on Sentinel-2).
COARSE_OPTICAL_BANDS = ("swir16",)
# Clear pixels this close (estimation pixels) to a cloud do not vote on the optical
# shift: haze at cloud edges makes gradients the SAR does not have.
CLOUD_MARGIN_PX = 3
# Largest sample (pixels per side) the number of looks is estimated from.
LOOKS_SAMPLE = 512
# GDAL's block cache (MB): by default 5% of the machine's memory; a fixed size keeps the
# stage's memory independent of the machine and of the scene.
GDAL_CACHE_MB = 256
# GDAL warper's working memory (MB) per warped read: large enough that a block is
# warped in one piece.
WARP_MEMORY_MB = 256
# When a shift is trusted, in grid pixels: half of the accuracy the stage promises
# (0.2 px SAR to SAR, 0.5 px optical to SAR) for the uncertainty of the estimate.
SAR_TOLERANCE = align.Tolerance(max_error=0.1, max_spread=0.5)
OPTICAL_TOLERANCE = align.Tolerance(max_error=0.25, max_spread=1.0)


@dataclass(frozen=True)
class Settings:
    """The `coregister:` section of the configuration."""

    speckle_filter: str
    speckle_window: int
    speckle_looks: float | None
    cloud_mask: str
    block_size: int
    max_shift_px: float
    threads: int = 1

    @classmethod
    def from_config(cls, section: dict | None, threads: int = 1) -> Settings:
        """The section with the schema's defaults for the keys it does not set."""
        section = section_defaults("coregister", section, check=False)
        settings = cls(**section, threads=threads)
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


# ---------------------------------------------------------------------------------------
# Shift estimation on the overlap, at native resolution


@dataclass(frozen=True)
class Frame:
    """The estimation grid: the overlap of two scenes and the AOI at native resolution."""

    crs: str
    transform: Affine
    width: int
    height: int

    @property
    def resolution(self) -> float:
        return self.transform.a


def estimation_frame(grid: Grid, a: Scene, b: Scene) -> Frame | None:
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
    return Frame(grid.crs, from_origin(left, top, res, res), width, height)


def _frame_reader(scene: Scene, frame: Frame, resampling: Resampling, threads: int):
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


def _record(estimate: align.ShiftEstimate, grid: Grid, applied_shift, applied: bool) -> dict:
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


# ---------------------------------------------------------------------------------------
# Products, block by block


def aoi_mask(event: dict, key: str, grid: Grid) -> np.ndarray:
    """True inside the AOI polygon on the grid."""
    return _aoi_block(
        to_crs(aoi_polygon(event, key), grid.crs), grid.transform, grid.height, grid.width
    )


def _aoi_block(polygon, transform: Affine, height: int, width: int) -> np.ndarray:
    return geometry_mask(
        [polygon], out_shape=(height, width), transform=transform, all_touched=True, invert=True
    )


def _nan_block(bands: int, window: Window) -> np.ndarray:
    return np.full((bands, int(window.height), int(window.width)), np.nan, np.float32)


class _SarBlocks:
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
    settings: Settings | dict | None = None,
) -> dict:
    if not isinstance(settings, Settings):
        settings = Settings.from_config(settings)
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        return _coregister(
            event,
            name,
            period,
            sar,
            optical,
            optical_mask,
            reference,
            out_stack,
            out_valid,
            out_report,
            settings,
        )


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


def plan_period(
    event: dict,
    name: str,
    period: str,
    sar: Path,
    optical: Path,
    optical_mask: Path,
    reference: Path,
    settings: Settings,
    *,
    estimate: bool = True,
    report: dict | None = None,
) -> Plan:
    """Check the scenes and estimate the shifts; with `estimate=False`, take the shifts
    (and the speckle looks) from an earlier `report` instead."""
    key = f"events.{name}"
    grid = event_grid(event, key)
    polygon = to_crs(aoi_polygon(event, key), grid.crs)

    # 1. Checks, before any heavy work.
    sar_bands = scene_band_names(sar, "sar")
    sar_scene = inspect_scene(sar, sar_bands, grid)
    optical_bands = scene_band_names(optical, "optical")
    optical_scene = inspect_scene(optical, optical_bands, grid)
    mask_scene = inspect_scene(optical_mask, ("cloud_mask",), grid)
    _check_same_frame(optical, optical_mask)
    if not estimate:
        if report is None:
            raise ValueError("a report with the shifts is needed when estimate is False")
        shifts = report["shifts"]
        sar_shift = _applied(shifts.get("sar_to_reference"))
        optical_shift = _applied(shifts.get("optical_to_sar"))
        return Plan(
            grid,
            polygon,
            sar_scene,
            optical_scene,
            mask_scene,
            sar_shift,
            optical_shift,
            report,
            optical_bands,
            sar_bands,
        )
    reference_scene = None
    if period == "post" and not sar_scene.absent:
        reference_scene = inspect_scene(reference, scene_band_names(reference, "sar"), grid)
        if reference_scene.absent:
            reference_scene = None

    report = {
        "grid": grid.to_dict(),
        "period": period,
        "shifts": {},
        "speckle": {"filter": settings.speckle_filter, "window": settings.speckle_window},
        "cloud_mask": cloud_mask_mode(settings, mask_scene),
        "sar_bands": list(sar_bands),
        "optical_bands": list(optical_bands),
    }
    if report["cloud_mask"] != "provided":
        # Which spectral test flags cloud and shadow with these bands, or that none can.
        report["cloud_mask_tests"] = cloudmask.spectral_tests(optical_bands)

    # 2. Shifts.
    sar_shift = (0.0, 0.0)
    if reference_scene is not None:
        estimate = estimate_sar_shift(reference_scene, sar_scene, grid, settings)
        if estimate.reliable:
            sar_shift = estimate.shift
        report["shifts"]["sar_to_reference"] = _record(
            estimate, grid, sar_shift if estimate.reliable else estimate.shift, estimate.reliable
        )
    optical_shift = (0.0, 0.0)
    if not sar_scene.absent and not optical_scene.absent:
        estimate = estimate_optical_shift(
            sar_scene, optical_scene, mask_scene, grid, settings, optical_bands
        )
        total = (estimate.shift[0] + sar_shift[0], estimate.shift[1] + sar_shift[1])
        if estimate.reliable:
            optical_shift = total
        record = _record(estimate, grid, total, estimate.reliable)
        record["sar_shift_included"] = [float(v) for v in sar_shift]
        report["shifts"]["optical_to_sar"] = record
    return Plan(
        grid,
        polygon,
        sar_scene,
        optical_scene,
        mask_scene,
        sar_shift,
        optical_shift,
        report,
        optical_bands,
        sar_bands,
    )


def _applied(record: dict | None) -> tuple[float, float]:
    if not record or not record["applied"]:
        return (0.0, 0.0)
    return (float(record["shift"][0]), float(record["shift"][1]))


def _coregister(
    event: dict,
    name: str,
    period: str,
    sar: Path,
    optical: Path,
    optical_mask: Path,
    reference: Path,
    out_stack: Path,
    out_valid: Path,
    out_report: Path,
    settings: Settings,
) -> dict:
    plan = plan_period(event, name, period, sar, optical, optical_mask, reference, settings)
    report = plan.report

    # 3. Products.
    coverage = _write_products(plan, settings, out_stack, out_valid, f"events.{name}.{period}")
    report["coverage"] = coverage
    with atomic_path(out_report) as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    log.info("%s %s: %s", name, period, json.dumps(report["shifts"]))
    return report


def estimate_period(
    event: dict,
    name: str,
    period: str,
    *,
    sar: Path,
    optical: Path,
    optical_mask: Path,
    reference: Path,
    out_shifts: Path,
    settings: Settings | dict | None = None,
) -> dict:
    """Tiled co-registration, step 1: checks, shifts and speckle looks of the whole scene,
    written once for every tile job of the period to share."""
    if not isinstance(settings, Settings):
        settings = Settings.from_config(settings)
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        plan = plan_period(event, name, period, sar, optical, optical_mask, reference, settings)
        if not plan.sar.absent and settings.speckle_filter != "none":
            size = (plan.grid.width, plan.grid.height)
            with warped(
                plan.sar,
                plan.grid.crs,
                shifted_transform(plan.grid.transform, plan.sar_shift),
                *size,
                plan.sar.resampling(plan.grid, Resampling.average, Resampling.bilinear),
                settings.threads,
            ) as vrt:
                looks = _SarBlocks(vrt, plan.grid, settings, len(plan.sar_bands)).looks
            plan.report["speckle"]["looks"] = [round(v, 2) for v in looks]
    with atomic_path(out_shifts) as tmp:
        tmp.write_text(json.dumps(plan.report, indent=2))
    return plan.report


def coregister_tile(
    event: dict,
    name: str,
    period: str,
    *,
    sar: Path,
    optical: Path,
    optical_mask: Path,
    shifts: Path,
    window: Window,
    out_stack: Path,
    out_valid: Path,
    settings: Settings | dict | None = None,
) -> dict:
    """Tiled co-registration, step 2: the products over one tile's window of the grid,
    with the period's shared shifts."""
    if not isinstance(settings, Settings):
        settings = Settings.from_config(settings)
    report = json.loads(Path(shifts).read_text())
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        plan = plan_period(
            event,
            name,
            period,
            sar,
            optical,
            optical_mask,
            sar,
            settings,
            estimate=False,
            report=report,
        )
        return _write_products(
            plan, settings, out_stack, out_valid, f"events.{name}.{period}", window=window
        )


def cloud_mask_mode(settings: Settings, mask: Scene) -> str:
    """The configured mode, except that a mask the acquisition marked as carrying no
    information (tag mask_source=none: the source had no scene classification) gives way
    to the spectral test rather than calling every pixel clear."""
    if settings.cloud_mask == "provided" and mask.tag("mask_source") == "none":
        return "spectral"
    return settings.cloud_mask


def _check_same_frame(optical: Path, optical_mask: Path) -> None:
    with open_checked(optical) as a, open_checked(optical_mask) as b:
        if (a.width, a.height) != (b.width, b.height) or a.transform != b.transform:
            raise InputError(f"{optical} and {optical_mask} have different sizes or grids")


def _write_products(
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
        sar_blocks = _SarBlocks(sar_vrt, grid, settings, len(plan.sar_bands), looks)
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
