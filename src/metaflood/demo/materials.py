"""The simulator's bands, scene-classification codes and materials: land-cover class,
C-band backscatter and surface reflectance of each, and the sun and sensor constants."""

from __future__ import annotations

import numpy as np

from metaflood.core import classes as C

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
    SMOOTH_FLAT,
    CRUST,
    WET_CRUST,
) = range(18)
N_MATERIALS = 18

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
        C.BARREN,  # smooth flat: clay pan or tarmac apron on high ground (look-alike)
        C.BARREN,  # silt crust, rough while dry
        C.BARREN,  # the crust after the rain: slaked smooth and damp (look-alike)
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
        (-21.5, -28.5),  # smooth flat: specular, as dark as calm water in both periods
        (-13.0, -20.0),  # silt crust, dry
        (-21.0, -28.0),  # wet crust: sealed smooth by the rain, water-dark after the event
    ],
    dtype=np.float32,
)
# Standard deviation (dB) of the low-frequency within-class texture.
SAR_TEXTURE_DB = np.full(N_MATERIALS, 0.6, dtype=np.float32)
SAR_TEXTURE_DB[[LAKE, FLOOD, SMOOTH_FLAT, WET_CRUST]] = 0.4
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
# Steep terrain (the look-alike mesas): faces steeper than the incidence angle lie over
# the ground in front of them (layover, bright); the tone of other slopes follows the
# local incidence angle, within these bounds (dB).
SAR_LAYOVER_DB = 6.0
SAR_RELIEF_TONE_DB = (-10.0, 6.0)
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
        (0.24, 0.30, 0.36, 0.40, 0.43),  # smooth flat, pale clay
        (0.20, 0.25, 0.31, 0.35, 0.39),  # silt crust
        (0.12, 0.15, 0.19, 0.22, 0.20),  # wet crust: damp, darker, not water
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
