"""Publish a synthetic event as a local static STAC catalog of COGs.

The demo goes through the same acquisition code as real providers, so the catalog
mimics them: SAR items look like Microsoft Planetary Computer `sentinel-1-rtc` (linear
power float32, `vv`/`vh` assets), optical items like `sentinel-2-l2a` (uint16
reflectance x 10000 with the scale in `raster:bands`: B02, B03, B04, B08 and B11, the
SWIR 1.6 um band, an `SCL` asset, `eo:cloud_cover`). B11 is 20 m on Sentinel-2; here it
is on the same native grid as the other bands (the acquisition's resampling of a coarser
band is tested on its own).
Static layers: a DEM like Copernicus GLO-30 (`demo-cop-dem`, asset `data`: the
simulator's elevation, block-averaged to 4x the native pixel, float32 metres, NaN
nodata, on the scene's projected grid) and reference water like JRC Global Surface
Water (`demo-jrc-gsw`, asset `occurrence`: uint8 percent 0..100, 255 nodata, in
EPSG:4326), derived from the pre-event permanent water with deliberate disagreements
(`static_layers`). With `pre_sar_scenes` N > 1 the SAR collection holds N pre-event
items of the same orbit.
The truth (land cover, flood, elevation, injected offsets, and the look-alikes when
simulated) is written beside the catalog and never linked from it, so no pipeline
stage can find it by crawling.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pystac
from affine import Affine
from pystac.extensions.classification import Classification, ClassificationExtension
from pystac.extensions.eo import Band, EOExtension
from pystac.extensions.file import FileExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension
from pystac.extensions.sar import FrequencyBand, Polarization, SarExtension
from pystac.extensions.sat import OrbitState, SatExtension
from pystac.extensions.view import ViewExtension
from rasterio.crs import CRS
from rasterio.warp import Resampling, calculate_default_transform, reproject
from rasterio.warp import transform as warp_points

from metaflood.core import classes
from metaflood.core.config import PERIODS
from metaflood.core.grid import Grid
from metaflood.core.hashing import multihash_sha256
from metaflood.core.raster import remove_stale_staging, write_cog
from metaflood.demo.lookalikes import LOOKALIKE_NAMES
from metaflood.demo.materials import OPTICAL_BANDS, SAR_INCIDENCE_DEG
from metaflood.demo.simulate import SyntheticEvent
from metaflood.demo.static_layers import (
    DEM_FACTOR,
    OCCURRENCE_NODATA,
    coarse_dem,
    reference_water,
)

SAR_COLLECTION = "demo-sentinel-1"
OPTICAL_COLLECTION = "demo-sentinel-2"
# Static layers, shaped like Copernicus GLO-30 (`cop-dem-glo-30`, asset `data`, metres)
# and JRC Global Surface Water (`jrc-gsw`, asset `occurrence`, percent of time water).
DEM_COLLECTION = "demo-cop-dem"
DEM_ASSET = "data"
REFERENCE_WATER_COLLECTION = "demo-jrc-gsw"
REFERENCE_WATER_ASSET = "occurrence"
# Fixed dates, as the real collections have: GLO-30's items all carry 2021-04-22; GSW's
# occurrence summarises 1984-2021.
DEM_DATETIME = datetime(2021, 4, 22, tzinfo=UTC)
GSW_START = datetime(1984, 3, 16, tzinfo=UTC)
GSW_END = datetime(2021, 12, 31, tzinfo=UTC)
TRUTH_DIR = "truth"

# Sentinel-1 repeats its track every 12 days, so pre and post share the orbit geometry.
SAR_RELATIVE_ORBIT = 102
SAR_ORBIT_STATE = OrbitState.ASCENDING  # the simulator's radar looks east
SAR_LOOK_AZIMUTH = 90.0
REFLECTANCE_SCALE = 0.0001


@dataclass(frozen=True)
class _OpticalBand:
    asset: str
    common_name: str
    center_um: float
    fwhm_um: float


OPTICAL_ASSETS = (
    _OpticalBand("B02", "blue", 0.490, 0.098),
    _OpticalBand("B03", "green", 0.560, 0.045),
    _OpticalBand("B04", "red", 0.665, 0.038),
    _OpticalBand("B08", "nir", 0.842, 0.145),
    _OpticalBand("B11", "swir16", 1.610, 0.143),
)
SAR_ASSETS = (("vv", "VV"), ("vh", "VH"))
SCL_CLASSES = {
    0: ("no_data", "No data"),
    3: ("cloud_shadows", "Cloud shadows"),
    4: ("vegetation", "Vegetation"),
    5: ("not_vegetated", "Not vegetated"),
    6: ("water", "Water"),
    8: ("cloud_medium_probability", "Cloud medium probability"),
    9: ("cloud_high_probability", "Cloud high probability"),
}


def _native_bbox(grid: Grid) -> list[float]:
    """The grid's bounds in its own CRS, as STAC's `proj:bbox` lists them."""
    return list(grid.bounds)


def _footprint(grid: Grid) -> tuple[dict, list[float]]:
    """Lon/lat polygon of the raster outline, densified so edges stay true, and its bbox."""
    rows, cols = _outline(grid.height, grid.width, per_edge=4)
    xs, ys = grid.transform @ (cols, rows)
    lons, lats = warp_points(grid.crs, "EPSG:4326", list(xs), list(ys))
    ring = [[round(x, 8), round(y, 8)] for x, y in zip(lons, lats, strict=True)]
    ring.append(ring[0])
    geometry = {"type": "Polygon", "coordinates": [ring]}
    return geometry, [min(lons), min(lats), max(lons), max(lats)]


def _apply_projection(item: pystac.Item, grid: Grid) -> None:
    ProjectionExtension.ext(item, add_if_missing=True).apply(
        code=grid.crs,
        bbox=_native_bbox(grid),
        shape=[grid.height, grid.width],
        transform=list(tuple(grid.transform)[:6]),
    )


def _outline(height: int, width: int, per_edge: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-corner coordinates around the raster, counter-clockwise from the
    top-left (lon/lat rings must be counter-clockwise for GeoJSON)."""
    t = np.linspace(0.0, 1.0, per_edge, endpoint=False)
    rows = np.concatenate([t * height, np.full_like(t, height), (1 - t) * height, np.zeros_like(t)])
    cols = np.concatenate([np.zeros_like(t), t * width, np.full_like(t, width), (1 - t) * width])
    return rows, cols


