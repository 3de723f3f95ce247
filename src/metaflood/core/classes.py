"""The EarthMiss land-cover legend, shared by the simulator, the model and the products."""

from __future__ import annotations

import numpy as np

CLASS_NAMES: tuple[str, ...] = (
    "background",
    "building",
    "road",
    "water",
    "barren",
    "forest",
    "agricultural",
    "playground",
)
NUM_CLASSES = len(CLASS_NAMES)

BACKGROUND, BUILDING, ROAD, WATER, BARREN, FOREST, AGRICULTURAL, PLAYGROUND = range(NUM_CLASSES)

# Label value ignored by the losses and metrics (255 on disk, -1 in the authors' code).
IGNORE_INDEX = 255
# Nodata value of every uint8 class raster written by the workflow.
CLASS_NODATA = 255
# The probability product stores a probability p as round(254 p); 255 is nodata.
PROBA_SCALE = 254
PROBA_NODATA = 255

# RGB colours used in colour tables and the report (EarthMiss / LoveDA palette).
CLASS_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 255, 255),
    (255, 0, 0),
    (255, 255, 0),
    (0, 0, 255),
    (159, 129, 183),
    (0, 255, 0),
    (255, 195, 128),
    (165, 0, 165),
)


def colormap() -> dict[int, tuple[int, int, int, int]]:
    """Colour table for class rasters, in the form rasterio's write_colormap takes."""
    table = {i: (*rgb, 255) for i, rgb in enumerate(CLASS_COLORS)}
    table[CLASS_NODATA] = (0, 0, 0, 0)
    return table


def stored_probability(stored: np.ndarray) -> np.ndarray:
    """Probabilities as the probability product stores them, as float32 (NaN nodata)."""
    probability = stored.astype(np.float32) / np.float32(PROBA_SCALE)
    probability[stored == PROBA_NODATA] = np.nan
    return probability
