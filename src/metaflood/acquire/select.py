"""Choosing the scene of each modality and period, and saying why.

Items are grouped into passes (same day, platform, and for SAR the same relative orbit
and direction); a pass is a candidate scene, mosaicked from as many of its items as it
takes to cover the AOI. A candidate must cover `min_coverage` of the AOI.

- Optical: least cloud over the AOI (the mask band read over the AOI for the few
  candidates with the least tile-wide cloud), to the nearest 5%; then nearest the
  target day.
- SAR: pre and post from the same relative orbit and orbit direction when the metadata
  allows, the pair nearest the event; otherwise each period nearest its target day.
- A multi-date pre-event baseline (`pre.max_scenes` > 1): SAR takes more covering
  passes of the chosen pre scene's relative orbit and direction, nearest the target day
  first (one geometry, so the median compares like with like); optical takes the next
  least cloudy covering passes, for a least-cloud composite.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from shapely.geometry import Polygon, shape
from shapely.ops import unary_union

from metaflood.acquire.scene import SceneItem
from metaflood.core.config import PERIODS

CLOUD_STEP = 0.05  # cloud fractions closer than this count as equal
CLOUD_CANDIDATES = 6  # candidates whose cloud over the AOI is measured


@dataclass
class Candidate:
    items: list[SceneItem]
    coverage: float
    cloud: float | None = None  # cloud fraction over the AOI, when measured
    cloud_source: str = ""

    @property
    def day(self) -> dt.date:
        return self.items[0].when.date()

    @property
    def orbit(self) -> tuple | None:
        props = self.items[0].properties
        if "sat:relative_orbit" in props and "sat:orbit_state" in props:
            return (props["sat:relative_orbit"], props["sat:orbit_state"])
        return None

    @property
    def tile_cloud(self) -> float:
        covers = [i.properties.get("eo:cloud_cover") for i in self.items]
        known = [c for c in covers if c is not None]
        return max(known) / 100.0 if known else 1.0

    def days_from(self, target: dt.date) -> int:
        return abs((self.day - target).days)

    def describe(self) -> str:
        ids = ", ".join(i.id for i in self.items)
        return ids if len(self.items) == 1 else f"mosaic of {ids}"


def coverage(footprints: list[dict], aoi: Polygon) -> float:
    """Share of the AOI inside the union of the footprints."""
    union = unary_union([shape(f) for f in footprints])
    return float(union.intersection(aoi).area / aoi.area)


def _pass_key(item: SceneItem) -> tuple:
    props = item.properties
    return (
        item.when.date(),
        props.get("platform"),
        props.get("sat:relative_orbit"),
        props.get("sat:orbit_state"),
    )


def candidates(items: list[SceneItem], aoi: Polygon) -> list[Candidate]:
    """One candidate per pass, built greedily from the items that add most coverage."""
    passes: dict[tuple, list[SceneItem]] = {}
    for item in items:
        passes.setdefault(_pass_key(item), []).append(item)
    found = []
    for members in passes.values():
        chosen: list[SceneItem] = []
        covered = 0.0
        remaining = sorted(members, key=lambda i: -coverage([i.footprint], aoi))
        while remaining:
            gains = [
                coverage([c.footprint for c in chosen] + [i.footprint], aoi) for i in remaining
            ]
            best = max(range(len(remaining)), key=gains.__getitem__)
            if gains[best] <= covered + 1e-9:
                break
            covered = gains[best]
            chosen.append(remaining.pop(best))
        if chosen:
            found.append(Candidate(chosen, covered))
    return sorted(found, key=lambda c: (-c.coverage, c.day))


NO_ITEM = "no item in the window"


@dataclass(frozen=True)
class Choice:
    candidate: Candidate | None
    reason: str


def _usable(cands: list[Candidate], min_coverage: float) -> list[Candidate]:
    return [c for c in cands if c.coverage >= min_coverage - 1e-9]


def _none_reason(cands: list[Candidate], n_items: int, min_coverage: float) -> str:
    if not n_items:
        return NO_ITEM
    best = max((c.coverage for c in cands), default=0.0)
    return (
        f"{n_items} items in the window, none (alone or mosaicked with its pass) covers "
        f"{min_coverage:.0%} of the AOI (best {best:.0%})"
    )


def choose_optical(
    cands: list[Candidate],
    n_items: int,
    target: dt.date,
    min_coverage: float,
    cloud_over_aoi: Callable[[Candidate], float | None] | None = None,
) -> Choice:
    """Least cloud over the AOI (to CLOUD_STEP), then nearest the target day."""
    usable = _usable(cands, min_coverage)
    if not usable:
        return Choice(None, _none_reason(cands, n_items, min_coverage))
    usable.sort(key=lambda c: (c.tile_cloud, c.days_from(target)))
    measured = usable[:CLOUD_CANDIDATES]
    _measure(measured, cloud_over_aoi)
    best = min(measured, key=_cloud_then_day(target))
    reason = (
        f"{len(usable)} of {n_items} items' passes cover >= {min_coverage:.0%} of the AOI; "
        f"least cloud ({best.cloud:.0%}, {best.cloud_source}) among the {len(measured)} "
        f"least cloudy, then nearest {target.isoformat()}"
    )
    return Choice(best, reason)


def _measure(
    cands: list[Candidate], cloud_over_aoi: Callable[[Candidate], float | None] | None
) -> None:
    """Each candidate's cloud: over the AOI from its mask band where it has one, else the
    tile's eo:cloud_cover (measured once: a candidate keeps what it was given)."""
    for cand in cands:
        if cand.cloud is not None:
            continue
        cloud = cloud_over_aoi(cand) if cloud_over_aoi else None
        if cloud is None:
            cand.cloud, cand.cloud_source = cand.tile_cloud, "eo:cloud_cover of the tile"
        else:
            cand.cloud, cand.cloud_source = cloud, "mask band over the AOI"


