"""Flood look-alikes: radar shadow and layover on steep mesas, dark smooth flats and a
crust dark only after the rain, all on high ground, none of it flood."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import rasterio
from scipy import ndimage

from metaflood.core import classes as C
from metaflood.core.sar import to_db
from metaflood.demo.catalog import TRUTH_DIR, publish_demo_catalog
from metaflood.demo.lookalikes import FLAT, LAYOVER, POND, SHADOW, SLOPE, WET_CRUST
from metaflood.demo.materials import SAR_SHADOW_DB
from metaflood.demo.sensor import radar_terrain
from metaflood.demo.simulate import SyntheticEvent, simulate_event
from tests.demo.test_catalog import CRS, DATES, TRANSFORM
from tests.demo.test_simulate import TOWN

HAND_MAX_M = 15.0  # the exclusion's default HAND limit: look-alikes must lie above it


@pytest.fixture(scope="module")
def plain() -> SyntheticEvent:
    return simulate_event(TOWN)


@pytest.fixture(scope="module")
def event() -> SyntheticEvent:
    return simulate_event(dataclasses.replace(TOWN, lookalikes=True))


@pytest.fixture(scope="module")
def hand(event) -> np.ndarray:
    """Elevation above the water level of the nearest flooded pixel (a HAND stand-in)."""
    _, (r, c) = ndimage.distance_transform_edt(event.flood != 1, return_indices=True)
    return event.elevation - event.elevation[r, c]


def test_every_kind_of_lookalike_is_there(event):
    counts = np.bincount(event.lookalikes.ravel(), minlength=7)
    for code in (SLOPE, FLAT, WET_CRUST, POND, SHADOW, LAYOVER):
        assert counts[code] > 10, code


def test_the_flood_and_the_town_stay_as_they_are(plain, event):
    assert np.array_equal(plain.flood == 1, event.flood == 1)
    for period in ("pre", "post"):
        same = plain.landcover[period] == event.landcover[period]
        assert same[event.lookalikes == 0].all()
        assert np.array_equal(
            plain.landcover[period] == C.BUILDING, event.landcover[period] == C.BUILDING
        )


def test_none_of_it_is_flood_and_it_lies_high(event, hand):
    code = event.lookalikes
    assert not (code[event.flood == 1] > 0).any()
    for kind in (FLAT, WET_CRUST, SHADOW, LAYOVER):
        assert np.median(hand[code == kind]) > HAND_MAX_M, kind
    # Well away from the flood, not just outside it.
    dist = ndimage.distance_transform_edt(event.flood != 1, sampling=TOWN.resolution)
    assert dist[code > 0].min() > 50.0


def test_shadow_lies_on_slopes_facing_away_from_the_radar(event):
    """The radar looks east: shadow falls on and beyond east-facing slopes (elevation
    falling eastwards), layover on west-facing faces steeper than the incidence."""
    dz_dx = np.gradient(event.elevation, TOWN.resolution, axis=1)
    shadow = event.lookalikes == SHADOW
    layover = event.lookalikes == LAYOVER
    assert np.mean(dz_dx[shadow] <= 0) > 0.9
    assert (dz_dx[layover] > 0).all()
    steep_back = dz_dx < -np.tan(np.radians(90 - 38.0)) * 1.05
    near_mesas = ndimage.binary_dilation(event.lookalikes > 0, iterations=2)
    assert shadow[steep_back & near_mesas].mean() > 0.9


def test_shadow_and_dark_flats_look_like_water_to_the_radar(event):
    vv = {p: to_db(event.sar[p][0]) for p in ("pre", "post")}
    code = event.lookalikes
    inner = {k: ndimage.binary_erosion(code == k) for k in (SHADOW, FLAT, WET_CRUST)}
    flood = ndimage.binary_erosion(event.flood == 1, iterations=2)
    water_db = float(np.median(vv["post"][flood & (event.landcover["post"] == C.WATER)]))
    assert np.median(vv["post"][inner[SHADOW]]) < SAR_SHADOW_DB[0] + 4.0
    for period in ("pre", "post"):
        assert np.median(vv[period][inner[FLAT]]) < water_db + 3.0, period
    # The crust is dark only after the rain: it reads as change, as a flood would.
    assert np.median(vv["pre"][inner[WET_CRUST]]) > water_db + 6.0
    assert np.median(vv["post"][inner[WET_CRUST]]) < water_db + 3.0


def test_lookalikes_sit_under_the_post_event_clouds(event):
    cloudy = np.isin(event.scl["post"], (8, 9))
    assert cloudy[event.lookalikes > 0].mean() > cloudy.mean() + 0.15


def test_radar_terrain_on_a_worked_ridge():
    """A 20 m ridge with 60 deg faces at 1 m pixels, radar looking east at 38 deg:
    the west face (60 > 38) lies over, the east face (60 > 52) is in shadow, and the
    shadow reaches 20 * tan(38) = 15.6 m beyond the crest's east edge."""
    x = np.arange(100, dtype=np.float32)
    z = np.clip(20.0 - np.abs(x - 50.0) * np.tan(np.radians(60.0)), 0.0, None)
    shadow, layover = radar_terrain(np.tile(z, (3, 1)), 1.0, 38.0)
    cols = np.flatnonzero(shadow[1])
    assert cols.min() == 51 and cols.max() == 50 + int(20.0 * np.tan(np.radians(38.0)))
    assert set(np.flatnonzero(layover[1])) <= set(range(38, 51))
    assert layover[1, 45]


def test_lookalike_truth_is_written_beside_the_catalog(event, tmp_path):
    path = publish_demo_catalog(event, tmp_path / "cat", crs=CRS, transform=TRANSFORM, dates=DATES)
    with rasterio.open(path.parent / TRUTH_DIR / "lookalikes.tif") as src:
        assert np.array_equal(src.read(1), event.lookalikes)
        assert "shadow" in src.tags()["values"]
