"""Flood extent and confidence from the change of the water maps and the SAR change evidence.

New water is water after the event where there was none before: water before the event
is the reference water (`reference_water`: the external layer or the pre-event water
map), and where it is water after the event too it is permanent (sea, reservoirs), kept
apart so it is never counted as flooding. A pixel is mapped as flooded where the
calibrated confidence (confidence.py), which weighs the change of the water maps against
the independent SAR change, says it more likely than not; regions smaller than the
minimum mapping unit are dropped as noise. With a flood network (`change.flood_network`,
network.py), a pixel's confidence is the higher of the calibrated one and the network's.

Where the terrain exclusion (`flood/exclusion.tif`) says the SAR cannot tell (high above
drainage, steep, radar shadow or layover), the extent and the confidence are nodata, as
in GFM; the extent before the exclusion can be written beside it for validation.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio

from metaflood.core.blockwise import block_windows
from metaflood.core.classes import CLASS_NAMES, NUM_CLASSES, WATER
from metaflood.core.errors import InputError
from metaflood.core.exclusion_codes import EXCLUDING
from metaflood.core.raster import atomic_path, open_georeferenced, read_window, write_cog
from metaflood.flood.confidence import (
    CONFIDENCE_NODATA,
    NETWORK_JOIN,
    EvidenceSource,
    flood_probability,
    load_calibration,
    network_join_probability,
    to_percent,
)
from metaflood.flood.mmu import drop_small_patches
from metaflood.flood.reference_water import permanent_water
from metaflood.flood.sar_change import FLOOD_SIGNAL, same_grid
from metaflood.flood.support import case_codes, support_codes, write_support
from metaflood.flood.vector import flood_polygons, write_polygons

DRY, FLOODED, PERMANENT = 0, 1, 2
EXTENT_NODATA = 255
EXTENT_COLORMAP = {
    DRY: (235, 235, 235, 255),
    FLOODED: (0, 112, 255, 255),
    PERMANENT: (0, 38, 115, 255),
    EXTENT_NODATA: (0, 0, 0, 0),
}


NETWORK_NODATA = 255  # of flood/network.tif (percent)
NETWORK_DEFINITION = (
    "; where the flood network's probability (not calibrated) is higher, that probability"
)
NETWORK_JOIN_DEFINITION = (
    ", joined to the flood network's probability by a fit on real flood masks (network_join)"
)
# The tag of flood/network.tif that names the checkpoint's content, which a fitted join
# must have been fitted for.
NETWORK_SHA256_TAG = "checkpoint_sha256"

# The confidence product's tag that records where the extent was cut (percent).
FLOODED_MIN_CONFIDENCE_TAG = "flooded_min_confidence"
# Products written before the cut was a setting were all cut at one half.
FLOODED_MIN_CONFIDENCE_BEFORE_TAG = 50

BLOCK_PX = 2048  # rows and columns of evidence weighed at a time


def flood_extent(pre: np.ndarray, post: np.ndarray, min_pixels: int) -> np.ndarray:
    """Land-cover change alone (the baseline the combined extent is measured against):
    0 dry, 1 flooded, 2 permanent water, 255 where either map has no class."""
    known = (pre < NUM_CLASSES) & (post < NUM_CLASSES)
    extent = np.full(pre.shape, EXTENT_NODATA, dtype=np.uint8)
    extent[known] = DRY
    extent[known & (pre == WATER) & (post == WATER)] = PERMANENT
    extent[known & (post == WATER) & (pre != WATER)] = FLOODED
    return drop_small_patches(extent, FLOODED, DRY, min_pixels)


def transition_counts(pre: np.ndarray, post: np.ndarray) -> np.ndarray:
    """Pixels that went from each pre-event class (rows) to each post-event class."""
    known = (pre < NUM_CLASSES) & (post < NUM_CLASSES)
    pairs = pre[known].astype(np.int64) * NUM_CLASSES + post[known]
    return np.bincount(pairs, minlength=NUM_CLASSES**2).reshape(NUM_CLASSES, NUM_CLASSES)


def transition_matrix(counts: np.ndarray, pixel_area_m2: float) -> pd.DataFrame:
    """Area (km2) that went from each pre-event class (rows) to each post-event class."""
    frame = pd.DataFrame(counts * pixel_area_m2 / 1e6, index=CLASS_NAMES, columns=CLASS_NAMES)
    frame.index.name = "pre \\ post (km2)"
    return frame


def _class_source(path: Path, stack: ExitStack) -> rasterio.DatasetReader:
    src = stack.enter_context(open_georeferenced(path))
    if src.count != 1 or src.dtypes[0] != "uint8":
        raise InputError(f"{path}: expected a single-band uint8 class map")
    return src


def combined_extent(
    probability: np.ndarray,
    water_pre: np.ndarray,
    water_post: np.ndarray,
    min_pixels: int,
    *,
    flooded_min_probability: float,
    reference: np.ndarray | None = None,
    sar_flood: np.ndarray | None = None,
) -> np.ndarray:
    """Flooded where the calibrated probability of new water reaches
    `flooded_min_probability` (one half: more likely flooded than not), outside the water
    before the event (the pre-event water map, and the `reference` permanent water where
    given); water before and after is permanent, never flooding.

    Where the backscatter fell to water level (`sar_flood`) the ground was not open water
    before, whose backscatter is already near the noise floor, whatever the pre-event
    water map says: read from SAR alone, that map takes soil wet from the rain for water.
    """
    known = np.isfinite(probability)
    before = np.nan_to_num(water_pre) >= 0.5
    if sar_flood is not None:
        before &= ~sar_flood
    if reference is not None:
        before |= reference
    permanent = known & before & (np.nan_to_num(water_post) >= 0.5)
    new_water = known & ~before & (np.nan_to_num(probability) >= flooded_min_probability)
    extent = np.full(probability.shape, EXTENT_NODATA, dtype=np.uint8)
    extent[known] = DRY
    extent[permanent] = PERMANENT
    extent[new_water] = FLOODED
    return drop_small_patches(extent, FLOODED, DRY, min_pixels)


def map_flood(
    landcover: list[Path],
    water: list[Path],
    *,
    post_route: Path,
    sar_evidence: Path,
    sar_ratio: Path,
    sar_summary: Path,
    calibration: Path | None,
    out_extent: Path,
    out_confidence: Path,
    out_polygons: Path,
    out_transitions: Path,
    min_area_m2: float,
    flooded_min_confidence: int,
    reference_water: Path | None = None,
    exclusion: Path | None = None,
    out_unexcluded: Path | None = None,
    network: Path | None = None,
    out_support: Path | None = None,
) -> dict:
    """The change stage: extent, confidence, polygons and transitions of one event, and
    what each flooded pixel rests on (`out_support`, flood/support.tif, where given).

    A pixel is flooded where its confidence (percent) reaches `flooded_min_confidence`.

    `reference_water` (flood/reference_water.tif) is the water before the event;
    `exclusion` (flood/exclusion.tif), where given, makes its excluded pixels nodata in
    the extent and the confidence; `out_unexcluded` receives the extent as it would be
    without it (for validation). `network` (flood/network.tif), where given, is the flood
    network's probability: where it is the higher, it is the pixel's confidence (see
    joined_probability). The evidence is read and weighed block by block; only the uint8
    grids that the minimum mapping unit and the polygons need whole (pre-event classes,
    extent, confidence, exclusion, what the flood rests on) are held for the full grid.
    """
    calibration_model = load_calibration(calibration)
    with ExitStack() as stack:
        pre_src, post_src = (_class_source(p, stack) for p in landcover)
        evidence = EvidenceSource(water, post_route, sar_evidence, sar_ratio, sar_summary, stack)
        extra = [p for p in (reference_water, exclusion, network) if p is not None]
        extra_src = {p: stack.enter_context(open_georeferenced(p)) for p in extra}
        same_grid(
            [
                (landcover[0], pre_src.profile),
                (landcover[1], post_src.profile),
                (water[0], evidence.profile),
                *((p, src.profile) for p, src in extra_src.items()),
            ]
        )
        join = None
        if network is not None:
            join = network_join(calibration_model, extra_src[network], network)
        transform, crs = pre_src.transform, pre_src.crs
        shape = (pre_src.height, pre_src.width)
        pre = np.empty(shape, np.uint8)
        extent = np.empty(shape, np.uint8)
        confidence = np.empty(shape, np.uint8)
        support = np.empty(shape, np.uint8)
        excluded = np.zeros(shape, bool)
        counts = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
        for window in block_windows(*shape, BLOCK_PX):
            cut = window.toslices()
            pre[cut] = read_window(pre_src, window, 1)
            post = read_window(post_src, window, 1)
            stored_water = evidence.water_maps(window)  # as stored: what the flood rests on
            block = evidence.read(window, stored_water)
            probability = flood_probability(block, calibration_model)
            if network is not None:
                probability = joined_probability(
                    probability,
                    read_window(extra_src[network], window, 1),
                    join=join,
                    optical_post=block.optical_post,
                )
            reference = None
            if reference_water is not None:
                reference = permanent_water(read_window(extra_src[reference_water], window, 1))
            if exclusion is not None:
                excluded[cut] = excluded_pixels(read_window(extra_src[exclusion], window, 1))
            # The minimum mapping unit is applied on the whole grid below.
            extent[cut] = combined_extent(
                probability,
                block.water_pre,
                block.water_post,
                min_pixels=0,
                flooded_min_probability=flooded_min_confidence / 100,
                reference=reference,
                sar_flood=block.sar == FLOOD_SIGNAL,
            )
            confidence[cut] = to_percent(probability)
            support[cut] = case_codes(stored_water, block.sar)
            counts += transition_counts(pre[cut], post)
    pixel_area = abs(transform.a * transform.e)
    min_pixels = int(np.ceil(min_area_m2 / pixel_area))
    if out_unexcluded is not None:
        unexcluded = drop_small_patches(extent.copy(), FLOODED, DRY, min_pixels)
        _write_extent(out_unexcluded, unexcluded, crs, transform)
        del unexcluded
    extent[excluded] = EXTENT_NODATA
    drop_small_patches(extent, FLOODED, DRY, min_pixels)
    confidence[extent == EXTENT_NODATA] = CONFIDENCE_NODATA
    _write_extent(out_extent, extent, crs, transform)
    write_cog(
        out_confidence,
        confidence,
        crs=crs,
        transform=transform,
        nodata=CONFIDENCE_NODATA,
        descriptions=("flood_confidence",),
        units=("percent",),
        tags={
            "definition": "calibrated probability (percent) that the pixel is newly flooded"
            + _network_definition(network, join),
            "flooded_at": f"{flooded_min_confidence} and above",
            FLOODED_MIN_CONFIDENCE_TAG: str(flooded_min_confidence),
        },
    )
    support = support_codes(support, extent == FLOODED, extent == EXTENT_NODATA)
    if out_support is not None:
        write_support(out_support, support, crs=crs, transform=transform)
    polygons = flood_polygons(
        extent == FLOODED, pre, transform, crs.to_string(), confidence, support=support
    )
    write_polygons(polygons, out_polygons)
    with atomic_path(out_transitions) as tmp:
        transition_matrix(counts, pixel_area).to_csv(tmp, float_format="%.6f")
    return {
        "flooded_min_confidence": flooded_min_confidence,
        "flooded_pixels": int((extent == FLOODED).sum()),
        "excluded_pixels": int(excluded.sum()),
        "polygons": len(polygons),
        "flood_network": network is not None,
    }


def joined_probability(
    probability: np.ndarray,
    network_percent: np.ndarray,
    *,
    join: dict | None = None,
    optical_post: np.ndarray | None = None,
) -> np.ndarray:
    """The calibrated probability joined to the flood network's (percent, 255 nodata).

    With a fitted `join` (the calibration's network_join), the two weighed as it was
    fitted on real flood masks; without, the higher of the two: on new events each finds
    flood the other misses, and taking the higher was measured to map more of it
    (docs/realdata.md). Pixels the calibrated evidence cannot weigh stay unknown."""
    known = np.isfinite(probability) & (network_percent != NETWORK_NODATA)
    network = np.where(network_percent == NETWORK_NODATA, np.nan, network_percent / 100.0)
    if join is not None:
        if optical_post is None:
            raise ValueError("a fitted join needs where the post-event optical image was seen")
        return network_join_probability(join, probability, network, optical_post)
    return np.where(known, np.fmax(probability, network), probability)


def network_join(calibration: dict, network_src: rasterio.DatasetReader, path: Path) -> dict | None:
    """The calibration's fitted join, if it has one; an InputError when it was fitted for
    another flood network than the one that wrote `path`."""
    join = calibration.get(NETWORK_JOIN)
    if join is None:
        return None
    fitted_for = join.get("network_sha256")
    made_by = network_src.tags().get(NETWORK_SHA256_TAG)
    if fitted_for != made_by:
        raise InputError(
            f"{path}: written by the flood network with sha256 {made_by}, but the confidence "
            f"calibration's {NETWORK_JOIN} was fitted for {fitted_for}: refit it for this "
            "network (`metaflood fit-flood-join`), or use a calibration without a join"
        )
    return join


def _network_definition(network: Path | None, join: dict | None) -> str:
    if network is None:
        return ""
    return NETWORK_JOIN_DEFINITION if join is not None else NETWORK_DEFINITION


def excluded_pixels(codes: np.ndarray) -> np.ndarray:
    """Pixels the terrain exclusion removes (codes 1-4; nodata, where the DEM has no
    value, is not a reason to remove a flood)."""
    return np.isin(codes, EXCLUDING)


def _write_extent(path: Path, extent: np.ndarray, crs, transform) -> None:
    write_cog(
        path,
        extent,
        crs=crs,
        transform=transform,
        nodata=EXTENT_NODATA,
        descriptions=("flood_extent",),
        colormap=EXTENT_COLORMAP,
        tags={
            "values": "0 dry, 1 flooded, 2 permanent water, 255 nodata",
            "excluded": "terrain-excluded pixels are nodata: flood/exclusion.tif says why",
        },
    )
