"""Height above nearest drainage (HAND) from a DEM, with pyflwdir.

HAND (Nobre et al. 2011, 2016) is the height of a cell above the drainage cell its water
reaches first, following D8 flow directions downstream. Ground far above its drainage
cannot be flooded by that river, so flood services (GFM, OPERA DSWx-S1) exclude it.

The steps are pyflwdir's: `pyflwdir.from_dem` fills depressions (Wang & Liu 2006,
priority flood from the edge cells) and sets each cell's D8 direction towards the
neighbour the flood reached it from, i.e. its lowest neighbour on the filled surface;
a drainage network is every cell whose upstream area reaches a threshold (in km² or in
cells); `FlwdirRaster.hand` subtracts, for each cell, the elevation of the first
drainage cell downstream. A cell whose path ends at an outlet (the window's edge or a
pit) before any drainage cell is measured against that outlet, which pyflwdir treats
as a drainage cell. HAND is measured on the DEM as given, not the filled one, and a
cell in a filled depression lower than its drainage cell gets 0, not a negative
height: it lies below the river's level, so it can flood.

**Pad the DEM window beyond the AOI.** Water near the AOI's edge may drain to a river
outside it; cut at the AOI, the flow directions end at the window's edge and HAND is
measured against that edge instead of the river. `padded_window` gives the DEM window
with a margin (a few kilometres: more than the distance from any AOI cell to its
drainage line), and `PaddedWindow.crop` cuts the HAND computed on it back to the AOI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyflwdir
from rasterio.transform import Affine

from metaflood.core.errors import InputError
from metaflood.terrain.geometry import metres_per_degree

NODATA = -9999.0  # pyflwdir's nodata marker; NaN in and NaN out here


def height_above_nearest_drainage(
    dem: np.ndarray,
    transform: Affine,
    *,
    geographic: bool = False,
    drainage_km2: float | None = None,
    drainage_cells: int | None = None,
) -> np.ndarray:
    """HAND in the DEM's height unit (float32; NaN where the DEM is NaN).

    The drainage network is the cells draining at least `drainage_km2` (cell areas from
    the transform, in metres, or converted from degrees when `geographic`) or at least
    `drainage_cells` cells; give exactly one.
    """
    if (drainage_km2 is None) == (drainage_cells is None):
        raise ValueError("give exactly one of drainage_km2 and drainage_cells")
    dem = np.asarray(dem, dtype=np.float64)
    if dem.ndim != 2:
        raise ValueError(f"the DEM must be 2-D, got shape {dem.shape}")
    valid = np.isfinite(dem)
    if not valid.any():
        raise InputError("the DEM window holds no elevation (all nodata)")
    filled = np.where(valid, dem, NODATA)
    flw = pyflwdir.from_dem(filled, nodata=NODATA, transform=transform, latlon=geographic)
    if drainage_km2 is not None:
        drain = flw.upstream_area("km2") >= drainage_km2
    else:
        drain = flw.upstream_area("cell") >= drainage_cells
    hand = np.maximum(flw.hand(drain & valid, filled), 0.0)
    return np.where(valid, hand, np.nan).astype(np.float32)


@dataclass(frozen=True)
class PaddedWindow:
    """A DEM window padded beyond the AOI, in pixels of the DEM grid.

    `rows`/`cols` slice the DEM; `inner_rows`/`inner_cols` slice the AOI out of an array
    computed on that window. `complete` is False where the DEM ended before the pad did
    (HAND near that side may be measured against the DEM's edge: say so in the product).
    """

    rows: slice
    cols: slice
    inner_rows: slice
    inner_cols: slice
    complete: bool

    def crop(self, array: np.ndarray) -> np.ndarray:
        """The AOI part of an array computed on the padded window (last two axes)."""
        return array[..., self.inner_rows, self.inner_cols]

    def transform(self, dem_transform: Affine) -> Affine:
        """The padded window's transform, from the whole DEM's."""
        return dem_transform @ Affine.translation(self.cols.start, self.rows.start)


def padded_window(
    aoi_bounds: tuple[float, float, float, float],
    pad_m: float,
    transform: Affine,
    shape: tuple[int, int],
    *,
    geographic: bool = False,
) -> PaddedWindow:
    """The window of a DEM (`transform`, `shape`) covering the AOI plus `pad_m` metres.

    `aoi_bounds` are (left, bottom, right, top) in the DEM's CRS; in a geographic CRS the
    pad is converted to degrees at the AOI's most poleward latitude (so it is at least
    `pad_m` everywhere). The grid must be north-up (no rotation). Raises InputError when
    the DEM does not cover the AOI itself.
    """
    if transform.b != 0 or transform.d != 0 or transform.e >= 0:
        raise InputError("the DEM grid must be north-up (no rotation)")
    left, bottom, right, top = aoi_bounds
    if geographic:
        lon_m, lat_m = metres_per_degree(max(abs(bottom), abs(top)))
        pad_x, pad_y = pad_m / float(lon_m), pad_m / float(lat_m)
    else:
        pad_x = pad_y = pad_m
    inv = ~transform

    def pixel_span(x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int]:
        c0, r0 = inv @ (x0, y1)
        c1, r1 = inv @ (x1, y0)
        eps = 1e-9
        return (
            math.floor(r0 + eps),
            math.ceil(r1 - eps),
            math.floor(c0 + eps),
            math.ceil(c1 - eps),
        )

    ar0, ar1, ac0, ac1 = pixel_span(left, bottom, right, top)
    nrow, ncol = shape
    if ar0 < 0 or ac0 < 0 or ar1 > nrow or ac1 > ncol or ar1 <= ar0 or ac1 <= ac0:
        raise InputError(
            f"the DEM (rows 0..{nrow}, cols 0..{ncol}) does not cover the AOI "
            f"{aoi_bounds} (rows {ar0}..{ar1}, cols {ac0}..{ac1})"
        )
    pr0, pr1, pc0, pc1 = pixel_span(left - pad_x, bottom - pad_y, right + pad_x, top + pad_y)
    complete = pr0 >= 0 and pc0 >= 0 and pr1 <= nrow and pc1 <= ncol
    pr0, pc0, pr1, pc1 = max(pr0, 0), max(pc0, 0), min(pr1, nrow), min(pc1, ncol)
    return PaddedWindow(
        rows=slice(pr0, pr1),
        cols=slice(pc0, pc1),
        inner_rows=slice(ar0 - pr0, ar1 - pr0),
        inner_cols=slice(ac0 - pc0, ac1 - pc0),
        complete=complete,
    )
