"""Sub-pixel shift estimation between two images on the same grid.

Phase correlation with sub-pixel upsampling; the estimate is trusted only when the
four quadrants of the overlap agree with the whole, because a shift that changes from
one part of the image to another is noise, not misregistration.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np
from rasterio.transform import Affine
from scipy import ndimage
from skimage.registration import phase_cross_correlation

# Minimum share of valid pixels in a (sub-)window for an estimate to count.
MIN_VALID = 0.3


@dataclass(frozen=True)
class ShiftEstimate:
    """`shift` (rows, cols) in grid pixels moves the moving image onto the reference."""

    shift: tuple[float, float]
    reliable: bool
    spread: float
    method: str
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def _prepare(image: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Fill invalid pixels with the mean and taper the borders so edges do not correlate."""
    filled = np.where(valid, image, image[valid].mean()).astype(np.float64)
    filled -= filled.mean()
    taper = np.outer(np.hanning(filled.shape[0]), np.hanning(filled.shape[1]))
    return filled * taper


def _estimate(reference, moving, valid, upsample: int) -> np.ndarray | None:
    if valid.mean() < MIN_VALID:
        return None
    with warnings.catch_warnings():
        # skimage warns when it cannot compute its RMS error (flat images); we do not use it.
        warnings.filterwarnings("ignore", "Could not determine RMS error", UserWarning)
        shift, _, _ = phase_cross_correlation(
            _prepare(reference, valid),
            _prepare(moving, valid),
            upsample_factor=upsample,
            normalization="phase",
        )
    return np.asarray(shift, dtype=float)


def estimate_shift(
    reference: np.ndarray,
    moving: np.ndarray,
    valid: np.ndarray,
    *,
    method: str,
    upsample: int = 20,
    max_shift: float = 8.0,
    max_spread: float = 0.5,
) -> ShiftEstimate:
    """Estimate the shift of `moving` onto `reference`; `valid` marks pixels usable in both."""
    whole = _estimate(reference, moving, valid, upsample)
    if whole is None:
        return ShiftEstimate((0.0, 0.0), False, float("nan"), method, "too few valid pixels")
    rows, cols = reference.shape
    quadrants = []
    for r0, r1 in ((0, rows // 2), (rows // 2, rows)):
        for c0, c1 in ((0, cols // 2), (cols // 2, cols)):
            sub = _estimate(
                reference[r0:r1, c0:c1], moving[r0:r1, c0:c1], valid[r0:r1, c0:c1], upsample
            )
            if sub is not None:
                quadrants.append(sub)
    shift = (float(whole[0]), float(whole[1]))
    if len(quadrants) < 2:
        return ShiftEstimate(shift, False, float("nan"), method, "too few valid sub-windows")
    spread = float(max(np.hypot(*(q - whole)) for q in quadrants))
    if np.hypot(*whole) > max_shift:
        return ShiftEstimate(shift, False, spread, method, f"shift beyond {max_shift} px")
    if spread > max_spread:
        reason = f"sub-windows disagree by {spread:.2f} px (> {max_spread})"
        return ShiftEstimate(shift, False, spread, method, reason)
    return ShiftEstimate(shift, True, spread, method, f"{len(quadrants)} sub-windows agree")


def log_intensity(linear: np.ndarray) -> np.ndarray:
    """Speckle is multiplicative: its log is additive and correlates better."""
    return np.log(np.maximum(linear, 1e-6))


def gradient_magnitude(image: np.ndarray, sigma: float) -> np.ndarray:
    """Edges are what SAR and optical images share, not their brightness."""
    return ndimage.gaussian_gradient_magnitude(image.astype(np.float64), sigma)


def shifted_transform(transform: Affine, shift: tuple[float, float], grid_res: float) -> Affine:
    """Source transform that moves the content by `shift` grid pixels when reprojected."""
    d_row, d_col = shift
    return Affine.translation(d_col * grid_res, -d_row * grid_res) @ transform
