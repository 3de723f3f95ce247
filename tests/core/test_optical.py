import numpy as np

from metaflood.core.optical import CLEAR, CLOUD, MASK_NODATA, SHADOW, mask_from_scl


def test_scl_codes_map_to_the_mask():
    scl = np.array([0, 1, 3, 4, 5, 6, 8, 9, 10, 11])
    expected = [MASK_NODATA, MASK_NODATA, SHADOW, CLEAR, CLEAR, CLEAR, CLOUD, CLOUD, CLOUD, CLEAR]
    assert mask_from_scl(scl).tolist() == expected
