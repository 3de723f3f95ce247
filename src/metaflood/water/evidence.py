"""Single-date water evidence from each modality, as margins from automatic thresholds.

A margin is the value minus its threshold, signed so that negative means water-like for
SAR (darker than the water level) and positive for the index (wetter than the split):
the fusion weighs how far a pixel is from the split, not only which side it is on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from metaflood.flood.sar_change import (
    SarChangeSettings,
    TiledThreshold,
    bimodal_tile_values,
    speckle_filtered_db,
    threshold_from_pool,
)

# Calm open water in C-band cross-polarisation lies near -25 dB; a VH tile whose darker
# mode is brighter than this is split between two kinds of land.
VH_WATER_MODE_MAX_DB = -20.0
VH_FALLBACK_DB = -22.0
# Open water has a positive normalised difference water index (McFeeters 1996, Xu 2006):
# the split is looked for only in tiles whose wetter mode is above 0, and 0 is the
# documented fallback.
INDEX_FALLBACK = 0.0
INDEX_MIN_SEPARATION = 0.1
SAR_INDEX_BANDS = ("VV", "VH")


@dataclass(frozen=True)
class WaterIndex:
    """Which normalised difference index the optical bands allow."""

    name: str  # "MNDWI" or "NDWI"
    bands: tuple[str, str]  # (wet-bright band, wet-dark band)


MNDWI = WaterIndex("MNDWI", ("green", "swir16"))
NDWI = WaterIndex("NDWI", ("green", "nir"))


def choose_index(optical_bands: tuple[str, ...] | list[str]) -> WaterIndex | None:
    """MNDWI where SWIR 1.6 um was acquired (it separates water from built-up and shadow
    better than NIR does), NDWI where only green and NIR were; None without green."""
    for index in (MNDWI, NDWI):
        if all(b in optical_bands for b in index.bands):
            return index
    return None


def normalised_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(a - b) / (a + b) in float32, NaN where the sum is not positive."""
    a, b = a.astype(np.float32), b.astype(np.float32)
    total = a + b
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (a - b) / total
    out[~(total > 0)] = np.nan
    return out


def index_settings(settings: SarChangeSettings) -> SarChangeSettings:
    """The bimodality test of the change stage, on index units rather than dB."""
    return replace(settings, min_separation_db=INDEX_MIN_SEPARATION)


@dataclass
class Pools:
    """Pooled values of the bimodal tiles of each quantity, gathered block by block."""

    values: dict[str, list[np.ndarray]]
    tiles: dict[str, int]

    @classmethod
    def empty(cls, names: tuple[str, ...]) -> Pools:
        return cls({n: [] for n in names}, dict.fromkeys(names, 0))

    def add(self, name: str, pooled: list[np.ndarray], total: int) -> None:
        self.values[name] += pooled
        self.tiles[name] += total


def filtered_sar(sar_db: Mapping[str, np.ndarray], window_px: int) -> dict[str, np.ndarray]:
    """Each polarisation boxcar-filtered in linear power (speckle), back in dB."""
    return {band: speckle_filtered_db(values, window_px) for band, values in sar_db.items()}


def pool_block(
    pools: Pools,
    sar: Mapping[str, np.ndarray],
    sar_ok: np.ndarray,
    index: np.ndarray | None,
    optical_ok: np.ndarray,
    settings: SarChangeSettings,
) -> None:
    """Add one block's bimodal tiles (a block on the tile lattice: its tiles are the
    grid's) to the pools."""
    water_mode = {"VV": settings.water_mode_max_db, "VH": VH_WATER_MODE_MAX_DB}
    for band, values in sar.items():
        usable = sar_ok & np.isfinite(values)
        pools.add(band, *bimodal_tile_values(values, usable, settings, water_mode[band]))
    if index is not None:
        usable = optical_ok & np.isfinite(index)
        # Wet is the high mode of the index: negate it so the water mode is the low one.
        pooled, total = bimodal_tile_values(-index, usable, index_settings(settings), 0.0)
        pools.add("index", [-v for v in pooled], total)


def thresholds(pools: Pools, settings: SarChangeSettings) -> dict[str, TiledThreshold]:
    fallbacks = {"VV": settings.fallback_water_db, "VH": VH_FALLBACK_DB, "index": INDEX_FALLBACK}
    whats = {
        "VV": "VV backscatter",
        "VH": "VH backscatter",
        "index": "water index",
    }
    return {
        name: threshold_from_pool(
            pools.values[name], pools.tiles[name], fallback=fallbacks[name], what=whats[name]
        )
        for name in pools.values
    }


def sar_margin(
    sar: Mapping[str, np.ndarray], found: Mapping[str, TiledThreshold], sar_ok: np.ndarray
) -> np.ndarray:
    """Mean over the polarisations of backscatter minus its water threshold (dB; negative:
    darker than the water level), NaN without SAR."""
    margins = [sar[band] - np.float32(found[band].value) for band in sar]
    margin = np.mean(margins, axis=0).astype(np.float32)
    margin[~sar_ok] = np.nan
    return margin


def index_margin(
    index: np.ndarray | None, found: Mapping[str, TiledThreshold], optical_ok: np.ndarray
) -> np.ndarray:
    """Index minus its split (positive: wetter), NaN where the optical image is unusable."""
    if index is None:
        return np.full(optical_ok.shape, np.nan, np.float32)
    margin = (index - np.float32(found["index"].value)).astype(np.float32)
    margin[~optical_ok] = np.nan
    return margin
