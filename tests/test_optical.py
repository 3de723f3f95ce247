import numpy as np

from metaflood.core.optical import CLEAR, CLOUD, MASK_NODATA, SHADOW, clear_fraction, mask_from_scl


def test_scl_codes_map_to_the_mask():
    scl = np.array([0, 1, 3, 4, 5, 6, 8, 9, 10, 11])
    expected = [MASK_NODATA, MASK_NODATA, SHADOW, CLEAR, CLEAR, CLEAR, CLOUD, CLOUD, CLOUD, CLEAR]
    assert mask_from_scl(scl).tolist() == expected


def test_clear_fraction_ignores_nodata():
    mask = np.array([CLEAR, CLOUD, SHADOW, CLEAR, MASK_NODATA])
    assert clear_fraction(mask) == 0.5
    assert clear_fraction(np.full(3, MASK_NODATA)) == 0.0
