"""The minimum mapping unit: patches of a code smaller than it are recoded."""

from __future__ import annotations

import numpy as np
from skimage.morphology import remove_small_objects


def drop_small_patches(
    codes: np.ndarray, code: int, replacement: int, min_pixels: int
) -> np.ndarray:
    """Patches of `code` (8-connected) smaller than `min_pixels` become `replacement`, in
    place; returns `codes`."""
    if min_pixels > 1:
        patch = codes == code
        kept = remove_small_objects(patch, max_size=min_pixels - 1, connectivity=2)
        codes[patch & ~kept] = replacement
    return codes
