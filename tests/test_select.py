import datetime as dt

import pystac
from shapely.geometry import box, mapping

from metaflood.acquire.select import choose, coverage

AOI = box(22.63, 32.76, 22.64, 32.77)


def item(name, footprint, day, **properties):
    return pystac.Item(
        id=name,
        geometry=mapping(footprint),
        bbox=list(footprint.bounds),
        datetime=dt.datetime(2023, 9, day, 9, tzinfo=dt.UTC),
        properties=properties,
    )


def test_coverage_is_the_share_of_the_aoi():
    assert coverage(item("a", box(22.62, 32.75, 22.65, 32.78), 5), AOI) == 1.0
    half = item("b", box(22.635, 32.75, 22.65, 32.78), 5)
    assert abs(coverage(half, AOI) - 0.5) < 1e-9


def test_optical_prefers_least_cloud_among_covering_items():
    items = [
        item("cloudy", box(22.6, 32.7, 22.7, 32.8), 5, **{"eo:cloud_cover": 80}),
        item("clear", box(22.6, 32.7, 22.7, 32.8), 3, **{"eo:cloud_cover": 5}),
        item("partial", box(22.639, 32.7, 22.7, 32.8), 4, **{"eo:cloud_cover": 0}),
    ]
    choice = choose(items, AOI, "optical", dt.date(2023, 9, 10))
    assert choice.item.id == "clear"
    assert "least cloud" in choice.reason and "2 of 3" in choice.reason


def test_sar_prefers_the_date_nearest_the_target():
    items = [item(f"s{d}", box(22.6, 32.7, 22.7, 32.8), d) for d in (2, 6, 9)]
    assert choose(items, AOI, "sar", dt.date(2023, 9, 10)).item.id == "s9"
    assert choose(items, AOI, "sar", dt.date(2023, 9, 1)).item.id == "s2"


def test_nothing_covering_gives_none():
    items = [item("edge", box(22.6395, 32.7, 22.7, 32.8), 5)]
    assert choose(items, AOI, "sar", dt.date(2023, 9, 10)) is None
    assert choose([], AOI, "optical", dt.date(2023, 9, 10)) is None
