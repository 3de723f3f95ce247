"""The user's own GeoTIFFs: one file per period and modality, with a band mapping.

A local file becomes a scene item like any STAC item, so it goes through the same
selection (coverage of the AOI) and the same reading code. Files carry no reliable
acquisition time, so the item is dated to the middle of its window.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import rasterio
from rasterio.errors import RasterioError
from rasterio.warp import transform_geom
from shapely.geometry import Polygon, box, mapping, shape

from metaflood.acquire.radiometry import plain_radiometry
from metaflood.acquire.scene import MASK, BandRef, SceneItem
from metaflood.acquire.sources import SourceSpec, resolve_source
from metaflood.core.config import MODALITIES, DateRange, aoi_polygon, date_range
from metaflood.core.errors import ConfigError, InputError


def _footprint(src: rasterio.DatasetReader) -> dict:
    outline = mapping(box(*src.bounds))
    return transform_geom(src.crs, "EPSG:4326", outline, antimeridian_cutting=True, precision=8)


def local_item(spec: SourceSpec, period: str, window: DateRange) -> SceneItem | None:
    """The period's file as a scene item; None when the configuration gives no file."""
    path = spec.local.get(period)
    if path is None:
        return None
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise InputError(f"{path}: has no coordinate reference system")
            count, footprint, crs = src.count, _footprint(src), src.crs.to_string()
            tags = src.tags()
    except RasterioError as err:
        raise InputError(f"{path}: cannot be read as a raster ({err})") from err
    wanted = dict(spec.local_bands)
    if spec.mask_band is not None:
        wanted[MASK] = spec.mask_band
    for name, index in wanted.items():
        if not 1 <= index <= count:
            raise InputError(f"{path}: has {count} bands, so band {name} = {index} does not exist")
    radiometry = plain_radiometry({}, spec.scale, spec.offset)
    bands = {
        name: BandRef(
            href=str(path),
            band=index,
            scale=1.0 if name == MASK else radiometry.scale,
            offset=0.0 if name == MASK else radiometry.offset,
            radiometry="class codes" if name == MASK else radiometry.why,
        )
        for name, index in wanted.items()
    }
    when = dt.datetime.combine(window.middle, dt.time(12), dt.UTC)
    return SceneItem(
        id=f"local-{period}-{spec.modality}",
        datetime=when.isoformat(),
        footprint=footprint,
        bands=bands,
        properties={
            "file": str(path),
            "crs": crs,
            "acquired": tags.get("TIFFTAG_DATETIME", "unknown"),
        },
        collection="local",
    )


def check_overlap(item: SceneItem, aoi: Polygon) -> None:
    """A file the user named that lies wholly off the AOI is a wrong file or a wrong CRS
    in its header: say which, with both extents, rather than "no scene covers the AOI"."""
    footprint = shape(item.footprint)
    if footprint.intersects(aoi):
        return
    raise InputError(
        f"{item.properties['file']}: does not overlap the AOI. Read in its CRS "
        f"({item.properties['crs']}) it covers {_lon_lat(footprint.bounds)}; the AOI is "
        f"{_lon_lat(aoi.bounds)}. Check that the file is of this event and that its CRS "
        f"is the one its coordinates are in"
    )


def checked_local_item(
    spec: SourceSpec, period: str, window: DateRange, aoi: Polygon
) -> SceneItem | None:
    """The period's file as a scene item (None when none is configured), refused when it
    lies wholly off the AOI."""
    item = local_item(spec, period, window)
    if item is not None:
        check_overlap(item, aoi)
    return item


def check_local_files(spec: SourceSpec, event: dict, key: str, base_dir: Path | str = ".") -> None:
    """Open each configured file's header at start-up, so an unreadable file, one without
    a CRS, a band index it lacks or a file off the AOI stops the run before any job (the
    search checks them again, in case a file changed since)."""
    aoi = aoi_polygon(event, key, base_dir)
    for period in spec.local:
        try:
            checked_local_item(spec, period, date_range(event, period, key), aoi)
        except InputError as err:
            raise ConfigError(f"{key}.{spec.modality}.{period}: {err}") from err


def _lon_lat(bounds: tuple[float, float, float, float]) -> str:
    west, south, east, north = bounds
    return f"lon {west:.4f} to {east:.4f}, lat {south:.4f} to {north:.4f}"


def check_sources(event: dict, key: str, base_dir: Path | str) -> None:
    """Each modality's source settings (keys a preset needs; local files readable, with
    a CRS and the configured bands, over the AOI)."""
    for modality in MODALITIES:
        spec = resolve_source(event[modality], modality, None, f"{key}.{modality}", base_dir)
        if spec.kind == "local":
            check_local_files(spec, event, key, base_dir)
