"""Optical rendering: reflectance of the materials, roofs and crops, building and cloud
shadows, clouds and the scene classification."""

from __future__ import annotations

import math

import numpy as np

from metaflood.demo.landscape import Looks, building_height, crop_vigour
from metaflood.demo.materials import (
    BUILDING,
    CLOUD_SHADOW_M,
    CLOUD_SPECTRUM,
    CROP,
    CROP_SOIL,
    FALLOW,
    FLOOD,
    OPTICAL_BANDS,
    OPTICAL_PSF_PX,
    ROOF_SPECTRA,
    SCL_CLOUD_HIGH,
    SCL_CLOUD_MEDIUM,
    SCL_CLOUD_SHADOW,
    SCL_NOT_VEGETATED,
    SCL_VEGETATION,
    SCL_WATER,
    SENSOR_NOISE,
    SHADOW_FACTOR,
    SPECTRA,
    SUN_AZIMUTH_DEG,
    SUN_ELEVATION_DEG,
    SWIR,
    WET_DARKENING,
    Array,
)
from metaflood.demo.noise import fractal, quantile_threshold, stream
from metaflood.demo.sensor import cast_shadow, sensor_view
from metaflood.demo.spec import SceneSpec
from metaflood.demo.terrain import World
from metaflood.demo.weather import cloud_field

# ---------------------------------------------------------------------------------------
# Optical rendering


def render_optical(spec: SceneSpec, world: World, looks: Looks, period: str) -> tuple[Array, Array]:
    """Ground reflectance -> shifted to the period's optical geometry -> SCL of the
    ground -> clouds and cloud shadows (post) -> sensor noise."""
    ground = _optical_ground(spec, world, looks, period)
    base = spec.post_offset_px if period == "post" else (0.0, 0.0)
    offset = (base[0] + spec.optical_offset_px[0], base[1] + spec.optical_offset_px[1])
    ground = sensor_view(ground, offset, OPTICAL_PSF_PX)
    scl = _ground_scl(ground)
    if period == "post" and spec.cloud_fraction > 0:
        ground, scl = _add_clouds(spec, ground, scl)
    # SWIR's noise has its own stream, so the other bands are those rendered without it.
    vnir = stream(spec, f"optical-noise-{period}")
    swir = stream(spec, f"optical-noise-swir16-{period}")
    ground[:SWIR] += vnir.normal(0.0, SENSOR_NOISE, ground[:SWIR].shape).astype(np.float32)
    ground[SWIR] += swir.normal(0.0, SENSOR_NOISE, ground[SWIR].shape).astype(np.float32)
    return np.clip(ground, 0.0, 1.0).astype(np.float32), scl


def _optical_ground(spec: SceneSpec, world: World, looks: Looks, period: str) -> Array:
    """Spectra per material and object, texture, post-event turbidity and mud, shadows."""
    mat = world.materials[period]
    draws, fine, broad = looks.draws, looks.fine, looks.broad
    refl = np.moveaxis(SPECTRA[mat], -1, 0).copy()
    _paint_roofs(refl, mat, world.obj, draws)
    _paint_crops(refl, mat, world, draws)
    refl *= (1.0 + 0.05 * fine + 0.06 * broad)[None]
    if period == "post":
        turbid = 1.0 + 0.15 * broad
        refl = np.where((mat == FLOOD)[None], refl * turbid[None], refl)
        refl *= 1.0 - WET_DARKENING[:, None, None] * world.wet[None]  # damp mud is darker
    refl = _building_shadows(spec, world, mat, refl)
    if world.relief is not None:
        refl = refl * np.where(world.relief > 0, _hillshade(spec, world), np.float32(1.0))[None]
    gain = stream(spec, f"illumination-{period}").uniform(0.96, 1.04)
    return (refl * np.float32(gain)).astype(np.float32)


def _paint_roofs(refl: Array, mat: Array, obj: Array, draws: Array) -> None:
    building = mat == BUILDING
    ids = obj[building]
    kind = np.minimum((draws[0][ids] * len(ROOF_SPECTRA)).astype(int), len(ROOF_SPECTRA) - 1)
    bright = 0.85 + 0.3 * draws[1][ids]
    refl[:, building] = (ROOF_SPECTRA[kind] * bright[:, None]).T


