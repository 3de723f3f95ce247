"""Slope, aspect and the SAR side-looking geometry over a DEM: local incidence, radar
shadow and layover.

Conventions (all angles in degrees):

- Grid: north-up, rows run south, columns east. `dx`, `dy` are the pixel's width and
  height in metres (`pixel_size_m` converts a geographic grid at each row's latitude).
- Aspect: the compass azimuth (clockwise from north) the slope faces, i.e. downhill.
- Look azimuth: the compass azimuth of the range direction on the ground, from the
  sensor towards the scene. A right-looking sensor (Sentinel-1) looks 90° clockwise
  of its heading (the azimuth of its ground track): ascending passes head about 350°
  and look about 80° (east), descending passes head about 190° and look about 280°
  (west). `look_azimuth` derives it from the orbit direction and, better, the scene's
  heading.
- Incidence: the angle between the radar ray and the vertical at the ground (ellipsoid),
  a scalar or one value per pixel.

Along a range line, with `s` the ground distance away from the sensor and `h` the
height, a point is in **shadow** when an earlier point rises above the ray reaching
it: max over s' < s of (h' + s'·cot θ) > h + s·cot θ. On a slope facing away steeper
than 90° - θ this holds from the first cell; beyond a ridge it holds for h·tan θ of
flat ground (the propagated shadow). A point is in **layover** when its slant range
(∝ s·sin θ - h·cos θ) is out of order with its ground range: a farther point is nearer
in slant range (max over s' > s of (h' - s'·tan θ) > h - s·tan θ) or a nearer point
farther. That covers a slope facing the radar steeper than θ (local incidence < 0), the
ground in front of it that maps to the same ranges, and its crest. Range lines are
sampled along the look azimuth in the pixel grid (bilinear, two steps per pixel), so any
azimuth works; north-south and east-west looks sample the pixels exactly.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from rasterio.transform import Affine
from scipy import ndimage

OrbitDirection = Literal["ascending", "descending"]
# Nominal Sentinel-1 headings (ground-track azimuths) near the equator.
NOMINAL_HEADING = {"ascending": 350.0, "descending": 190.0}


def metres_per_degree(latitude: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Metres per degree of longitude and of latitude on the WGS84 ellipsoid."""
    phi = np.radians(latitude)
    lon = 111412.84 * np.cos(phi) - 93.5 * np.cos(3 * phi) + 0.118 * np.cos(5 * phi)
    lat = 111132.92 - 559.82 * np.cos(2 * phi) + 1.175 * np.cos(4 * phi)
    return lon, lat


