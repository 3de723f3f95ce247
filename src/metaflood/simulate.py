"""Deterministic synthetic flood events: terrain, land cover, flood, SAR and optical scenes.

The demo event and the demo model's training tiles both come from here, so the scenes
have to be physically plausible: a model trained on them should learn backscatter and
spectra, not rendering artefacts. Everything is generated from named random streams
derived from one seed, so changing one knob (say the cloud fraction) leaves every other
component bit-identical. All geometry is in metres, so a scene rendered at another
resolution shows the same place.

Pipeline: a layout plan -> terrain and wadi (elevation, height above the channel) ->
pre-event materials (finer than the eight classes: sand and gravel are both barren but
look different) -> the flood and its damage -> per-period rendering of SAR and optical
fields, shifted by the injected mis-registration before speckle and sensor noise.
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import fft as sfft
from scipy import ndimage

from metaflood import classes as C
from metaflood.sar import to_linear

PERIODS = ("pre", "post")
SAR_BANDS = ("VV", "VH")
OPTICAL_BANDS = ("blue", "green", "red", "nir", "swir16")

# Sentinel-2 L2A scene-classification codes used by the simulator.
SCL_NODATA, SCL_CLOUD_SHADOW, SCL_VEGETATION, SCL_NOT_VEGETATED = 0, 3, 4, 5
SCL_WATER, SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH = 6, 8, 9

# ---------------------------------------------------------------------------------------
# Materials: what the renderer needs to know, finer than the land-cover legend.
(
    YARD,
    BUILDING,
    ROAD,
    SEA,
    LAKE,
    FLOOD,
    GRAVEL,
    SAND,
    WADI_BED,
    RUBBLE,
    FOREST,
    CROP,
    FALLOW,
    PITCH,
    TRACK,
) = range(15)
N_MATERIALS = 15

MATERIAL_CLASS = np.array(
    [
        C.BACKGROUND,  # yard
        C.BUILDING,
        C.ROAD,
        C.WATER,  # sea
        C.WATER,  # lake
        C.WATER,  # flood
        C.BARREN,  # gravel / rocky desert
        C.BARREN,  # smooth sand
        C.BARREN,  # wadi bed
        C.BARREN,  # rubble of destroyed buildings
        C.FOREST,
        C.AGRICULTURAL,  # crop
        C.AGRICULTURAL,  # fallow
        C.PLAYGROUND,  # pitch
        C.PLAYGROUND,  # running track
    ],
    dtype=np.uint8,
)

# C-band mean backscatter (VV, VH) in dB. Double bounce makes buildings bright;
# specular surfaces (water, asphalt, smooth sand) dark; volume scattering raises VH
# relative to VV for vegetation.
SAR_DB = np.array(
    [
        (-10.0, -17.0),  # yard: clutter of walls, paving, small structures
        (2.5, -7.5),  # building (per-building spread added)
        (-18.0, -26.0),  # road
        (-19.0, -26.0),  # sea, wind-roughened
        (-22.0, -28.0),  # lake, calm
        (-22.0, -28.0),  # flood water, calm
        (-11.0, -18.0),  # gravel, rough
        (-19.0, -27.0),  # smooth sand: dark although dry (false-alarm trap)
        (-12.0, -19.0),  # wadi bed gravel
        (-9.0, -16.0),  # rubble
        (-7.0, -13.0),  # forest
        (-10.0, -16.0),  # crop (per-parcel spread added)
        (-12.0, -20.0),  # fallow
        (-13.0, -19.0),  # grass pitch
        (-16.0, -23.0),  # running track
    ],
    dtype=np.float32,
)
# Standard deviation (dB) of the low-frequency within-class texture.
SAR_TEXTURE_DB = np.full(N_MATERIALS, 0.6, dtype=np.float32)
SAR_TEXTURE_DB[[LAKE, FLOOD]] = 0.4
SAR_TEXTURE_DB[SEA] = 0.9  # wind streaks
SAR_TEXTURE_DB[[BUILDING, ROAD]] = 0.3  # per-object spread dominates
# Across-range incidence-angle trend, dB from near range (col 0) to far range.
SAR_RANGE_TREND_DB = 2.0
# Brightening (dB per unit slope) of terrain tilted towards the sensor (looking east).
SAR_SLOPE_DB = 10.0
# Building geometry: the radar looks east at this incidence angle; walls facing it add a
# double-bounce line, the ground behind a building lies in radar shadow (noise floor).
SAR_INCIDENCE_DEG = 38.0
SAR_WALL_DB = 3.0
SAR_SHADOW_DB = np.array((-25.0, -30.0), dtype=np.float32)
# Point spread functions (Gaussian sigma, native pixels): Sentinel-1 GRD resolution is
# about twice its pixel spacing; Sentinel-2's MTF at Nyquist is about 0.2.
SAR_PSF_PX = 0.8
OPTICAL_PSF_PX = 0.6

# Surface reflectance (blue, green, red, nir, swir16). SWIR 1.6 um (Sentinel-2 B11): water
# absorbs it (very dark, even turbid), moisture darkens soil, vegetation is moderate (leaf
# water), dry sand, gravel and concrete are bright, clouds stay bright (snow would not).
SPECTRA = np.array(
    [
        (0.12, 0.14, 0.17, 0.21, 0.26),  # yard
        (0.20, 0.21, 0.22, 0.25, 0.28),  # building (replaced by the roof type)
        (0.09, 0.10, 0.11, 0.13, 0.16),  # road, asphalt
        (0.06, 0.05, 0.03, 0.02, 0.01),  # sea, clear
        (0.05, 0.06, 0.04, 0.025, 0.015),  # lake
        (0.07, 0.10, 0.13, 0.06, 0.03),  # flood water, turbid
        (0.15, 0.19, 0.25, 0.29, 0.36),  # gravel desert
        (0.22, 0.29, 0.38, 0.43, 0.45),  # sand: bright, reddish
        (0.19, 0.22, 0.26, 0.29, 0.33),  # wadi bed
        (0.17, 0.18, 0.20, 0.22, 0.25),  # rubble, dusty grey
        (0.03, 0.05, 0.03, 0.30, 0.15),  # forest
        (0.03, 0.07, 0.04, 0.42, 0.20),  # crop at full vigour (blended with soil)
        (0.11, 0.14, 0.18, 0.23, 0.30),  # fallow, tilled soil
        (0.04, 0.08, 0.05, 0.35, 0.22),  # grass pitch
        (0.10, 0.10, 0.18, 0.24, 0.28),  # running track
    ],
    dtype=np.float32,
)
ROOF_SPECTRA = np.array(
    [
        (0.20, 0.21, 0.22, 0.25, 0.28),  # concrete
        (0.32, 0.33, 0.34, 0.36, 0.30),  # white paint
        (0.09, 0.10, 0.19, 0.26, 0.30),  # red tiles
        (0.07, 0.08, 0.09, 0.11, 0.10),  # dark membrane
    ],
    dtype=np.float32,
)
CROP_SOIL = SPECTRA[FALLOW]
CLOUD_SPECTRUM = np.array((0.46, 0.45, 0.46, 0.48, 0.40), dtype=np.float32)
# Fraction of direct light left in a shadow, per band (blue keeps more: sky light).
SHADOW_FACTOR = np.array((0.50, 0.42, 0.38, 0.35, 0.33), dtype=np.float32)
# Darkening of post-event damp mud at full wetness, per band: water absorbs at 1.6 um.
WET_DARKENING = np.array((0.3, 0.3, 0.3, 0.3, 0.5), dtype=np.float32)
SENSOR_NOISE = 0.004

# Sun: azimuth 150 deg (SSE), elevation 55 deg; shadows fall towards azimuth 330 deg.
SUN_AZIMUTH_DEG = 150.0
SUN_ELEVATION_DEG = 55.0
CLOUD_SHADOW_M = 80.0  # ground displacement of cloud shadows from their clouds

SWIR = OPTICAL_BANDS.index("swir16")

Array = np.ndarray


# ---------------------------------------------------------------------------------------
# Public API


@dataclass(frozen=True)
class SceneSpec:
    """What to simulate. Geometry is in metres, so `resolution` changes the pixel count
    of the same place, not the place; offsets are in native pixels (row, col)."""

    seed: int
    height: int
    width: int
    resolution: float = 1.0
    layout: Literal["town", "random"] = "town"
    cloud_fraction: float = 0.6
    post_optical: bool = True
    post_offset_px: tuple[float, float] = (0.0, 0.0)
    optical_offset_px: tuple[float, float] = (0.0, 0.0)
    enl: float = 4.5

    def __post_init__(self) -> None:
        for name in ("post_offset_px", "optical_offset_px"):  # YAML gives lists
            value = tuple(float(v) for v in getattr(self, name))
            if len(value) != 2 or not all(math.isfinite(v) for v in value):
                raise ValueError(f"{name} must be two finite numbers (row, col), got {value}")
            object.__setattr__(self, name, value)
        if self.seed < 0:
            raise ValueError(f"seed must be non-negative, got {self.seed}")
        if self.height < 16 or self.width < 16:
            raise ValueError(f"scene too small: {self.height} x {self.width} (min 16 x 16)")
        if not self.resolution > 0:
            raise ValueError(f"resolution must be positive, got {self.resolution}")
        if self.layout not in ("town", "random"):
            raise ValueError(f"layout must be 'town' or 'random', got {self.layout!r}")
        if not 0.0 <= self.cloud_fraction <= 1.0:
            raise ValueError(f"cloud_fraction must be in [0, 1], got {self.cloud_fraction}")
        if not self.enl > 0:
            raise ValueError(f"enl must be positive, got {self.enl}")


@dataclass
class SyntheticEvent:
    """Truth on the reference (pre SAR) grid, and the scenes as each sensor saw them."""

    spec: SceneSpec
    elevation: Array
    landcover: dict[str, Array]
    flood: Array
    sar: dict[str, Array]
    optical: dict[str, Array | None]
    scl: dict[str, Array | None]
    cloud_cover: dict[str, float]


def simulate_event(spec: SceneSpec) -> SyntheticEvent:
    """Generate one event; the same spec always gives bit-identical arrays."""
    plan = _draw_plan(spec)
    world = _build_world(spec, plan)
    looks = _draw_looks(spec, world)
    sar = {p: _render_sar(spec, world, looks, p) for p in PERIODS}
    optical: dict[str, Array | None] = {}
    scl: dict[str, Array | None] = {}
    cloud_cover: dict[str, float] = {}
    for period in PERIODS:
        if period == "post" and not spec.post_optical:
            optical[period] = scl[period] = None
            continue
        optical[period], scl[period] = _render_optical(spec, world, looks, period)
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
    )


# ---------------------------------------------------------------------------------------
# Random streams and noise


def _rng(spec: SceneSpec, name: str) -> np.random.Generator:
    """An independent stream per component, so one knob never perturbs another."""
    key = zlib.crc32(name.encode())
    return np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(key,)))


def _fractal(
    rng: np.random.Generator, shape: tuple[int, int], res: float, beta: float, outer_m: float
) -> Array:
    """Zero-mean unit-variance 1/f^beta noise; `outer_m` caps the largest features so
    the field looks the same whatever the scene size or resolution."""
    amp = _spectrum_amplitude(shape, res, beta, outer_m)
    spec = np.empty(amp.shape, dtype=np.complex64)
    spec.real = rng.standard_normal(amp.shape, dtype=np.float32) * amp
    spec.imag = rng.standard_normal(amp.shape, dtype=np.float32) * amp
    return _standardise(sfft.irfft2(spec, s=shape, workers=-1))


@functools.lru_cache(maxsize=16)
def _spectrum_amplitude(shape: tuple[int, int], res: float, beta: float, outer_m: float) -> Array:
    """Cached: the same spectra are reused for many fields and scenes (read-only)."""
    h, w = shape
    fy = sfft.fftfreq(h, d=res).astype(np.float32)[:, None]
    fx = sfft.rfftfreq(w, d=res).astype(np.float32)[None, :]
    amp = (fy * fy + fx * fx + np.float32(1.0 / outer_m) ** 2) ** np.float32(-beta / 4.0)
    amp[0, 0] = 0.0
    amp.flags.writeable = False
    return amp


def _fractal_1d(rng: np.random.Generator, n: int, res: float, beta: float, outer_m: float) -> Array:
    """1-D version of `_fractal`, for coastlines and meanders."""
    f = sfft.rfftfreq(n, d=res)
    amp = (f * f + (1.0 / outer_m) ** 2) ** (-beta / 4.0)
    amp[0] = 0.0
    spec = (rng.standard_normal(amp.shape) + 1j * rng.standard_normal(amp.shape)) * amp
    return _standardise(sfft.irfft(spec, n=n))


def _standardise(field: Array) -> Array:
    field = field.astype(np.float32, copy=False)
    field -= field.mean()
    std = field.std()
    return field / std if std > 0 else field


def _quantile_threshold(values: Array, share: float) -> float:
    """Threshold above which `share` of `values` lie (exact, via partition)."""
    flat = values.ravel()
    if flat.size == 0 or share <= 0:
        return math.inf
    k = min(flat.size - 1, max(0, int(round((1.0 - share) * flat.size))))
    return float(np.partition(flat, k)[k])


# ---------------------------------------------------------------------------------------
# Layout plan


@dataclass(frozen=True)
class _Plan:
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


def _draw_plan(spec: SceneSpec) -> _Plan:
    rng = _rng(spec, "plan")
    return _town_plan(rng) if spec.layout == "town" else _random_plan(rng)


def _town_plan(rng: np.random.Generator) -> _Plan:
    """The Derna-like demo: sea north, wadi through a coastal town, farms inland."""
    coast = float(rng.uniform(0.10, 0.14))
    wadi = float(rng.uniform(0.45, 0.55))
    return _Plan(
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


def _random_plan(rng: np.random.Generator) -> _Plan:
    """Varied layouts for training tiles: any ingredient may be absent or anywhere."""
    coast = bool(rng.random() < 0.55)
    coast_frac = float(rng.uniform(0.05, 0.35))
    wadi = bool(rng.random() < 0.7)
    town = bool(rng.random() < 0.8)
    s_town = coast_frac + float(rng.uniform(0.1, 0.4)) if coast else float(rng.uniform(0.2, 0.8))
    return _Plan(
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
class _Frame:
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


def _frame(spec: SceneSpec, edge: str) -> _Frame:
    if edge in ("north", "south"):
        return _Frame(spec.resolution, spec.height, spec.width)
    return _Frame(spec.resolution, spec.width, spec.height)


def _orient(a: Array, edge: str) -> Array:
    """Canonical (s, t) raster -> image (row, col) raster, north up."""
    out = {
        "north": a,
        "south": a[::-1],
        "west": a.T,
        "east": a.T[:, ::-1],
    }[edge]
    return np.ascontiguousarray(out)


# ---------------------------------------------------------------------------------------
# World: terrain, land cover, flood (canonical frame, then oriented to the image)


@dataclass
class _World:
    elevation: Array  # float32 m
    materials: dict[str, Array]  # uint8 material ids per period
    flood: Array  # uint8 0/1/2
    obj: Array  # int32 object id (building lot or parcel), 0 = none
    n_obj: int
    heights: Array  # float32 building height per object id
    wet: Array  # float32 0..1 post-event soil wetness beside the flood


@dataclass
class _Terrain:
    coast_s: Array  # (1, nt) coastline position, m (a virtual one off-scene without coast)
    sea: Array  # bool
    z: Array  # float32 elevation, m
    chan_dist: Array | None  # m from the wadi centreline
    hand: Array | None  # m above the nearest channel point


def _build_world(spec: SceneSpec, plan: _Plan) -> _World:
    frame = _frame(spec, plan.edge)
    terrain = _terrain(spec, plan, frame)
    town = _town(spec, plan, frame, terrain)
    pre, parcel_obj = _pre_materials(spec, plan, frame, terrain, town)
    obj = np.where(town.obj > 0, town.obj, np.where(parcel_obj > 0, parcel_obj + town.n_lots, 0))
    obj = np.where(np.isin(pre, (BUILDING, CROP, FALLOW)), obj, 0).astype(np.int32)
    new_flood = _flood_extent(spec, plan, frame, terrain, pre)
    post, wet = _post_materials(spec, frame, pre, obj, new_flood)
    pre_water = np.isin(pre, (SEA, LAKE))
    flood = np.where(new_flood, 1, np.where(pre_water, 2, 0)).astype(np.uint8)
    n_obj = town.n_lots + int(parcel_obj.max(initial=0)) + 1
    heights = np.zeros(n_obj, dtype=np.float32)
    heights[: town.heights.size] = town.heights[:n_obj]
    edge = plan.edge
    return _World(
        elevation=_orient(terrain.z, edge),
        materials={"pre": _orient(pre, edge), "post": _orient(post, edge)},
        flood=_orient(flood, edge),
        obj=_orient(obj, edge),
        n_obj=n_obj,
        heights=heights,
        wet=_orient(wet, edge),
    )


def _terrain(spec: SceneSpec, plan: _Plan, frame: _Frame) -> _Terrain:
    """Elevation rising inland with hills; the wadi incised into a smooth valley floor."""
    rng = _rng(spec, "terrain")
    s_ext, t_ext = frame.extent
    s, res = frame.s, frame.res
    wobble = _fractal_1d(rng, frame.nt, res, 2.5, 600.0)
    if plan.coast:
        coast_s = (plan.coast_frac * s_ext + 25.0 * wobble)[None, :].astype(np.float32)
    else:
        coast_s = np.full((1, frame.nt), -200.0, dtype=np.float32)  # virtual coast off-scene
    s_rel = s - coast_s
    hills = _fractal(rng, frame.shape, res, 3.2, 900.0)
    micro = _fractal(rng, frame.shape, res, 2.5, 80.0)
    ramp = np.clip(s_rel / 600.0, 0.15, 1.0)
    chan_dist = hand = None
    damp = np.float32(1.0)
    if plan.wadi:
        meander = _fractal_1d(rng, frame.ns, res, 3.5, 700.0)
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
    return _Terrain(coast_s=coast_s, sea=sea, z=z, chan_dist=chan_dist, hand=hand)


def _drainage_level(z: Array, nearest: Array, res: float) -> Array:
    """Channel elevation at the nearest centreline point, smoothed over ~60 m. Nearest-
    point lookup jumps where two meander loops are equidistant; unsmoothed, the flood
    edge would follow those straight seams instead of the terrain."""
    level = z[nearest[0], nearest[1]]
    size = max(1, int(round(60.0 / res))) | 1
    for _ in range(2):  # two box passes: close to a Gaussian, O(n) whatever the size
        level = ndimage.uniform_filter(level, size, mode="nearest")
    return level


def _centreline_mask(frame: _Frame, centre_m: Array) -> Array:
    """Rasterise t = centre(s) as a connected line (each row spans to the next row's t)."""
    col = np.floor(centre_m / frame.res)
    nxt = np.append(col[1:], col[-1])
    lo = np.minimum(col, nxt)[:, None]
    hi = np.maximum(col, nxt)[:, None]
    j = np.arange(frame.nt)[None, :]
    return (j >= lo) & (j <= hi)


def _incision(plan: _Plan, dist: Array) -> Array:
    """Depth cut into the terrain: a flat bed, steep banks and a wide shallow valley."""
    bank = np.clip((plan.bed_half_m + 6.0 - dist) / 6.0, 0.0, 1.0)
    valley = np.exp(-((dist / plan.valley_width_m) ** 2))
    return (plan.incision_m * bank + plan.valley_depth_m * valley).astype(np.float32)


# ---------------------------------------------------------------------------------------
# Town: a rotated road grid, blocks, lots, buildings, sports grounds


@dataclass
class _Town:
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


def _empty_town(frame: _Frame) -> _Town:
    return _Town(
        urban=np.zeros(frame.shape, bool),
        material=np.zeros(frame.shape, np.uint8),
        obj=np.zeros(frame.shape, np.int32),
        n_lots=0,
        heights=np.zeros(1, np.float32),
    )


def _town(spec: SceneSpec, plan: _Plan, frame: _Frame, terrain: _Terrain) -> _Town:
    if not plan.town:
        return _empty_town(frame)
    rng = _rng(spec, "town")
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
    return _Town(urban | promenade, material, obj.astype(np.int32), n_lots, heights)


def _town_footprint(
    rng: np.random.Generator, plan: _Plan, frame: _Frame, terrain: _Terrain
) -> Array:
    """< 1 inside the town: an ellipse with a ragged edge, never in the sea."""
    s_ext, t_ext = frame.extent
    ds = (frame.s - plan.town_centre[0] * s_ext) / (plan.town_axes[0] * s_ext)
    dt = (frame.t - plan.town_centre[1] * t_ext) / (plan.town_axes[1] * t_ext)
    ragged = _fractal(rng, frame.shape, frame.res, 3.0, 400.0)
    fp = ds * ds + dt * dt + 0.3 * ragged
    return np.where(terrain.sea, np.float32(9.0), fp).astype(np.float32)


def _urban_blocks(
    frame: _Frame,
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


# ---------------------------------------------------------------------------------------
# Pre-event materials outside the town


def _pre_materials(
    spec: SceneSpec, plan: _Plan, frame: _Frame, terrain: _Terrain, town: _Town
) -> tuple[Array, Array]:
    """Compose the land cover by priority: desert < sand < forest < farms < town < wadi
    < lake < sea. Returns materials and parcel object ids."""
    rng = _rng(spec, "landcover")
    land = ~terrain.sea
    mat = np.full(frame.shape, GRAVEL, dtype=np.uint8)
    sand_field = _fractal(rng, frame.shape, frame.res, 3.0, 400.0)
    mat[sand_field > _quantile_threshold(sand_field[land], plan.sand_share)] = SAND
    inland = frame.s - terrain.coast_s > plan.agri_start * frame.extent[0]
    forest_field = _fractal(rng, frame.shape, frame.res, 2.8, 300.0)
    zone = inland & land & ~town.urban
    mat[zone & (forest_field > _quantile_threshold(forest_field[zone], plan.forest_share))] = FOREST
    parcel_mat, parcel_obj = _parcels(rng, plan, frame, terrain, inland & ~town.urban)
    farmed = parcel_mat > 0
    mat[farmed] = parcel_mat[farmed]
    mat[town.urban] = town.material[town.urban]
    if plan.highway and plan.town:
        mat[_highway(plan, frame) & ~town.urban] = ROAD
    if terrain.chan_dist is not None:
        bank = (terrain.chan_dist >= plan.bed_half_m) & (terrain.chan_dist < plan.bed_half_m + 10)
        trees = _fractal(rng, frame.shape, frame.res, 2.5, 60.0) > 0.3
        mat[bank & trees & ~town.urban & (frame.s - terrain.coast_s > 80.0)] = FOREST
        mat[terrain.chan_dist < plan.bed_half_m] = WADI_BED
    if plan.lake:
        mat[_lake(rng, frame, terrain) & ~town.urban] = LAKE
    mat[terrain.sea] = SEA
    parcel_obj = np.where(farmed & np.isin(mat, (CROP, FALLOW)), parcel_obj, 0)
    return mat, parcel_obj.astype(np.int32)


def _parcels(
    rng: np.random.Generator, plan: _Plan, frame: _Frame, terrain: _Terrain, zone: Array
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
    suit = _fractal(rng, frame.shape, frame.res, 3.0, 700.0)
    if terrain.chan_dist is not None:
        suit = suit + 1.2 * np.exp(-((terrain.chan_dist / 400.0) ** 2))  # oasis effect
    score = np.zeros(n * n, np.float32)
    counts = np.bincount(pid[zone], minlength=n * n)
    sums = np.bincount(pid[zone], weights=suit[zone], minlength=n * n)
    ok = counts > 0
    score[ok] = sums[ok] / counts[ok]
    score[~ok] = -np.inf
    farmed = score > _quantile_threshold(score[ok], plan.agri_share) if ok.any() else ok
    fallow = rng.random(n * n) < 0.25
    cell = farmed[pid] & zone
    mat = np.where(cell, np.where(fallow[pid], FALLOW, CROP), 0).astype(np.uint8)
    mat[cell & (border < 2.5)] = GRAVEL  # field tracks
    obj = np.where(mat > 0, pid + 1, 0)
    return mat, obj


def _highway(plan: _Plan, frame: _Frame) -> Array:
    """A straight road from the town centre to the inland edge."""
    s0 = plan.town_centre[0] * frame.extent[0]
    t0 = plan.town_centre[1] * frame.extent[1]
    cos, sin = math.cos(plan.highway_angle), math.sin(plan.highway_angle)
    along = (frame.s - s0) * cos + (frame.t - t0) * sin
    across = np.abs((frame.s - s0) * sin - (frame.t - t0) * cos)
    return (along > 0) & (across < 5.0)


def _lake(rng: np.random.Generator, frame: _Frame, terrain: _Terrain) -> Array:
    """A pond in the lowest part of one smooth blob."""
    blob = _fractal(rng, frame.shape, frame.res, 3.5, 500.0) - 0.02 * terrain.z
    mask = blob > _quantile_threshold(blob, 0.03)
    if terrain.chan_dist is not None:
        mask &= terrain.chan_dist > 60.0
    return mask


# ---------------------------------------------------------------------------------------
# Flood and damage


def _flood_extent(
    spec: SceneSpec, plan: _Plan, frame: _Frame, terrain: _Terrain, pre: Array
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
        depth = -_quantile_threshold(-terrain.hand[reach], share)
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
    spec: SceneSpec, frame: _Frame, pre: Array, obj: Array, new_flood: Array
) -> tuple[Array, Array]:
    """Flooded ground becomes water; buildings near the flood edge may be destroyed
    (rubble, barren); dry soil beside the flood is wet."""
    rng = _rng(spec, "damage")
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
class _Looks:
    """Appearance randomness of the ground, shared by both periods."""

    draws: Array  # (4, n_obj) uniform per object: roof/backscatter, brightness, vigour, spread
    sar_texture: Array
    sea_state: dict[str, Array]  # water roughness changes with the wind between dates
    fine: Array  # optical texture, metre scale
    broad: Array  # optical texture, hundred-metre scale


def _draw_looks(spec: SceneSpec, world: _World) -> _Looks:
    shape, res = world.obj.shape, spec.resolution
    opt = _rng(spec, "optical-texture")
    return _Looks(
        draws=_rng(spec, "objects").random((4, world.n_obj), dtype=np.float32),
        sar_texture=_fractal(_rng(spec, "sar-texture"), shape, res, 2.6, 100.0),
        sea_state={
            p: _fractal(_rng(spec, f"sea-state-{p}"), shape, res, 2.6, 150.0) for p in PERIODS
        },
        fine=_fractal(opt, shape, res, 2.0, 40.0),
        broad=_fractal(opt, shape, res, 3.0, 300.0),
    )


def _render_sar(spec: SceneSpec, world: _World, looks: _Looks, period: str) -> Array:
    """Noise-free ground backscatter -> linear power (the sensor averages power, not
    decibels) -> shifted and blurred to the period's view -> incidence trend -> speckle."""
    ground = to_linear(_sar_ground_db(spec, world, looks, period))
    offset = spec.post_offset_px if period == "post" else (0.0, 0.0)
    power = _sensor_view(ground, offset, SAR_PSF_PX)
    power *= to_linear(_range_trend(spec))[None]
    rng = _rng(spec, f"speckle-{period}")
    speckle = rng.standard_gamma(spec.enl, size=power.shape, dtype=np.float32)
    power *= speckle / np.float32(spec.enl)
    return power


def _crop_vigour(world: _World, draws: Array) -> Array:
    return 0.35 + 0.65 * draws[2][world.obj]


def _sar_ground_db(spec: SceneSpec, world: _World, looks: _Looks, period: str) -> Array:
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
    vigour = _crop_vigour(world, draws)
    out[0] += np.where(crop, 2.0 * (draws[3][world.obj] - 0.5) + 1.5 * (vigour - 0.67), 0.0)
    out[1] += np.where(crop, 2.0 * (draws[3][world.obj] - 0.5) + 4.0 * (vigour - 0.67), 0.0)
    water = np.isin(mat, (SEA, LAKE, FLOOD))
    tex = np.where(water, looks.sea_state[period], tex)
    out += (SAR_TEXTURE_DB[mat] * tex)[None] * np.array([1.0, 1.2], np.float32)[:, None, None]
    out += np.where(water, 0.0, _sensor_facing_slope(spec, world))[None]
    if period == "post":
        out += (1.5 * world.wet)[None]  # wet soil: higher dielectric constant
    return _radar_building_geometry(spec, world, mat, out)


def _radar_building_geometry(spec: SceneSpec, world: _World, mat: Array, db: Array) -> Array:
    """Double bounce at walls facing the sensor (west), radar shadow behind (east)."""
    height = _building_height(world, mat)
    if not height.any():
        return db
    building = height > 0
    step = max(1, round(1.5 / spec.resolution))
    wall = building & ~_shift_int(building, (0, step))
    db += np.where(wall, np.float32(SAR_WALL_DB), np.float32(0.0))[None]
    ratio = math.tan(math.radians(SAR_INCIDENCE_DEG))
    shadow = _cast_shadow(height, ratio, (0.0, 1.0), spec.resolution)
    return np.where(shadow[None], SAR_SHADOW_DB[:, None, None], db)


def _sensor_facing_slope(spec: SceneSpec, world: _World) -> Array:
    """Foreshortening: ground tilted towards the sensor (west, looking east) is brighter."""
    dz_dx = np.gradient(world.elevation, spec.resolution, axis=1)
    return np.clip(SAR_SLOPE_DB * dz_dx, -3.0, 3.0).astype(np.float32)


def _range_trend(spec: SceneSpec) -> Array:
    x = (np.arange(spec.width, dtype=np.float32) + 0.5) / spec.width
    return (SAR_RANGE_TREND_DB * (0.5 - x))[None, :].astype(np.float32)


def _sensor_view(fields: Array, offset: tuple[float, float], psf_px: float) -> Array:
    """What a sensor sees of the noise-free ground: moved by the period's offset and
    blurred by its point spread function. Applying the same PSF to every scene keeps
    pre and post alike; without it the unshifted scene would be sharper than a shifted
    one (interpolation smooths), which biases sub-pixel registration towards integers."""
    moved = _shift(fields, offset)
    out = np.empty_like(moved)
    for band, field in enumerate(moved):
        ndimage.gaussian_filter(field, psf_px, output=out[band], mode="nearest", truncate=3.0)
    return out


def _shift(fields: Array, offset: tuple[float, float]) -> Array:
    """Move the content by (row, col) native pixels; linear, so no ringing at edges."""
    if offset[0] == 0 and offset[1] == 0:
        return fields
    out = np.empty_like(fields)
    for band, field in enumerate(fields):  # 2-D calls: twice as fast as one 3-D call
        ndimage.shift(field, offset, output=out[band], order=1, mode="nearest", prefilter=False)
    return out


# ---------------------------------------------------------------------------------------
# Optical rendering


def _render_optical(
    spec: SceneSpec, world: _World, looks: _Looks, period: str
) -> tuple[Array, Array]:
    """Ground reflectance -> shifted to the period's optical geometry -> SCL of the
    ground -> clouds and cloud shadows (post) -> sensor noise."""
    ground = _optical_ground(spec, world, looks, period)
    base = spec.post_offset_px if period == "post" else (0.0, 0.0)
    offset = (base[0] + spec.optical_offset_px[0], base[1] + spec.optical_offset_px[1])
    ground = _sensor_view(ground, offset, OPTICAL_PSF_PX)
    scl = _ground_scl(ground)
    if period == "post" and spec.cloud_fraction > 0:
        ground, scl = _add_clouds(spec, ground, scl)
    # SWIR's noise has its own stream, so the other bands are those rendered without it.
    vnir = _rng(spec, f"optical-noise-{period}")
    swir = _rng(spec, f"optical-noise-swir16-{period}")
    ground[:SWIR] += vnir.normal(0.0, SENSOR_NOISE, ground[:SWIR].shape).astype(np.float32)
    ground[SWIR] += swir.normal(0.0, SENSOR_NOISE, ground[SWIR].shape).astype(np.float32)
    return np.clip(ground, 0.0, 1.0).astype(np.float32), scl


def _optical_ground(spec: SceneSpec, world: _World, looks: _Looks, period: str) -> Array:
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
    gain = _rng(spec, f"illumination-{period}").uniform(0.96, 1.04)
    return (refl * np.float32(gain)).astype(np.float32)


def _paint_roofs(refl: Array, mat: Array, obj: Array, draws: Array) -> None:
    building = mat == BUILDING
    ids = obj[building]
    kind = np.minimum((draws[0][ids] * len(ROOF_SPECTRA)).astype(int), len(ROOF_SPECTRA) - 1)
    bright = 0.85 + 0.3 * draws[1][ids]
    refl[:, building] = (ROOF_SPECTRA[kind] * bright[:, None]).T


def _paint_crops(refl: Array, mat: Array, world: _World, draws: Array) -> None:
    crop = mat == CROP
    v = _crop_vigour(world, draws)[crop][:, None]
    refl[:, crop] = (CROP_SOIL * (1.0 - v) + SPECTRA[CROP] * v).T
    fallow = mat == FALLOW
    refl[:, fallow] *= (0.85 + 0.3 * draws[3][world.obj[fallow]])[None]


def _building_shadows(spec: SceneSpec, world: _World, mat: Array, refl: Array) -> Array:
    """Buildings cast shadows away from the sun, length = height / tan(sun elevation)."""
    height = _building_height(world, mat)
    ratio = 1.0 / math.tan(math.radians(SUN_ELEVATION_DEG))
    away = math.radians(SUN_AZIMUTH_DEG + 180.0)
    shadow = _cast_shadow(height, ratio, (-math.cos(away), math.sin(away)), spec.resolution)
    factor = np.where(shadow[None], SHADOW_FACTOR[:, None, None], np.float32(1.0))
    return refl * factor


def _building_height(world: _World, mat: Array) -> Array:
    return np.where(mat == BUILDING, world.heights[world.obj], 0.0).astype(np.float32)


def _cast_shadow(height: Array, ratio: float, direction: tuple[float, float], res: float) -> Array:
    """Ground (height 0) hidden behind a building along `direction` (row, col unit
    vector), out to height * ratio metres. Loops over steps, not pixels."""
    shadow = np.zeros(height.shape, bool)
    max_len = float(height.max(initial=0.0)) * ratio
    for step in range(1, int(max_len / res) + 1):
        casts = height * ratio >= step * res
        off = (round(step * direction[0]), round(step * direction[1]))
        shadow |= _shift_int(casts, off)
    return shadow & (height == 0)


def _shift_int(a: Array, off: tuple[int, int]) -> Array:
    """Integer shift with zero fill: out[r + dr, c + dc] = a[r, c]."""
    dr, dc = off
    out = np.zeros_like(a)
    h, w = a.shape
    if abs(dr) >= h or abs(dc) >= w:
        return out
    out[max(dr, 0) : h + min(dr, 0), max(dc, 0) : w + min(dc, 0)] = a[
        max(-dr, 0) : h + min(-dr, 0), max(-dc, 0) : w + min(-dc, 0)
    ]
    return out


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
    rng = _rng(spec, "clouds")
    field = _fractal(rng, scl.shape, spec.resolution, 3.0, 1500.0)
    puff = _fractal(rng, scl.shape, spec.resolution, 2.2, 150.0)
    if spec.cloud_fraction >= 1.0:
        cloud = np.ones(scl.shape, bool)
        thr = float(field.min()) - 1e-3
    else:
        thr = _quantile_threshold(field, spec.cloud_fraction)
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
