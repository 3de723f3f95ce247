"""Deterministic synthetic flood events: terrain, land cover, flood, SAR and optical scenes.

The demo event and the demo model's training tiles both come from here, so the scenes
have to be physically plausible: a model trained on them should learn backscatter and
spectra, not rendering artefacts. Everything is generated from named random streams
derived from one seed, so changing one knob (say the cloud fraction) leaves every other
component bit-identical. All geometry is in metres, so a scene rendered at another
resolution shows the same place.

Pipeline: a layout plan -> terrain and wadi (elevation, height above the channel,
`terrain`) -> pre-event materials (finer than the eight classes: sand and gravel are both
barren but look different; `town`, `landscape`) -> the flood and its damage
(`landscape`) -> per-period rendering of SAR and optical fields (`sar_scene`,
`optical_scene`), shifted by the injected mis-registration before speckle and sensor
noise (`sensor`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metaflood.core.config import PERIODS
from metaflood.demo.landscape import build_world, draw_looks
from metaflood.demo.lookalikes import LAYOVER, SHADOW
from metaflood.demo.materials import (
    MATERIAL_CLASS,
    SCL_CLOUD_HIGH,
    SCL_CLOUD_MEDIUM,
    Array,
)
from metaflood.demo.optical_scene import render_optical
from metaflood.demo.sar_scene import relief_radar_geometry, render_sar
from metaflood.demo.spec import SceneSpec
from metaflood.demo.terrain import World, draw_plan


@dataclass
class SyntheticEvent:
    """Truth on the reference (pre SAR) grid, and the scenes as each sensor saw them.

    `sar` holds one scene per period ("pre", "post") and, with `spec.pre_sar_scenes`
    N > 1, the N - 1 further pre-event scenes "pre-1" ... "pre-{N-1}": the same ground
    under independent speckle. `lookalikes` (with `spec.lookalikes`) codes the look-alike
    truth (`demo.lookalikes`: mesa slopes, dark flats, wet crust, the pond, and where the
    radar sees shadow or layover); None without them."""

    spec: SceneSpec
    elevation: Array
    landcover: dict[str, Array]
    flood: Array
    sar: dict[str, Array]
    optical: dict[str, Array | None]
    scl: dict[str, Array | None]
    cloud_cover: dict[str, float]
    lookalikes: Array | None = None

    @property
    def pre_sar_keys(self) -> list[str]:
        """Keys of `sar` of the pre-event scenes, the primary one first."""
        return ["pre"] + [k for k in self.sar if k.startswith("pre-")]


def simulate_event(spec: SceneSpec) -> SyntheticEvent:
    """Generate one event; the same spec always gives bit-identical arrays, and the
    default knobs (one pre SAR scene, no look-alikes) give the scenes they always gave."""
    plan = draw_plan(spec)
    world = build_world(spec, plan)
    looks = draw_looks(spec, world)
    sar: dict[str, Array] = {}
    extra: dict[str, Array] = {}
    for period in PERIODS:
        first, *more = render_sar(spec, world, looks, period)
        sar[period] = first
        extra.update({f"{period}-{k}": scene for k, scene in enumerate(more, start=1)})
    sar.update(extra)
    optical: dict[str, Array | None] = {}
    scl: dict[str, Array | None] = {}
    cloud_cover: dict[str, float] = {}
    for period in PERIODS:
        if period == "post" and not spec.post_optical:
            optical[period] = scl[period] = None
            continue
        optical[period], scl[period] = render_optical(spec, world, looks, period)
        cloudy = np.isin(scl[period], (SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH))
        cloud_cover[period] = float(100.0 * cloudy.mean())
    return SyntheticEvent(
        spec=spec,
        elevation=world.elevation,
        landcover={p: MATERIAL_CLASS[world.materials[p]] for p in PERIODS},
        flood=world.flood,
        sar=sar,
        optical=optical,
        scl=scl,
        cloud_cover=cloud_cover,
        lookalikes=_lookalike_truth(spec, world),
    )


def _lookalike_truth(spec: SceneSpec, world: World) -> Array | None:
    """The look-alike codes, with the radar's shadow and layover over them."""
    if world.lookalike is None:
        return None
    shadow, layover = relief_radar_geometry(spec, world)
    code = world.lookalike.copy()
    code[layover] = LAYOVER
    code[shadow] = SHADOW
    return code
