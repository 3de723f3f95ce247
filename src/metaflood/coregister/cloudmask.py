"""Cloud and cloud-shadow masks for optical scenes that come without one.

Sentinel-2 L2A scenes carry a scene classification (SCL) that the acquisition stage turns
into the canonical mask (`optical.mask_from_scl`). For other sources this module offers
two offline detectors:

- `s2cloudless_mask`: Sentinel Hub's s2cloudless (a LightGBM pixel classifier that
  ships its model) for scenes with the ten Sentinel-2 bands it needs.
- `spectral_mask`: a spectral test on the canonical optical bands a scene has (green and
  NIR always; blue, red and SWIR 1.6 um where acquired). Which test runs depends on the
  bands, and `spectral_tests` says so (the co-registration report carries it):
  - cloud, visible form (blue, green, red): bright, white (flat across the visible) and
    hazy (blue high against red: the haze-optimised transform, HOT, of Zhang et al.
    2002, in the form Fmask uses). With swir16 as well, a cloud must also be bright at
    1.6 um and not snow: snow and ice are white in the visible but absorb at 1.6 um, so
    their MNDWI (green against SWIR) is high, a cloud's is not.
  - cloud, SWIR form (green, nir, swir16, without blue or red): bright in green, NIR and
    SWIR, with an MNDWI between that of bright soil or sand (brighter at 1.6 um than in
    green) and that of snow.
  - no cloud test with green and NIR alone: two bands cannot tell a cloud from bright
    ground, so nothing is flagged as cloud rather than guessed.
  - shadow (green, nir; every other band used where present): dark in the NIR and the
    visible (and bright in none), without the spectral shape of water (NDWI, and MNDWI
    with swir16: water is brighter in green than in NIR or SWIR; shadow keeps the
    ground's shape).
  Limits: bright white surfaces (white roofs, salt; snow without swir16) can pass as
  cloud, the thinnest cloud edges are missed, and shadow on dark ground (asphalt, wet
  soil) is indistinguishable from the ground itself.

`unusable` combines the acquired mask and the detector as the configuration asks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from metaflood.core.optical import CLEAR, CLOUD, MASK_NODATA, SHADOW

# How the stage decides which optical pixels are unusable (config coregister.cloud_mask):
# the acquired mask, the spectral test, or either of them.
MODES = ("provided", "spectral", "both")

# Spectral test thresholds (surface reflectance; indices are normalised differences).
CLOUD_MIN_VISIBLE = 0.30  # mean of blue, green, red (green alone in the SWIR form; NIR)
CLOUD_MAX_WHITENESS = 0.25  # mean absolute deviation of the visible bands / their mean
CLOUD_MIN_HOT = 0.0  # blue - 0.5 red - 0.08
CLOUD_MIN_SWIR = 0.20  # clouds stay bright at 1.6 um
SNOW_MIN_MNDWI = 0.40  # (green - swir16) / (green + swir16): snow and ice above
CLOUD_MIN_MNDWI = -0.10  # SWIR form: bright soil and sand are below (brighter at 1.6 um)
SHADOW_MAX_NIR = 0.12
SHADOW_MAX_VISIBLE = 0.09
SHADOW_MAX_NDWI = 0.0  # water is green > nir; shadow keeps the ground's shape
SHADOW_MAX_MNDWI = 0.0  # water is green > swir16, even where turbid water is bright in NIR

VISIBLE = ("blue", "green", "red")
SWIR_FORM = ("green", "nir", "swir16")
SHADOW_BANDS = ("green", "nir")

S2CLOUDLESS_BANDS = ("B01", "B02", "B04", "B05", "B08", "B8A", "B09", "B10", "B11", "B12")


def spectral_tests(bands: Sequence[str]) -> dict[str, str]:
    """Which spectral test flags cloud and which flags shadow with these bands, or why
    none does, in words (for the co-registration report)."""
    have = set(bands)
    if have >= set(VISIBLE):
        cloud = "bright, white and hazy in the visible (blue, green, red)"
        if "swir16" in have:
            cloud += f", bright at 1.6 um and not snow (swir16 >= {CLOUD_MIN_SWIR}, MNDWI < "
            cloud += f"{SNOW_MIN_MNDWI})"
    elif have >= set(SWIR_FORM):
        cloud = (
            f"bright in green, NIR and SWIR 1.6 um, MNDWI between {CLOUD_MIN_MNDWI} (bright "
            f"soil) and {SNOW_MIN_MNDWI} (snow) (green, nir, swir16; no blue or red)"
        )
    else:
        cloud = (
            "not run: needs blue, green and red, or green, nir and swir16 "
            f"(the scene has {', '.join(bands)}); no pixel is flagged as cloud"
        )
    if have >= set(SHADOW_BANDS):
        water = "NDWI and MNDWI" if "swir16" in have else "NDWI"
        shadow = f"dark in NIR and the visible, not water by {water} ({', '.join(bands)})"
    else:
        shadow = f"not run: needs green and nir (the scene has {', '.join(bands)})"
    return {"cloud": cloud, "shadow": shadow}


def spectral_mask(reflectance: np.ndarray, bands: Sequence[str]) -> np.ndarray:
    """Mask codes (clear / cloud / shadow / nodata) from reflectance whose bands are
    named `bands` (canonical names; the tests that run depend on them, see
    `spectral_tests`)."""
    if len(bands) != len(reflectance):
        raise ValueError(f"{len(reflectance)} reflectance bands named {list(bands)}")
    b = {
        name: np.asarray(band, dtype=np.float32)
        for name, band in zip(bands, reflectance, strict=True)
    }
    shape = np.shape(reflectance)[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        cloud = _cloud(b, shape)
        shadow = ~cloud & _shadow(b, shape)
    mask = np.full(shape, CLEAR, dtype=np.uint8)
    mask[shadow] = SHADOW
    mask[cloud] = CLOUD
    mask[~np.isfinite(reflectance).all(axis=0)] = MASK_NODATA
    return mask


def _normalised_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a - b) / (a + b)


def _cloud(b: dict[str, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    if all(name in b for name in VISIBLE):
        blue, green, red = (b[name] for name in VISIBLE)
        visible = (blue + green + red) / 3.0
        whiteness = (np.abs(blue - visible) + np.abs(green - visible) + np.abs(red - visible)) / (
            3.0 * visible
        )
        hot = blue - 0.5 * red - 0.08
        cloud = (
            (visible >= CLOUD_MIN_VISIBLE)
            & (whiteness <= CLOUD_MAX_WHITENESS)
            & (hot > CLOUD_MIN_HOT)
        )
        if "swir16" in b:
            mndwi = _normalised_difference(green, b["swir16"])
            cloud &= (b["swir16"] >= CLOUD_MIN_SWIR) & (mndwi < SNOW_MIN_MNDWI)
        return cloud
    if all(name in b for name in SWIR_FORM):
        green, nir, swir = (b[name] for name in SWIR_FORM)
        mndwi = _normalised_difference(green, swir)
        return (
            (green >= CLOUD_MIN_VISIBLE)
            & (nir >= CLOUD_MIN_VISIBLE)
            & (swir >= CLOUD_MIN_SWIR)
            & (mndwi >= CLOUD_MIN_MNDWI)
            & (mndwi < SNOW_MIN_MNDWI)
        )
    return np.zeros(shape, bool)


def _shadow(b: dict[str, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    if not all(name in b for name in SHADOW_BANDS):
        return np.zeros(shape, bool)
    green, nir = b["green"], b["nir"]
    present = [b[name] for name in VISIBLE if name in b]
    visible = sum(present[1:], present[0]) / float(len(present))
    shadow = (
        (nir <= SHADOW_MAX_NIR)
        & (visible <= SHADOW_MAX_VISIBLE)
        & (_normalised_difference(green, nir) <= SHADOW_MAX_NDWI)
    )
    if "swir16" in b:
        shadow &= _normalised_difference(green, b["swir16"]) <= SHADOW_MAX_MNDWI
    return shadow


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


def unusable(
    provided: np.ndarray, reflectance: np.ndarray, bands: Sequence[str], mode: str
) -> np.ndarray:
    """True where an optical pixel must not be used: nodata, cloud or shadow."""
    acquired = np.asarray(provided) != CLEAR
    if mode == "provided":
        return acquired
    detected = spectral_mask(reflectance, bands) != CLEAR
    if mode == "spectral":
        return detected | (np.asarray(provided) == MASK_NODATA)
    if mode == "both":
        return detected | acquired
    raise ValueError(f"unknown cloud mask mode {mode!r} (one of {', '.join(MODES)})")
