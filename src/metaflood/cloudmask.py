"""Cloud and cloud-shadow masks for optical scenes that come without one.

Sentinel-2 L2A scenes carry a scene classification (SCL) that the acquisition stage turns
into the canonical mask (`optical.mask_from_scl`). For other sources this module offers
two offline detectors:

- `s2cloudless_mask`: Sentinel Hub's s2cloudless (a LightGBM pixel classifier that
  ships its model) for scenes with the ten Sentinel-2 bands it needs.
- `spectral_mask`: a four-band test (blue, green, red, nir: the canonical optical
  bands) for anything else. Clouds are bright, white (flat across the visible) and
  hazy (blue high against red: the haze-optimised transform, HOT, of Zhang et al.
  2002, in the form Fmask uses); shadows are dark in every band, near-infrared
  included, without the spectral shape of water. Limits: without SWIR and thermal
  bands, bright white surfaces (white roofs, salt, snow) can pass as cloud, the
  thinnest cloud edges are missed, and shadow on dark ground (asphalt, wet soil) is
  indistinguishable from the ground itself.

`unusable` combines the acquired mask and the detector as the configuration asks.
"""

from __future__ import annotations

import numpy as np

from metaflood.optical import CLEAR, CLOUD, MASK_NODATA, SHADOW

# How the stage decides which optical pixels are unusable (config coregister.cloud_mask):
# the acquired mask, the four-band test, or either of them.
MODES = ("provided", "spectral", "both")

# Four-band test thresholds (surface reflectance).
CLOUD_MIN_VISIBLE = 0.30  # mean of blue, green, red
CLOUD_MAX_WHITENESS = 0.25  # mean absolute deviation of the visible bands / their mean
CLOUD_MIN_HOT = 0.0  # blue - 0.5 red - 0.08
SHADOW_MAX_NIR = 0.12
SHADOW_MAX_VISIBLE = 0.09
SHADOW_MAX_NDWI = 0.0  # water is green > nir; shadow keeps the ground's shape

S2CLOUDLESS_BANDS = ("B01", "B02", "B04", "B05", "B08", "B8A", "B09", "B10", "B11", "B12")


def spectral_mask(reflectance: np.ndarray) -> np.ndarray:
    """Mask codes (clear / cloud / shadow / nodata) from (blue, green, red, nir) reflectance."""
    blue, green, red, nir = (np.asarray(b, dtype=np.float32) for b in reflectance)
    with np.errstate(invalid="ignore", divide="ignore"):
        visible = (blue + green + red) / 3.0
        whiteness = (np.abs(blue - visible) + np.abs(green - visible) + np.abs(red - visible)) / (
            3.0 * visible
        )
        hot = blue - 0.5 * red - 0.08
        ndwi = (green - nir) / (green + nir)
        cloud = (
            (visible >= CLOUD_MIN_VISIBLE)
            & (whiteness <= CLOUD_MAX_WHITENESS)
            & (hot > CLOUD_MIN_HOT)
        )
        shadow = (
            ~cloud
            & (nir <= SHADOW_MAX_NIR)
            & (visible <= SHADOW_MAX_VISIBLE)
            & (ndwi <= SHADOW_MAX_NDWI)
        )
    mask = np.full(blue.shape, CLEAR, dtype=np.uint8)
    mask[shadow] = SHADOW
    mask[cloud] = CLOUD
    mask[~np.isfinite(reflectance).all(axis=0)] = MASK_NODATA
    return mask


def s2cloudless_mask(
    bands: dict[str, np.ndarray],
    *,
    threshold: float = 0.4,
    average_over: int = 4,
    dilation_size: int = 2,
) -> np.ndarray:
    """Mask codes (clear / cloud / nodata) from Sentinel-2 top-of-atmosphere reflectance.

    `bands` maps Sentinel-2 band names to 2-D reflectance arrays (digital numbers / 10000)
    on one grid; s2cloudless needs the ten in S2CLOUDLESS_BANDS. It detects clouds only,
    not their shadows.
    """
    missing = [b for b in S2CLOUDLESS_BANDS if b not in bands]
    if missing:
        raise ValueError(
            f"s2cloudless needs the Sentinel-2 bands {', '.join(S2CLOUDLESS_BANDS)}; "
            f"missing {', '.join(missing)}"
        )
    from s2cloudless import S2PixelCloudDetector

    stack = np.stack([np.asarray(bands[b], dtype=np.float32) for b in S2CLOUDLESS_BANDS], -1)
    nodata = ~np.isfinite(stack).all(axis=-1)
    detector = S2PixelCloudDetector(
        threshold=threshold,
        average_over=average_over,
        dilation_size=dilation_size,
        all_bands=False,
    )
    cloudy = detector.get_cloud_masks(np.nan_to_num(stack, nan=0.0)[np.newaxis])[0]
    mask = np.where(cloudy.astype(bool), CLOUD, CLEAR).astype(np.uint8)
    mask[nodata] = MASK_NODATA
    return mask


def unusable(provided: np.ndarray, reflectance: np.ndarray, mode: str) -> np.ndarray:
    """True where an optical pixel must not be used: nodata, cloud or shadow."""
    acquired = np.asarray(provided) != CLEAR
    if mode == "provided":
        return acquired
    detected = spectral_mask(reflectance) != CLEAR
    if mode == "spectral":
        return detected | (np.asarray(provided) == MASK_NODATA)
    if mode == "both":
        return detected | acquired
    raise ValueError(f"unknown cloud mask mode {mode!r} (one of {', '.join(MODES)})")


def precision_recall(predicted: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Of the pixels flagged, the share truly flagged; of the true ones, the share found."""
    predicted, truth = np.asarray(predicted, bool), np.asarray(truth, bool)
    hits = float((predicted & truth).sum())
    precision = hits / max(float(predicted.sum()), 1.0)
    recall = hits / max(float(truth.sum()), 1.0)
    return precision, recall
