"""How a water map (water/{period}.tif) is stored, shared by the water stage that writes
it and the flood, statistics and benchmark code that read it: the fused probability of
open water in percent (0 to 100), 255 where nothing could be mapped."""

from __future__ import annotations

from typing import TypeVar

NODATA = 255
# A pixel is water from this probability on: the map read as "where the water is".
WATER_FROM_PERCENT = 50

Raster = TypeVar("Raster")  # a numpy array or an xarray DataArray of the stored percent


def is_water(percent: Raster) -> Raster:
    """Where the map says water (False where it is nodata)."""
    return (percent != NODATA) & (percent >= WATER_FROM_PERCENT)


def new_water(pre: Raster, post: Raster) -> Raster:
    """Where the maps say water after the event and not before (False where either is
    nodata): the water maps' own line of flood evidence."""
    return is_water(post) & (pre != NODATA) & ~is_water(pre)
