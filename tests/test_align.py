import numpy as np
import pytest
from rasterio.transform import from_origin
from scipy import ndimage

from metaflood.align import estimate_shift, shifted_transform


def textured(shape, seed=0):
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.normal(size=shape), 2.0)


@pytest.mark.parametrize("true_shift", [(0.4, -0.3), (1.7, 2.2), (-3.25, 0.5)])
def test_subpixel_shift_is_recovered(true_shift):
    reference = textured((160, 160))
    moving = ndimage.shift(reference, true_shift, order=3, mode="nearest")
    valid = np.ones_like(reference, dtype=bool)
    estimate = estimate_shift(reference, moving, valid, method="test")
    assert estimate.reliable
    # The estimate moves `moving` back onto `reference`.
    assert np.allclose(estimate.shift, [-true_shift[0], -true_shift[1]], atol=0.1)


def test_unrelated_images_are_flagged_unreliable():
    estimate = estimate_shift(
        textured((160, 160), 1), textured((160, 160), 2), np.ones((160, 160), bool), method="t"
    )
    assert not estimate.reliable


def test_mostly_invalid_overlap_is_flagged():
    reference = textured((100, 100))
    valid = np.zeros_like(reference, dtype=bool)
    valid[:10] = True
    estimate = estimate_shift(reference, reference, valid, method="t")
    assert not estimate.reliable and "too few valid pixels" in estimate.reason


def test_shifted_transform_moves_content_the_estimated_way():
    # A source pixel (10, 20) of a 1 m raster; after a shift of (+2, -3) grid pixels at
    # 2 m the same pixel must land 4 m further south and 6 m further west.
    transform = from_origin(1000.0, 5000.0, 1.0, 1.0)
    moved = shifted_transform(transform, (2.0, -3.0), grid_res=2.0)
    x0, y0 = transform * (20, 10)
    x1, y1 = moved * (20, 10)
    assert (x1 - x0, y1 - y0) == pytest.approx((-6.0, -4.0))
