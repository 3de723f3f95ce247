import numpy as np
import pytest
from scipy import ndimage

from metaflood.coregister.align import (
    ChipShift,
    ShiftEstimate,
    Tolerance,
    Window2D,
    chip_windows,
    combine,
    estimate_from_chips,
    orientation_feature,
)


def textured(shape, seed=0):
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.normal(size=shape), 2.0)


@pytest.mark.parametrize("true_shift", [(0.4, -0.3), (1.7, 2.2), (-3.25, 0.5)])
def test_subpixel_shift_is_recovered(true_shift):
    reference = textured((256, 256))
    moving = ndimage.shift(reference, true_shift, order=3, mode="nearest")
    valid = np.ones_like(reference, dtype=bool)
    estimate = estimate_shift(reference, moving, valid, method="test")
    assert estimate.reliable, estimate.reason
    # The estimate moves `moving` back onto `reference`.
    assert np.allclose(estimate.shift, [-true_shift[0], -true_shift[1]], atol=0.05)
    assert estimate.chips == 16 and estimate.error < 0.05


def test_orientation_feature_ignores_contrast_reversal():
    """An edge dark-to-bright in one sensor and bright-to-dark in the other still matches."""
    reference = textured((256, 256), 3)
    moving = -ndimage.shift(reference, (1.3, -0.6), order=3, mode="nearest")
    valid = np.ones_like(reference, dtype=bool)
    estimate = estimate_shift(
        orientation_feature(reference), orientation_feature(moving), valid, method="t"
    )
    assert estimate.reliable
    assert np.allclose(estimate.shift, [-1.3, 0.6], atol=0.1)


def test_unrelated_images_are_flagged_unreliable():
    estimate = estimate_shift(
        textured((256, 256), 1), textured((256, 256), 2), np.ones((256, 256), bool), method="t"
    )
    assert not estimate.reliable


def test_mostly_invalid_overlap_is_flagged():
    reference = textured((256, 256))
    valid = np.zeros_like(reference, dtype=bool)
    valid[:20] = True
    estimate = estimate_shift(reference, reference, valid, method="t")
    assert not estimate.reliable and "too few usable sub-windows" in estimate.reason


def test_outlying_chips_are_outvoted_and_scale_converts_to_grid_pixels():
    votes = [ChipShift((2.0 + 0.02 * i, -1.0), 0.9) for i in range(8)]
    votes += [ChipShift((7.0, 3.0), 0.2), None]  # a flooded chip and a cloudy one
    estimate = combine(votes, 0.5, Tolerance(max_error=0.1, max_spread=0.5), "t")
    assert estimate.reliable and estimate.inliers == 8 and estimate.chips == 9
    assert estimate.shift == pytest.approx((1.035, -0.5), abs=0.01)


def test_disagreeing_chips_are_flagged_with_the_reason():
    rng = np.random.default_rng(0)
    votes = [ChipShift(tuple(rng.uniform(-5, 5, 2)), 0.5) for _ in range(9)]
    estimate = combine(votes, 1.0, Tolerance(max_error=0.1, max_spread=0.5), "t")
    assert not estimate.reliable
    assert "disagree" in estimate.reason or "uncertainty" in estimate.reason


def test_three_agreeing_chips_are_not_trusted_like_thirty():
    spread = [(0.1, 0.0), (-0.1, 0.05), (0.0, -0.1)]
    few = combine([ChipShift(s, 0.8) for s in spread], 1.0, Tolerance(0.1, 0.5), "t")
    many = combine([ChipShift(s, 0.8) for s in spread * 10], 1.0, Tolerance(0.1, 0.5), "t")
    assert few.error > 2 * many.error


def test_chips_tile_the_image_without_overlap():
    windows = chip_windows((1000, 700))
    assert len(windows) == 5 * 4  # 175 px chips
    covered = np.zeros((1000, 700), int)
    for rows, cols in windows:
        covered[rows, cols] += 1
    assert covered.max() == 1


# --- test helpers ------------------------------------------------------------


def estimate_shift(
    reference: np.ndarray,
    moving: np.ndarray,
    valid: np.ndarray | tuple[np.ndarray, np.ndarray],
    *,
    method: str,
    tolerance: Tolerance | None = None,
    chip: int | None = None,
    scale: float = 1.0,
) -> ShiftEstimate:
    """Estimate the shift of `moving` onto `reference`, two in-memory feature images.

    `valid` marks usable pixels: one mask for both, or (reference mask, moving mask).
    """
    valid_ref, valid_mov = valid if isinstance(valid, tuple) else (valid, valid)

    def read(ref: Window2D, mov: Window2D):
        return reference[ref], moving[mov], valid_ref[ref] & valid_mov[mov]

    return estimate_from_chips(
        read,
        reference.shape,
        scale=scale,
        tolerance=tolerance or Tolerance(max_error=0.1, max_spread=0.5),
        method=method,
        chip=chip,
    )
