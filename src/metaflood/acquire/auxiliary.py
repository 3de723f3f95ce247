"""Acquisition of an event's static layers: the DEM and the reference water.

Read through the same cached, retried, windowed reads as the scenes (`download`), every
item meeting the area mosaicked (first valid value wins, items by id), and written as:

- `dem.tif`: float32 metres, NaN nodata, bilinear, on the event grid extended by
  `pad_px = ceil(exclusion.pad_m / resolution)` pixels on every side on the same lattice
  (HAND needs the drainage beyond the AOI); tags `pad_px`, `absent`. A DEM that leaves
  more than 1% of the AOI grid without elevation is an InputError; padding it does not
  reach is allowed and recorded per side.
- `reference_water.tif`: uint8 on the event grid (no padding), nearest, from any CRS:
  0 not water, 1 permanent water, 255 nodata; tag `absent`.
- `auxiliary.json`: per layer what was read, from where (hrefs without credentials), how
  much of the AOI it covers, the padding reached (DEM), the layer kind, source CRS and
  permanent-water share (reference water).

All three are written together or not at all. A layer with source none is written all
nodata, tagged absent=true, and recorded as absent.
"""

from __future__ import annotations

import json
import logging
import math
from contextlib import ExitStack
from pathlib import Path

import numpy as np
from rasterio.enums import Resampling
from rasterio.transform import Affine
from rasterio.warp import reproject, transform_bounds
from shapely.geometry import box

from metaflood.acquire.auxiliary_sources import (
    LAYERS,
    AuxSpec,
    check_auxiliary_sources,
    resolve_auxiliary,
    search_auxiliary,
)
from metaflood.acquire.download import (
    Access,
    AssetCache,
    Downloader,
    Job,
    NoCache,
    first_valid,
    grid_for_aoi,
)
from metaflood.acquire.scene import SceneItem
from metaflood.acquire.security import is_remote
from metaflood.acquire.stage import Retry
from metaflood.core.config import event_grid
from metaflood.core.errors import ConfigError, InputError
from metaflood.core.grid import Grid
from metaflood.core.raster import atomic_path, write_cog
from metaflood.core.redact import redact_url
from metaflood.core.settings import ExclusionSettings

log = logging.getLogger(__name__)

__all__ = ["acquire_auxiliary", "check_auxiliary_sources"]

# The share of the AOI grid a DEM may leave without elevation.
DEM_MAX_GAP = 0.01
NOT_WATER, WATER, WATER_NODATA = 0, 1, 255
WORLDCOVER_WATER, WORLDCOVER_NODATA = 80, 0
OCCURRENCE_NODATA = 255
WATER_CODES = "0 not water, 1 permanent water, 255 nodata"
DEFAULT_RETRY = Retry()


def padded_grid(grid: Grid, pad_px: int) -> Grid:
    """The grid extended by `pad_px` pixels on every side, on the same lattice."""
    transform = grid.transform @ Affine.translation(-pad_px, -pad_px)
    return Grid(grid.crs, transform, grid.width + 2 * pad_px, grid.height + 2 * pad_px)


def _lonlat_area(grid: Grid):
    """The grid's footprint in lon/lat (densified edges), for the search."""
    return box(*transform_bounds(grid.crs, "EPSG:4326", *grid.bounds, densify_pts=21))


def _read(
    spec: AuxSpec,
    items: list[SceneItem],
    grid: Grid,
    resampling: Resampling,
    cache: AssetCache,
    access: Access,
    workers: int,
) -> tuple[np.ndarray, str | None]:
    """The items' layer on `grid`, float32, NaN nodata, and the CRS it was read in.

    The items are first read on the pixel lattice of the first one (the grid's area
    and a margin: tiles of one collection share it, so this is a plain windowed read),
    mosaicked there (first valid wins), and only then resampled onto `grid`: resampling
    each tile apart would leave a seam where a bilinear kernel runs off a tile's edge."""
    out = np.full((grid.height, grid.width), np.nan, np.float32)
    if not items:
        return out, None
    refs = [item.bands[spec.layer] for item in items]
    remote = all(is_remote(ref.href) for ref in refs)
    area = _lonlat_area(grid)
    native = grid_for_aoi(refs[0].href, area, access, margin_px=2, cache=cache if remote else None)
    jobs = [
        Job(f"{item.id} {spec.layer}", ref, native, resampling)
        for item, ref in zip(items, refs, strict=True)
    ]
    downloader = Downloader(cache if remote else NoCache(), access, workers=workers)
    mosaic = first_valid(downloader.read(jobs))
    reproject(
        mosaic,
        out,
        src_transform=native.transform,
        src_crs=native.crs,
        src_nodata=np.nan,
        dst_transform=grid.transform,
        dst_crs=grid.crs,
        dst_nodata=np.nan,
        resampling=resampling,
    )
    return out, native.crs


