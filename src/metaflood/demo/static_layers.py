"""The demo's static layers, derived from the simulated event: a DEM (the simulator's
elevation, coarser than the imagery as Copernicus GLO-30 is) and a reference-water
occurrence layer (JRC Global Surface Water-like) with the disagreements real reference
layers have with the day's scene.

The reference is derived from the PRE-event permanent water of the truth (the sea,
lakes and ponds), never from the flood; the flood truth is used only to keep the
phantom pond out of the flooded area, so that it never passes for flooded ground.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from metaflood.core import classes
from metaflood.demo.materials import Array
from metaflood.demo.noise import fractal, stream
from metaflood.demo.simulate import SyntheticEvent

DEM_FACTOR = 4  # DEM pixel = this many native pixels: a DEM is coarser than the imagery
OCCURRENCE_NODATA = 255
COAST_OFFSET_M = 6.0  # standard deviation of the reference coastline's offset
SHORE_BAND_M = 10.0  # width of the shore band where occurrence is below 100
PHANTOM_CLEARANCE_M = 60.0  # of the phantom pond from water, flood and buildings


def coarse_dem(elevation: Array, factor: int = DEM_FACTOR) -> Array:
    """Block mean over `factor` x `factor` native pixels (float32, NaN-aware); blocks
    at the right and bottom edges average the pixels they have, so the DEM covers the
    whole scene."""
    h, w = elevation.shape
    ph, pw = -h % factor, -w % factor
    padded = np.pad(elevation.astype(np.float64), ((0, ph), (0, pw)), constant_values=np.nan)
    blocks = padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor)
    valid = np.isfinite(blocks)
    total = np.where(valid, blocks, 0.0).sum(axis=(1, 3))
    count = valid.sum(axis=(1, 3))
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, total / count, np.nan).astype(np.float32)


@dataclass
class ReferenceWater:
    """JRC-like occurrence (uint8 percent 0..100, 255 nodata) on the native grid, and
    where it disagrees with the pre-event truth on purpose."""

    occurrence: Array
    missing: Array  # bool: a permanent water body of the truth absent from the reference
    phantom: Array  # bool: a pond of the reference, dry in the pre-event scene
    coast_offset_m: Array  # float32: how far inland (+) the reference coastline lies


def reference_water(event: SyntheticEvent) -> ReferenceWater:
    """Occurrence from the pre-event permanent water, with a coastline a few metres
    off, low occurrence along shores, the smallest enclosed water body missing (when
    the scene has one) and a phantom pond on dry ground."""
    spec = event.spec
    res = spec.resolution
    rng = stream(spec, "reference-water")
    permanent = event.flood == 2  # sea, lakes, ponds of the pre-event scene
    missing = _smallest_enclosed(permanent)
    water = permanent & ~missing
    wobble = fractal(rng, water.shape, res, 3.2, 400.0)
    offset = (max(COAST_OFFSET_M, 1.5 * res) * wobble).astype(np.float32)
    inside = ndimage.distance_transform_edt(water, sampling=res) if water.any() else 0.0
    outside = ndimage.distance_transform_edt(~water, sampling=res) if water.any() else np.inf
    signed = np.where(water, -inside, outside) - offset  # < 0: reference water
    band = max(SHORE_BAND_M, 2.0 * res)
    depth = np.clip(-signed / band, 0.0, 1.0)  # 0 at the reference shore, 1 a band in
    jitter = 4.0 * fractal(rng, water.shape, res, 2.0, 30.0)
    occ = np.where(signed < 0, 20.0 + 80.0 * depth + jitter, 0.0)
    occ = np.where((signed >= 0) & (signed < 0.5 * band), 8.0 + jitter, occ)  # wet sand
    occ = np.clip(np.rint(occ), 0, 100).astype(np.uint8)
    occ[(signed < -band)] = 100
    phantom = _phantom_pond(event, rng)
    occ[phantom] = np.uint8(rng.integers(60, 86))
    return ReferenceWater(occurrence=occ, missing=missing, phantom=phantom, coast_offset_m=offset)


def _smallest_enclosed(water: Array) -> Array:
    """The smallest water body that does not touch the scene edge (a lake or pond, not
    the sea), or nothing."""
    labels, n = ndimage.label(water)
    if n == 0:
        return np.zeros(water.shape, bool)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    enclosed = [k for k in range(1, n + 1) if k not in set(edge.tolist())]
    if not enclosed:
        return np.zeros(water.shape, bool)
    return labels == min(enclosed, key=lambda k: sizes[k])


def _phantom_pond(event: SyntheticEvent, rng: np.random.Generator) -> Array:
    """A disc on dry open ground, far from water, the flood and buildings: a pond the
    reference remembers from wetter years. Nothing where no such ground exists."""
    res = event.spec.resolution
    radius = max(12.0, 2.5 * res) * float(rng.uniform(1.0, 1.6))
    pre = event.landcover["pre"]
    avoid = (event.flood > 0) | np.isin(pre, (classes.BUILDING, classes.ROAD, classes.WATER))
    clear = ndimage.distance_transform_edt(~avoid, sampling=res) if avoid.any() else None
    rows = np.arange(pre.shape[0])[:, None]
    cols = np.arange(pre.shape[1])[None, :]
    edge = np.minimum(
        np.minimum(rows, pre.shape[0] - 1 - rows), np.minimum(cols, pre.shape[1] - 1 - cols)
    )
    ok = edge * res > radius
    if clear is not None:
        ok &= clear > PHANTOM_CLEARANCE_M + radius
    if event.lookalikes is not None:
        ok &= event.lookalikes == 0
    if not ok.any():
        return np.zeros(pre.shape, bool)
    candidates = np.flatnonzero(ok)
    r, c = np.unravel_index(candidates[rng.integers(candidates.size)], pre.shape)
    return (rows - r) ** 2 + (cols - c) ** 2 <= (radius / res) ** 2
