"""What each flooded pixel rests on (flood/support.tif): the two lines of evidence the
confidence weighs, each read alone, so that an analyst sees where to check the map.

The lines are the water maps' new water (`core.water_map.new_water`) and the SAR
change's fall to water level (`flood.sar_change`). A flooded pixel rests on both, on one
of them, or on neither alone (their margins weighed together, and the flood network where
one is joined). Where only one line says flood, an analyst checks the map against the
images. The change stage writes the product and each flood polygon's share resting on
both lines; the statistics and the demo validation count the product; `benchmark-real`,
which also needs the case of the flood the extent missed, scores the same cases from
`support_lines`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from metaflood.core.raster import write_cog
from metaflood.core.water_map import Raster, new_water
from metaflood.flood.sar_change import FLOOD_SIGNAL, NO_SIGNAL

# The cases, in the order of their codes (1 to 5) in flood/support.tif.
SUPPORT = {
    "water_maps_and_sar_change": "both lines: new water in the water maps, and the SAR fell "
    "to water level",
    "sar_change_only": "the SAR change alone (the water maps show no new water)",
    "water_maps_only_sar_blind": "the water maps alone, where the SAR cannot see a flood "
    "(water-dark before the event, or no SAR in a period)",
    "water_maps_only_sar_disagrees": "the water maps alone, where the SAR saw no fall to "
    "water level",
    # (and the flood network, where one is joined: the report says so)
    "neither_alone": "neither line alone: their margins weighed together",
}
NOT_FLOODED, NODATA = 0, 255
CODES = {name: code for code, name in enumerate(SUPPORT, start=1)}
# RGBA: agreement in blue, one line alone in warm colours, disagreement in red.
COLOURS: dict[int, tuple[int, int, int, int]] = {
    NOT_FLOODED: (0, 0, 0, 0),
    CODES["water_maps_and_sar_change"]: (33, 102, 172, 255),
    CODES["sar_change_only"]: (103, 169, 207, 255),
    CODES["water_maps_only_sar_blind"]: (253, 174, 97, 255),
    CODES["water_maps_only_sar_disagrees"]: (215, 48, 39, 255),
    CODES["neither_alone"]: (153, 112, 171, 255),
    NODATA: (0, 0, 0, 0),
}


def support_lines(water: list[Raster], sar_evidence: Raster) -> list[Raster]:
    """Masks of the SUPPORT cases, in its order, from the water maps before and after and
    the SAR change evidence (numpy arrays or lazy DataArrays): every pixel is in exactly one."""
    water_change = new_water(*water)
    sar_fell = sar_evidence == FLOOD_SIGNAL
    return [
        water_change & sar_fell,
        ~water_change & sar_fell,
        water_change & ~sar_fell & (sar_evidence != NO_SIGNAL),
        water_change & (sar_evidence == NO_SIGNAL),
        ~water_change & ~sar_fell,
    ]


def case_codes(water: list[np.ndarray], sar_evidence: np.ndarray) -> np.ndarray:
    """Every pixel's case (1 to 5, SUPPORT's order), flooded or not: the change stage
    keeps it where the extent says flooded (`support_codes`)."""
    codes = np.zeros(sar_evidence.shape, np.uint8)
    for code, line in zip(CODES.values(), support_lines(water, sar_evidence), strict=True):
        codes[line] = code
    return codes


def support_codes(cases: np.ndarray, flooded: np.ndarray, unmapped: np.ndarray) -> np.ndarray:
    """flood/support.tif's codes, in place: the case of each flooded pixel, NOT_FLOODED
    elsewhere, NODATA where the extent is nodata (`unmapped`)."""
    cases[~flooded] = NOT_FLOODED
    cases[unmapped] = NODATA
    return cases


def write_support(path: Path, codes: np.ndarray, *, crs: CRS, transform: Affine) -> Path:
    """flood/support.tif: the codes as a COG with their colour table and meanings."""
    names = {NOT_FLOODED: "not flooded", **{c: n for n, c in CODES.items()}, NODATA: "nodata"}
    return write_cog(
        path,
        codes,
        crs=crs,
        transform=transform,
        nodata=NODATA,
        descriptions=("flood_support",),
        colormap=COLOURS,
        tags={"values": ", ".join(f"{code} {name}" for code, name in names.items())},
    )