def water_codes(values: np.ndarray, kind: str, occurrence_min: float) -> np.ndarray:
    """0 not water, 1 permanent water, 255 nodata, from the layer's values (NaN where
    the file has nodata)."""
    nodata = np.isnan(values)
    v = np.nan_to_num(values, nan=0.0)
    if kind == "occurrence":
        nodata |= v == OCCURRENCE_NODATA
        water = v >= occurrence_min
    elif kind == "worldcover":
        nodata |= v == WORLDCOVER_NODATA
        water = v == WORLDCOVER_WATER
    else:
        water = v != 0
    codes = np.where(water, WATER, NOT_WATER).astype(np.uint8)
    codes[nodata] = WATER_NODATA
    return codes


def _padding_reached(valid: np.ndarray, pad_px: int, res: float) -> dict[str, float]:
    """Per side, how far beyond the AOI the DEM reaches (m): the pad lines, from the
    AOI's edge outward, each covered over all but `DEM_MAX_GAP` of the AOI's span."""
    h, w = valid.shape[0] - 2 * pad_px, valid.shape[1] - 2 * pad_px
    rows, cols = slice(pad_px, pad_px + h), slice(pad_px, pad_px + w)
    lines = {
        "west": [valid[rows, pad_px - 1 - i] for i in range(pad_px)],
        "east": [valid[rows, pad_px + w + i] for i in range(pad_px)],
        "north": [valid[pad_px - 1 - i, cols] for i in range(pad_px)],
        "south": [valid[pad_px + h + i, cols] for i in range(pad_px)],
    }
    reached = {}
    for side, side_lines in lines.items():
        count = 0
        for line in side_lines:
            if line.mean() < 1 - DEM_MAX_GAP:
                break
            count += 1
        reached[side] = round(count * res, 3)
    return reached


def _base_record(spec: AuxSpec, items: list[SceneItem]) -> dict:
    source = spec.source
    found = spec.kind != "none"
    record = {
        "status": "found" if found else "absent",
        "source": spec.kind,
        "provider": redact_url(source.provider),
        "collection": source.collection,
        "asset": spec.asset if found else None,
        "items": [item.id for item in items],
        "hrefs": [redact_url(item.bands[spec.layer].href) for item in items],
    }
    if not found:
        record["reason"] = "not acquired for this event (source: none)"
    return record


def _dem(spec, grid, pad_px, cache, access, workers, key) -> tuple[np.ndarray, dict]:
    padded = padded_grid(grid, pad_px)
    items = search_auxiliary(spec, _lonlat_area(padded), access)
    record = _base_record(spec, items)
    dem, _ = _read(spec, items, padded, Resampling.bilinear, cache, access, workers)
    record["pad_px"] = pad_px
    record["padding_requested_m"] = round(pad_px * grid.resolution, 3)
    if spec.kind == "none":
        return dem, record
    valid = np.isfinite(dem)
    inner = valid[pad_px : pad_px + grid.height, pad_px : pad_px + grid.width]
    coverage = float(inner.mean())
    if coverage < 1 - DEM_MAX_GAP:
        why = "" if items else " (no item of the collection meets the AOI)"
        raise InputError(
            f"{key}.dem: the DEM from {spec.source.provider}, collection "
            f"{spec.source.collection}, covers {coverage:.1%} of the AOI grid{why}; at least "
            f"{1 - DEM_MAX_GAP:.0%} is needed (a DEM of this area, or dem: {{source: none}})"
        )
    record["coverage"] = round(coverage, 4)
    record["padding_reached_m"] = _padding_reached(valid, pad_px, grid.resolution)
    return dem, record


