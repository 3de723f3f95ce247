"""Small, consistent inputs of the change stage (land cover, probabilities, SAR evidence),
written as the earlier stages write them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from rasterio.transform import from_origin

from metaflood.core.classes import BARREN, BUILDING, NUM_CLASSES, WATER, colormap
from metaflood.core.raster import write_cog
from metaflood.flood.sar_change import DARK_BEFORE, FLOOD_SIGNAL, NO_SIGNAL

TRANSFORM = from_origin(600000, 3630000, 2.0, 2.0)
CRS = "EPSG:32634"
SIZE = 64
FLOOD = (slice(16, 34), slice(16, 44))


def class_maps() -> tuple[np.ndarray, np.ndarray]:
    pre = np.full((SIZE, SIZE), BARREN, np.uint8)
    pre[:8] = WATER  # the sea
    pre[20:30, 20:40] = BUILDING
    pre[40:44, 40:44] = BUILDING
    post = pre.copy()
    post[FLOOD] = WATER
    post[40:44, 40:44] = BARREN  # a destroyed block
    return pre, post


def probabilities(classes: np.ndarray, sure: float = 0.9) -> np.ndarray:
    proba = np.full((NUM_CLASSES, *classes.shape), (1 - sure) / (NUM_CLASSES - 1))
    for c in range(NUM_CLASSES):
        proba[c][classes == c] = sure
    return np.rint(proba * 254).astype(np.uint8)


def water_percent(classes: np.ndarray, sure: int = 98) -> np.ndarray:
    """A water map (percent) as the water stage writes it where its lines agree, as over a
    clear flood (the demo's fused post-event map reads 92-100 over most of its flood):
    sure where the class is water."""
    return np.where(classes == WATER, sure, 100 - sure).astype(np.uint8)


def write_inputs(tmp_path: Path) -> dict[str, Path]:
    """Every input of `map_flood` and the report, for a flood block over buildings."""
    tmp_path = Path(tmp_path)

    def cog(name, data, nodata, **kwargs):
        return write_cog(
            tmp_path / name, data, crs=CRS, transform=TRANSFORM, nodata=nodata, **kwargs
        )

    pre, post = class_maps()
    paths = {
        "pre": cog("pre.tif", pre, 255, colormap=colormap()),
        "post": cog("post.tif", post, 255, colormap=colormap()),
        "pre_proba": cog("pre_proba.tif", probabilities(pre), 255),
        "post_proba": cog("post_proba.tif", probabilities(post), 255),
        "pre_water": cog("pre_water.tif", water_percent(pre), 255),
        "post_water": cog("post_water.tif", water_percent(post), 255),
    }
    route_post = np.ones((SIZE, SIZE), np.uint8)
    route_post[:, 32:] = 2  # SAR only on the right half (cloud)
    paths["route_pre"] = cog("route_pre.tif", np.ones((SIZE, SIZE), np.uint8), 255)
    paths["route_post"] = cog("route_post.tif", route_post, 255)
    evidence = np.full((SIZE, SIZE), NO_SIGNAL, np.uint8)
    evidence[:8] = DARK_BEFORE
    evidence[FLOOD] = FLOOD_SIGNAL
    ratio = np.zeros((3, SIZE, SIZE), np.float32)
    ratio[:2][:, FLOOD[0], FLOOD[1]] = -12.0
    ratio[2] = -10.0
    ratio[2][FLOOD] = -22.0
    ratio[2][:8] = -21.0
    paths["sar_evidence"] = cog("sar_change.tif", evidence, 255)
    paths["sar_ratio"] = cog(
        "sar_logratio.tif",
        ratio,
        np.nan,
        descriptions=("VV_log_ratio", "VH_log_ratio", "VV_post_filtered"),
    )
    paths["sar_summary"] = tmp_path / "sar_change.json"
    paths["sar_summary"].write_text(
        json.dumps(
            {
                "settings": {"window_px": 3, "tile_px": 64},
                "level_offset_db": {
                    "matched": True,
                    "offsets": {"VV": 0.2, "VH": 0.1},
                    "scales_differ": False,
                },
                "ratio_threshold_db": {"value": -6.0, "reason": "test"},
                "water_threshold_db": {"value": -15.0, "reason": "test"},
                "share_excluded_dark_before": 0.125,
                "share_flood_signal": 0.12,
                "share_with_sar_in_both_periods": 1.0,
            }
        )
    )
    for period, classes in (("pre", pre), ("post", post)):
        path = tmp_path / f"water_{period}.json"
        water = int((water_percent(classes) >= 50).sum())
        path.write_text(
            json.dumps(
                {
                    "index": "NDWI",
                    "fusion": "shipped (metaflood/water/fusion.json)",
                    "thresholds": {
                        "VV": {"value": -16.0, "fallback": False},
                        "index": {"value": 0.0, "fallback": True},
                    },
                    "pixels": {
                        "mapped": SIZE * SIZE,
                        "water": water,
                        "sar_water": water,
                        "index_water": water,
                    },
                }
            )
        )
        paths[f"{period}_water_summary"] = path
    rng = np.random.default_rng(0)
    stack = np.concatenate(
        [rng.normal(-12, 3, (2, SIZE, SIZE)), rng.uniform(0, 0.3, (4, SIZE, SIZE))]
    )
    paths["stack"] = cog(
        "stack.tif",
        stack.astype(np.float32),
        np.nan,
        descriptions=("VV", "VH", "blue", "green", "red", "nir"),
    )
    valid = np.full((SIZE, SIZE), 3, np.uint8)
    valid[:, 32:] = 1
    paths["valid"] = cog("valid.tif", valid, 255)
    return paths


def write_network(path: Path, percent: np.ndarray, tags: dict | None = None) -> Path:
    """A flood/network.tif on the inputs' grid (percent, 255 nodata)."""
    from metaflood.flood.change import NETWORK_NODATA

    return write_cog(path, percent, crs=CRS, transform=TRANSFORM, nodata=NETWORK_NODATA, tags=tags)