def publish_demo_catalog(
    event: SyntheticEvent,
    out_dir: Path,
    *,
    crs: str,
    transform: Affine,
    dates: dict[tuple[str, str], datetime],
) -> Path:
    """Write the event as a self-contained STAC catalog at `out_dir`; returns the path
    of catalog.json. Built in a sibling temporary directory and renamed into place, so
    a failure never leaves a half catalog behind."""
    out_dir = Path(out_dir)
    height, width = event.flood.shape
    grid = Grid(CRS.from_user_input(crs).to_string(), Affine(*tuple(transform)[:6]), width, height)
    acquired = _acquisitions(event, dates)
    with _staging_dir(out_dir) as stage:
        catalog = _build_catalog(event, grid, acquired, stage)
        _write_truth(event, grid, stage / TRUTH_DIR)
        catalog.normalize_hrefs(str(stage))
        catalog.make_all_asset_hrefs_relative()
        catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return out_dir / "catalog.json"


# ---------------------------------------------------------------------------------------
# Staging and atomic publication


@contextmanager
def _staging_dir(out_dir: Path) -> Iterator[Path]:
    """A temporary sibling of `out_dir`, swapped into place only if the body succeeds.
    The catalog is built in a dot-free subdirectory: pystac takes a root href that
    looks like a file name (".x.part") for a file and would write beside it."""
    out_dir = out_dir.absolute()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(out_dir, ".part", folders=True)  # left by a killed run
    holder = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".part", dir=out_dir.parent))
    stage = holder / "catalog"
    try:
        stage.mkdir()
        yield stage
        _swap_into_place(stage, out_dir)
    finally:
        shutil.rmtree(holder, ignore_errors=True)


