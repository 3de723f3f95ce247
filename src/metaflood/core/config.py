"""A checked view of the workflow configuration, and the event grid it implies.

JSON-schema validation (in the Snakefile) catches wrong keys and types; the checks
here catch what a schema cannot: inverted date windows, empty or invalid AOIs, a
checkpoint that does not exist. Every message names the offending key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from rasterio.transform import from_origin
from shapely.geometry import Polygon, box

from metaflood.core.errors import ConfigError
from metaflood.core.grid import Grid
from metaflood.core.settings import TilingSettings, event_section, section_defaults
from metaflood.core.tiling import tile_layout

PERIODS = ("pre", "post")
MODALITIES = ("sar", "optical")
# Smallest AOI, in grid pixels per side, that the model can usefully map.
MIN_AOI_PIXELS = 16
ANTIMERIDIAN_ADVICE = (
    "An AOI across it is not supported (its grid and scene search assume one side): "
    "map each side as an event of its own, cut at 180°"
)


def normalise_dates(obj: Any) -> Any:
    """Turn YAML dates into ISO strings so the JSON schema can check them as text."""
    if isinstance(obj, dict):
        return {k: normalise_dates(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [normalise_dates(v) for v in obj]
    if isinstance(obj, dt.datetime):
        return obj.date().isoformat()
    if isinstance(obj, dt.date):
        return obj.isoformat()
    return obj


def parse_day(value: str, key: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as err:
        raise ConfigError(f"{key}: {value!r} is not a valid day (YYYY-MM-DD)") from err


@dataclass(frozen=True)
class DateRange:
    """A closed range of days; a scene acquired on `end` is inside."""

    start: dt.date
    end: dt.date

    def contains(self, when: dt.datetime) -> bool:
        return self.start <= when.date() <= self.end

    @property
    def middle(self) -> dt.date:
        return self.start + (self.end - self.start) / 2

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


def date_range(event: dict, period: str, key: str) -> DateRange:
    cfg = event[period]
    start = parse_day(cfg["start"], f"{key}.{period}.start")
    end = parse_day(cfg["end"], f"{key}.{period}.end")
    if end < start:
        raise ConfigError(
            f"{key}.{period}: the date window is inverted (start {start} is after end {end})"
        )
    return DateRange(start, end)


def aoi_polygon(event: dict, key: str, base_dir: Path | str = ".") -> Polygon:
    """The AOI as a valid lon/lat polygon (EPSG:4326)."""
    aoi = event["aoi"]
    if "bbox" in aoi:
        lon_min, lat_min, lon_max, lat_max = aoi["bbox"]
        if not (-180 <= lon_min <= 180 and -180 <= lon_max <= 180):
            raise ConfigError(f"{key}.aoi.bbox: longitudes must lie in [-180, 180]")
        if not (-90 <= lat_min <= 90 and -90 <= lat_max <= 90):
            raise ConfigError(f"{key}.aoi.bbox: latitudes must lie in [-90, 90]")
        if lon_min > lon_max:
            raise ConfigError(
                f"{key}.aoi.bbox: lon_min {lon_min} is east of lon_max {lon_max}, so the box "
                f"crosses the antimeridian (180° longitude). {ANTIMERIDIAN_ADVICE}; or, if it "
                "should not cross it, swap the two longitudes"
            )
        if lon_min == lon_max or lat_min >= lat_max:
            raise ConfigError(
                f"{key}.aoi.bbox: the AOI is empty ([lon_min, lat_min, lon_max, lat_max] "
                f"= {aoi['bbox']}; min must be below max)"
            )
        return box(lon_min, lat_min, lon_max, lat_max)
    return _aoi_from_file(Path(base_dir) / aoi["file"], f"{key}.aoi.file")


def _aoi_from_file(path: Path, key: str) -> Polygon:
    import geopandas as gpd

    if not path.exists():
        raise ConfigError(f"{key}: {path} does not exist")
    try:
        frame = gpd.read_file(path)
    except Exception as err:  # pyogrio raises several types for unreadable files
        raise ConfigError(f"{key}: {path} is not a readable vector file ({err})") from err
    if frame.empty:
        raise ConfigError(f"{key}: {path} holds no features: the AOI is empty")
    if frame.crs is not None:
        frame = frame.to_crs("EPSG:4326")
    geometry = frame.geometry.union_all()
    if geometry.geom_type not in ("Polygon", "MultiPolygon"):
        raise ConfigError(f"{key}: the AOI must be a polygon, got {geometry.geom_type}")
    if not geometry.is_valid:
        reason = shapely.is_valid_reason(geometry)
        raise ConfigError(f"{key}: the AOI polygon is not valid ({reason})")
    if geometry.is_empty or geometry.area == 0:
        raise ConfigError(f"{key}: the AOI polygon is empty (zero area)")
    west, _, east, _ = geometry.bounds
    if west < -180 or east > 180 or east - west > 180:
        # Split at 180° (RFC 7946), or drawn across it as one ring, a crossing AOI spans
        # the whole globe in longitude; one beyond ±180 leaves the valid range.
        raise ConfigError(
            f"{key}: the AOI in {path} crosses the antimeridian (180° longitude): its "
            f"longitudes run from {west:g} to {east:g}. {ANTIMERIDIAN_ADVICE}"
        )
    return geometry


def utm_crs(lon: float, lat: float) -> CRS:
    """WGS 84 / UTM zone of a point: the local metric CRS the grid uses by default."""
    zone = int(math.floor((lon + 180) / 6)) % 60 + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def to_crs(geometry, crs: CRS | str, src: CRS | str = "EPSG:4326"):
    """Reproject a shapely geometry (lon/lat by default)."""
    transformer = Transformer.from_crs(src, crs, always_xy=True)

    def project(coords: np.ndarray) -> np.ndarray:
        return np.column_stack(transformer.transform(coords[:, 0], coords[:, 1]))

    return shapely.transform(geometry, project)


def event_grid(event: dict, key: str, base_dir: Path | str = ".") -> Grid:
    """Grid covering the AOI, snapped outward to whole pixels of the configured size."""
    aoi = aoi_polygon(event, key, base_dir)
    grid_cfg = event_section(event, "grid")
    res = float(grid_cfg["resolution"])
    crs_spec = grid_cfg["crs"]
    if crs_spec == "auto":
        crs = utm_crs(aoi.centroid.x, aoi.centroid.y)
    else:
        try:
            crs = CRS.from_user_input(crs_spec)
        except Exception as err:
            raise ConfigError(f"{key}.grid.crs: {crs_spec!r} is not a known CRS") from err
        if not crs.is_projected:
            raise ConfigError(f"{key}.grid.crs: {crs_spec} is not a projected (metric) CRS")
    left, bottom, right, top = to_crs(aoi, crs).bounds
    left, bottom = math.floor(left / res) * res, math.floor(bottom / res) * res
    right, top = math.ceil(right / res) * res, math.ceil(top / res) * res
    width, height = round((right - left) / res), round((top - bottom) / res)
    if min(width, height) < MIN_AOI_PIXELS:
        raise ConfigError(
            f"{key}.aoi: the AOI is only {width} x {height} pixels at {res} m; "
            f"at least {MIN_AOI_PIXELS} x {MIN_AOI_PIXELS} are needed"
        )
    return Grid(crs.to_string(), from_origin(left, top, res, res), width, height)


def check_event(event: dict, key: str, base_dir: Path | str = ".") -> Grid:
    """Semantic checks of one event that JSON schema cannot express (date windows, the
    AOI); raise ConfigError naming the key. Returns the event's grid."""
    pre, post = date_range(event, "pre", key), date_range(event, "post", key)
    if post.start <= pre.end:
        raise ConfigError(
            f"{key}.post: the post window ({post}) must start after the pre window ({pre}) ends"
        )
    if "event_date" in event:
        day = parse_day(event["event_date"], f"{key}.event_date")
        if not pre.end <= day <= post.start:
            raise ConfigError(
                f"{key}.event_date: {day} must lie between the end of the pre window "
                f"({pre.end}) and the start of the post window ({post.start})"
            )
    return event_grid(event, key, base_dir)


def check_model_overlap(config: dict) -> None:
    """model.overlap must be less than half of model.tile."""
    model = section_defaults("model", config.get("model"))
    tile, overlap = model["tile"], model["overlap"]
    if 2 * overlap >= tile:
        raise ConfigError(f"model.overlap: {overlap} px must be less than half of model.tile")


def event_tiles(grid: Grid, tiling: dict | None) -> list[str]:
    """Ids of the tiles an event's grid is cut into (one: the event runs untiled); a
    layout whose tiles are narrower than twice the overlap is a ConfigError."""
    settings = TilingSettings.from_section(section_defaults("tiling", tiling))
    layout = tile_layout(grid.height, grid.width, settings.tile_px, settings.overlap_px)
    return [tile.id for tile in layout]


def config_hash(obj: Any) -> str:
    """Stable hash of a configuration, for provenance."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
