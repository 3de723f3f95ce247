"""Scene choice: coverage, mosaics of one pass, least cloud over the AOI, SAR orbits."""

import datetime as dt

from shapely.geometry import box, mapping

from metaflood.acquire.scene import SceneItem
from metaflood.acquire.select import (
    candidates,
    choose_optical,
    choose_sar_pair,
    coverage,
)

AOI = box(22.63, 32.76, 22.64, 32.77)
EVENT = dt.date(2023, 9, 10)
WIDE = box(22.6, 32.7, 22.7, 32.8)


def item(name, footprint, day, month=9, **properties):
    when = dt.datetime(2023, month, day, 9, tzinfo=dt.UTC)
    return SceneItem(name, when.isoformat(), mapping(footprint), {}, properties)


def sar(name, day, orbit, state="ascending", footprint=WIDE):
    return item(name, footprint, day, **{"sat:relative_orbit": orbit, "sat:orbit_state": state})


def test_coverage_is_the_share_of_the_aoi_under_the_union():
    assert coverage([mapping(box(22.62, 32.75, 22.65, 32.78))], AOI) == 1.0
    west, east = box(22.62, 32.75, 22.635, 32.78), box(22.635, 32.75, 22.65, 32.78)
    assert abs(coverage([mapping(west)], AOI) - 0.5) < 1e-9
    assert abs(coverage([mapping(west), mapping(east)], AOI) - 1.0) < 1e-9


def test_two_halves_of_one_pass_are_mosaicked():
    west = item("west", box(22.62, 32.75, 22.636, 32.78), 5, platform="sentinel-2a")
    east = item("east", box(22.634, 32.75, 22.65, 32.78), 5, platform="sentinel-2a")
    other_day = item("later", box(22.634, 32.75, 22.65, 32.78), 7, platform="sentinel-2a")
    found = candidates([west, east, other_day], AOI)
    best = found[0]
    assert {i.id for i in best.items} == {"west", "east"} and best.coverage > 0.999
    assert best.describe().startswith("mosaic of")
    assert [c.items[0].id for c in found[1:]] == ["later"]


def test_an_item_adding_nothing_is_left_out_of_the_mosaic():
    full = item("full", WIDE, 5, platform="sentinel-2a")
    inside = item("inside", box(22.631, 32.761, 22.639, 32.769), 5, platform="sentinel-2a")
    (only,) = candidates([full, inside], AOI)
    assert [i.id for i in only.items] == ["full"]


def test_optical_prefers_least_cloud_over_the_aoi_then_the_nearest_day():
    items = [
        item("tile-clear", WIDE, 3, **{"eo:cloud_cover": 5}),
        item("tile-cloudy", WIDE, 9, **{"eo:cloud_cover": 70}),
        item("partial", box(22.639, 32.7, 22.7, 32.8), 8, **{"eo:cloud_cover": 0}),
    ]
    # Over the AOI itself the cloudy tile is clear and the clear tile is cloudy.
    over_aoi = {"tile-clear": 0.4, "tile-cloudy": 0.02}
    choice = choose_optical(
        candidates(items, AOI), 3, EVENT, 0.95, lambda c: over_aoi[c.items[0].id]
    )
    assert choice.candidate.items[0].id == "tile-cloudy"
    assert "mask band over the AOI" in choice.reason and "2 of 3" in choice.reason
    # Equal cloud (to 5%): the day nearest the target wins.
    near = {"tile-clear": 0.01, "tile-cloudy": 0.02}
    choice = choose_optical(candidates(items, AOI), 3, EVENT, 0.95, lambda c: near[c.items[0].id])
    assert choice.candidate.items[0].id == "tile-cloudy"


def test_optical_without_a_mask_uses_the_tile_cloud_cover():
    items = [
        item("a", WIDE, 3, **{"eo:cloud_cover": 50}),
        item("b", WIDE, 4, **{"eo:cloud_cover": 10}),
    ]
    choice = choose_optical(candidates(items, AOI), 2, EVENT, 0.95, lambda c: None)
    assert choice.candidate.items[0].id == "b" and "eo:cloud_cover" in choice.reason


def test_nothing_covering_enough_is_no_choice_with_the_best_coverage_said():
    items = [item("edge", box(22.638, 32.7, 22.7, 32.8), 5)]
    choice = choose_optical(candidates(items, AOI), 1, EVENT, 0.95)
    assert choice.candidate is None and "best 20%" in choice.reason
    assert choose_optical([], 0, EVENT, 0.95).reason == "no item in the window"


def test_sar_pre_and_post_come_from_one_orbit():
    pre = [sar("pre-102", 5, 102), sar("pre-29", 9, 29, "descending")]
    post = [sar("post-102", 17, 102), sar("post-7", 12, 7)]
    choices = choose_sar_pair(
        (candidates(pre, AOI), 2),
        (candidates(post, AOI), 2),
        {"pre": EVENT, "post": EVENT},
        {"pre": 0.95, "post": 0.95},
    )
    assert choices["pre"].candidate.items[0].id == "pre-102"
    assert choices["post"].candidate.items[0].id == "post-102"
    assert "same relative orbit 102 (ascending)" in choices["post"].reason


def test_sar_without_a_shared_orbit_takes_the_nearest_scene_each_side():
    pre = [sar("pre-29", 9, 29), sar("pre-29-old", 2, 29)]
    post = [sar("post-7", 12, 7), item("post-unknown", WIDE, 11)]
    choices = choose_sar_pair(
        (candidates(pre, AOI), 2),
        (candidates(post, AOI), 2),
        {"pre": EVENT, "post": EVENT},
        {"pre": 0.95, "post": 0.95},
    )
    assert choices["pre"].candidate.items[0].id == "pre-29"
    assert choices["post"].candidate.items[0].id == "post-unknown"
    assert "no relative orbit seen in both periods" in choices["post"].reason


def test_sar_with_an_empty_period_still_chooses_the_other():
    choices = choose_sar_pair(
        (candidates([sar("pre", 9, 102)], AOI), 1),
        ([], 0),
        {"pre": EVENT, "post": EVENT},
        {"pre": 0.95, "post": 0.95},
    )
    assert choices["pre"].candidate is not None
    assert choices["post"].candidate is None and choices["post"].reason == "no item in the window"