def _swap_into_place(stage: Path, out_dir: Path) -> None:
    """Replace `out_dir` by `stage`; an existing catalog is removed only once the new one
    is in place, and restored if the move fails."""
    if not out_dir.exists():
        os.replace(stage, out_dir)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old", dir=out_dir.parent))
    os.replace(out_dir, old / "catalog")
    try:
        os.replace(stage, out_dir)
    except OSError:
        os.replace(old / "catalog", out_dir)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# Acquisitions: which items exist, and when


@dataclass(frozen=True)
class _Acquisition:
    period: str  # the scene's key in the event: "pre", "post", or "pre-1"... (more pre SAR)
    modality: str  # "sar" | "optical"
    when: datetime

    @property
    def collection(self) -> str:
        return SAR_COLLECTION if self.modality == "sar" else OPTICAL_COLLECTION

    @property
    def item_id(self) -> str:
        prefix = "demo-s1" if self.modality == "sar" else "demo-s2"
        return f"{prefix}-{self.when:%Y%m%d}"


def _acquisitions(
    event: SyntheticEvent, dates: dict[tuple[str, str], datetime]
) -> list[_Acquisition]:
    """One acquisition per acquired scene; a missing date is a caller error, not a gap."""
    found = []
    for period in PERIODS:
        for modality in ("sar", "optical"):
            if modality == "optical" and event.optical.get(period) is None:
                continue
            if (period, modality) not in dates:
                raise ValueError(f"no acquisition date for ({period!r}, {modality!r})")
            found.append(_Acquisition(period, modality, _as_utc(dates[(period, modality)])))
    for scene in event.sar:  # further pre-event SAR scenes ("pre-1"...), after the others
        if scene in PERIODS:
            continue
        if (scene, "sar") not in dates:
            raise ValueError(f"no acquisition date for ({scene!r}, 'sar')")
        found.append(_Acquisition(scene, "sar", _as_utc(dates[(scene, "sar")])))
    ids = [a.item_id for a in found]
    if len(set(ids)) != len(ids):
        raise ValueError(f"two scenes of one modality on the same day give duplicate ids: {ids}")
    return found