def pixel_size_m(
    transform: Affine, shape: tuple[int, int], *, geographic: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel width and height in metres, each shaped (rows, 1) to broadcast over a grid.

    A projected grid's are the transform's; a geographic grid's width shrinks with the
    cosine of each row's latitude, so slopes there are not exaggerated towards the poles.
    """
    nrow = shape[0]
    if not geographic:
        dx = np.full((nrow, 1), abs(transform.a))
        dy = np.full((nrow, 1), abs(transform.e))
        return dx, dy
    lat = transform.f + transform.e * (np.arange(nrow) + 0.5)
    lon_m, lat_m = metres_per_degree(lat)
    return (abs(transform.a) * lon_m)[:, None], (abs(transform.e) * lat_m)[:, None]


def gradient(dem: np.ndarray, dx, dy) -> tuple[np.ndarray, np.ndarray]:
    """Height change per metre eastwards and northwards (central differences; NaN on and
    next to nodata)."""
    dem = np.asarray(dem, dtype=np.float64)
    nodata = np.isnan(dem)
    dz_col = np.where(nodata, np.nan, np.gradient(dem, axis=1))
    dz_row = np.where(nodata, np.nan, np.gradient(dem, axis=0))
    return dz_col / dx, -dz_row / dy


def slope_aspect(dem: np.ndarray, dx, dy) -> tuple[np.ndarray, np.ndarray]:
    """Slope (0-90°) and aspect (compass azimuth faced, NaN on flat ground).

    Central differences, one-sided at the edges; a pixel next to nodata is NaN, as its
    slope is unknown.
    """
    gx, gy = gradient(dem, dx, dy)
    slope = np.degrees(np.arctan(np.hypot(gx, gy)))
    aspect = np.degrees(np.arctan2(-gx, -gy)) % 360.0
    aspect = np.where(slope > 0, aspect, np.nan)
    return slope.astype(np.float32), aspect.astype(np.float32)


def look_azimuth(
    orbit_direction: OrbitDirection | None = None,
    heading: float | None = None,
    *,
    right_looking: bool = True,
) -> float:
    """Compass azimuth of the range direction: the heading ± 90° (right/left looking).

    The scene's own heading (Sentinel-1 metadata: platform heading) is better than the
    orbit direction's nominal one, which is off by a few degrees away from the equator.
    """
    if heading is None:
        if orbit_direction not in NOMINAL_HEADING:
            raise ValueError(
                f"orbit direction {orbit_direction!r} is not one of {sorted(NOMINAL_HEADING)}"
            )
        heading = NOMINAL_HEADING[orbit_direction]
    return (heading + (90.0 if right_looking else -90.0)) % 360.0


def local_incidence_angle(
    dem: np.ndarray, dx, dy, incidence: float | np.ndarray, look_az: float
) -> np.ndarray:
    """Incidence on the terrain in the range plane: θ minus the slope along the look.

    Below 0° the slope faces the radar more steeply than θ (layover); above 90° it faces
    away more steeply than 90° - θ (shadow).
    """
    gx, gy = gradient(dem, dx, dy)
    az = math.radians(look_az)
    rise = gx * math.sin(az) + gy * math.cos(az)  # height gained per metre away from the sensor
    return (np.asarray(incidence) - np.degrees(np.arctan(rise))).astype(np.float32)


def _range_lines(shape: tuple[int, int], look_az: float, dx: float, dy: float, per_pixel: int):
    """A frame whose rows are range lines, `per_pixel` samples per pixel along them: the
    sample coordinates, metres per step, and each grid pixel's (line, step) index."""
    az = math.radians(look_az)
    pr, pc = -math.cos(az) / dy, math.sin(az) / dx  # look direction in (row, col) pixels
    norm = math.hypot(pr, pc)
    pr, pc = pr / norm, pc / norm
    step_m = math.hypot(pr * dy, pc * dx) / per_pixel
    qr, qc = -pc, pr
    rows, cols = np.indices(shape, dtype=np.float64)
    along = rows * pr + cols * pc
    across = rows * qr + cols * qc
    j0, i0 = math.floor(along.min()), math.floor(across.min())
    step = np.rint((along - j0) * per_pixel).astype(np.intp)
    line = np.rint(across - i0).astype(np.intp)
    lines, steps = np.indices((line.max() + 1, step.max() + 1), dtype=np.float64)
    sample_rows = (i0 + lines) * qr + (j0 + steps / per_pixel) * pr
    sample_cols = (i0 + lines) * qc + (j0 + steps / per_pixel) * pc
    coords = np.stack([sample_rows, sample_cols])
    # snap to the pixel centres where a look along a grid axis meets them (cos 90° is
    # not 0 in floating point), so those samples are exact and none falls off the edge
    nearest = np.rint(coords)
    coords = np.where(np.abs(coords - nearest) < 1e-9, nearest, coords)
    return coords, step_m, line, step


def shadow_layover(
    dem: np.ndarray,
    dx: float,
    dy: float,
    incidence: float | np.ndarray,
    look_az: float,
    *,
    tolerance_m: float = 1e-6,
    per_pixel: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Radar shadow and layover masks (bool; False on nodata), walking each range line.

    `dx`, `dy` are one pixel size in metres for the whole window (a geographic window's
    at its centre latitude). θ is taken as constant along the few kilometres a shadow or
    a layover spans. `per_pixel` samples per pixel along the lines keep an oblique look's
    masks within about a pixel and a half of the geometry (each pixel takes its nearest
    sample, and bilinear samples between pixel centres round a sharp crest off).
    """
    dem = np.asarray(dem, dtype=np.float64)
    valid = np.isfinite(dem)
    theta = np.broadcast_to(np.asarray(incidence, dtype=np.float64), dem.shape)
    if not np.all((theta[valid] > 0) & (theta[valid] < 90)):
        raise ValueError("the incidence angle must lie strictly between 0° and 90°")
    coords, step_m, line, step = _range_lines(dem.shape, look_az, float(dx), float(dy), per_pixel)
    height = ndimage.map_coordinates(np.where(valid, dem, 0.0), coords, order=1, cval=0.0)
    inside = ndimage.map_coordinates(valid.astype(np.float64), coords, order=1, cval=0.0)
    ok = inside > 1 - 1e-6
    fill = float(np.nanmean(theta[valid])) if valid.any() else 45.0
    theta_line = ndimage.map_coordinates(
        np.where(valid, theta, fill), coords, order=1, mode="nearest"
    )
    tan = np.tan(np.radians(theta_line))
    s = np.arange(height.shape[1], dtype=np.float64)[None, :] * step_m

    def before(values: np.ndarray, accumulate, empty: float) -> np.ndarray:
        """Running extreme of the earlier points on each line (excluding the point)."""
        run = accumulate(values, axis=1)
        return np.concatenate([np.full((values.shape[0], 1), empty), run[:, :-1]], axis=1)

    ray = np.where(ok, height + s / tan, -np.inf)
    shadow = ok & (before(ray, np.maximum.accumulate, -np.inf) > ray + tolerance_m)
    slant = height - s * tan  # larger means nearer in slant range
    nearer_far = before(np.where(ok, slant, -np.inf)[:, ::-1], np.maximum.accumulate, -np.inf)
    farther_near = before(np.where(ok, slant, np.inf), np.minimum.accumulate, np.inf)
    layover = ok & (
        (nearer_far[:, ::-1] > slant + tolerance_m) | (farther_near < slant - tolerance_m)
    )
    return shadow[line, step] & valid, layover[line, step] & valid
