"""Speckle filters for SAR backscatter in linear power.

Speckle is multiplicative noise, so every filter here works on linear power (never on
dB) and needs the equivalent number of looks (ENL) of the image it filters: a multilooked
or averaged image has less speckle and must be smoothed less. Nodata (NaN) pixels stay
NaN and do not enter the local statistics of their neighbours.

- `lee`: Lee (1980/1981) local-statistics filter, square window.
- `refined_lee`: Lee (1981) refined filter: statistics over the one of eight
  edge-aligned half windows that lies on the pixel's side of the strongest local edge,
  so edges (river banks, building walls) are not blurred.
- `gamma_map`: Lopes et al. (1990) Gamma-MAP: maximum a posteriori estimate under a
  gamma-distributed scene and gamma speckle; homogeneous areas are averaged, strong
  scatterers kept.

The functions are pure (arrays in, arrays out), so the synthetic training data can pass
through exactly the same filter as the scenes the model is applied to.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import ndimage

SpeckleFilter = Literal["none", "lee", "refined_lee", "gamma_map"]
FILTERS: tuple[str, ...] = ("none", "lee", "refined_lee", "gamma_map")


def _local_stats(
    image: np.ndarray, valid: np.ndarray, kernel: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, variance and count of the valid pixels under `kernel` around each pixel."""
    x = np.where(valid, image, 0.0)
    w = valid.astype(np.float64)
    count = ndimage.correlate(w, kernel, mode="mirror")
    s1 = ndimage.correlate(x, kernel, mode="mirror")
    s2 = ndimage.correlate(x * x, kernel, mode="mirror")
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / count
        var = np.maximum(s2 / count - mean * mean, 0.0)
    return mean, var, count


def estimate_looks(linear: np.ndarray, size: int = 7) -> float:
    """Equivalent number of looks from the most homogeneous windows of the image.

    In a homogeneous area the coefficient of variation of speckled power is 1/sqrt(ENL);
    texture only adds to it, so the lowest prominent mode of the local CV² (the typical
    homogeneous value) is taken rather than its mean.
    """
    image = np.asarray(linear, dtype=np.float64)
    valid = np.isfinite(image) & (image > 0)
    if valid.sum() < 4 * size * size:
        raise ValueError("too few valid pixels to estimate the number of looks")
    kernel = np.ones((size, size))
    mean, var, count = _local_stats(image, valid, kernel)
    full = valid & (count >= size * size - 0.5) & (mean > 0)
    cv2 = var[full] / mean[full] ** 2
    cv2 = cv2[np.isfinite(cv2) & (cv2 > 0)]
    if cv2.size < 10:
        raise ValueError("too few homogeneous windows to estimate the number of looks")
    logs = np.log(cv2)
    hist, edges = np.histogram(logs, bins=100, range=tuple(np.percentile(logs, [1, 99])))
    smooth = ndimage.gaussian_filter1d(hist.astype(float), 2.0)
    # Texture only adds variation, so homogeneous areas make the lowest peak; a scene
    # that is mostly town or flood has a higher, heterogeneous one as well.
    inner = smooth[1:-1]
    peaks = np.flatnonzero((inner >= smooth[:-2]) & (inner > smooth[2:])) + 1
    prominent = [p for p in peaks if smooth[p] >= 0.3 * smooth.max()]
    peak = prominent[0] if prominent else int(np.argmax(smooth))
    mode_cv2 = float(np.exp(0.5 * (edges[peak] + edges[peak + 1])))
    # A window of n samples underestimates the variance by (n - 1) / n on average.
    n = size * size
    return float(1.0 / (mode_cv2 * n / (n - 1)))


def _lee_weight(mean, var, looks: float) -> np.ndarray:
    """Lee's weight of the pixel against the local mean: 0 in flat areas, 1 on edges."""
    cu2 = 1.0 / looks
    with np.errstate(invalid="ignore", divide="ignore"):
        signal_var = np.maximum((var - mean * mean * cu2) / (1.0 + cu2), 0.0)
        weight = np.where(var > 0, signal_var / var, 0.0)
    return np.clip(weight, 0.0, 1.0)


def lee(linear: np.ndarray, size: int = 5, looks: float | None = None) -> np.ndarray:
    image = np.asarray(linear, dtype=np.float64)
    valid = np.isfinite(image)
    looks = looks or estimate_looks(image)
    mean, var, _ = _local_stats(image, valid, np.ones((size, size)))
    out = mean + _lee_weight(mean, var, looks) * (image - mean)
    return np.where(valid, out, np.nan).astype(np.float32)


