"""The exclusion stage: `flood/exclusion.tif` from the event's DEM and the SAR geometry.

The DEM comes from acquisition on the event grid padded beyond the AOI (`pad_px` pixels
each side, tagged in dem.tif), so that HAND drains to the right river near the AOI's
edge and a ridge just outside the AOI still casts its shadow in. Everything is computed
on the padded window and cut back to the event grid.

The look direction and incidence come from the post-event SAR scene's metadata, which
Sentinel-1 items carry as `sat:orbit_state` (the look is the nominal heading's right
angle, `geometry.look_azimuth`) and, where a provider gives them, `view:azimuth` (the
look azimuth itself) and `view:incidence_angle`. Without an orbit direction or a look
azimuth, shadow and layover are absent (recorded); without an incidence angle, the
configured one is used (recorded as assumed). No DEM: nothing is excluded, and the
product and its record say the DEM was absent.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

from metaflood.core.errors import InputError
from metaflood.core.grid import Grid
from metaflood.core.raster import atomic_path, write_cog
from metaflood.core.settings import ExclusionSettings
from metaflood.terrain.exclusion import COLOURS, NAMES, NODATA, area_summary, exclusion_codes
from metaflood.terrain.geometry import look_azimuth, shadow_layover, slope_aspect
from metaflood.terrain.hand import height_above_nearest_drainage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ViewingGeometry:
    """Where the radar looked from, and how steeply, as far as the metadata says."""

    look_azimuth: float | None  # compass degrees of the range direction; None: unknown
    incidence_deg: float
    incidence_assumed: bool
    why: str

    def to_dict(self) -> dict:
        return {
            "look_azimuth_deg": self.look_azimuth,
            "incidence_deg": self.incidence_deg,
            "incidence_assumed": self.incidence_assumed,
            "source": self.why,
        }


def viewing_geometry(scenes: dict, incidence_deg: float) -> ViewingGeometry:
    """The post-event SAR scene's look azimuth and incidence from its STAC properties
    (scenes.json); `incidence_deg` stands in where the scene gives no incidence."""
    sar = scenes.get("sar", {})
    props = sar.get("properties", {}) if sar.get("status") == "found" else {}
    incidence = props.get("view:incidence_angle")
    assumed = incidence is None
    theta = float(incidence_deg if assumed else incidence)
    if "view:azimuth" in props:
        return ViewingGeometry(float(props["view:azimuth"]) % 360, theta, assumed, "view:azimuth")
    state = props.get("sat:orbit_state")
    if state in ("ascending", "descending"):
        why = f"sat:orbit_state {state} (nominal Sentinel-1 heading, right-looking)"
        return ViewingGeometry(look_azimuth(state), theta, assumed, why)
    why = "no SAR scene" if not props else "the SAR scene gives no orbit direction or azimuth"
    return ViewingGeometry(None, theta, assumed, why)


def _read_dem(path: Path, grid: Grid) -> tuple[np.ndarray, int, bool]:
    """The padded DEM, its padding (px) and whether it is absent; an InputError when its
    inner window is not the event grid."""
    with rasterio.open(path) as src:
        tags = src.tags()
        pad = int(tags.get("pad_px", 0))
        absent = tags.get("absent", "false") == "true"
        dem = src.read(1, masked=True).astype(np.float64).filled(np.nan)
        transform = src.transform
        crs = src.crs
    inner = transform @ rasterio.Affine.translation(pad, pad)
    shape = (dem.shape[0] - 2 * pad, dem.shape[1] - 2 * pad)
    if (
        crs is None
        or rasterio.crs.CRS.from_user_input(grid.crs) != crs
        or shape != (grid.height, grid.width)
        or not inner.almost_equals(grid.transform)
    ):
        raise InputError(
            f"{path}: the DEM inside its {pad}-pixel padding is not the event grid "
            f"({shape} at {tuple(inner)[:6]} in {crs}, expected "
            f"{(grid.height, grid.width)} at {tuple(grid.transform)[:6]} in {grid.crs})"
        )
    return dem, pad, absent


def _inner(array: np.ndarray, pad: int) -> np.ndarray:
    """The event grid's part of an array on the padded DEM grid."""
    return array[pad : array.shape[0] - pad, pad : array.shape[1] - pad]


def exclusion_layers(
    dem: np.ndarray,
    pad: int,
    resolution: float,
    geometry: ViewingGeometry,
    settings: ExclusionSettings,
) -> dict[str, np.ndarray | None]:
    """HAND, slope, shadow and layover on the padded DEM, cut back to the event grid."""

    transform = rasterio.Affine(resolution, 0, 0, 0, -resolution, 0)
    hand = height_above_nearest_drainage(dem, transform, drainage_km2=settings.drainage_km2)
    slope, _ = slope_aspect(dem, resolution, resolution)
    shadow = layover = None
    if geometry.look_azimuth is not None:
        shadow, layover = shadow_layover(
            dem, resolution, resolution, geometry.incidence_deg, geometry.look_azimuth
        )
        shadow, layover = _inner(shadow, pad), _inner(layover, pad)
    return {
        "hand": _inner(hand, pad),
        "slope": _inner(slope, pad),
        "shadow": shadow,
        "layover": layover,
    }


def terrain_exclusion(
    dem_path: Path,
    post_scenes: Path,
    grid: Grid,
    *,
    settings: ExclusionSettings,
    out_exclusion: Path,
    out_record: Path,
) -> dict:
    """Write the exclusion codes (with a colour table) and their record (shares of the
    AOI per reason, the thresholds, the viewing geometry, which layers were absent)."""
    dem, pad, dem_absent = _read_dem(dem_path, grid)
    geometry = viewing_geometry(json.loads(Path(post_scenes).read_text()), settings.incidence_deg)
    shape = (grid.height, grid.width)
    absent: list[str] = []
    inner_dem = _inner(dem, pad)
    if dem_absent or not np.isfinite(inner_dem).any():
        absent = ["dem: no DEM for this event (source: none)"]
        codes = np.zeros(shape, np.uint8)
    else:
        layers = exclusion_layers(dem, pad, grid.resolution, geometry, settings)
        if layers["shadow"] is None:
            absent.append(f"radar shadow and layover: {geometry.why}")
        codes = exclusion_codes(
            shape,
            **layers,
            hand_max_m=settings.hand_max_m,
            slope_max_deg=settings.slope_max_deg,
        )
    pixel_area = grid.resolution**2
    summary = area_summary(codes, pixel_area_m2=pixel_area)
    record = {
        "enabled": settings.enabled,
        "thresholds": {
            "hand_max_m": settings.hand_max_m,
            "slope_max_deg": settings.slope_max_deg,
            "drainage_km2": settings.drainage_km2,
        },
        "dem_padding_px": pad,
        "viewing_geometry": geometry.to_dict(),
        "absent": absent,
        "areas": summary,
    }
    with atomic_path(out_record) as tmp_record:
        write_cog(
            out_exclusion,
            codes,
            crs=grid.crs,
            transform=grid.transform,
            nodata=NODATA,
            descriptions=("exclusion",),
            colormap=COLOURS,
            tags={
                "values": ", ".join(f"{code} {name}" for code, name in NAMES.items()),
                "absent": "; ".join(absent) or "none",
            },
        )
        tmp_record.write_text(json.dumps(record, indent=2))
    excluded = summary["excluded"]
    log.info("excluded %.1f%% of the AOI (%s)", 100 * excluded["share"], absent or "all layers")
    return record
