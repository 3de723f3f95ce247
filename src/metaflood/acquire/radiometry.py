"""How stored digital numbers become physical values, per asset.

Sentinel-2 L2A from processing baseline 04.00 on stores reflectance x 10000 + 1000
(BOA_ADD_OFFSET = -1000). Planetary Computer gives the baseline as
`s2:processing_baseline` and leaves the offset to the user; Earth Search gives
`earthsearch:boa_offset_applied` (true: the offset was already removed from the DNs)
and writes an offset into `raster:bands` that is not always right. So for reflectance
bands the item's baseline metadata decides, and `raster:bands` is used otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

BASELINE_KEYS = ("s2:processing_baseline", "earthsearch:processing_baseline", "processing:version")
OFFSET_APPLIED_KEYS = ("earthsearch:boa_offset_applied", "sentinel:boa_offset_applied")
BOA_ADD_OFFSET_DN = -1000.0
FIRST_OFFSET_BASELINE = 4.0


@dataclass(frozen=True)
class Radiometry:
    scale: float | None  # None: the file's own
    offset: float | None
    why: str


def _baseline(properties: dict) -> float | None:
    for key in BASELINE_KEYS:
        if key in properties:
            try:
                return float(properties[key])
            except (TypeError, ValueError):
                return None
    return None


def reflectance_radiometry(
    properties: dict, raster_band: dict, scale_override: float | None = None
) -> Radiometry:
    """Scale and offset of a Sentinel-2-like reflectance band."""
    scale = scale_override if scale_override is not None else raster_band.get("scale")
    applied = next((properties[k] for k in OFFSET_APPLIED_KEYS if k in properties), None)
    baseline = _baseline(properties)
    if scale is not None and applied is True:
        return Radiometry(scale, 0.0, "BOA offset already removed from the DNs by the provider")
    if scale is not None and baseline is not None:
        if baseline >= FIRST_OFFSET_BASELINE:
            return Radiometry(
                scale,
                BOA_ADD_OFFSET_DN * scale,
                f"processing baseline {baseline:05.2f}: BOA_ADD_OFFSET {BOA_ADD_OFFSET_DN:g} DN",
            )
        return Radiometry(scale, 0.0, f"processing baseline {baseline:05.2f}: no BOA offset")
    if "scale" in raster_band or "offset" in raster_band or scale is not None:
        offset = raster_band.get("offset", 0.0)
        return Radiometry(scale if scale is not None else 1.0, offset, "raster:bands")
    return Radiometry(None, None, "the file's own scale and offset")


def plain_radiometry(
    raster_band: dict, scale_override: float | None = None, offset_override: float | None = None
) -> Radiometry:
    """Scale and offset of any other band (SAR, masks): configuration, raster:bands, file."""
    if scale_override is not None or offset_override is not None:
        return Radiometry(
            scale_override if scale_override is not None else 1.0,
            offset_override if offset_override is not None else 0.0,
            "configuration",
        )
    if "scale" in raster_band or "offset" in raster_band:
        return Radiometry(
            raster_band.get("scale", 1.0), raster_band.get("offset", 0.0), "raster:bands"
        )
    return Radiometry(None, None, "the file's own scale and offset")
