"""Optical helpers: the cloud/shadow mask the availability map is built from."""

from __future__ import annotations

import numpy as np

# Canonical optical mask codes written by the acquisition stage.
CLEAR, CLOUD, SHADOW = 0, 1, 2
MASK_NODATA = 255

# Sentinel-2 L2A scene classification (SCL) codes.
SCL_NODATA, SCL_DEFECTIVE, SCL_SHADOW = 0, 1, 3
SCL_CLOUD_CODES = (8, 9, 10)  # medium and high cloud probability, thin cirrus


def mask_from_scl(scl: np.ndarray) -> np.ndarray:
    """Map SCL codes to clear / cloud / shadow / nodata; anything else is a clear surface."""
    scl = np.asarray(scl)
    mask = np.full(scl.shape, CLEAR, dtype=np.uint8)
    mask[np.isin(scl, SCL_CLOUD_CODES)] = CLOUD
    mask[scl == SCL_SHADOW] = SHADOW
    mask[np.isin(scl, (SCL_NODATA, SCL_DEFECTIVE))] = MASK_NODATA
    return mask
