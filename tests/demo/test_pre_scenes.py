"""The new knobs leave the default scenes bit-identical; more pre-event SAR scenes are
the same ground under independent speckle, published as more items of one orbit."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib

import numpy as np
import pystac
import pytest

from metaflood.demo.catalog import SAR_COLLECTION, publish_demo_catalog
from metaflood.demo.events import SAR_REPEAT_DAYS, demo_dates
from metaflood.demo.simulate import SyntheticEvent, simulate_event
from metaflood.demo.spec import SceneSpec
from tests.demo.test_catalog import CRS, DATES, TRANSFORM

SMALL = SceneSpec(
    seed=11,
    height=120,
    width=150,
    resolution=5.0,
    post_offset_px=(0.4, -0.2),
    optical_offset_px=(0.1, 0.3),
)
# SMALL's arrays as the simulator rendered them before the look-alike and multi-scene
# knobs existed (the demo model is trained on these scenes). The classes and masks are
# held to their sha256 prefixes. The float arrays are held to their mean, their standard
# deviation and a mean weighted by fixed random weights, to a relative 1e-5: numpy picks
# its SIMD routines (exp, log, sin) by the CPU, so their last bits differ from one machine
# to the next (the float arrays' digests stored on 2026-12-05 stopped matching on another
# machine, the code unchanged), while switching the look-alike knob on moves every
# array's moments by 3e-4 or more.
STORED_DIGESTS = {
    "flood": "ae8cd09014a5bd80",
    "landcover_pre": "1ce2c0aaa8d2994e",
    "scl_pre": "440b241b12a7f7eb",
    "landcover_post": "3e74f58853093dbc",
    "scl_post": "2d724723e780dff7",
}
STORED_MOMENTS = {
    "elevation": (2.842916587, 4.705835139, 0.07043651195),
    "sar_pre": (0.1133881543, 0.3806258238, 0.0008082300683),
    "optical_pre": (0.1849741686, 0.1031914848, -0.0008910006821),
    "sar_post": (0.09502649962, 0.3187374987, 0.001725293111),
    "optical_post": (0.270994996, 0.1467953354, -0.0006898612264),
}


def _arrays(event: SyntheticEvent) -> dict[str, np.ndarray]:
    out = {"elevation": event.elevation, "flood": event.flood}
    for period in ("pre", "post"):
        out[f"landcover_{period}"] = event.landcover[period]
        out[f"sar_{period}"] = event.sar[period]
        out[f"optical_{period}"] = event.optical[period]
        out[f"scl_{period}"] = event.scl[period]
    return out


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


def _moments(a: np.ndarray) -> tuple[float, float, float]:
    values = np.asarray(a, dtype=np.float64).ravel()
    weights = np.random.default_rng(0).standard_normal(values.size)
    return float(values.mean()), float(values.std()), float(weights @ values) / values.size


def _assert_stored(event: SyntheticEvent) -> None:
    arrays = _arrays(event)
    assert set(arrays) == set(STORED_DIGESTS) | set(STORED_MOMENTS)
    assert {k: _digest(arrays[k]) for k in STORED_DIGESTS} == STORED_DIGESTS
    for key, moments in STORED_MOMENTS.items():
        assert _moments(arrays[key]) == pytest.approx(moments, rel=1e-5, abs=1e-9), key


@pytest.fixture(scope="module")
def three() -> SyntheticEvent:
    return simulate_event(dataclasses.replace(SMALL, pre_sar_scenes=3))


def test_defaults_render_the_stored_scenes():
    event = simulate_event(SMALL)
    _assert_stored(event)
    assert set(event.sar) == {"pre", "post"} and event.lookalikes is None


@pytest.mark.parametrize("layout", ["town", "random"])
def test_new_knobs_at_their_defaults_change_nothing(layout):
    spec = SceneSpec(seed=1003, height=96, width=128, resolution=8.0, layout=layout)
    plain = _arrays(simulate_event(spec))
    explicit = simulate_event(dataclasses.replace(spec, pre_sar_scenes=1, lookalikes=False))
    for key, array in _arrays(explicit).items():
        assert np.array_equal(array, plain[key]), key


def test_more_pre_scenes_leave_every_other_array_unchanged(three):
    _assert_stored(three)
    assert list(three.sar) == ["pre", "post", "pre-1", "pre-2"]
    assert three.pre_sar_keys == ["pre", "pre-1", "pre-2"]


def test_pre_scenes_share_the_ground_but_not_the_speckle(three):
    scenes = [three.sar[k] for k in three.pre_sar_keys]
    means = [float(s[0].mean()) for s in scenes]
    assert max(means) / min(means) == pytest.approx(1.0, abs=0.03)
    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert not np.array_equal(scenes[a], scenes[b])
        # Speckle is independent: the ratio of two looks at the same ground has no
        # structure left, so its correlation with the ground is small.
        ratio = scenes[a][0] / scenes[b][0]
        ground = scenes[0][0] + scenes[1][0] + scenes[2][0]
        assert abs(np.corrcoef(np.log(ratio).ravel(), np.log(ground).ravel())[0, 1]) < 0.1
        assert abs(np.corrcoef(scenes[a][0].ravel(), scenes[b][0].ravel())[0, 1]) < 0.9


def test_invalid_scene_counts_are_rejected():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="pre_sar_scenes"):
            dataclasses.replace(SMALL, pre_sar_scenes=bad)


def _event(**demo) -> dict:
    return {
        "aoi": {"bbox": [22.63, 32.758, 22.644, 32.77]},
        "grid": {"crs": "auto", "resolution": 2.0},
        "event_date": "2023-09-10",
        "pre": {"start": "2023-09-01", "end": "2023-09-09"},
        "post": {"start": "2023-09-11", "end": "2023-09-20"},
        "demo": demo,
    }


def test_one_pre_scene_keeps_the_dates():
    dates = demo_dates(_event(), "events.x")
    assert set(dates) == {("pre", "sar"), ("pre", "optical"), ("post", "sar"), ("post", "optical")}
    assert dates[("pre", "sar")].date() == dt.date(2023, 9, 5)
    assert dates[("pre", "optical")].date() == dt.date(2023, 9, 6)
    assert demo_dates(_event(pre_sar_scenes=1), "events.x") == dates


def test_several_pre_scenes_are_a_repeat_cycle_apart_ending_with_the_window():
    dates = demo_dates(_event(pre_sar_scenes=3), "events.x")
    assert dates[("pre", "sar")].date() == dt.date(2023, 9, 9)
    assert dates[("pre-1", "sar")] == dates[("pre", "sar")] - dt.timedelta(days=SAR_REPEAT_DAYS)
    assert dates[("pre-2", "sar")] == dates[("pre", "sar")] - dt.timedelta(days=2 * SAR_REPEAT_DAYS)
    assert dates[("pre", "optical")].date() == dt.date(2023, 9, 6)  # unchanged
    assert dates[("post", "sar")] == demo_dates(_event(), "events.x")[("post", "sar")]


def test_pre_scenes_are_published_as_items_of_one_orbit(three, tmp_path):
    dates = dict(DATES)
    dates[("pre-1", "sar")] = DATES[("pre", "sar")] - dt.timedelta(days=12)
    dates[("pre-2", "sar")] = DATES[("pre", "sar")] - dt.timedelta(days=24)
    path = publish_demo_catalog(three, tmp_path / "cat", crs=CRS, transform=TRANSFORM, dates=dates)
    items = [
        i
        for i in pystac.Catalog.from_file(str(path)).get_items(recursive=True)
        if i.collection_id == SAR_COLLECTION
    ]
    ids = sorted(i.id for i in items)
    assert ids == ["demo-s1-20230812", "demo-s1-20230824", "demo-s1-20230905", "demo-s1-20230917"]
    assert len({i.properties["sat:relative_orbit"] for i in items}) == 1
    assert len({i.properties["sat:orbit_state"] for i in items}) == 1
    checksums = {i.id: i.assets["vv"].extra_fields["file:checksum"] for i in items}
    assert len(set(checksums.values())) == 4


def test_a_pre_scene_without_a_date_is_an_error(three, tmp_path):
    with pytest.raises(ValueError, match="pre-1"):
        publish_demo_catalog(three, tmp_path / "cat", crs=CRS, transform=TRANSFORM, dates=DATES)
    assert list(tmp_path.iterdir()) == []
