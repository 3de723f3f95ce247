"""What each flooded pixel rests on (flood/support.tif): the two lines of evidence the
confidence weighs, each read alone, so that an analyst sees where to check the map.

The lines are the water maps' new water (`core.water_map.new_water`) and the SAR
change's fall to water level (`flood.sar_change`). A flooded pixel rests on both, on one
of them, or on neither alone (their margins weighed together, and the flood network where
one is joined). Where only one line says flood, an analyst checks the map against the
images. The statistics count the product; the demo validation and `benchmark-real` score
the same cases from `support_lines`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from metaflood.core.blockwise import block_windows
from metaflood.core.raster import cog_writer, open_georeferenced, read_window
from metaflood.core.water_map import Raster, new_water
from metaflood.flood.change import EXTENT_NODATA, FLOODED
from metaflood.flood.sar_change import FLOOD_SIGNAL, NO_SIGNAL, same_grid

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
BLOCK_PX = 1024


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


def support_codes(extent: np.ndarray, water: list[np.ndarray], sar_evidence: np.ndarray):
    """flood/support.tif's codes: the case of each flooded pixel, NOT_FLOODED elsewhere,
    NODATA where the extent is nodata."""
    codes = np.where(extent == EXTENT_NODATA, NODATA, NOT_FLOODED).astype(np.uint8)
    flooded = extent == FLOODED
    for code, line in zip(CODES.values(), support_lines(water, sar_evidence), strict=True):
        codes[flooded & line] = code
    return codes


def write_support(
    extent: Path, water: list[Path], sar_evidence: Path, out: Path, *, threads: int = 1
) -> dict[str, int]:
    """Write flood/support.tif block by block (memory does not grow with the grid) from the
    extent, the water maps before and after and the SAR change evidence, which must share
    one grid (an InputError naming them); returns the flooded pixels of each case."""
    paths = [Path(extent), *map(Path, water), Path(sar_evidence)]
    sources = [open_georeferenced(p) for p in paths]
    try:
        same_grid([(p, src.profile) for p, src in zip(paths, sources, strict=True)])
        grid = sources[0]
        pixels = dict.fromkeys(SUPPORT, 0)
        with cog_writer(
            out,
            count=1,
            dtype="uint8",
            crs=grid.crs,
            transform=grid.transform,
            width=grid.width,
            height=grid.height,
            nodata=NODATA,
            descriptions=("flood_support",),
            colormap=COLOURS,
            tags={"values": ", ".join(f"{c} {n}" for c, n in _code_names().items())},
            threads=threads,
        ) as dst:
            for window in block_windows(grid.height, grid.width, BLOCK_PX):
                ext, pre, post, sar = (read_window(src, window, 1) for src in sources)
                codes = support_codes(ext, [pre, post], sar)
                dst.write(codes, 1, window=window)
                counts = np.bincount(codes.ravel(), minlength=NODATA + 1)
                for name, code in CODES.items():
                    pixels[name] += int(counts[code])
    finally:
        for src in sources:
            src.close()
    return pixels


def _code_names() -> dict[int, str]:
    return {NOT_FLOODED: "not flooded", **{c: n for n, c in CODES.items()}, NODATA: "nodata"}
