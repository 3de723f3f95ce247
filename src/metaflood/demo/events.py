"""The embedded demo event: a synthetic scene sized to the event's AOI, published as a
local STAC catalog so the demo goes through the same acquisition code as real data."""

from __future__ import annotations

import datetime as dt
import logging
import math
from pathlib import Path

from rasterio.transform import Affine, from_origin

from metaflood.core.config import PERIODS, date_range, event_grid
from metaflood.core.settings import event_section
from metaflood.demo.catalog import publish_demo_catalog
from metaflood.demo.simulate import simulate_event
from metaflood.demo.spec import SceneSpec

log = logging.getLogger(__name__)


def demo_footprint(event: dict, key: str) -> tuple[str, Affine, int, int]:
    """Native grid of the generated scene: the event grid plus a margin, at demo resolution."""
    demo = event_section(event, "demo")
    res = float(demo["resolution"])
    margin = float(demo["margin_m"])
    grid = event_grid(event, key)
    left, bottom, right, top = grid.bounds
    left, bottom = (
        math.floor((left - margin) / res) * res,
        math.floor((bottom - margin) / res) * res,
    )
    right, top = math.ceil((right + margin) / res) * res, math.ceil((top + margin) / res) * res
    width, height = round((right - left) / res), round((top - bottom) / res)
    return grid.crs, from_origin(left, top, res, res), width, height


SAR_REPEAT_DAYS = 12  # Sentinel-1's repeat cycle: scenes of one relative orbit


def demo_dates(event: dict, key: str) -> dict[tuple[str, str], dt.datetime]:
    """SAR in the middle of each window, optical a day later (within the window).

    With `demo.pre_sar_scenes` N > 1 the pre-event SAR scenes are a repeat-cycle apart,
    the latest ("pre") on the pre window's last day and "pre-1" ... "pre-{N-1}" before
    it, as far back as they go: some may fall before the window, and a search then
    finds fewer than N, as it would on a real archive. The optical pre date stays a
    day after the window's middle."""
    n_pre = int(event_section(event, "demo")["pre_sar_scenes"])
    dates = {}
    for period in PERIODS:
        win = date_range(event, period, key)
        sar_day = win.middle
        optical_day = min(sar_day + dt.timedelta(days=1), win.end)
        if period == "pre" and n_pre > 1:
            sar_day = win.end
            for k in range(1, n_pre):
                day = sar_day - dt.timedelta(days=SAR_REPEAT_DAYS * k)
                dates[(f"pre-{k}", "sar")] = dt.datetime.combine(day, dt.time(4, 30), dt.UTC)
        dates[(period, "sar")] = dt.datetime.combine(sar_day, dt.time(4, 30), dt.UTC)
        dates[(period, "optical")] = dt.datetime.combine(optical_day, dt.time(9, 20), dt.UTC)
    return dates


def build_demo_event(event: dict, name: str, out_dir: Path) -> Path:
    key = f"events.{name}"
    demo = event_section(event, "demo")
    crs, transform, width, height = demo_footprint(event, key)
    spec = SceneSpec(
        seed=int(demo["seed"]),
        height=height,
        width=width,
        resolution=transform.a,
        layout="town",
        cloud_fraction=float(demo["cloud_fraction"]),
        post_optical=bool(demo["post_optical"]),
        post_offset_px=tuple(demo["post_offset_px"]),
        optical_offset_px=tuple(demo["optical_offset_px"]),
        pre_sar_scenes=int(demo["pre_sar_scenes"]),
        lookalikes=bool(demo["lookalikes"]),
    )
    log.info("simulating %s x %s px at %s m (seed %s)", width, height, transform.a, spec.seed)
    synthetic = simulate_event(spec)
    catalog = publish_demo_catalog(
        synthetic, out_dir, crs=crs, transform=transform, dates=demo_dates(event, key)
    )
    log.info("published %s", catalog)
    return catalog
