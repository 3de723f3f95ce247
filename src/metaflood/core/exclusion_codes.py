"""The exclusion product's codes, names and colours (flood/exclusion.tif), shared by the
terrain stage that writes it and the flood, statistics and report stages that read it.
`metaflood.terrain.exclusion` says what each code means and which wins."""

from __future__ import annotations

NOT_EXCLUDED, HAND, SLOPE, SHADOW, LAYOVER, NODATA = 0, 1, 2, 3, 4, 255

NAMES: dict[int, str] = {
    NOT_EXCLUDED: "not excluded",
    HAND: "height above nearest drainage",
    SLOPE: "steep slope",
    SHADOW: "radar shadow",
    LAYOVER: "radar layover",
    NODATA: "nodata",
}

# RGBA, as rasterio's write_colormap takes it
COLOURS: dict[int, tuple[int, int, int, int]] = {
    NOT_EXCLUDED: (0, 0, 0, 0),
    HAND: (166, 118, 29, 255),
    SLOPE: (231, 41, 138, 255),
    SHADOW: (60, 60, 60, 255),
    LAYOVER: (117, 112, 179, 255),
    NODATA: (255, 255, 255, 0),
}

EXCLUDING = (HAND, SLOPE, SHADOW, LAYOVER)