def _cloud_then_day(target: dt.date) -> Callable[[Candidate], tuple]:
    return lambda c: (round(c.cloud / CLOUD_STEP), c.days_from(target))


def optical_baseline(
    chosen: Candidate,
    cands: list[Candidate],
    target: dt.date,
    min_coverage: float,
    max_scenes: int,
    cloud_over_aoi: Callable[[Candidate], float | None] | None = None,
) -> list[Candidate]:
    """Up to `max_scenes` - 1 more covering passes for a least-cloud composite behind
    `chosen` (the least cloudy): by cloud over the AOI (to CLOUD_STEP), then nearest the
    target day; a pass all under cloud adds nothing and is left out. The least cloudy
    by tile are measured, as many as the choice measured or as are asked, whichever
    is more."""
    if max_scenes <= 1:
        return []
    usable = [c for c in _usable(cands, min_coverage) if c is not chosen]
    usable.sort(key=lambda c: (c.tile_cloud, c.days_from(target)))
    measured = usable[: max(CLOUD_CANDIDATES, max_scenes) - 1]
    _measure(measured, cloud_over_aoi)
    clear = [c for c in measured if c.cloud < 1.0]
    return sorted(clear, key=_cloud_then_day(target))[: max_scenes - 1]


def sar_baseline(
    chosen: Candidate,
    cands: list[Candidate],
    target: dt.date,
    min_coverage: float,
    max_scenes: int,
) -> list[Candidate]:
    """Up to `max_scenes` - 1 more covering pre-event passes of the relative orbit and
    direction of `chosen`, nearest the target day first: a scene of another geometry
    sees the ground at another angle, and would read as change. None when the chosen
    scene's metadata gives no orbit (its geometry cannot be matched)."""
    if max_scenes <= 1 or chosen.orbit is None:
        return []
    same = [c for c in _usable(cands, min_coverage) if c is not chosen and c.orbit == chosen.orbit]
    same.sort(key=lambda c: (c.days_from(target), -c.coverage, c.day))
    return same[: max_scenes - 1]


def _nearest(usable: list[Candidate], target: dt.date) -> Candidate:
    return min(usable, key=lambda c: (c.days_from(target), -c.coverage))


def choose_sar_pair(
    pre: tuple[list[Candidate], int],
    post: tuple[list[Candidate], int],
    targets: dict[str, dt.date],
    min_coverage: dict[str, float],
) -> dict[str, Choice]:
    """Pre and post SAR from one relative orbit and direction when both periods have it."""
    usable = {
        "pre": _usable(pre[0], min_coverage["pre"]),
        "post": _usable(post[0], min_coverage["post"]),
    }
    counts = {"pre": pre[1], "post": post[1]}
    by_orbit: dict[str, dict[tuple, list[Candidate]]] = {"pre": {}, "post": {}}
    for period, cands in usable.items():
        for cand in cands:
            if cand.orbit is not None:
                by_orbit[period].setdefault(cand.orbit, []).append(cand)
    shared = set(by_orbit["pre"]) & set(by_orbit["post"])
    if shared:

        def pair(orbit):
            a = _nearest(by_orbit["pre"][orbit], targets["pre"])
            b = _nearest(by_orbit["post"][orbit], targets["post"])
            return a.days_from(targets["pre"]) + b.days_from(targets["post"]), a, b

        gap, pre_choice, post_choice = min(
            (pair(o) for o in sorted(shared, key=str)), key=lambda p: p[0]
        )
        orbit = pre_choice.orbit
        why = (
            f"same relative orbit {orbit[0]} ({orbit[1]}) before and after, "
            f"the pair nearest the event ({gap} days off in all)"
        )
        return {
            "pre": Choice(pre_choice, f"{len(usable['pre'])} covering passes; {why}"),
            "post": Choice(post_choice, f"{len(usable['post'])} covering passes; {why}"),
        }
    choices = {}
    for period in PERIODS:
        cands = usable[period]
        if not cands:
            choices[period] = Choice(
                None,
                _none_reason(
                    pre[0] if period == "pre" else post[0], counts[period], min_coverage[period]
                ),
            )
            continue
        best = _nearest(cands, targets[period])
        note = (
            "no relative orbit seen in both periods"
            if usable["pre"] and usable["post"]
            else "the other period has no covering scene"
        )
        choices[period] = Choice(
            best,
            f"{len(cands)} covering passes; nearest {targets[period].isoformat()} ({note})",
        )
    return choices
