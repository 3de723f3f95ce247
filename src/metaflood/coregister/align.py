"""Sub-pixel shift estimation between two images of the same place.

The overlap is cut into sub-windows (chips); each chip gives its own sub-pixel shift
by cross-correlation with DFT upsampling, and the chips vote. A shift is trusted only
when enough chips agree and the uncertainty of their combined estimate is small: a
shift that changes from one part of the image to another is noise, not
misregistration, and is not applied.

Features, by pair:
- SAR to SAR: band-passed log intensity (speckle is multiplicative, so its log is
  additive; the band-pass removes speckle at the finest scale and trends at the
  largest, which otherwise broaden the correlation peak).
- optical to SAR: the doubled-angle gradient orientation field, g**2 / |g| with
  g = dI/dx + i dI/dy. The two sensors disagree on brightness, and even on the sign of
  an edge (a dark road is bright in one, dark in the other), but agree on where edges
  are and along which direction they run; doubling the angle makes the field
  insensitive to the sign.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage, special
from skimage.registration import phase_cross_correlation

# Minimum share of valid pixels for a chip to vote.
MIN_VALID = 0.5
# Band-pass of the features, in estimation pixels.
FINE_SIGMA, COARSE_SIGMA = 0.7, 10.0


@dataclass(frozen=True)
class ChipShift:
    """One chip's vote: `shift` (rows, cols) in estimation pixels; `peak` in [0, 1]."""

    shift: tuple[float, float]
    peak: float


@dataclass(frozen=True)
class ShiftEstimate:
    """`shift` (rows, cols) in grid pixels moves the moving image onto the reference.

    `spread` is the robust spread (1.4826 x median absolute deviation) of the chips'
    shifts, `error` the standard error of the combined shift, both in grid pixels.
    """

    shift: tuple[float, float]
    reliable: bool
    spread: float
    method: str
    reason: str
    error: float = float("nan")
    chips: int = 0
    inliers: int = 0
    peak: float = float("nan")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Tolerance:
    """When a combined shift is trusted; lengths in grid pixels."""

    max_error: float
    max_spread: float
    min_peak: float = 0.05
    max_shift: float = 8.0
    min_chips: int = 3
    min_inlier_share: float = 0.6


def log_intensity(linear: np.ndarray) -> np.ndarray:
    """Speckle is multiplicative: its log is additive and correlates better."""
    return np.log(np.maximum(linear, 1e-6))


def band_pass(image: np.ndarray) -> np.ndarray:
    fine = ndimage.gaussian_filter(image, FINE_SIGMA, mode="nearest")
    return fine - ndimage.gaussian_filter(image, COARSE_SIGMA, mode="nearest")


def sar_feature(linear: np.ndarray) -> np.ndarray:
    """(bands, rows, cols) linear power -> band-passed sum of the bands' log intensity."""
    logs = log_intensity(np.nan_to_num(linear, nan=1.0)).sum(axis=0)
    return band_pass(logs)


def orientation_feature(image: np.ndarray, sigma: float = 0.7) -> np.ndarray:
    """Doubled-angle gradient field g**2 / |g|: edge position and direction, not sign."""
    smooth = band_pass(image)
    gy = ndimage.gaussian_filter(smooth, sigma, order=(1, 0), mode="nearest")
    gx = ndimage.gaussian_filter(smooth, sigma, order=(0, 1), mode="nearest")
    g = gx + 1j * gy
    return g * g / (np.abs(g) + 1e-12)


