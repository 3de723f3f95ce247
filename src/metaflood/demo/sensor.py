"""What both sensors share: the injected shift and point spread function, cast shadows."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from metaflood.demo.materials import Array


def sensor_view(fields: Array, offset: tuple[float, float], psf_px: float) -> Array:
    """What a sensor sees of the noise-free ground: moved by the period's offset and
    blurred by its point spread function. Applying the same PSF to every scene keeps
    pre and post alike; without it the unshifted scene would be sharper than a shifted
    one (interpolation smooths), which biases sub-pixel registration towards integers."""
    moved = _shift(fields, offset)
    out = np.empty_like(moved)
    for band, field in enumerate(moved):
        ndimage.gaussian_filter(field, psf_px, output=out[band], mode="nearest", truncate=3.0)
    return out


def _shift(fields: Array, offset: tuple[float, float]) -> Array:
    """Move the content by (row, col) native pixels; linear, so no ringing at edges."""
    if offset[0] == 0 and offset[1] == 0:
        return fields
    out = np.empty_like(fields)
    for band, field in enumerate(fields):  # 2-D calls: twice as fast as one 3-D call
        ndimage.shift(field, offset, output=out[band], order=1, mode="nearest", prefilter=False)
    return out


def cast_shadow(height: Array, ratio: float, direction: tuple[float, float], res: float) -> Array:
    """Ground (height 0) hidden behind a building along `direction` (row, col unit
    vector), out to height * ratio metres. Loops over steps, not pixels."""
    shadow = np.zeros(height.shape, bool)
    max_len = float(height.max(initial=0.0)) * ratio
    for step in range(1, int(max_len / res) + 1):
        casts = height * ratio >= step * res
        off = (round(step * direction[0]), round(step * direction[1]))
        shadow |= shift_int(casts, off)
    return shadow & (height == 0)


def shift_int(a: Array, off: tuple[int, int]) -> Array:
    """Integer shift with zero fill: out[r + dr, c + dc] = a[r, c]."""
    dr, dc = off
    out = np.zeros_like(a)
    h, w = a.shape
    if abs(dr) >= h or abs(dc) >= w:
        return out
    out[max(dr, 0) : h + min(dr, 0), max(dc, 0) : w + min(dc, 0)] = a[
        max(-dr, 0) : h + min(-dr, 0), max(-dc, 0) : w + min(-dc, 0)
    ]
    return out


def radar_terrain(elevation: Array, res: float, incidence_deg: float) -> tuple[Array, Array]:
    """Radar shadow and layover of a radar looking east (along +col) at `incidence_deg`
    from the vertical. Shadow: ground below the ray grazing the terrain to its west (a
    ray drops 1 / tan(incidence) metres per metre east), which includes back slopes
    steeper than 90 deg - incidence; layover: faces tilted towards the radar by more
    than the incidence angle. Loops over columns, not pixels."""
    drop = np.float32(res / np.tan(np.radians(incidence_deg)))
    z = elevation.astype(np.float32, copy=False)
    shadow = np.zeros(z.shape, bool)
    ray = z[:, 0].copy()
    for col in range(1, z.shape[1]):
        ray = np.maximum(ray - drop, z[:, col])
        shadow[:, col] = ray > z[:, col] + np.float32(1e-3)
    dz_dx = np.gradient(z, res, axis=1)
    layover = dz_dx > np.tan(np.radians(incidence_deg))
    return shadow, layover
