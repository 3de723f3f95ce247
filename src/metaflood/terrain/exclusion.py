"""Exclusion codes: where the SAR flood map cannot be trusted, and why, in one uint8 layer.

Like GFM's exclusion mask, one code per pixel (not a bitmask, so a colour table shows
it and the report can count each reason once). Where several reasons hold, the one
that says most about the SAR's blindness wins: layover, then shadow (the radar sees
nothing there), then a steep slope, then HAND (the ground is too high to flood, but the
radar does see it). Nodata wins over all: a pixel without a DEM or without a layer the
caller asked for is not "not excluded".

    0   not excluded
    1   HAND above the threshold
    2   slope steeper than the threshold
    3   radar shadow
    4   radar layover
    255 nodata

An absent layer (None: no DEM, no SAR geometry in the scene metadata) excludes nothing;
the product and the report must say which layers were absent.
"""

from __future__ import annotations

import numpy as np

from metaflood.core.exclusion_codes import (  # noqa: F401 (the table, re-exported)
    COLOURS,
    HAND,
    LAYOVER,
    NAMES,
    NODATA,
    NOT_EXCLUDED,
    SHADOW,
    SLOPE,
)


def exclusion_codes(
    shape: tuple[int, int],
    *,
    hand: np.ndarray | None = None,
    slope: np.ndarray | None = None,
    shadow: np.ndarray | None = None,
    layover: np.ndarray | None = None,
    valid: np.ndarray | None = None,
    hand_max_m: float,
    slope_max_deg: float,
) -> np.ndarray:
    """The uint8 exclusion codes from the layers given (see the module's table).

    The thresholds have no default here: they are settings, whose one default will be
    the config schema's.

    HAND strictly above `hand_max_m` and slope strictly above `slope_max_deg` exclude; a
    NaN in a given HAND or slope layer, or False in `valid`, is nodata.
    """
    codes = np.zeros(shape, dtype=np.uint8)
    nodata = np.zeros(shape, dtype=bool) if valid is None else ~np.asarray(valid, dtype=bool)
    # lowest priority first, so later reasons overwrite earlier ones
    for code, layer, limit in ((HAND, hand, hand_max_m), (SLOPE, slope, slope_max_deg)):
        if layer is None:
            continue
        layer = np.asarray(layer, dtype=np.float64)
        _check_shape(layer, shape, NAMES[code])
        nodata |= np.isnan(layer)
        with np.errstate(invalid="ignore"):
            codes[layer > limit] = code
    for code, mask in ((SHADOW, shadow), (LAYOVER, layover)):
        if mask is None:
            continue
        mask = np.asarray(mask, dtype=bool)
        _check_shape(mask, shape, NAMES[code])
        codes[mask] = code
    codes[nodata] = NODATA
    return codes


def _check_shape(layer: np.ndarray, shape: tuple[int, int], name: str) -> None:
    if layer.shape != tuple(shape):
        raise ValueError(f"the {name} layer is {layer.shape}, the grid {tuple(shape)}")


def area_summary(
    codes: np.ndarray,
    *,
    aoi: np.ndarray | None = None,
    pixel_area_m2: float | np.ndarray | None = None,
) -> dict[str, dict[str, float | int]]:
    """Pixels, share of the AOI and (with `pixel_area_m2`) km² per code, by name.

    The share is of all AOI pixels, nodata included, so the rows add up to 1; the row
    "excluded" totals codes 1-4.
    """
    codes = np.asarray(codes)
    inside = np.ones(codes.shape, dtype=bool) if aoi is None else np.asarray(aoi, dtype=bool)
    total = int(inside.sum())
    area = None
    if pixel_area_m2 is not None:
        area = np.broadcast_to(np.asarray(pixel_area_m2, dtype=np.float64), codes.shape)
    summary: dict[str, dict[str, float | int]] = {}
    for code, name in NAMES.items():
        summary[name] = _row(inside & (codes == code), total, code, area)
    excluded = inside & (codes >= HAND) & (codes <= LAYOVER)
    summary["excluded"] = _row(excluded, total, None, area)
    return summary


def _row(mask: np.ndarray, total: int, code: int | None, area) -> dict[str, float | int]:
    pixels = int(mask.sum())
    row: dict[str, float | int] = {"pixels": pixels, "share": pixels / total if total else 0.0}
    if code is not None:
        row = {"code": code, **row}
    if area is not None:
        row["area_km2"] = float(area[mask].sum() / 1e6)
    return row
