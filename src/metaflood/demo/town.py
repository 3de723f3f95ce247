"""The town: a rotated road grid, blocks, lots, buildings and sports grounds."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from metaflood.demo.materials import BUILDING, PITCH, ROAD, TRACK, YARD, Array
from metaflood.demo.noise import fractal, stream
from metaflood.demo.spec import SceneSpec
from metaflood.demo.terrain import CanonicalFrame, Plan, Terrain

# ---------------------------------------------------------------------------------------
# Town: a rotated road grid, blocks, lots, buildings, sports grounds


@dataclass
class Town:
    urban: Array  # bool, inside an urban block or on a town road
    material: Array  # uint8 material where urban (YARD/BUILDING/ROAD/PITCH/TRACK)
    obj: Array  # int32 lot id (1..n_lots) on building pixels, else 0
    n_lots: int
    heights: Array  # float32 (n_lots + 1,) building height per lot, m


@dataclass(frozen=True)
class _Segments:
    """Alternating blocks and roads along one grid axis."""

    starts: Array
    blocks: Array
    roads: Array

    def locate(self, u: Array) -> tuple[Array, Array, Array]:
        k = np.clip(np.searchsorted(self.starts, u, side="right") - 1, 0, self.starts.size - 1)
        local = u - self.starts[k]
        return k, local, local >= self.blocks[k]


def _segments(rng: np.random.Generator, half_extent: float) -> _Segments:
    n = int(2 * half_extent / 58.0) + 3
    blocks = rng.uniform(50.0, 90.0, n).astype(np.float32)
    roads = rng.uniform(8.0, 12.0, n).astype(np.float32)
    starts = (-half_extent + np.concatenate([[0.0], np.cumsum(blocks + roads)[:-1]])).astype(
        np.float32
    )
    return _Segments(starts, blocks, roads)


def _empty_town(frame: CanonicalFrame) -> Town:
    return Town(
        urban=np.zeros(frame.shape, bool),
        material=np.zeros(frame.shape, np.uint8),
        obj=np.zeros(frame.shape, np.int32),
        n_lots=0,
        heights=np.zeros(1, np.float32),
    )


def make_town(spec: SceneSpec, plan: Plan, frame: CanonicalFrame, terrain: Terrain) -> Town:
    if not plan.town:
        return _empty_town(frame)
    rng = stream(spec, "town")
    s_ext, t_ext = frame.extent
    sc, tc = plan.town_centre[0] * s_ext, plan.town_centre[1] * t_ext
    ds, dt = frame.s - sc, frame.t - tc
    cos, sin = math.cos(plan.grid_angle), math.sin(plan.grid_angle)
    u = cos * dt + sin * ds
    v = -sin * dt + cos * ds
    half = math.hypot(s_ext, t_ext) + 100.0
    su, sv = _segments(rng, half), _segments(rng, half)
    ku, lu, road_u = su.locate(u)
    kv, lv, road_v = sv.locate(v)
    footprint = _town_footprint(rng, plan, frame, terrain)
    block_urban = _urban_blocks(frame, footprint, su, sv, (sc, tc), plan.grid_angle)
    urban = _urban_pixels(block_urban, ku, kv, road_u, road_v)
    kinds = _block_kinds(rng, block_urban, plan.playgrounds)
    geom = _BlockCoords(ku, kv, lu, lv, su.blocks[ku], sv.blocks[kv])
    material, obj, n_lots, heights = _fill_blocks(rng, kinds, block_urban, geom)
    material = np.where(road_u | road_v, ROAD, material).astype(np.uint8)
    obj = np.where(road_u | road_v, 0, obj)
    promenade = (frame.s - terrain.coast_s >= 4.0) & (frame.s - terrain.coast_s < 14.0)
    promenade &= footprint < 1.0
    material = np.where(promenade, ROAD, material).astype(np.uint8)
    obj = np.where(promenade, 0, obj)
    return Town(urban | promenade, material, obj.astype(np.int32), n_lots, heights)


def _town_footprint(
    rng: np.random.Generator, plan: Plan, frame: CanonicalFrame, terrain: Terrain
) -> Array:
    """< 1 inside the town: an ellipse with a ragged edge, never in the sea."""
    s_ext, t_ext = frame.extent
    ds = (frame.s - plan.town_centre[0] * s_ext) / (plan.town_axes[0] * s_ext)
    dt = (frame.t - plan.town_centre[1] * t_ext) / (plan.town_axes[1] * t_ext)
    ragged = fractal(rng, frame.shape, frame.res, 3.0, 400.0)
    fp = ds * ds + dt * dt + 0.3 * ragged
    return np.where(terrain.sea, np.float32(9.0), fp).astype(np.float32)


def _urban_blocks(
    frame: CanonicalFrame,
    footprint: Array,
    su: _Segments,
    sv: _Segments,
    centre: tuple[float, float],
    angle: float,
) -> Array:
    """Blocks whose centre lies inside the town footprint (padded by one block of False)."""
    cu = su.starts + su.blocks / 2
    cv = sv.starts + sv.blocks / 2
    cu2, cv2 = np.meshgrid(cu, cv, indexing="ij")
    cos, sin = math.cos(angle), math.sin(angle)
    t = centre[1] + cos * cu2 - sin * cv2
    s = centre[0] + sin * cu2 + cos * cv2
    i = np.floor(s / frame.res).astype(int)
    j = np.floor(t / frame.res).astype(int)
    inside = (i >= 0) & (i < frame.ns) & (j >= 0) & (j < frame.nt)
    urban = np.zeros(cu2.shape, bool)
    urban[inside] = footprint[i[inside], j[inside]] < 1.0
    return np.pad(urban, ((0, 1), (0, 1)))


def _urban_pixels(block_urban: Array, ku: Array, kv: Array, road_u: Array, road_v: Array) -> Array:
    """Block pixels of urban blocks, and road pixels beside at least one urban block."""
    b = block_urban
    own = b[ku, kv]
    along_u = own | b[ku + 1, kv]
    along_v = own | b[ku, kv + 1]
    crossing = along_u | along_v | b[ku + 1, kv + 1]
    return np.where(
        road_u & road_v, crossing, np.where(road_u, along_u, np.where(road_v, along_v, own))
    )


# Block kinds.
RESIDENTIAL, DENSE, OPEN, SPORTS = range(4)


def _block_kinds(rng: np.random.Generator, block_urban: Array, playgrounds: int) -> Array:
    kinds = rng.choice([RESIDENTIAL, DENSE, OPEN], size=block_urban.shape, p=[0.82, 0.12, 0.06])
    candidates = np.flatnonzero(block_urban)
    if candidates.size and playgrounds:
        chosen = rng.choice(candidates, size=min(playgrounds, candidates.size), replace=False)
        kinds.flat[chosen] = SPORTS
    return kinds


MAX_LOTS = 6


@dataclass(frozen=True)
class _BlockCoords:
    """Per pixel: block indices along u and v, position inside the block and its size (m)."""

    ku: Array
    kv: Array
    lu: Array
    lv: Array
    bu: Array
    bv: Array


def _fill_blocks(
    rng: np.random.Generator, kinds: Array, block_urban: Array, geom: _BlockCoords
) -> tuple[Array, Array, int, Array]:
    """Lots with a building each (yards between), or a sports ground, per block kind.
    Lot tables cover urban blocks only, so memory follows the town, not the scene."""
    ku, kv, lu, lv, bu, bv = geom.ku, geom.kv, geom.lu, geom.lv, geom.bu, geom.bv
    kind = kinds[ku, kv]
    compact = np.full(block_urban.shape, -1, dtype=np.int64)
    compact[block_urban] = np.arange(int(block_urban.sum()))
    lot_m = rng.uniform(14.0, 28.0, (2, *block_urban.shape)).astype(np.float32)
    dense = kind == DENSE
    n_u = np.clip(np.rint(bu / np.where(dense, 2.2, 1.0) / lot_m[0][ku, kv]), 1, MAX_LOTS)
    n_v = np.clip(np.rint(bv / np.where(dense, 2.2, 1.0) / lot_m[1][ku, kv]), 1, MAX_LOTS)
    len_u, len_v = bu / n_u, bv / n_v
    a = np.minimum(np.floor(lu / len_u), n_u - 1).astype(np.int64)
    b = np.minimum(np.floor(lv / len_v), n_v - 1).astype(np.int64)
    pu, pv = lu - a * len_u, lv - b * len_v
    block = compact[ku, kv]
    lot = np.where(block >= 0, (block * MAX_LOTS + a) * MAX_LOTS + b + 1, 0)
    n_lots = int(block_urban.sum()) * MAX_LOTS * MAX_LOTS
    margins = rng.uniform(0.04, 0.22, (4, n_lots + 1)).astype(np.float32)
    empty = rng.random(n_lots + 1) < 0.12
    heights = rng.uniform(4.0, 14.0, n_lots + 1).astype(np.float32)
    m = margins[:, lot]
    m_min = np.where(dense, 1.0, 1.5).astype(np.float32)
    inside = (
        (pu >= np.maximum(m[0] * len_u, m_min))
        & (pu < len_u - np.maximum(m[1] * len_u, m_min))
        & (pv >= np.maximum(m[2] * len_v, m_min))
        & (pv < len_v - np.maximum(m[3] * len_v, m_min))
    )
    building = inside & ~empty[lot] & np.isin(kind, (RESIDENTIAL, DENSE)) & (lot > 0)
    material = np.where(building, BUILDING, YARD).astype(np.uint8)
    material = np.where(kind == SPORTS, _sports_ground(lu, lv, bu, bv), material)
    obj = np.where(building, lot, 0).astype(np.int32)
    dense_lots = np.unique(lot[dense & building])
    heights[dense_lots] = rng.uniform(10.0, 24.0, dense_lots.size).astype(np.float32)
    heights[0] = 0.0
    return material.astype(np.uint8), obj, n_lots, heights


def _sports_ground(lu: Array, lv: Array, bu: Array, bv: Array) -> Array:
    """A pitch ringed by a running track, inside a yard border."""
    edge = np.minimum(np.minimum(lu, bu - lu), np.minimum(lv, bv - lv))
    return np.where(edge < 3.0, YARD, np.where(edge < 8.0, TRACK, PITCH)).astype(np.uint8)