def _as_utc(when: datetime) -> datetime:
    """STAC datetimes are UTC; a naive datetime is taken to be UTC already."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


# ---------------------------------------------------------------------------------------
# Catalog, collections, items


def _build_catalog(
    event: SyntheticEvent, grid: Grid, acquired: list[_Acquisition], stage: Path
) -> pystac.Catalog:
    catalog = pystac.Catalog(
        id="metaflood-demo",
        description="Synthetic flood event generated by metaflood.demo.simulate "
        f"(seed {event.spec.seed}, layout {event.spec.layout!r}).",
        title="metaflood demo event",
    )
    for collection_id in (SAR_COLLECTION, OPTICAL_COLLECTION):
        members = [a for a in acquired if a.collection == collection_id]
        if not members:
            continue
        items = [_make_item(event, grid, a, stage / collection_id / a.item_id) for a in members]
        collection = _make_collection(collection_id, items)
        collection.add_items(items)
        catalog.add_child(collection)
    for collection in _static_collections(event, grid, stage):
        catalog.add_child(collection)
    return catalog


def _make_collection(collection_id: str, items: list[pystac.Item]) -> pystac.Collection:
    sar = collection_id == SAR_COLLECTION
    bboxes = np.array([item.bbox for item in items])
    times = sorted(item.datetime for item in items)
    extent = pystac.Extent(
        pystac.SpatialExtent([[*bboxes[:, :2].min(axis=0), *bboxes[:, 2:].max(axis=0)]]),
        pystac.TemporalExtent([[times[0], times[-1]]]),
    )
    description = (
        "Synthetic Sentinel-1 IW GRD, radiometrically terrain corrected (linear power)"
        if sar
        else "Synthetic Sentinel-2 Level-2A surface reflectance"
    )
    summaries = {"platform": sorted({i.properties["platform"] for i in items})}
    summaries["constellation"] = ["sentinel-1" if sar else "sentinel-2"]
    return pystac.Collection(
        id=collection_id,
        description=description,
        extent=extent,
        title=collection_id,
        license="other",
        keywords=["synthetic", "flood", "metaflood"],
        summaries=pystac.Summaries(summaries),
    )


def _make_item(event: SyntheticEvent, grid: Grid, acq: _Acquisition, item_dir: Path) -> pystac.Item:
    geometry, bbox = _footprint(grid)
    item = pystac.Item(
        id=acq.item_id,
        geometry=geometry,
        bbox=bbox,
        datetime=acq.when,
        properties={"gsd": grid.resolution},
        collection=None,
    )
    _apply_projection(item, grid)
    if acq.modality == "sar":
        _describe_sar(item)
        _add_sar_assets(item, event.sar[acq.period], grid, item_dir)
    else:
        _describe_optical(item, event.cloud_cover[acq.period])
        _add_optical_assets(item, event, acq.period, grid, item_dir)
    return item


def _describe_sar(item: pystac.Item) -> None:
    item.properties.update(platform="sentinel-1a", constellation="sentinel-1")
    item.properties["instruments"] = ["c-sar"]
    SarExtension.ext(item, add_if_missing=True).apply(
        instrument_mode="IW",
        frequency_band=FrequencyBand.C,
        polarizations=[Polarization.VV, Polarization.VH],
        product_type="GRD",
        center_frequency=5.405,
    )
    SatExtension.ext(item, add_if_missing=True).apply(
        orbit_state=SAR_ORBIT_STATE, relative_orbit=SAR_RELATIVE_ORBIT
    )
    # The simulated radar looks due east at one incidence (view:azimuth is the direction
    # from the sensor's ground track to the scene): the terrain exclusion reads both.
    ViewExtension.ext(item, add_if_missing=True).apply(
        incidence_angle=SAR_INCIDENCE_DEG, azimuth=SAR_LOOK_AZIMUTH
    )


def _describe_optical(item: pystac.Item, cloud_cover: float) -> None:
    item.properties.update(platform="sentinel-2a", constellation="sentinel-2")
    item.properties["instruments"] = ["msi"]
    EOExtension.ext(item, add_if_missing=True).cloud_cover = round(float(cloud_cover), 3)


# ---------------------------------------------------------------------------------------
# Assets


def _add_sar_assets(item: pystac.Item, data: np.ndarray, grid: Grid, item_dir: Path) -> None:
    """vv / vh as float32 linear power, NaN nodata, like sentinel-1-rtc."""
    for band, (key, pol) in enumerate(SAR_ASSETS):
        path = item_dir / f"{key}.tif"
        _write(path, data[band].astype(np.float32), grid, nodata=np.nan, description=pol)
        asset = _add_asset(item, key, path, f"{pol}: {pol[0]} transmit, {pol[1]} receive")
        RasterExtension.ext(asset, add_if_missing=True).bands = [
            RasterBand.create(
                nodata="nan",
                data_type=DataType.FLOAT32,
                spatial_resolution=grid.resolution,
                unit="linear power",
            )
        ]
        SarExtension.ext(asset).polarizations = [Polarization(pol)]


def _add_optical_assets(
    item: pystac.Item, event: SyntheticEvent, period: str, grid: Grid, item_dir: Path
) -> None:
    """B02..B11 as uint16 reflectance x 10000 (scale in raster:bands), SCL as uint8; each
    from the simulator's band of the same common name."""
    data = event.optical[period]
    for info in OPTICAL_ASSETS:
        path = item_dir / f"{info.asset}.tif"
        band = data[OPTICAL_BANDS.index(info.common_name)]
        _write(path, _to_digital_numbers(band), grid, nodata=0, description=info.asset)
        title = f"Band {int(info.asset[1:])} - {info.common_name}"
        asset = _add_asset(item, info.asset, path, title)
        RasterExtension.ext(asset, add_if_missing=True).bands = [
            RasterBand.create(
                nodata=0,
                data_type=DataType.UINT16,
                spatial_resolution=grid.resolution,
                scale=REFLECTANCE_SCALE,
                offset=0.0,
            )
        ]
        EOExtension.ext(asset, add_if_missing=True).bands = [
            Band.create(
                name=info.asset,
                common_name=info.common_name,
                center_wavelength=info.center_um,
                full_width_half_max=info.fwhm_um,
            )
        ]
    path = item_dir / "SCL.tif"
    _write(path, event.scl[period].astype(np.uint8), grid, nodata=0, description="SCL")
    asset = _add_asset(item, "SCL", path, "Scene classification map (SCL)")
    RasterExtension.ext(asset, add_if_missing=True).bands = [
        RasterBand.create(nodata=0, data_type=DataType.UINT8, spatial_resolution=grid.resolution)
    ]
    ClassificationExtension.ext(asset, add_if_missing=True).classes = [
        Classification.create(value=code, name=name, description=text, nodata=code == 0 or None)
        for code, (name, text) in SCL_CLASSES.items()
    ]