def _half_windows(size: int) -> list[np.ndarray]:
    """The eight edge-aligned windows of refined Lee, in the order of `_edge_sides`:
    for each edge direction (|, -, /, \\) the two sides of the edge, centre line included."""
    c = size // 2
    r, k = np.mgrid[0:size, 0:size] - c
    masks = [
        k <= 0,  # vertical edge: west side
        k >= 0,  # east side
        r <= 0,  # horizontal edge: north side
        r >= 0,  # south side
        r + k <= 0,  # "/" edge: north-west side
        r + k >= 0,  # south-east side
        r - k >= 0,  # "\" edge: south-west side
        r - k <= 0,  # north-east side
    ]
    return [m.astype(np.float64) for m in masks]


def _edge_sides(image: np.ndarray, valid: np.ndarray, size: int) -> np.ndarray:
    """Index (0..7) of the half window on the pixel's side of the strongest edge."""
    d = max(1, (size - 1) // 3)
    q = size - 2 * d
    sub_mean, _, _ = _local_stats(image, valid, np.ones((q, q)))
    sub_mean = np.nan_to_num(sub_mean)

    def m(dr: int, dc: int) -> np.ndarray:
        return ndimage.shift(sub_mean, (-dr * d, -dc * d), order=0, mode="nearest")

    nw, n, ne = m(-1, -1), m(-1, 0), m(-1, 1)
    w, centre, e = m(0, -1), sub_mean, m(0, 1)
    sw, s, se = m(1, -1), m(1, 0), m(1, 1)
    sides = [
        (nw + w + sw, ne + e + se),  # | : west vs east
        (nw + n + ne, sw + s + se),  # - : north vs south
        (nw + n + w, se + s + e),  # / : north-west vs south-east
        (sw + s + w, ne + n + e),  # \ : south-west vs north-east
    ]
    gradients = np.stack([np.abs(b - a) for a, b in sides])
    direction = np.argmax(gradients, axis=0)
    first_closer = np.stack([np.abs(centre - a / 3) <= np.abs(centre - b / 3) for a, b in sides])
    closer = np.take_along_axis(first_closer, direction[None], axis=0)[0]
    return 2 * direction + np.where(closer, 0, 1)


def refined_lee(linear: np.ndarray, size: int = 7, looks: float | None = None) -> np.ndarray:
    image = np.asarray(linear, dtype=np.float64)
    valid = np.isfinite(image)
    looks = looks or estimate_looks(image)
    choice = _edge_sides(image, valid, size)
    mean = np.empty_like(image)
    var = np.empty_like(image)
    for index, kernel in enumerate(_half_windows(size)):
        m, v, _ = _local_stats(image, valid, kernel)
        here = choice == index
        mean[here], var[here] = m[here], v[here]
    out = mean + _lee_weight(mean, var, looks) * (image - mean)
    return np.where(valid, out, np.nan).astype(np.float32)


def gamma_map(linear: np.ndarray, size: int = 5, looks: float | None = None) -> np.ndarray:
    image = np.asarray(linear, dtype=np.float64)
    valid = np.isfinite(image)
    looks = looks or estimate_looks(image)
    mean, var, _ = _local_stats(image, valid, np.ones((size, size)))
    cu2 = 1.0 / looks
    cmax2 = 2.0 * cu2
    with np.errstate(invalid="ignore", divide="ignore"):
        ci2 = var / (mean * mean)
        alpha = (1.0 + cu2) / np.maximum(ci2 - cu2, 1e-12)
        b = alpha - looks - 1.0
        d = mean * mean * b * b + 4.0 * alpha * looks * mean * image
        gmap = (b * mean + np.sqrt(np.maximum(d, 0.0))) / (2.0 * alpha)
    out = np.where(ci2 <= cu2, mean, np.where(ci2 >= cmax2, image, gmap))
    return np.where(valid, out, np.nan).astype(np.float32)


def speckle_filter(
    linear: np.ndarray, method: str, size: int = 5, looks: float | None = None
) -> np.ndarray:
    """Filter a (rows, cols) or (bands, rows, cols) linear-power array band by band.

    `looks` is the equivalent number of looks; None estimates it per band from the data.
    """
    if method not in FILTERS:
        raise ValueError(f"unknown speckle filter {method!r} (one of {', '.join(FILTERS)})")
    if size < 3 or size % 2 == 0:
        raise ValueError(f"speckle window must be an odd number >= 3, got {size}")
    array = np.asarray(linear, dtype=np.float32)
    if method == "none":
        return array
    func = {"lee": lee, "refined_lee": refined_lee, "gamma_map": gamma_map}[method]
    if array.ndim == 2:
        return func(array, size, looks)
    return np.stack([func(band, size, looks) for band in array])
