"""The layout plan, the canonical frame (axis 0 inland from the downhill edge), and the
terrain and wadi drawn in it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from metaflood.demo.materials import Array
from metaflood.demo.noise import fractal, fractal_1d, stream
from metaflood.demo.spec import SceneSpec

# ---------------------------------------------------------------------------------------
# Layout plan


@dataclass(frozen=True)
class Plan:
    """Large-scale choices of one scene; fractions are of the canonical frame extent."""

    edge: str  # which image edge is "downhill" (the coast when there is one)
    coast: bool
    coast_frac: float
    slope: float  # m/m rise inland
    hill_amp: float  # m
    wadi: bool
    wadi_frac: float  # across-slope position of the wadi mouth
    meander_m: float
    bed_half_m: float
    incision_m: float
    valley_depth_m: float
    valley_width_m: float
    flood_share: float  # target share of the scene newly flooded
    flood_reach_m: float  # farthest distance from the channel the flood may reach
    surge_m: float  # coastal surge height (0: none)
    town: bool
    town_centre: tuple[float, float]  # (s, t) fractions
    town_axes: tuple[float, float]  # (s, t) half-axes, fractions
    grid_angle: float  # rad
    playgrounds: int
    highway: bool
    highway_angle: float  # rad from the inland direction
    agri_start: float  # s fraction beyond which farming starts
    agri_share: float
    forest_share: float
    sand_share: float
    lake: bool


def draw_plan(spec: SceneSpec) -> Plan:
    rng = stream(spec, "plan")
    return _town_plan(rng) if spec.layout == "town" else _random_plan(rng)


def _town_plan(rng: np.random.Generator) -> Plan:
    """The Derna-like demo: sea north, wadi through a coastal town, farms inland."""
    coast = float(rng.uniform(0.10, 0.14))
    wadi = float(rng.uniform(0.45, 0.55))
    return Plan(
        edge="north",
        coast=True,
        coast_frac=coast,
        slope=0.02,
        hill_amp=7.0,
        wadi=True,
        wadi_frac=wadi,
        meander_m=float(rng.uniform(40, 60)),
        bed_half_m=float(rng.uniform(16, 22)),
        incision_m=float(rng.uniform(4.0, 6.0)),
        valley_depth_m=3.0,
        valley_width_m=200.0,
        flood_share=0.09,
        flood_reach_m=300.0,
        surge_m=0.0,
        town=True,
        town_centre=(coast + 0.22, wadi),
        town_axes=(0.28, 0.36),
        grid_angle=math.radians(rng.uniform(-6, 6)),
        playgrounds=3,
        highway=True,
        highway_angle=math.radians(rng.uniform(-25, 25)),
        agri_start=0.58,
        agri_share=0.55,
        forest_share=0.10,
        sand_share=0.22,
        lake=False,
    )


def _random_plan(rng: np.random.Generator) -> Plan:
    """Varied layouts for training tiles: any ingredient may be absent or anywhere."""
    coast = bool(rng.random() < 0.55)
    coast_frac = float(rng.uniform(0.05, 0.35))
    wadi = bool(rng.random() < 0.7)
    town = bool(rng.random() < 0.8)
    s_town = coast_frac + float(rng.uniform(0.1, 0.4)) if coast else float(rng.uniform(0.2, 0.8))
    return Plan(
        edge=str(rng.choice(["north", "south", "east", "west"])),
        coast=coast,
        coast_frac=coast_frac,
        slope=float(rng.uniform(0.005, 0.03)),
        hill_amp=float(rng.uniform(2.0, 12.0)),
        wadi=wadi,
        wadi_frac=float(rng.uniform(0.2, 0.8)),
        meander_m=float(rng.uniform(20, 80)),
        bed_half_m=float(rng.uniform(8, 25)),
        incision_m=float(rng.uniform(2.0, 7.0)),
        valley_depth_m=float(rng.uniform(1.0, 4.0)),
        valley_width_m=float(rng.uniform(100, 300)),
        flood_share=float(rng.uniform(0.02, 0.15)),
        flood_reach_m=float(rng.uniform(150, 450)),
        surge_m=float(rng.uniform(0.5, 2.5)) if coast and rng.random() < 0.4 else 0.0,
        town=town,
        town_centre=(s_town, float(rng.uniform(0.2, 0.8))),
        town_axes=(float(rng.uniform(0.1, 0.6)), float(rng.uniform(0.1, 0.7))),
        grid_angle=float(rng.uniform(0, math.pi / 2)),
        playgrounds=int(rng.integers(1, 5)),
        highway=bool(rng.random() < 0.6),
        highway_angle=math.radians(rng.uniform(-40, 40)),
        agri_start=float(rng.uniform(0.0, 0.6)),
        agri_share=float(rng.uniform(0.0, 0.7)),
        forest_share=float(rng.uniform(0.02, 0.3)),
        sand_share=float(rng.uniform(0.05, 0.35)),
        lake=bool(rng.random() < 0.25),
    )


# ---------------------------------------------------------------------------------------
# Canonical frame: axis 0 = s (inland distance from the downhill edge), axis 1 = t.


@dataclass(frozen=True)
class CanonicalFrame:
    res: float
    ns: int
    nt: int

    @property
    def s(self) -> Array:
        return ((np.arange(self.ns, dtype=np.float32) + 0.5) * self.res)[:, None]

    @property
    def t(self) -> Array:
        return ((np.arange(self.nt, dtype=np.float32) + 0.5) * self.res)[None, :]

    @property
    def extent(self) -> tuple[float, float]:
        return self.ns * self.res, self.nt * self.res

    @property
    def shape(self) -> tuple[int, int]:
        return self.ns, self.nt


def canonical_frame(spec: SceneSpec, edge: str) -> CanonicalFrame:
    if edge in ("north", "south"):
        return CanonicalFrame(spec.resolution, spec.height, spec.width)
    return CanonicalFrame(spec.resolution, spec.width, spec.height)


def orient(a: Array, edge: str) -> Array:
    """Canonical (s, t) raster -> image (row, col) raster, north up."""
    out = {
        "north": a,
        "south": a[::-1],
        "west": a.T,
        "east": a.T[:, ::-1],
    }[edge]
    return np.ascontiguousarray(out)


def unorient(a: Array, edge: str) -> Array:
    """Image (row, col) raster -> canonical (s, t) raster: the inverse of `orient`."""
    out = {
        "north": a,
        "south": a[::-1],
        "west": a.T,
        "east": a[:, ::-1].T,
    }[edge]
    return np.ascontiguousarray(out)


# ---------------------------------------------------------------------------------------
# World: terrain, land cover, flood (canonical frame, then oriented to the image)


@dataclass
class World:
    elevation: Array  # float32 m
    materials: dict[str, Array]  # uint8 material ids per period
    flood: Array  # uint8 0/1/2
    obj: Array  # int32 object id (building lot or parcel), 0 = none
    n_obj: int
    heights: Array  # float32 building height per object id
    wet: Array  # float32 0..1 post-event soil wetness beside the flood
    relief: Array | None = None  # float32 m of the look-alike mesas (None: no look-alikes)
    lookalike: Array | None = None  # uint8 look-alike codes (`lookalikes`)


@dataclass
class Terrain:
    coast_s: Array  # (1, nt) coastline position, m (a virtual one off-scene without coast)
    sea: Array  # bool
    z: Array  # float32 elevation, m
    chan_dist: Array | None  # m from the wadi centreline
    hand: Array | None  # m above the nearest channel point


def make_terrain(spec: SceneSpec, plan: Plan, frame: CanonicalFrame) -> Terrain:
    """Elevation rising inland with hills; the wadi incised into a smooth valley floor."""
    rng = stream(spec, "terrain")
    s_ext, t_ext = frame.extent
    s, res = frame.s, frame.res
    wobble = fractal_1d(rng, frame.nt, res, 2.5, 600.0)
    if plan.coast:
        coast_s = (plan.coast_frac * s_ext + 25.0 * wobble)[None, :].astype(np.float32)
    else:
        coast_s = np.full((1, frame.nt), -200.0, dtype=np.float32)  # virtual coast off-scene
    s_rel = s - coast_s
    hills = fractal(rng, frame.shape, res, 3.2, 900.0)
    micro = fractal(rng, frame.shape, res, 2.5, 80.0)
    ramp = np.clip(s_rel / 600.0, 0.15, 1.0)
    chan_dist = hand = None
    damp = np.float32(1.0)
    if plan.wadi:
        meander = fractal_1d(rng, frame.ns, res, 3.5, 700.0)
        centre = plan.wadi_frac * t_ext + plan.meander_m * meander
        line = _centreline_mask(frame, centre)
        chan_dist, idx = ndimage.distance_transform_edt(~line, sampling=res, return_indices=True)
        chan_dist = chan_dist.astype(np.float32)
        damp = 1.0 - np.exp(-((chan_dist / 300.0) ** 2))
    z = plan.slope * s_rel + plan.hill_amp * ramp * damp * (hills + 1.0) + 0.3 * micro
    z = np.where(s_rel < 0, plan.slope * s_rel - 1.0, z).astype(np.float32)
    if plan.wadi:
        z -= _incision(plan, chan_dist)
        hand = z - _drainage_level(z, idx, res)
    sea = np.broadcast_to(s_rel < 0, frame.shape).copy()
    return Terrain(coast_s=coast_s, sea=sea, z=z, chan_dist=chan_dist, hand=hand)


def _drainage_level(z: Array, nearest: Array, res: float) -> Array:
    """Channel elevation at the nearest centreline point, smoothed over ~60 m. Nearest-
    point lookup jumps where two meander loops are equidistant; unsmoothed, the flood
    edge would follow those straight seams instead of the terrain."""
    level = z[nearest[0], nearest[1]]
    size = max(1, int(round(60.0 / res))) | 1
    for _ in range(2):  # two box passes: close to a Gaussian, O(n) whatever the size
        level = ndimage.uniform_filter(level, size, mode="nearest")
    return level


def _centreline_mask(frame: CanonicalFrame, centre_m: Array) -> Array:
    """Rasterise t = centre(s) as a connected line (each row spans to the next row's t)."""
    col = np.floor(centre_m / frame.res)
    nxt = np.append(col[1:], col[-1])
    lo = np.minimum(col, nxt)[:, None]
    hi = np.maximum(col, nxt)[:, None]
    j = np.arange(frame.nt)[None, :]
    return (j >= lo) & (j <= hi)


def _incision(plan: Plan, dist: Array) -> Array:
    """Depth cut into the terrain: a flat bed, steep banks and a wide shallow valley."""
    bank = np.clip((plan.bed_half_m + 6.0 - dist) / 6.0, 0.0, 1.0)
    valley = np.exp(-((dist / plan.valley_width_m) ** 2))
    return (plan.incision_m * bank + plan.valley_depth_m * valley).astype(np.float32)
