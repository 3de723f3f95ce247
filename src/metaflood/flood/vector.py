"""Flood polygons: connected flooded areas as valid polygons with their attributes."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
from rasterio.features import shapes
from rasterio.transform import Affine
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.validation import make_valid
from skimage.measure import label

from metaflood.core.classes import CLASS_NAMES, NUM_CLASSES
from metaflood.core.raster import atomic_path
from metaflood.flood.support import CODES

COLUMNS = [
    "flood_id",
    "area_m2",
    "mean_confidence",
    "dominant_pre_class",
    "dominant_pre_share",
    "both_lines_share",
]


def flood_polygons(
    flooded: np.ndarray,
    pre_class: np.ndarray,
    transform: Affine,
    crs: str,
    confidence: np.ndarray | None = None,
    support: np.ndarray | None = None,
) -> gpd.GeoDataFrame:
    """One polygon per 8-connected flooded region, with the pre-event class it replaced,
    its mean confidence (percent) and the share of it resting on both lines of evidence
    (`support`: flood/support.tif's codes); NaN where that raster is not given."""
    regions = label(flooded, connectivity=2).astype(np.int32)
    n = int(regions.max())
    pixel_area = abs(transform.a * transform.e)
    records, geometries = [], []
    if n:
        mean_confidence = np.full(n + 1, np.nan)
        if confidence is not None:
            scored = (regions > 0) & (confidence <= 100)
            sums = np.bincount(regions[scored], confidence[scored], minlength=n + 1)
            counts = np.bincount(regions[scored], minlength=n + 1)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean_confidence = sums / counts
        pixels = np.bincount(regions.ravel(), minlength=n + 1)
        areas = pixels * pixel_area
        both_share = np.full(n + 1, np.nan)
        if support is not None:
            both = (support == CODES["water_maps_and_sar_change"]).ravel()
            both_share = np.bincount(regions.ravel(), both, minlength=n + 1) / np.maximum(pixels, 1)
        valid_pre = pre_class < NUM_CLASSES
        pairs = regions[valid_pre].astype(np.int64) * NUM_CLASSES + pre_class[valid_pre]
        counts = np.bincount(pairs, minlength=(n + 1) * NUM_CLASSES).reshape(n + 1, NUM_CLASSES)
        parts: dict[int, list] = {}
        for geom, value in shapes(regions, mask=regions > 0, transform=transform):
            parts.setdefault(int(value), []).append(shape(geom))
        for region, polys in sorted(parts.items()):
            geometry = _as_multipolygon(make_valid(gpd.GeoSeries(polys).union_all()))
            dominant = int(counts[region].argmax())
            total = counts[region].sum()
            records.append(
                {
                    "flood_id": region,
                    "area_m2": float(areas[region]),
                    "mean_confidence": round(float(mean_confidence[region]), 2),
                    "dominant_pre_class": CLASS_NAMES[dominant] if total else "unknown",
                    "dominant_pre_share": float(counts[region, dominant] / total) if total else 0.0,
                    "both_lines_share": round(float(both_share[region]), 4),
                }
            )
            geometries.append(geometry)
    frame = gpd.GeoDataFrame(records, columns=COLUMNS, geometry=geometries, crs=crs)
    return frame


# Recent GDAL writes GeoPackage 1.4 by default, which QGIS on GDAL 3.6 (Debian 12's, for
# one) opens with a warning that it "may only be partially supported"; the polygons need
# nothing newer than 1.2.
GEOPACKAGE_VERSION = "1.2"


def write_polygons(frame: gpd.GeoDataFrame, path: Path) -> None:
    """GeoPackage written under a temporary name first, so a crash leaves nothing behind."""
    with atomic_path(path) as tmp:
        tmp.unlink()
        frame.to_file(
            tmp,
            driver="GPKG",
            layer="flood",
            geometry_type="MultiPolygon",
            dataset_options={"VERSION": GEOPACKAGE_VERSION},
        )


def _as_multipolygon(geometry) -> MultiPolygon:
    """One geometry type for the whole layer; make_valid may return a collection."""
    if isinstance(geometry, Polygon):
        return MultiPolygon([geometry])
    if isinstance(geometry, MultiPolygon):
        return geometry
    polygons = [g for g in getattr(geometry, "geoms", []) if isinstance(g, Polygon | MultiPolygon)]
    return MultiPolygon([p for g in polygons for p in getattr(g, "geoms", [g])])
