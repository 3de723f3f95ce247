"""The world: terrain, the town, pre-event materials outside it, the flood and its damage,
and the per-object draws both sensors render."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from metaflood.core.config import PERIODS
from metaflood.demo.lookalikes import place_lookalikes
from metaflood.demo.materials import (
    BUILDING,
    CROP,
    CRUST,
    FALLOW,
    FLOOD,
    FOREST,
    GRAVEL,
    LAKE,
    ROAD,
    RUBBLE,
    SAND,
    SEA,
    WADI_BED,
    WET_CRUST,
    Array,
)
from metaflood.demo.noise import fractal, quantile_threshold, stream
from metaflood.demo.spec import SceneSpec
from metaflood.demo.terrain import (
    CanonicalFrame,
    Plan,
    Terrain,
    World,
    canonical_frame,
    make_terrain,
    orient,
    unorient,
)
from metaflood.demo.town import Town, make_town


def build_world(spec: SceneSpec, plan: Plan) -> World:
    frame = canonical_frame(spec, plan.edge)
    terrain = make_terrain(spec, plan, frame)
    town = make_town(spec, plan, frame, terrain)
    pre, parcel_obj = _pre_materials(spec, plan, frame, terrain, town)
    n_obj = town.n_lots + int(parcel_obj.max(initial=0)) + 1  # before look-alikes: the
    # per-object draws stay those of the scene without them
    new_flood = _flood_extent(spec, plan, frame, terrain, pre)
    edge = plan.edge
    features = None
    if spec.lookalikes:  # after the flood, which they must leave as it is
        features = place_lookalikes(
            spec, frame, terrain, town.urban, pre, new_flood, lambda a: unorient(a, edge)
        )
        pre = features.apply(pre)
    obj = np.where(town.obj > 0, town.obj, np.where(parcel_obj > 0, parcel_obj + town.n_lots, 0))
    obj = np.where(np.isin(pre, (BUILDING, CROP, FALLOW)), obj, 0).astype(np.int32)
    post, wet = _post_materials(spec, frame, pre, obj, new_flood)
    post[post == CRUST] = WET_CRUST
    pre_water = np.isin(pre, (SEA, LAKE))
    flood = np.where(new_flood, 1, np.where(pre_water, 2, 0)).astype(np.uint8)
    heights = np.zeros(n_obj, dtype=np.float32)
    heights[: town.heights.size] = town.heights[:n_obj]
    z = terrain.z if features is None else terrain.z + features.relief
    return World(
        elevation=orient(z, edge),
        materials={"pre": orient(pre, edge), "post": orient(post, edge)},
        flood=orient(flood, edge),
        obj=orient(obj, edge),
        n_obj=n_obj,
        heights=heights,
        wet=orient(wet, edge),
        relief=None if features is None else orient(features.relief, edge),
        lookalike=None if features is None else orient(features.code, edge),
    )


# ---------------------------------------------------------------------------------------
# Pre-event materials outside the town


def _pre_materials(
    spec: SceneSpec, plan: Plan, frame: CanonicalFrame, terrain: Terrain, town: Town
) -> tuple[Array, Array]:
    """Compose the land cover by priority: desert < sand < forest < farms < town < wadi
    < lake < sea. Returns materials and parcel object ids."""
    rng = stream(spec, "landcover")
    land = ~terrain.sea
    mat = np.full(frame.shape, GRAVEL, dtype=np.uint8)
    sand_field = fractal(rng, frame.shape, frame.res, 3.0, 400.0)
    mat[sand_field > quantile_threshold(sand_field[land], plan.sand_share)] = SAND
    inland = frame.s - terrain.coast_s > plan.agri_start * frame.extent[0]
    forest_field = fractal(rng, frame.shape, frame.res, 2.8, 300.0)
    zone = inland & land & ~town.urban
    mat[zone & (forest_field > quantile_threshold(forest_field[zone], plan.forest_share))] = FOREST
    parcel_mat, parcel_obj = _parcels(rng, plan, frame, terrain, inland & ~town.urban)
    farmed = parcel_mat > 0
    mat[farmed] = parcel_mat[farmed]
    mat[town.urban] = town.material[town.urban]
    if plan.highway and plan.town:
        mat[_highway(plan, frame) & ~town.urban] = ROAD
    if terrain.chan_dist is not None:
        bank = (terrain.chan_dist >= plan.bed_half_m) & (terrain.chan_dist < plan.bed_half_m + 10)
        trees = fractal(rng, frame.shape, frame.res, 2.5, 60.0) > 0.3
        mat[bank & trees & ~town.urban & (frame.s - terrain.coast_s > 80.0)] = FOREST
        mat[terrain.chan_dist < plan.bed_half_m] = WADI_BED
    if plan.lake:
        mat[_lake(rng, frame, terrain) & ~town.urban] = LAKE
    mat[terrain.sea] = SEA
    parcel_obj = np.where(farmed & np.isin(mat, (CROP, FALLOW)), parcel_obj, 0)
    return mat, parcel_obj.astype(np.int32)


def _parcels(
    rng: np.random.Generator, plan: Plan, frame: CanonicalFrame, terrain: Terrain, zone: Array
) -> tuple[Array, Array]:
    """Rectangular fields on their own rotated grid; some fallow, tracks between them."""
    angle = rng.uniform(0, math.pi / 2)
    cos, sin = math.cos(angle), math.sin(angle)
    u = cos * frame.t + sin * frame.s
    v = -sin * frame.t + cos * frame.s
    half = math.hypot(*frame.extent) + 200.0
    n = int(2 * half / 60.0) + 3
    edges = [
        np.concatenate([[-half], -half + np.cumsum(rng.uniform(60.0, 170.0, n))]) for _ in range(2)
    ]
    iu = np.clip(np.searchsorted(edges[0], u, side="right") - 1, 0, n - 1)
    iv = np.clip(np.searchsorted(edges[1], v, side="right") - 1, 0, n - 1)
    border = np.minimum(
        np.minimum(u - edges[0][iu], edges[0][iu + 1] - u),
        np.minimum(v - edges[1][iv], edges[1][iv + 1] - v),
    )
    pid = iu * n + iv
    suit = fractal(rng, frame.shape, frame.res, 3.0, 700.0)
    if terrain.chan_dist is not None:
        suit = suit + 1.2 * np.exp(-((terrain.chan_dist / 400.0) ** 2))  # oasis effect
    score = np.zeros(n * n, np.float32)
    counts = np.bincount(pid[zone], minlength=n * n)
    sums = np.bincount(pid[zone], weights=suit[zone], minlength=n * n)
    ok = counts > 0
    score[ok] = sums[ok] / counts[ok]
    score[~ok] = -np.inf
    farmed = score > quantile_threshold(score[ok], plan.agri_share) if ok.any() else ok
    fallow = rng.random(n * n) < 0.25
    cell = farmed[pid] & zone
    mat = np.where(cell, np.where(fallow[pid], FALLOW, CROP), 0).astype(np.uint8)
    mat[cell & (border < 2.5)] = GRAVEL  # field tracks
    obj = np.where(mat > 0, pid + 1, 0)
    return mat, obj


def _highway(plan: Plan, frame: CanonicalFrame) -> Array:
    """A straight road from the town centre to the inland edge."""
    s0 = plan.town_centre[0] * frame.extent[0]
    t0 = plan.town_centre[1] * frame.extent[1]
    cos, sin = math.cos(plan.highway_angle), math.sin(plan.highway_angle)
    along = (frame.s - s0) * cos + (frame.t - t0) * sin
    across = np.abs((frame.s - s0) * sin - (frame.t - t0) * cos)
    return (along > 0) & (across < 5.0)


def _lake(rng: np.random.Generator, frame: CanonicalFrame, terrain: Terrain) -> Array:
    """A pond in the lowest part of one smooth blob."""
    blob = fractal(rng, frame.shape, frame.res, 3.5, 500.0) - 0.02 * terrain.z
    mask = blob > quantile_threshold(blob, 0.03)
    if terrain.chan_dist is not None:
        mask &= terrain.chan_dist > 60.0
    return mask


# ---------------------------------------------------------------------------------------
# Flood and damage


def _flood_extent(
    spec: SceneSpec, plan: Plan, frame: CanonicalFrame, terrain: Terrain, pre: Array
) -> Array:
    """New water: the wadi and low ground beside it (height above the channel below a
    flood depth chosen to reach the planned share), plus an optional coastal surge."""
    pre_water = np.isin(pre, (SEA, LAKE))
    flooded = np.zeros(frame.shape, bool)
    if terrain.hand is not None and terrain.chan_dist is not None:
        bed = terrain.chan_dist < plan.bed_half_m
        reach = (terrain.chan_dist < plan.flood_reach_m) & ~pre_water
        target = plan.flood_share * pre.size
        share = min(1.0, target / max(1, int(reach.sum())))
        depth = -quantile_threshold(-terrain.hand[reach], share)
        depth = float(np.clip(depth, 0.5, plan.incision_m + plan.valley_depth_m + 4.0))
        flooded = _connected_to(reach & (terrain.hand < depth) | bed, bed & ~pre_water)
    if plan.surge_m > 0:
        low = (terrain.z < plan.surge_m) & ~terrain.sea
        flooded |= _connected_to(low | terrain.sea, terrain.sea) & low
    return flooded & ~pre_water


def _connected_to(mask: Array, seeds: Array) -> Array:
    """Parts of `mask` connected to a seed pixel: water cannot jump over a ridge."""
    labels, _ = ndimage.label(mask)
    keep = np.unique(labels[seeds & mask])
    keep = keep[keep > 0]
    return np.isin(labels, keep)


def _post_materials(
    spec: SceneSpec, frame: CanonicalFrame, pre: Array, obj: Array, new_flood: Array
) -> tuple[Array, Array]:
    """Flooded ground becomes water; buildings near the flood edge may be destroyed
    (rubble, barren); dry soil beside the flood is wet."""
    rng = stream(spec, "damage")
    post = pre.copy()
    post[new_flood] = FLOOD
    if not new_flood.any():
        return post, np.zeros(frame.shape, np.float32)
    dist = ndimage.distance_transform_edt(~new_flood, sampling=frame.res).astype(np.float32)
    building = post == BUILDING
    lots = obj[building]
    if lots.size:
        nearest = np.full(int(obj.max()) + 1, np.inf, np.float32)
        np.minimum.at(nearest, lots, dist[building])
        p_destroy = np.where(nearest < 12.0, 0.75, np.where(nearest < 35.0, 0.35, 0.0))
        destroyed = rng.random(nearest.size) < p_destroy
        post[building & destroyed[obj]] = RUBBLE
    dry_land = ~np.isin(post, (SEA, LAKE, FLOOD))
    wet = np.where(dry_land, np.clip(1.0 - dist / 20.0, 0.0, 1.0), 0.0).astype(np.float32)
    return post, wet


# ---------------------------------------------------------------------------------------
# SAR rendering


@dataclass
class Looks:
    """Appearance randomness of the ground, shared by both periods."""

    draws: Array  # (4, n_obj) uniform per object: roof/backscatter, brightness, vigour, spread
    sar_texture: Array
    sea_state: dict[str, Array]  # water roughness changes with the wind between dates
    fine: Array  # optical texture, metre scale
    broad: Array  # optical texture, hundred-metre scale


def draw_looks(spec: SceneSpec, world: World) -> Looks:
    shape, res = world.obj.shape, spec.resolution
    opt = stream(spec, "optical-texture")
    return Looks(
        draws=stream(spec, "objects").random((4, world.n_obj), dtype=np.float32),
        sar_texture=fractal(stream(spec, "sar-texture"), shape, res, 2.6, 100.0),
        sea_state={
            p: fractal(stream(spec, f"sea-state-{p}"), shape, res, 2.6, 150.0) for p in PERIODS
        },
        fine=fractal(opt, shape, res, 2.0, 40.0),
        broad=fractal(opt, shape, res, 3.0, 300.0),
    )


def crop_vigour(world: World, draws: Array) -> Array:
    return 0.35 + 0.65 * draws[2][world.obj]


def building_height(world: World, mat: Array) -> Array:
    return np.where(mat == BUILDING, world.heights[world.obj], 0.0).astype(np.float32)