def _reference_water(spec, grid, occurrence_min, cache, access, workers, key) -> tuple:
    items = search_auxiliary(spec, _lonlat_area(grid), access)
    record = _base_record(spec, items)
    if spec.kind == "none":
        return np.full((grid.height, grid.width), WATER_NODATA, np.uint8), record
    if not items:
        raise InputError(
            f"{key}.reference_water: no item of collection {spec.source.collection} of "
            f"{spec.source.provider} meets the AOI (another layer, or reference_water: "
            f"{{source: none}})"
        )
    values, source_crs = _read(spec, items, grid, Resampling.nearest, cache, access, workers)
    codes = water_codes(values, spec.layer_kind, occurrence_min)
    if (codes == WATER_NODATA).all():
        raise InputError(
            f"{key}.reference_water: the layer from {spec.source.provider} "
            f"({', '.join(item.id for item in items)}) has no value over the AOI (read in "
            f"its CRS, {source_crs}: check that it is of this area)"
        )
    record.update(
        layer=spec.layer_kind,
        source_crs=source_crs,
        reprojected=source_crs != grid.crs,
        coverage=round(float((codes != WATER_NODATA).mean()), 4),
        permanent_water_share=round(float((codes == WATER).mean()), 4),
    )
    if spec.layer_kind == "occurrence":
        record["occurrence_min"] = occurrence_min
    return codes, record


def acquire_auxiliary(
    event: dict,
    name: str,
    *,
    exclusion: ExclusionSettings,
    reference_occurrence_min: float,
    demo_catalog: str | None,
    cache_dir: Path,
    out_dem: Path,
    out_reference_water: Path,
    out_record: Path,
    workers: int = 4,
    retry: Retry = DEFAULT_RETRY,
) -> dict:
    """Read the event's DEM and reference water and write dem.tif, reference_water.tif
    and auxiliary.json (all three, or none)."""
    key = f"events.{name}"
    grid = event_grid(event, key)
    pad_px = math.ceil(exclusion.pad_m / grid.resolution)
    cache = AssetCache(cache_dir)
    specs = {
        layer: resolve_auxiliary(event[layer], layer, demo_catalog, f"{key}.{layer}")
        for layer in LAYERS
    }
    for layer, spec in specs.items():
        if spec.kind == "demo" and not demo_catalog:
            raise ConfigError(f"{key}.{layer}: source demo needs the demo event's catalog")
    dem_spec, water_spec = specs["dem"], specs["reference_water"]
    dem, dem_record = _dem(
        dem_spec, grid, pad_px, cache, retry.access(dem_spec.source), workers, key
    )
    water, water_record = _reference_water(
        water_spec,
        grid,
        reference_occurrence_min,
        cache,
        retry.access(water_spec.source),
        workers,
        key,
    )
    padded = padded_grid(grid, pad_px)
    record = {"event": name, "dem": dem_record, "reference_water": water_record}
    with ExitStack() as staged:
        dem_tmp, water_tmp, record_tmp = (
            staged.enter_context(atomic_path(p)) for p in (out_dem, out_reference_water, out_record)
        )
        write_cog(
            dem_tmp,
            dem,
            crs=padded.crs,
            transform=padded.transform,
            nodata=np.nan,
            descriptions=("elevation",),
            units=("m",),
            tags={"pad_px": str(pad_px), "absent": str(dem_spec.kind == "none").lower()},
        )
        write_cog(
            water_tmp,
            water,
            crs=grid.crs,
            transform=grid.transform,
            nodata=WATER_NODATA,
            descriptions=("reference_water",),
            categorical=True,
            tags={"codes": WATER_CODES, "absent": str(water_spec.kind == "none").lower()},
        )
        record_tmp.write_text(json.dumps(record, indent=2))
    log.info("%s: DEM %s, reference water %s", name, dem_record["status"], water_record["status"])
    return record
