"""Reading only the AOI window of an item's assets, all onto the first asset's grid.

Values come back as float32 in physical units (the STAC `raster:bands` scale and
offset, or the file's own, applied) with nodata as NaN, so later stages never need to
know how a provider encoded its files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pystac
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window, from_bounds
from shapely.geometry import Polygon

from metaflood.errors import InputError


@dataclass
class WindowRead:
    data: np.ndarray  # (bands, rows, cols) float32, NaN = nodata
    crs: rasterio.crs.CRS
    transform: rasterio.Affine


def _scale_offset(asset: pystac.Asset, src: rasterio.DatasetReader) -> tuple[float, float]:
    bands = asset.extra_fields.get("raster:bands") or []
    if bands and ("scale" in bands[0] or "offset" in bands[0]):
        return float(bands[0].get("scale", 1.0)), float(bands[0].get("offset", 0.0))
    return float(src.scales[0]), float(src.offsets[0])


def aoi_window(src: rasterio.DatasetReader, aoi: Polygon, margin_px: int) -> Window:
    """The window of `src` covering the AOI plus a margin; InputError if they do not meet."""
    if src.crs is None:
        raise InputError(f"{src.name}: has no coordinate reference system")
    bounds = transform_bounds("EPSG:4326", src.crs, *aoi.bounds, densify_pts=21)
    win = from_bounds(*bounds, transform=src.transform)
    col0 = math.floor(win.col_off) - margin_px
    row0 = math.floor(win.row_off) - margin_px
    col1 = math.ceil(win.col_off + win.width) + margin_px
    row1 = math.ceil(win.row_off + win.height) + margin_px
    col0, row0 = max(col0, 0), max(row0, 0)
    col1, row1 = min(col1, src.width), min(row1, src.height)
    if col1 <= col0 or row1 <= row0:
        raise InputError(f"{src.name}: the scene does not overlap the AOI")
    return Window(col0, row0, col1 - col0, row1 - row0)


def _read_band(src, window: Window, asset: pystac.Asset, out_shape=None) -> np.ndarray:
    try:
        raw = src.read(1, window=window, out_shape=out_shape, masked=True)
    except RasterioError as err:
        raise InputError(f"{src.name}: is corrupt or truncated ({err})") from err
    scale, offset = _scale_offset(asset, src)
    values = raw.astype(np.float32) * np.float32(scale) + np.float32(offset)
    return np.where(np.ma.getmaskarray(raw), np.float32(np.nan), values.filled(np.nan))


def _open(href: str) -> rasterio.DatasetReader:
    try:
        return rasterio.open(href)
    except RasterioError as err:
        raise InputError(f"{href}: cannot be opened as a raster ({err})") from err


def read_assets(
    item: pystac.Item,
    asset_keys: list[str],
    aoi: Polygon,
    *,
    margin_px: int = 4,
    categorical: tuple[str, ...] = (),
) -> WindowRead:
    """Read the AOI window of each asset; later assets are warped onto the first one's grid."""
    missing = [k for k in asset_keys if k not in item.assets]
    if missing:
        raise InputError(f"item {item.id} has no asset {missing} (has {sorted(item.assets)})")
    hrefs = [item.assets[k].get_absolute_href() for k in asset_keys]
    with _open(hrefs[0]) as ref:
        window = aoi_window(ref, aoi, margin_px)
        crs, transform = ref.crs, ref.window_transform(window)
        height, width = int(window.height), int(window.width)
        bands = [_read_band(ref, window, item.assets[asset_keys[0]])]
    for key, href in zip(asset_keys[1:], hrefs[1:], strict=True):
        resampling = Resampling.nearest if key in categorical else Resampling.bilinear
        with _open(href) as src:
            if src.crs is None:
                raise InputError(f"{href}: has no coordinate reference system")
            with WarpedVRT(
                src,
                crs=crs,
                transform=transform,
                width=width,
                height=height,
                resampling=resampling,
            ) as vrt:
                full = Window(0, 0, width, height)
                bands.append(_read_band(vrt, full, item.assets[key]))
    return WindowRead(np.stack(bands).astype(np.float32), crs, transform)
