"""Choosing one scene per modality and period, and saying why."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pystac
from shapely.geometry import Polygon, shape

# An item must cover at least this share of the AOI to be used on its own.
MIN_COVERAGE = 0.5


@dataclass(frozen=True)
class Choice:
    item: pystac.Item
    coverage: float
    reason: str


def coverage(item: pystac.Item, aoi: Polygon) -> float:
    """Share of the AOI inside the item's footprint."""
    return float(shape(item.geometry).intersection(aoi).area / aoi.area)


def choose(items: list[pystac.Item], aoi: Polygon, modality: str, target: dt.date) -> Choice | None:
    """Best-covering item; optical by least cloud, SAR by the date nearest the target."""
    scored = [(item, coverage(item, aoi)) for item in items]
    usable = [(item, cov) for item, cov in scored if cov >= MIN_COVERAGE]
    if not usable:
        return None

    def days_from_target(item: pystac.Item) -> int:
        return abs((item.datetime.date() - target).days)

    if modality == "optical":

        def key(pair):
            item, cov = pair
            return (item.properties.get("eo:cloud_cover", 100.0), -cov, days_from_target(item))

        rule = "least cloud cover"
    else:

        def key(pair):
            item, cov = pair
            return (days_from_target(item), -cov)

        rule = f"nearest to {target.isoformat()}"
    item, cov = min(usable, key=key)
    reason = f"{len(usable)} of {len(items)} items cover >= {MIN_COVERAGE:.0%} of the AOI; {rule}"
    return Choice(item, cov, reason)
