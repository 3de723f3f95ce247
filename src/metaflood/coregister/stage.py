"""Co-registration: both periods and both modalities on one grid, ready for MetaRS.

Order of work, so that bad input fails before anything heavy runs:
1. every scene is checked from its metadata and a scan for data over the AOI (CRS,
   band count, overlap with the AOI, not all nodata);
2. residual shifts are estimated on chips of the overlap at the scenes' native
   resolution (post SAR to pre SAR, optical to its period's SAR; see `align`), and
   applied only when reliable (`shifts`);
3. the products are made block by block: each source is warped onto the (shifted)
   event grid through GDAL's warper, SAR in linear power (speckle-filtered there, then
   converted to dB), reflectance averaged or interpolated, the cloud mask carried
   conservatively; memory does not depend on the scene size (`products`).

The stack holds VV and VH (dB), then the optical bands optical.tif has (its band
descriptions: the source's, in canonical order), each named in the stack's descriptions.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from metaflood.core.config import aoi_polygon, event_grid, to_crs
from metaflood.core.raster import (
    COREGISTER_GDAL_CACHE_MB,
    atomic_path,
)
from metaflood.coregister import cloudmask
from metaflood.coregister.products import (
    Plan,
    SarBlocks,
    check_same_frame,
    cloud_mask_mode,
    write_products,
)
from metaflood.coregister.scenes import (
    Settings,
    inspect_scene,
    scene_band_names,
    shifted_transform,
    warped,
)
from metaflood.coregister.shifts import estimate_optical_shift, estimate_sar_shift, shift_record

log = logging.getLogger(__name__)


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
    settings: Settings,
) -> dict:
    with rasterio.Env(GDAL_CACHEMAX=COREGISTER_GDAL_CACHE_MB):
        plan = plan_period(event, name, period, sar, optical, optical_mask, reference, settings)
        report = plan.report
        # 3. Products.
        coverage = write_products(plan, settings, out_stack, out_valid, f"events.{name}.{period}")
    report["coverage"] = coverage
    with atomic_path(out_report) as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    log.info("%s %s: %s", name, period, json.dumps(report["shifts"]))
    return report


def plan_period(
    event: dict,
    name: str,
    period: str,
    sar: Path,
    optical: Path,
    optical_mask: Path,
    reference: Path | None,
    settings: Settings,
    *,
    estimate: bool = True,
    report: dict | None = None,
) -> Plan:
    """Check the scenes and estimate the shifts (the post-event SAR's against the
    `reference`, the pre-event SAR); with `estimate=False`, take the shifts (and the
    speckle looks) from an earlier `report` instead, and no reference is read."""
    key = f"events.{name}"
    grid = event_grid(event, key)
    polygon = to_crs(aoi_polygon(event, key), grid.crs)

    # 1. Checks, before any heavy work.
    sar_bands = scene_band_names(sar, "sar")
    sar_scene = inspect_scene(sar, sar_bands, grid)
    optical_bands = scene_band_names(optical, "optical")
    optical_scene = inspect_scene(optical, optical_bands, grid)
    mask_scene = inspect_scene(optical_mask, ("cloud_mask",), grid)
    check_same_frame(optical, optical_mask)
    if not estimate:
        if report is None:
            raise ValueError("a report with the shifts is needed when estimate is False")
        shifts = report["shifts"]
        sar_shift = _applied(shifts.get("sar_to_reference"))
        optical_shift = _applied(shifts.get("optical_to_sar"))
    else:
        reference_scene = None
        if period == "post" and not sar_scene.absent and reference is not None:
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
            found = estimate_sar_shift(reference_scene, sar_scene, grid, settings)
            if found.reliable:
                sar_shift = found.shift
            report["shifts"]["sar_to_reference"] = shift_record(
                found, grid, found.shift, found.reliable
            )
        optical_shift = (0.0, 0.0)
        if not sar_scene.absent and not optical_scene.absent:
            found = estimate_optical_shift(
                sar_scene, optical_scene, mask_scene, grid, settings, optical_bands
            )
            total = (found.shift[0] + sar_shift[0], found.shift[1] + sar_shift[1])
            if found.reliable:
                optical_shift = total
            record = shift_record(found, grid, total, found.reliable)
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
    settings: Settings,
) -> dict:
    """Tiled co-registration, step 1: checks, shifts and speckle looks of the whole scene,
    written once for every tile job of the period to share."""
    with rasterio.Env(GDAL_CACHEMAX=COREGISTER_GDAL_CACHE_MB):
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
                looks = SarBlocks(vrt, plan.grid, settings, len(plan.sar_bands)).looks
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
    settings: Settings,
) -> dict:
    """Tiled co-registration, step 2: the products over one tile's window of the grid,
    with the period's shared shifts."""
    report = json.loads(Path(shifts).read_text())
    with rasterio.Env(GDAL_CACHEMAX=COREGISTER_GDAL_CACHE_MB):
        plan = plan_period(
            event,
            name,
            period,
            sar,
            optical,
            optical_mask,
            None,
            settings,
            estimate=False,
            report=report,
        )
        return write_products(
            plan, settings, out_stack, out_valid, f"events.{name}.{period}", window=window
        )
