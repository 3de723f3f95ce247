"""SAR rendering: backscatter of the materials, terrain and building geometry, speckle."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from metaflood.core.sar import to_linear
from metaflood.demo.landscape import Looks, building_height, crop_vigour
from metaflood.demo.materials import (
    BUILDING,
    CROP,
    FLOOD,
    LAKE,
    SAR_DB,
    SAR_INCIDENCE_DEG,
    SAR_LAYOVER_DB,
    SAR_PSF_PX,
    SAR_RANGE_TREND_DB,
    SAR_RELIEF_TONE_DB,
    SAR_SHADOW_DB,
    SAR_SLOPE_DB,
    SAR_TEXTURE_DB,
    SAR_WALL_DB,
    SEA,
    Array,
)
from metaflood.demo.noise import stream
from metaflood.demo.sensor import cast_shadow, radar_terrain, sensor_view, shift_int
from metaflood.demo.spec import SceneSpec
from metaflood.demo.terrain import World

# ---------------------------------------------------------------------------------------
# SAR rendering


def render_sar(spec: SceneSpec, world: World, looks: Looks, period: str) -> list[Array]:
    """Noise-free ground backscatter -> linear power (the sensor averages power, not
    decibels) -> shifted and blurred to the period's view -> incidence trend -> speckle.
    One scene per period, except `spec.pre_sar_scenes` before the event: the same
    ground under independent speckle (streams "speckle-pre", then "speckle-pre-1"...)."""
    ground = to_linear(_sar_ground_db(spec, world, looks, period))
    offset = spec.post_offset_px if period == "post" else (0.0, 0.0)
    power = sensor_view(ground, offset, SAR_PSF_PX)
    power *= to_linear(_range_trend(spec))[None]
    repeats = spec.pre_sar_scenes if period == "pre" else 1
    names = [f"speckle-{period}"] + [f"speckle-{period}-{k}" for k in range(1, repeats)]
    scenes = [power * _speckle(spec, name, power.shape) for name in names[1:]]
    power *= _speckle(spec, names[0], power.shape)  # in place: the scene as it always was
    return [power, *scenes]


def _speckle(spec: SceneSpec, name: str, shape: tuple[int, ...]) -> Array:
    """Multiplicative speckle of unit mean: gamma with `spec.enl` looks."""
    rng = stream(spec, name)
    return rng.standard_gamma(spec.enl, size=shape, dtype=np.float32) / np.float32(spec.enl)


def _sar_ground_db(spec: SceneSpec, world: World, looks: Looks, period: str) -> Array:
    """Class means with per-object spread, within-class texture, terrain tilt, wetness."""
    mat = world.materials[period]
    draws, tex = looks.draws, looks.sar_texture
    out = np.empty((2, *mat.shape), dtype=np.float32)
    out[0] = SAR_DB[mat, 0]
    out[1] = SAR_DB[mat, 1]
    building = mat == BUILDING
    dev = (draws[0][world.obj] - 0.5) * 5.0  # buildings 0..+5 dB VV
    out[0] += np.where(building, dev, 0.0)
    out[1] += np.where(building, dev - (draws[1][world.obj] - 0.5) * 2.0, 0.0)
    crop = mat == CROP
    vigour = crop_vigour(world, draws)
    out[0] += np.where(crop, 2.0 * (draws[3][world.obj] - 0.5) + 1.5 * (vigour - 0.67), 0.0)
    out[1] += np.where(crop, 2.0 * (draws[3][world.obj] - 0.5) + 4.0 * (vigour - 0.67), 0.0)
    water = np.isin(mat, (SEA, LAKE, FLOOD))
    tex = np.where(water, looks.sea_state[period], tex)
    out += (SAR_TEXTURE_DB[mat] * tex)[None] * np.array([1.0, 1.2], np.float32)[:, None, None]
    slope_db = _sensor_facing_slope(spec, world)
    if world.relief is not None:
        slope_db = np.where(world.relief > 0, _relief_tone(spec, world), slope_db)
    out += np.where(water, 0.0, slope_db)[None]
    if period == "post":
        out += (1.5 * world.wet)[None]  # wet soil: higher dielectric constant
    out = _radar_building_geometry(spec, world, mat, out)
    if world.relief is not None:
        out = _radar_terrain_geometry(spec, world, out)
    return out


def _relief_tone(spec: SceneSpec, world: World) -> Array:
    """On steep terrain the tone follows the local incidence angle (incidence minus the
    slope towards the radar): back slopes dark, fore slopes bright, within bounds."""
    dz_dx = np.gradient(world.elevation, spec.resolution, axis=1)
    local = math.radians(SAR_INCIDENCE_DEG) - np.arctan(dz_dx)
    ratio = np.maximum(np.cos(local), 0.01) / math.cos(math.radians(SAR_INCIDENCE_DEG))
    return np.clip(20.0 * np.log10(ratio), *SAR_RELIEF_TONE_DB).astype(np.float32)


def relief_radar_geometry(spec: SceneSpec, world: World) -> tuple[Array, Array]:
    """Radar shadow and layover of the look-alike mesas: on the mesas and the ground
    their shadow can reach, so the rest of the scene (the wadi's banks) renders as it
    does without them."""
    if world.relief is None or not (world.relief > 0).any():
        empty = np.zeros(world.elevation.shape, bool)
        return empty, empty
    reach = float(world.relief.max()) * math.tan(math.radians(SAR_INCIDENCE_DEG))
    near = ndimage.distance_transform_edt(world.relief <= 0, sampling=spec.resolution)
    near = near <= reach + spec.resolution
    shadow, layover = radar_terrain(world.elevation, spec.resolution, SAR_INCIDENCE_DEG)
    return shadow & near, layover & near


def _radar_terrain_geometry(spec: SceneSpec, world: World, db: Array) -> Array:
    """Layover brightens faces steeper than the incidence angle towards the radar; the
    ground hidden from the radar returns only the noise floor."""
    shadow, layover = relief_radar_geometry(spec, world)
    db = np.where(layover[None], db + np.float32(SAR_LAYOVER_DB), db)
    return np.where(shadow[None], SAR_SHADOW_DB[:, None, None], db).astype(np.float32)


def _radar_building_geometry(spec: SceneSpec, world: World, mat: Array, db: Array) -> Array:
    """Double bounce at walls facing the sensor (west), radar shadow behind (east)."""
    height = building_height(world, mat)
    if not height.any():
        return db
    building = height > 0
    step = max(1, round(1.5 / spec.resolution))
    wall = building & ~shift_int(building, (0, step))
    db += np.where(wall, np.float32(SAR_WALL_DB), np.float32(0.0))[None]
    ratio = math.tan(math.radians(SAR_INCIDENCE_DEG))
    shadow = cast_shadow(height, ratio, (0.0, 1.0), spec.resolution)
    return np.where(shadow[None], SAR_SHADOW_DB[:, None, None], db)


def _sensor_facing_slope(spec: SceneSpec, world: World) -> Array:
    """Foreshortening: ground tilted towards the sensor (west, looking east) is brighter."""
    dz_dx = np.gradient(world.elevation, spec.resolution, axis=1)
    return np.clip(SAR_SLOPE_DB * dz_dx, -3.0, 3.0).astype(np.float32)


def _range_trend(spec: SceneSpec) -> Array:
    x = (np.arange(spec.width, dtype=np.float32) + 0.5) / spec.width
    return (SAR_RANGE_TREND_DB * (0.5 - x))[None, :].astype(np.float32)