def _to_digital_numbers(reflectance: np.ndarray) -> np.ndarray:
    """Reflectance -> uint16 x 10000; 0 is nodata, so valid pixels start at 1."""
    scaled = np.rint(np.nan_to_num(reflectance, nan=0.0) / REFLECTANCE_SCALE)
    digital = np.clip(scaled, 1, 65535).astype(np.uint16)
    digital[np.isnan(reflectance)] = 0
    return digital


def _write(path: Path, data: np.ndarray, grid: Grid, *, nodata, description: str) -> None:
    write_cog(
        path,
        data,
        crs=grid.crs,
        transform=grid.transform,
        nodata=nodata,
        descriptions=[description],
    )


def _add_asset(item: pystac.Item, key: str, path: Path, title: str) -> pystac.Asset:
    asset = pystac.Asset(
        href=str(path.resolve()),
        media_type=pystac.MediaType.COG,
        roles=["data"],
        title=title,
    )
    item.add_asset(key, asset)
    FileExtension.ext(asset, add_if_missing=True).apply(
        size=path.stat().st_size, checksum=multihash_sha256(path)
    )
    return asset


# ---------------------------------------------------------------------------------------
# Static layers: the DEM and the reference water, one item each


def _static_collections(event: SyntheticEvent, grid: Grid, stage: Path) -> list[pystac.Collection]:
    """The DEM on the scene's projected grid at DEM_FACTOR x its pixel, like
    `cop-dem-glo-30` (asset `data`, float32 metres, NaN nodata), and the reference water
    reprojected to EPSG:4326 (nearest), like `jrc-gsw` (asset `occurrence`, uint8 percent,
    255 nodata)."""
    dem_grid = Grid(
        grid.crs,
        grid.transform @ Affine.scale(DEM_FACTOR),
        -(-grid.width // DEM_FACTOR),
        -(-grid.height // DEM_FACTOR),
    )
    dem_item = _static_item("demo-cop-dem-glo-30", dem_grid, DEM_DATETIME, platform="tandem-x")
    path = stage / DEM_COLLECTION / dem_item.id / f"{DEM_ASSET}.tif"
    _write(path, coarse_dem(event.elevation), dem_grid, nodata=np.nan, description="elevation")
    asset = _add_asset(dem_item, DEM_ASSET, path, "Elevation (m), Copernicus DEM-like")
    RasterExtension.ext(asset, add_if_missing=True).bands = [
        RasterBand.create(
            nodata="nan",
            data_type=DataType.FLOAT32,
            spatial_resolution=dem_grid.resolution,
            unit="metre",
        )
    ]
    occurrence, ref_grid = _to_lon_lat(reference_water(event).occurrence, grid)
    ref_item = _static_item("demo-jrc-gsw-occurrence", ref_grid, GSW_END, platform=None)
    ref_item.properties.update(start_datetime=_iso(GSW_START), end_datetime=_iso(GSW_END))
    path = stage / REFERENCE_WATER_COLLECTION / ref_item.id / f"{REFERENCE_WATER_ASSET}.tif"
    _write(path, occurrence, ref_grid, nodata=OCCURRENCE_NODATA, description="occurrence")
    asset = _add_asset(
        ref_item, REFERENCE_WATER_ASSET, path, "Water occurrence (percent of the time water)"
    )
    RasterExtension.ext(asset, add_if_missing=True).bands = [
        RasterBand.create(
            nodata=OCCURRENCE_NODATA,
            data_type=DataType.UINT8,
            spatial_resolution=grid.resolution,
            unit="percent",
        )
    ]
    return [
        _static_collection(DEM_COLLECTION, dem_item, "Synthetic Copernicus DEM GLO-30-like"),
        _static_collection(
            REFERENCE_WATER_COLLECTION,
            ref_item,
            "Synthetic JRC Global Surface Water-like occurrence (1984-2021)",
        ),
    ]


def _static_item(item_id: str, grid: Grid, when: datetime, platform: str | None) -> pystac.Item:
    geometry, bbox = _footprint(grid)
    item = pystac.Item(
        id=item_id,
        geometry=geometry,
        bbox=bbox,
        datetime=when,
        properties={"gsd": grid.resolution},
        collection=None,
    )
    if platform:
        item.properties["platform"] = platform
    _apply_projection(item, grid)
    return item


def _static_collection(
    collection_id: str, item: pystac.Item, description: str
) -> pystac.Collection:
    start = item.properties.get("start_datetime")
    end = item.properties.get("end_datetime")
    interval = (
        [datetime.fromisoformat(start), datetime.fromisoformat(end)]
        if start and end
        else [item.datetime, item.datetime]
    )
    collection = pystac.Collection(
        id=collection_id,
        description=description,
        extent=pystac.Extent(
            pystac.SpatialExtent([list(item.bbox)]), pystac.TemporalExtent([interval])
        ),
        title=collection_id,
        license="other",
        keywords=["synthetic", "static", "metaflood"],
    )
    collection.add_item(item)
    return collection


def _to_lon_lat(data: np.ndarray, grid: Grid) -> tuple[np.ndarray, Grid]:
    """Reproject a categorical layer to EPSG:4326 at about its native pixel (nearest),
    255 outside the scene."""
    dst_crs = CRS.from_epsg(4326)
    west, south, east, north = grid.bounds
    transform, width, height = calculate_default_transform(
        grid.crs, dst_crs, grid.width, grid.height, west, south, east, north
    )
    out = np.full((height, width), OCCURRENCE_NODATA, dtype=np.uint8)
    reproject(
        source=data,
        destination=out,
        src_transform=grid.transform,
        src_crs=grid.crs,
        src_nodata=OCCURRENCE_NODATA,
        dst_transform=transform,
        dst_crs=dst_crs,
        dst_nodata=OCCURRENCE_NODATA,
        resampling=Resampling.nearest,
    )
    return out, Grid(dst_crs.to_string(), transform, width, height)


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------
# Truth, beside the catalog


def _write_truth(event: SyntheticEvent, grid: Grid, truth_dir: Path) -> None:
    """Land cover, flood, elevation and the injected offsets, on the native grid."""
    common = {"crs": grid.crs, "transform": grid.transform}
    for period in PERIODS:
        write_cog(
            truth_dir / f"landcover_{period}.tif",
            event.landcover[period].astype(np.uint8),
            nodata=classes.CLASS_NODATA,
            descriptions=["landcover"],
            colormap=classes.colormap(),
            categorical=True,
            tags={"classes": json.dumps(dict(enumerate(classes.CLASS_NAMES)))},
            **common,
        )
    write_cog(
        truth_dir / "flood.tif",
        event.flood.astype(np.uint8),
        nodata=255,
        descriptions=["flood"],
        categorical=True,
        tags={"values": "0 dry, 1 new flood water, 2 permanent water"},
        **common,
    )
    write_cog(
        truth_dir / "elevation.tif",
        event.elevation.astype(np.float32),
        nodata=np.nan,
        descriptions=["elevation"],
        units=["m"],
        **common,
    )
    if event.lookalikes is not None:
        write_cog(
            truth_dir / "lookalikes.tif",
            event.lookalikes.astype(np.uint8),
            nodata=255,
            descriptions=["lookalikes"],
            categorical=True,
            tags={"values": json.dumps(LOOKALIKE_NAMES)},
            **common,
        )
    offsets = {
        "post_offset_px": [float(v) for v in event.spec.post_offset_px],
        "optical_offset_px": [float(v) for v in event.spec.optical_offset_px],
        "resolution": float(event.spec.resolution),
        "units": "native pixels (row, col)",
    }
    (truth_dir / "offsets.json").write_text(json.dumps(offsets, indent=2) + "\n")
