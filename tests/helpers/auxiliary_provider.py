"""A stand-in provider of static layers, shaped like Planetary Computer's.

Tiny COGs in EPSG:4326 published as STAC items with the real collections' ids, asset
keys and properties: `cop-dem-glo-30` (two adjacent tiles split at lon 22.0, asset
`data`, float32 metres, `gsd` 30, `platform` tandem-x, ids like
`Copernicus_DSM_COG_10_N32_00_E021_00_DEM`), `jrc-gsw` (`occurrence`, uint8 percent,
nodata 255) and `esa-worldcover` (`map`, uint8 classes, nodata 0). Each tile is tens of
pixels. The elevation is a plane in lon/lat, so bilinear resampling reproduces it
exactly and a seam between the tiles shows as a departure from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

DEM = "cop-dem-glo-30"
GSW = "jrc-gsw"
WORLDCOVER = "esa-worldcover"
SEAM_LON = 22.0
PIXEL_DEG = 0.001
# The DEM tiles: west of the seam and east of it (the east one reaches further).
DEM_TILES = {
    "Copernicus_DSM_COG_10_N32_00_E021_00_DEM": (21.98, 32.47, SEAM_LON, 32.53),
    "Copernicus_DSM_COG_10_N32_00_E022_00_DEM": (SEAM_LON, 32.47, 22.05, 32.53),
}
# Reference layers cover lon 21.97 to 22.03; their values change at these longitudes
# (inside the tests' AOI, lon 21.995 to 22.005).
REFERENCE_BOUNDS = (21.97, 32.47, 22.03, 32.53)
REFERENCE_EDGES = (21.998, 22.002)
OCCURRENCE_BANDS = (90, 30, 255)  # west, middle, east parts: water, not water, nodata
WORLDCOVER_BANDS = (80, 10, 0)  # water, tree cover, nodata


def elevation(lon, lat):
    """The plane every DEM tile samples (m)."""
    return 100.0 + 5000.0 * (np.asarray(lon) - SEAM_LON) + 3000.0 * (np.asarray(lat) - 32.5)


def third(lon) -> np.ndarray:
    """0, 1, 2: which part of the reference layers (split at REFERENCE_EDGES) a
    longitude lies in."""
    return np.digitize(np.asarray(lon), REFERENCE_EDGES)


def _write(path: Path, data: np.ndarray, bounds, nodata, crs="EPSG:4326") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    west, _, _, north = bounds
    profile = {
        "driver": "COG",
        "width": data.shape[1],
        "height": data.shape[0],
        "count": 1,
        "dtype": data.dtype.name,
        "crs": crs,
        "transform": from_origin(west, north, PIXEL_DEG, PIXEL_DEG),
        "nodata": nodata,
        "blocksize": 128,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


def _centres(bounds) -> tuple[np.ndarray, np.ndarray]:
    west, south, east, north = bounds
    width, height = round((east - west) / PIXEL_DEG), round((north - south) / PIXEL_DEG)
    lon = west + (np.arange(width) + 0.5) * PIXEL_DEG
    lat = north - (np.arange(height) + 0.5) * PIXEL_DEG
    return np.meshgrid(lon, lat)


def dem_tile(path: Path, bounds) -> None:
    lon, lat = _centres(bounds)
    _write(path, elevation(lon, lat).astype(np.float32), bounds, -32767.0)


def reference_tile(path: Path, values: tuple[int, int, int], nodata: int | None) -> None:
    lon, _ = _centres(REFERENCE_BOUNDS)
    _write(path, np.asarray(values, np.uint8)[third(lon)], REFERENCE_BOUNDS, nodata)


def _item(collection: str, item_id: str, bounds, asset: str, href: str, extra: dict) -> dict:
    west, south, east, north = bounds
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "collection": collection,
        "bbox": [west, south, east, north],
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"proj:epsg": 4326, **extra},
        "assets": {asset: {"href": href, "type": "image/tiff; application=geotiff"}},
        "links": [],
    }


@dataclass
class StaticLayers:
    served: Path  # the folder a range server serves
    items: list[dict]

    def write_item_collection(self, path: Path) -> Path:
        path.write_text(json.dumps({"type": "FeatureCollection", "features": self.items}))
        return path


def build_static_layers(
    root: Path, base_url: str, collections: dict[str, str] | None = None
) -> StaticLayers:
    """Write the tiles under root and their items with hrefs under base_url; `collections`
    renames the collections (the demo catalog's ids)."""
    names = {DEM: DEM, GSW: GSW, WORLDCOVER: WORLDCOVER, **(collections or {})}
    items = []
    dem_props = {"gsd": 30, "platform": "tandem-x", "datetime": "2021-04-22T00:00:00Z"}
    for item_id, bounds in DEM_TILES.items():
        relative = f"{names[DEM]}/{item_id}/{item_id}.tif"
        dem_tile(root / relative, bounds)
        items.append(
            _item(names[DEM], item_id, bounds, "data", f"{base_url}/{relative}", dem_props)
        )
    gsw_id = "20E_40Nv1_4_2021"
    relative = f"{names[GSW]}/{gsw_id}/occurrence.tif"
    reference_tile(root / relative, OCCURRENCE_BANDS, 255)
    gsw_props = {
        "datetime": None,
        "start_datetime": "1984-03-01T00:00:00Z",
        "end_datetime": "2021-12-31T23:59:59Z",
    }
    items.append(
        _item(
            names[GSW], gsw_id, REFERENCE_BOUNDS, "occurrence", f"{base_url}/{relative}", gsw_props
        )
    )
    wc_id = "ESA_WorldCover_10m_2021_v200_N30E021"
    relative = f"{names[WORLDCOVER]}/{wc_id}/map.tif"
    reference_tile(root / relative, WORLDCOVER_BANDS, 0)
    wc_props = {"datetime": "2021-01-01T00:00:00Z", "esa_worldcover:product_version": "2.0.0"}
    items.append(
        _item(names[WORLDCOVER], wc_id, REFERENCE_BOUNDS, "map", f"{base_url}/{relative}", wc_props)
    )
    return StaticLayers(root, items)