def _paint_crops(refl: Array, mat: Array, world: World, draws: Array) -> None:
    crop = mat == CROP
    v = crop_vigour(world, draws)[crop][:, None]
    refl[:, crop] = (CROP_SOIL * (1.0 - v) + SPECTRA[CROP] * v).T
    fallow = mat == FALLOW
    refl[:, fallow] *= (0.85 + 0.3 * draws[3][world.obj[fallow]])[None]


def _building_shadows(spec: SceneSpec, world: World, mat: Array, refl: Array) -> Array:
    """Buildings cast shadows away from the sun, length = height / tan(sun elevation)."""
    height = building_height(world, mat)
    ratio = 1.0 / math.tan(math.radians(SUN_ELEVATION_DEG))
    away = math.radians(SUN_AZIMUTH_DEG + 180.0)
    shadow = cast_shadow(height, ratio, (-math.cos(away), math.sin(away)), spec.resolution)
    factor = np.where(shadow[None], SHADOW_FACTOR[:, None, None], np.float32(1.0))
    return refl * factor


def _hillshade(spec: SceneSpec, world: World) -> Array:
    """Direct sunlight on steep terrain relative to flat ground (Lambert), floored by
    the sky light that shadows keep."""
    east = np.gradient(world.elevation, spec.resolution, axis=1)
    north = -np.gradient(world.elevation, spec.resolution, axis=0)
    az, el = math.radians(SUN_AZIMUTH_DEG), math.radians(SUN_ELEVATION_DEG)
    sun = (math.sin(az) * math.cos(el), math.cos(az) * math.cos(el), math.sin(el))
    lit = (-east * sun[0] - north * sun[1] + sun[2]) / np.sqrt(1.0 + east**2 + north**2)
    return np.clip(lit / sun[2], 0.35, 1.4).astype(np.float32)


def _ground_scl(refl: Array) -> Array:
    """Spectral rules in the spirit of Sen2Cor: water by NDWI, vegetation by NDVI."""
    green, red, nir = (refl[OPTICAL_BANDS.index(b)] for b in ("green", "red", "nir"))
    with np.errstate(invalid="ignore", divide="ignore"):
        ndwi = (green - nir) / (green + nir)
        ndvi = (nir - red) / (nir + red)
    scl = np.full(refl.shape[1:], SCL_NOT_VEGETATED, dtype=np.uint8)
    scl[ndvi > 0.4] = SCL_VEGETATION
    scl[ndwi > 0.15] = SCL_WATER
    return scl


def _add_clouds(spec: SceneSpec, ground: Array, scl: Array) -> tuple[Array, Array]:
    """Fractal clouds covering `cloud_fraction` of the scene, soft edges, offset shadows.
    Clouds belong to the post scene, so they are not shifted with the ground."""
    field, rng = cloud_field(spec, scl.shape)
    puff = fractal(rng, scl.shape, spec.resolution, 2.2, 150.0)
    if spec.cloud_fraction >= 1.0:
        cloud = np.ones(scl.shape, bool)
        thr = float(field.min()) - 1e-3
    else:
        thr = quantile_threshold(field, spec.cloud_fraction)
        cloud = field > thr
    alpha = np.where(cloud, np.clip((field - thr) / 0.6, 0.0, 1.0) ** 0.7, 0.0).astype(np.float32)
    shadow = _cloud_shadow(spec, alpha) * ~cloud
    ground = ground * (1.0 - 0.6 * shadow)[None]
    cloud_refl = CLOUD_SPECTRUM[:, None, None] * (0.9 + 0.12 * puff)[None]
    ground = ground * (1.0 - alpha)[None] + cloud_refl * alpha[None]
    scl = scl.copy()
    scl[shadow > 0.25] = SCL_CLOUD_SHADOW
    scl[cloud] = np.where(alpha[cloud] >= 0.5, SCL_CLOUD_HIGH, SCL_CLOUD_MEDIUM)
    return ground.astype(np.float32), scl


def _cloud_shadow(spec: SceneSpec, alpha: Array) -> Array:
    """The cloud opacity moved away from the sun; the noise is periodic, so rolling
    brings in shadows of clouds just outside the scene."""
    away = math.radians(SUN_AZIMUTH_DEG + 180.0)
    d = CLOUD_SHADOW_M / spec.resolution
    off = (round(-math.cos(away) * d), round(math.sin(away) * d))
    return np.roll(alpha, off, axis=(0, 1))