def _prepare(image: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Invalid pixels at the mean, borders tapered, so neither correlates by itself."""
    filled = np.where(valid, image - image[valid].mean(), 0)
    taper = np.outer(np.hanning(filled.shape[0]), np.hanning(filled.shape[1]))
    return filled * taper


def chip_shift(
    reference: np.ndarray, moving: np.ndarray, valid: np.ndarray, upsample: int = 50
) -> ChipShift | None:
    """Cross-correlation shift of one chip, or None when too little of it is valid."""
    if valid.mean() < MIN_VALID:
        return None
    a, b = _prepare(reference, valid), _prepare(moving, valid)
    energy = np.sqrt(np.sum(np.abs(a) ** 2) * np.sum(np.abs(b) ** 2))
    if energy == 0:
        return None
    with warnings.catch_warnings():
        # skimage warns when it cannot compute its RMS error (flat images); unused here.
        warnings.filterwarnings("ignore", "Could not determine RMS error", UserWarning)
        shift, _, _ = phase_cross_correlation(a, b, upsample_factor=upsample, normalization=None)
    correlation = np.fft.ifft2(np.fft.fft2(a) * np.conj(np.fft.fft2(b)))
    peak = float(np.abs(correlation).max() / energy)
    return ChipShift((float(shift[0]), float(shift[1])), peak)


def combine(
    votes: list[ChipShift | None], scale: float, tolerance: Tolerance, method: str
) -> ShiftEstimate:
    """Robust combination of the chips' shifts; `scale` converts chip pixels to grid pixels."""
    usable = [v for v in votes if v is not None]
    n = len(usable)
    if n < tolerance.min_chips:
        reason = f"too few usable sub-windows ({n} of {len(votes)}, need {tolerance.min_chips})"
        return ShiftEstimate((0.0, 0.0), False, float("nan"), method, reason, chips=n)
    shifts = np.array([v.shift for v in usable]) * scale
    peaks = np.array([v.peak for v in usable])
    median = np.median(shifts, axis=0)
    deviation = np.hypot(*(shifts - median).T)
    spread = float(1.4826 * np.median(deviation))
    inlier = deviation <= max(2.5 * spread, 0.1)
    k = int(inlier.sum())
    # Chips whose correlation peak is strong are the precise ones (a flooded or
    # changed chip correlates weakly), so the inliers are averaged with weight peak².
    weight = peaks[inlier] ** 2
    shift = np.average(shifts[inlier], axis=0, weights=weight)
    residual = np.sum((shifts[inlier] - shift) ** 2, axis=1)
    effective_n = weight.sum() ** 2 / np.sum(weight**2)
    scatter = np.sqrt(np.average(residual, weights=weight) * k / max(k - 1, 1))
    # Few chips estimate their own scatter poorly: widen by Student's t (95%) against
    # the normal value, so three agreeing chips are not trusted like thirty.
    widen = special.stdtrit(k - 1, 0.975) / special.ndtri(0.975) if k > 1 else float("nan")
    error = float(widen * scatter / np.sqrt(effective_n)) if k > 1 else float("nan")
    peak = float(np.median(peaks[inlier]))
    result = {
        "shift": (float(shift[0]), float(shift[1])),
        "spread": spread,
        "method": method,
        "error": error,
        "chips": n,
        "inliers": k,
        "peak": peak,
    }
    failures = []
    if k < max(tolerance.min_chips, tolerance.min_inlier_share * n):
        failures.append(f"only {k} of {n} sub-windows agree")
    if spread > tolerance.max_spread:
        failures.append(f"sub-windows disagree by {spread:.2f} px (> {tolerance.max_spread})")
    if not error <= tolerance.max_error:  # NaN (a single inlier) fails too
        failures.append(f"uncertainty {error:.2f} px (> {tolerance.max_error})")
    if peak < tolerance.min_peak:
        failures.append(f"weak correlation peak {peak:.3f} (< {tolerance.min_peak})")
    if np.hypot(*shift) > tolerance.max_shift:
        failures.append(f"shift beyond {tolerance.max_shift} px")
    if failures:
        return ShiftEstimate(reliable=False, reason="; ".join(failures), **result)
    reason = f"{k} of {n} sub-windows agree (uncertainty {error:.2f} px)"
    return ShiftEstimate(reliable=True, reason=reason, **result)


Window2D = tuple[slice, slice]
# Reads one chip pair: (reference window, moving window) -> (reference feature, moving
# feature, pixels valid in both).
ChipReader = Callable[[Window2D, Window2D], tuple[np.ndarray, np.ndarray, np.ndarray]]


def _offset(window: Window2D, by: np.ndarray, shape: tuple[int, int]) -> tuple[Window2D, Window2D]:
    """The window and its copy moved by `by` pixels, both cut to what lies inside `shape`."""
    ref, mov = [], []
    for axis, (part, d) in enumerate(zip(window, by, strict=True)):
        lo = max(part.start, -d, 0)
        hi = min(part.stop, shape[axis] - d, shape[axis])
        ref.append(slice(lo, hi))
        mov.append(slice(lo + d, hi + d))
    return (ref[0], ref[1]), (mov[0], mov[1])


def estimate_from_chips(
    read: ChipReader,
    shape: tuple[int, int],
    *,
    scale: float,
    tolerance: Tolerance,
    method: str,
    chip: int | None = None,
) -> ShiftEstimate:
    """Two passes over the chips: a first estimate, then each moving chip cut at the
    whole-pixel part of it, so the sub-pixel part is measured near zero shift. (The
    taper both chips share pulls a large shift towards zero by a few percent.)"""
    windows = chip_windows(shape, chip)
    first = [chip_shift(*read(w, w)) for w in windows]
    usable = [v.shift for v in first if v is not None]
    coarse = np.round(np.median(usable, axis=0)).astype(int) if usable else np.zeros(2, int)
    if not coarse.any():
        return combine(first, scale, tolerance, method)
    votes: list[ChipShift | None] = []
    for window in windows:
        ref, mov = _offset(window, -coarse, shape)
        vote = chip_shift(*read(ref, mov))
        if vote is not None:
            total = (vote.shift[0] + coarse[0], vote.shift[1] + coarse[1])
            vote = ChipShift((float(total[0]), float(total[1])), vote.peak)
        votes.append(vote)
    return combine(votes, scale, tolerance, method)


def chip_windows(
    shape: tuple[int, int], chip: int | None = None, max_per_side: int = 6
) -> list[tuple[slice, slice]]:
    """Evenly spread, non-overlapping square chips over an image: up to 6 x 6."""
    rows, cols = shape
    size = chip or int(np.clip(min(rows, cols) // 4, 64, 256))
    size = min(size, rows, cols)
    n_rows = int(np.clip(rows // size, 1, max_per_side))
    n_cols = int(np.clip(cols // size, 1, max_per_side))
    r0s = np.linspace(0, rows - size, n_rows).round().astype(int)
    c0s = np.linspace(0, cols - size, n_cols).round().astype(int)
    return [(slice(r, r + size), slice(c, c + size)) for r in r0s for c in c0s]
