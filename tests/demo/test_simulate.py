"""The synthetic event generator: determinism, geometry, physics of the rendered scenes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage
from skimage.registration import phase_cross_correlation

from metaflood.core import classes as C
from metaflood.core.sar import to_db
from metaflood.demo.materials import (
    SCL_CLOUD_HIGH,
    SCL_CLOUD_MEDIUM,
    SCL_CLOUD_SHADOW,
    SCL_VEGETATION,
    SCL_WATER,
)
from metaflood.demo.simulate import SyntheticEvent, simulate_event
from metaflood.demo.spec import SceneSpec

# 1.28 km x 1.28 km at 4 m: the demo town's extent at a quarter of its pixels.
TOWN = SceneSpec(
    seed=7,
    height=320,
    width=320,
    resolution=4.0,
    post_offset_px=(0.4, -0.6),
    optical_offset_px=(0.3, 0.2),
)


@pytest.fixture(scope="module")
def town() -> SyntheticEvent:
    return simulate_event(TOWN)


def _arrays(event: SyntheticEvent) -> dict[str, np.ndarray]:
    out = {"elevation": event.elevation, "flood": event.flood}
    for period in ("pre", "post"):
        out[f"landcover_{period}"] = event.landcover[period]
        out[f"sar_{period}"] = event.sar[period]
        if event.optical[period] is not None:
            out[f"optical_{period}"] = event.optical[period]
            out[f"scl_{period}"] = event.scl[period]
    return out


def _linear_mean_db(values: np.ndarray, mask: np.ndarray) -> float:
    return float(10.0 * np.log10(values[mask].mean()))


def _interior(mask: np.ndarray, px: int = 2) -> np.ndarray:
    """Away from class edges, where shifts and shadows blur the class signature."""
    return ndimage.binary_erosion(mask, iterations=px)


# --- determinism and independence of the random streams ------------------------------


def test_same_spec_gives_identical_arrays(town):
    again = simulate_event(TOWN)
    first, second = _arrays(town), _arrays(again)
    assert first.keys() == second.keys()
    for key in first:
        assert np.array_equal(first[key], second[key]), key
    assert again.cloud_cover == town.cloud_cover


def test_another_seed_gives_another_scene(town):
    other = simulate_event(dataclasses.replace(TOWN, seed=8))
    assert not np.array_equal(other.landcover["pre"], town.landcover["pre"])
    assert not np.array_equal(other.sar["pre"], town.sar["pre"])
    assert not np.array_equal(other.elevation, town.elevation)


def test_cloud_fraction_changes_only_the_post_optical_scene(town):
    other = simulate_event(dataclasses.replace(TOWN, cloud_fraction=0.3))
    for key in ("landcover", "sar"):
        for period in ("pre", "post"):
            assert np.array_equal(getattr(other, key)[period], getattr(town, key)[period])
    assert np.array_equal(other.flood, town.flood)
    assert np.array_equal(other.optical["pre"], town.optical["pre"])
    assert not np.array_equal(other.optical["post"], town.optical["post"])


def test_offsets_leave_truth_and_pre_sar_unchanged(town):
    aligned = simulate_event(
        dataclasses.replace(TOWN, post_offset_px=(0.0, 0.0), optical_offset_px=(0.0, 0.0))
    )
    assert np.array_equal(aligned.landcover["post"], town.landcover["post"])
    assert np.array_equal(aligned.flood, town.flood)
    assert np.array_equal(aligned.sar["pre"], town.sar["pre"])


# --- shapes, types, invalid specs -----------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_shapes_and_dtypes_on_non_square_random_scenes(seed):
    spec = SceneSpec(seed=seed, height=96, width=136, resolution=5.0, layout="random")
    ev = simulate_event(spec)
    shape = (96, 136)
    assert ev.elevation.shape == shape and ev.elevation.dtype == np.float32
    assert ev.flood.shape == shape and ev.flood.dtype == np.uint8
    assert set(np.unique(ev.flood)) <= {0, 1, 2}
    for period in ("pre", "post"):
        assert ev.landcover[period].shape == shape
        assert ev.landcover[period].dtype == np.uint8
        assert ev.landcover[period].max() < C.NUM_CLASSES
        assert ev.sar[period].shape == (2, *shape) and ev.sar[period].dtype == np.float32
        assert np.isfinite(ev.sar[period]).all() and (ev.sar[period] > 0).all()
        assert ev.optical[period].shape == (5, *shape)  # blue, green, red, nir, swir16
        assert ev.optical[period].dtype == np.float32
        assert ev.optical[period].min() >= 0 and ev.optical[period].max() <= 1
        assert ev.scl[period].shape == shape and ev.scl[period].dtype == np.uint8
        assert (ev.scl[period] != 0).all()


@pytest.mark.parametrize(
    "change",
    [
        {"cloud_fraction": 1.5},
        {"enl": 0},
        {"resolution": -1.0},
        {"layout": "city"},
        {"height": 4},
        {"seed": -1},
        {"post_offset_px": (1.0,)},
        {"optical_offset_px": (0.0, float("nan"))},
    ],
)
def test_invalid_specs_are_rejected(change):
    with pytest.raises(ValueError):
        dataclasses.replace(TOWN, **change)


def test_offsets_given_as_lists_become_tuples():
    spec = dataclasses.replace(TOWN, post_offset_px=[0.4, -0.6], optical_offset_px=[1, 0])
    assert spec.post_offset_px == (0.4, -0.6) and spec.optical_offset_px == (1.0, 0.0)
    assert hash(spec) == hash(dataclasses.replace(spec))


# --- layout and flood -----------------------------------------------------------------


def test_town_has_every_class(town):
    present = set(np.unique(town.landcover["pre"]))
    assert present == set(range(C.NUM_CLASSES))


def test_random_layouts_are_varied_and_balanced():
    counts = np.zeros(C.NUM_CLASSES)
    layouts = set()
    for seed in range(12):
        ev = simulate_event(
            SceneSpec(seed=seed, height=128, width=128, resolution=5.0, layout="random")
        )
        counts += np.bincount(ev.landcover["pre"].ravel(), minlength=C.NUM_CLASSES)
        layouts.add(ev.landcover["pre"].tobytes())
    share = counts / counts.sum()
    assert len(layouts) == 12
    assert (share > 0.005).all(), share
    assert share.max() < 0.6, share


def test_flood_is_new_water_and_permanent_water(town):
    pre_water = town.landcover["pre"] == C.WATER
    post_water = town.landcover["post"] == C.WATER
    assert np.array_equal(town.flood == 1, post_water & ~pre_water)
    assert np.array_equal(town.flood == 2, post_water & pre_water)
    assert not (pre_water & ~post_water).any()


@pytest.mark.parametrize(("size", "res"), [(320, 4.0), (160, 8.0)])
def test_town_flood_is_a_visible_share(size, res):
    ev = simulate_event(SceneSpec(seed=3, height=size, width=size, resolution=res))
    share = float((ev.flood == 1).mean())
    assert 0.05 <= share <= 0.15, share


def test_flood_follows_low_ground(town):
    """New water lies lower than dry land of the same rows (it fills the valley)."""
    land = town.landcover["pre"] != C.WATER
    wet, dry = (town.flood == 1) & land, (town.flood == 0) & land
    assert np.median(town.elevation[wet]) < np.median(town.elevation[dry])


def test_destroyed_buildings_lie_beside_the_flood(town):
    destroyed = (town.landcover["pre"] == C.BUILDING) & (town.landcover["post"] == C.BARREN)
    assert destroyed.sum() > 0
    dist = ndimage.distance_transform_edt(town.flood != 1) * TOWN.resolution
    assert dist[destroyed].max() < 80.0
    standing = (town.landcover["pre"] == C.BUILDING) & (town.landcover["post"] == C.BUILDING)
    assert np.median(dist[standing]) > np.median(dist[destroyed])


# --- SAR physics ----------------------------------------------------------------------


def test_sar_class_means_match_their_targets(town):
    pre, post = town.landcover["pre"], town.landcover["post"]
    vv_post, vh_post = town.sar["post"]
    vv_pre, vh_pre = town.sar["pre"]
    flood = _interior(town.flood == 1)
    sea = _interior(town.flood == 2)
    assert abs(_linear_mean_db(vv_post, flood) - (-22.0)) < 1.5
    assert abs(_linear_mean_db(vh_post, flood) - (-28.0)) < 1.5
    assert abs(_linear_mean_db(vv_pre, sea) - (-19.0)) < 1.5
    forest = _interior(pre == C.FOREST, 1)
    assert abs(_linear_mean_db(vv_pre, forest) - (-7.0)) < 1.5
    assert abs(_linear_mean_db(vh_pre, forest) - (-13.0)) < 1.5
    buildings = _interior(post == C.BUILDING, 1)
    assert 0.0 < _linear_mean_db(vv_post, buildings) < 7.0
    agri = _interior(pre == C.AGRICULTURAL)
    assert abs(_linear_mean_db(vv_pre, agri) - (-10.0)) < 2.0


def test_sar_cross_polarisation_is_weaker_and_higher_for_vegetation(town):
    pre = town.landcover["pre"]
    vv, vh = town.sar["pre"]
    ratios = {}
    for cls in (C.BUILDING, C.ROAD, C.WATER, C.BARREN, C.FOREST, C.AGRICULTURAL):
        mask = _interior(pre == cls, 1)
        ratios[cls] = _linear_mean_db(vh, mask) - _linear_mean_db(vv, mask)
        assert ratios[cls] < 0, cls
    assert ratios[C.FOREST] > ratios[C.BARREN] and ratios[C.FOREST] > ratios[C.BUILDING]


@pytest.mark.parametrize("enl", [4.5, 2.0])
def test_speckle_coefficient_of_variation_matches_looks(enl):
    ev = simulate_event(dataclasses.replace(TOWN, enl=enl, post_offset_px=(0.0, 0.0)))
    sea = _interior(ev.flood == 2, 6)
    vv = ev.sar["pre"][0].astype(np.float64)
    mean = ndimage.uniform_filter(vv, 7)
    var = ndimage.uniform_filter(vv * vv, 7) - mean * mean
    cv = np.sqrt(np.maximum(var, 0)) / mean
    assert abs(np.median(cv[sea]) - 1 / np.sqrt(enl)) < 0.1 / np.sqrt(enl)
    # Unit-mean speckle, independent between bands and periods.
    speckle = {}
    for period in ("pre", "post"):
        for band in (0, 1):
            power = ev.sar[period][band]
            speckle[(period, band)] = (power / ndimage.uniform_filter(power, 7))[sea]
    assert abs(np.mean(speckle[("pre", 0)]) - 1.0) < 0.05
    assert abs(np.corrcoef(speckle[("pre", 0)], speckle[("post", 0)])[0, 1]) < 0.05
    assert abs(np.corrcoef(speckle[("pre", 0)], speckle[("pre", 1)])[0, 1]) < 0.1


def test_post_offset_is_recoverable_from_sar(town):
    shift, _, _ = phase_cross_correlation(
        to_db(town.sar["pre"][0]), to_db(town.sar["post"][0]), upsample_factor=20
    )
    assert np.allclose(-shift, TOWN.post_offset_px, atol=0.2), shift


def test_post_offset_is_recoverable_from_optical():
    spec = dataclasses.replace(TOWN, cloud_fraction=0.0, post_offset_px=(-0.7, 1.3))
    ev = simulate_event(spec)
    shift, _, _ = phase_cross_correlation(
        ev.optical["pre"][3], ev.optical["post"][3], upsample_factor=20
    )
    assert np.allclose(-shift, spec.post_offset_px, atol=0.25), shift


def test_optical_offset_moves_optical_content_relative_to_sar():
    base = simulate_event(dataclasses.replace(TOWN, optical_offset_px=(0.0, 0.0)))
    moved = simulate_event(dataclasses.replace(TOWN, optical_offset_px=(2.0, -3.0)))
    assert np.array_equal(base.sar["pre"], moved.sar["pre"])
    inner = (slice(10, -10), slice(10, -10))
    shifted_scl = np.roll(base.scl["pre"], (2, -3), axis=(0, 1))
    assert np.array_equal(moved.scl["pre"][inner], shifted_scl[inner])
    shifted = np.roll(base.optical["pre"], (2, -3), axis=(1, 2))[:, inner[0], inner[1]]
    assert np.abs(moved.optical["pre"][:, inner[0], inner[1]] - shifted).max() < 0.05


# --- optical physics ------------------------------------------------------------------


def test_optical_spectra_are_physical(town):
    pre = town.optical["pre"]
    lc = town.landcover["pre"]
    sea = _interior(town.flood == 2)
    assert np.median(pre[3][sea]) < 0.04  # clear water absorbs NIR
    veg = _interior(lc == C.FOREST, 1)
    assert np.median(pre[3][veg]) > 2 * np.median(pre[2][veg])  # red edge
    clear = town.scl["post"] != SCL_CLOUD_HIGH
    clear &= town.scl["post"] != SCL_CLOUD_MEDIUM
    clear &= town.scl["post"] != SCL_CLOUD_SHADOW
    flood = _interior(town.flood == 1) & clear
    blue, green, red, nir, swir = (np.median(band[flood]) for band in town.optical["post"])
    assert red > green > blue  # turbid, sediment-laden
    assert nir < red and nir > np.median(pre[3][sea])
    assert swir < 0.05 and (green - swir) / (green + swir) > 0.4  # MNDWI: water


def test_swir16_is_dark_on_water_moderate_on_vegetation_bright_on_dry_ground(town):
    """SWIR 1.6 um (B11) per land cover, as Sentinel-2 sees it: water absorbs it, leaf
    water holds vegetation moderate, dry sand and gravel are bright, roofs in between;
    wet soil beside the flood is darker than before; clouds stay bright."""
    swir, lc = town.optical["pre"][4], town.landcover["pre"]
    sea = _interior(town.flood == 2)
    assert np.median(swir[sea]) < 0.03
    for cls, low, high in (
        (C.FOREST, 0.12, 0.25),
        (C.AGRICULTURAL, 0.15, 0.32),
        (C.BARREN, 0.28, 0.5),
        (C.BUILDING, 0.18, 0.34),
    ):
        assert low < np.median(swir[_interior(lc == cls, 1)]) < high, cls
    clear = ~np.isin(town.scl["post"], (SCL_CLOUD_HIGH, SCL_CLOUD_MEDIUM, SCL_CLOUD_SHADOW))
    wet = (town.flood == 0) & clear & (lc == C.BARREN)
    wet &= ndimage.binary_dilation(town.flood == 1, iterations=4)
    post = town.optical["post"]
    assert np.median(post[4][wet] / swir[wet]) < np.median(
        post[3][wet] / town.optical["pre"][3][wet]
    )
    assert post[4][town.scl["post"] == SCL_CLOUD_HIGH].mean() > 0.3


def test_pre_optical_is_cloud_free(town):
    assert town.cloud_cover["pre"] == 0.0
    codes = set(np.unique(town.scl["pre"]))
    assert not codes & {SCL_CLOUD_HIGH, SCL_CLOUD_MEDIUM, SCL_CLOUD_SHADOW}
    water = town.scl["pre"] == SCL_WATER
    assert (town.landcover["pre"][water] == C.WATER).mean() > 0.95
    veg = town.landcover["pre"][town.scl["pre"] == SCL_VEGETATION]
    assert np.isin(veg, (C.FOREST, C.AGRICULTURAL, C.PLAYGROUND)).mean() > 0.9


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.9])
def test_cloud_fraction_is_realised(fraction):
    ev = simulate_event(dataclasses.replace(TOWN, cloud_fraction=fraction))
    assert abs(ev.cloud_cover["post"] / 100.0 - fraction) <= 0.1
    scl = ev.scl["post"]
    cloudy = np.isin(scl, (SCL_CLOUD_HIGH, SCL_CLOUD_MEDIUM))
    assert ev.cloud_cover["post"] == pytest.approx(100.0 * cloudy.mean())
    opaque = scl == SCL_CLOUD_HIGH
    assert ev.optical["post"][0][opaque].mean() > 0.3  # white clouds
    assert ev.optical["post"][4][opaque].mean() > 0.3  # bright at 1.6 um too (not snow)
    if (scl == SCL_CLOUD_SHADOW).sum() > 100:
        shadow = scl == SCL_CLOUD_SHADOW
        # The same ground is darker under a cloud shadow than in the pre scene.
        assert np.median(ev.optical["post"][3][shadow] / ev.optical["pre"][3][shadow]) < 0.8


def test_no_clouds_when_fraction_is_zero():
    ev = simulate_event(dataclasses.replace(TOWN, cloud_fraction=0.0))
    assert ev.cloud_cover["post"] == 0.0
    assert not np.isin(ev.scl["post"], (SCL_CLOUD_HIGH, SCL_CLOUD_MEDIUM, SCL_CLOUD_SHADOW)).any()


def test_post_optical_can_be_missing(town):
    ev = simulate_event(dataclasses.replace(TOWN, post_optical=False))
    assert ev.optical["post"] is None and ev.scl["post"] is None
    assert "post" not in ev.cloud_cover
    assert np.array_equal(ev.optical["pre"], town.optical["pre"])
    assert np.array_equal(ev.sar["post"], town.sar["post"])
