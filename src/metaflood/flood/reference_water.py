"""Permanent water: the reference layer and the pre-event water map together.

"Flooded" means new water beyond what was water before the event. What was water is
taken from two independent sources, as GFM and DSWx-S1 do: an external reference layer
(JRC Global Surface Water, ESA WorldCover, read by acquisition as 0/1) and the event's
own pre-event water map (probability >= 1/2). Their union is permanent water; the
codes keep which source said so, so the report can show where they disagree (a
coastline a few metres off, a pond dried out, a reservoir the layer does not know).

The pre-event map does not count where the backscatter then fell to water level (the SAR
change's flood signal): open water is already near the noise floor and cannot fall that
far, so the ground was not open water, whatever a map read from SAR alone says of soil
wet from the rain. The reference layer is independent of the event and always counts.

    0   land in both
    1   water in both
    2   water in the reference layer only
    3   water in the pre-event map only
    255 nodata (no pre-event water map there; the reference layer alone is not enough
        to say "land")

An absent reference layer (all nodata, tagged absent) reduces this to the pre-event map.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio

from metaflood.core import water_map
from metaflood.core.errors import InputError
from metaflood.core.raster import atomic_path, read_checked, write_cog
from metaflood.flood.sar_change import FLOOD_SIGNAL, same_grid

LAND, BOTH, REFERENCE_ONLY, PRE_ONLY, NODATA = 0, 1, 2, 3, 255
PERMANENT_CODES = (BOTH, REFERENCE_ONLY, PRE_ONLY)
NAMES = {
    LAND: "land in both",
    BOTH: "water in both",
    REFERENCE_ONLY: "water in the reference layer only",
    PRE_ONLY: "water in the pre-event map only",
    NODATA: "nodata",
}
COLOURS = {
    LAND: (0, 0, 0, 0),
    BOTH: (0, 38, 115, 255),
    REFERENCE_ONLY: (190, 120, 255, 255),
    PRE_ONLY: (0, 170, 200, 255),
    NODATA: (255, 255, 255, 0),
}
LAYER_WATER, LAYER_NODATA = 1, 255  # acquisition's reference_water.tif


def reference_codes(
    layer: np.ndarray, water_pre_percent: np.ndarray, sar_evidence: np.ndarray | None = None
) -> np.ndarray:
    """The codes above from the reference layer (0/1, 255 nodata), the pre-event water
    map (percent, 255 nodata) and, where given, the SAR change evidence codes."""
    pre_known = water_pre_percent != water_map.NODATA
    pre_water = pre_event_water(water_pre_percent)
    if sar_evidence is not None:
        pre_water &= sar_evidence != FLOOD_SIGNAL
    ref_water = layer == LAYER_WATER
    codes = np.full(layer.shape, NODATA, np.uint8)
    codes[pre_known] = LAND
    codes[pre_known & ref_water & pre_water] = BOTH
    codes[pre_known & ref_water & ~pre_water] = REFERENCE_ONLY
    codes[pre_known & ~ref_water & pre_water] = PRE_ONLY
    return codes


def pre_event_water(water_pre_percent: np.ndarray) -> np.ndarray:
    """Where the pre-event water map (percent, 255 nodata) says water."""
    return water_map.is_water(water_pre_percent)


def permanent_water(codes: np.ndarray) -> np.ndarray:
    """Where either source says there was water before the event."""
    return np.isin(codes, PERMANENT_CODES)


def shares(codes: np.ndarray, pixel_area_m2: float) -> dict:
    """Pixels, share of the known grid and km² per code (nodata apart)."""
    known = int((codes != NODATA).sum())
    out = {}
    for code, name in NAMES.items():
        pixels = int((codes == code).sum())
        out[name] = {
            "code": code,
            "pixels": pixels,
            "share": pixels / known if known and code != NODATA else None,
            "area_km2": pixels * pixel_area_m2 / 1e6,
        }
    return out


def write_reference_water(
    layer_path: Path, water_pre: Path, sar_evidence: Path, out: Path, out_record: Path
) -> dict:
    """flood/reference_water.tif and its record from the acquired layer, the pre-event
    water map and the SAR change evidence (same grid, or an InputError naming them)."""
    layer, layer_profile = read_checked(layer_path)
    water, water_profile = read_checked(water_pre)
    evidence, evidence_profile = read_checked(sar_evidence)
    if layer.shape[0] != 1 or layer.dtype != np.uint8:
        raise InputError(f"{layer_path}: expected one uint8 band (0/1, 255 nodata)")
    same_grid(
        [
            (Path(layer_path), layer_profile),
            (Path(water_pre), water_profile),
            (Path(sar_evidence), evidence_profile),
        ]
    )
    with rasterio.open(layer_path) as src:
        absent = src.tags().get("absent", "false") == "true"
    codes = reference_codes(layer[0], water[0], evidence[0])
    transform = water_profile["transform"]
    pixel_area_m2 = abs(transform.a * transform.e)
    not_counted = pre_event_water(water[0]) & (evidence[0] == FLOOD_SIGNAL)
    record = {
        "reference_layer": "absent" if absent else "found",
        "permanent_water": (
            "pre-event water map only" if absent else "reference layer or pre-event water map"
        ),
        "areas": shares(codes, pixel_area_m2),
        "pre_event_water_not_counted": {
            "why": "the backscatter fell there to water level: not open water before",
            "pixels": int(not_counted.sum()),
            "area_km2": int(not_counted.sum()) * pixel_area_m2 / 1e6,
        },
    }
    write_cog(
        out,
        codes,
        crs=water_profile["crs"],
        transform=transform,
        nodata=NODATA,
        descriptions=("reference_water",),
        colormap=COLOURS,
        tags={
            "values": ", ".join(f"{c} {n}" for c, n in NAMES.items()),
            "reference_layer": record["reference_layer"],
        },
    )
    with atomic_path(out_record) as tmp:
        tmp.write_text(json.dumps(record, indent=2))
    return record
