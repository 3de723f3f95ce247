"""Scene choice: coverage, mosaics of one pass, least cloud over the AOI, SAR orbits."""

import datetime as dt

from shapely.geometry import box, mapping

from metaflood.acquire.baseline import shortfall_note
from metaflood.acquire.scene import SceneItem
from metaflood.acquire.select import (
    candidates,
    choose_optical,
    choose_sar_pair,
    coverage,
    optical_baseline,
    sar_baseline,
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


# ---------------------------------------------------------------------------------------
# A multi-date pre-event baseline (pre.max_scenes)


def pre_pair(pre_items, post_items):
    cands = candidates(pre_items, AOI)
    choices = choose_sar_pair(
        (cands, len(pre_items)),
        (candidates(post_items, AOI), len(post_items)),
        {"pre": EVENT, "post": EVENT},
        {"pre": 0.95, "post": 0.95},
    )
    return choices["pre"].candidate, cands


def test_the_sar_baseline_takes_the_chosen_orbit_nearest_first():
    pre = [
        sar("pre-102-d3", 3, 102),
        sar("pre-102-d9", 9, 102),
        sar("pre-29-d8", 8, 29, "descending"),  # another orbit: skipped
        sar("pre-102-d7-edge", 7, 102, footprint=box(22.638, 32.7, 22.7, 32.8)),  # 20% cover
        sar("pre-102-desc-d6", 6, 102, "descending"),  # the same number, the other way
        sar("pre-102-d1", 1, 102),
        sar("pre-102-d5", 5, 102),
    ]
    chosen, cands = pre_pair(pre, [sar("post-102", 17, 102)])
    assert chosen.items[0].id == "pre-102-d9"
    extras = sar_baseline(chosen, cands, EVENT, 0.95, 3)
    assert [c.items[0].id for c in extras] == ["pre-102-d5", "pre-102-d3"]
    everything = sar_baseline(chosen, cands, EVENT, 0.95, 12)
    assert [c.items[0].id for c in everything] == ["pre-102-d5", "pre-102-d3", "pre-102-d1"]
    assert sar_baseline(chosen, cands, EVENT, 0.95, 1) == []


def test_fewer_sar_scenes_than_asked_is_a_recorded_fallback():
    chosen, cands = pre_pair([sar("pre-102", 5, 102), sar("pre-29", 8, 29)], [sar("post", 17, 102)])
    extras = sar_baseline(chosen, cands, EVENT, 0.95, 3)
    assert extras == []
    note = shortfall_note("sar", 3, 1 + len(extras), "2023-09-01..2023-09-09", chosen.orbit)
    assert note == (
        "asked 3 pre-event SAR scenes of relative orbit 102 (ascending), found 1 in the "
        "window 2023-09-01..2023-09-09; the reference is that one scene"
    )
    assert "their median" in shortfall_note("sar", 3, 2, "w", chosen.orbit)
    assert shortfall_note("sar", 3, 3, "w", chosen.orbit) is None


def test_a_sar_scene_without_orbit_metadata_has_no_baseline_and_says_why():
    chosen, cands = pre_pair([item("a", WIDE, 9), item("b", WIDE, 5)], [])
    assert chosen.items[0].id == "a" and sar_baseline(chosen, cands, EVENT, 0.95, 3) == []
    assert "gives no relative orbit" in shortfall_note("sar", 3, 1, "w", chosen.orbit)


def test_the_optical_baseline_is_the_next_least_cloudy_over_the_aoi():
    items = [
        item("clear", WIDE, 3, **{"eo:cloud_cover": 30}),
        item("some", WIDE, 8, **{"eo:cloud_cover": 5}),
        item("more", WIDE, 9, **{"eo:cloud_cover": 10}),
        item("overcast", WIDE, 7, **{"eo:cloud_cover": 1}),
        item("edge", box(22.638, 32.7, 22.7, 32.8), 6, **{"eo:cloud_cover": 0}),
    ]
    over_aoi = {"clear": 0.0, "some": 0.3, "more": 0.1, "overcast": 1.0}
    measure = lambda c: over_aoi[c.items[0].id]  # noqa: E731
    cands = candidates(items, AOI)
    chosen = choose_optical(cands, 5, EVENT, 0.95, measure).candidate
    assert chosen.items[0].id == "clear"
    extras = optical_baseline(chosen, cands, EVENT, 0.95, 4, measure)
    # Least cloud first; a scene all under cloud adds nothing; the edge does not cover.
    assert [c.items[0].id for c in extras] == ["more", "some"]
    assert [c.cloud for c in extras] == [0.1, 0.3]
    note = shortfall_note("optical", 4, 3, "2023-09-01..2023-09-09", None)
    assert "found 3" in note and "the composite is of those 3" in note
