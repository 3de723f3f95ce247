"""Acquisition: pick the scenes of one period and write them in a canonical form.

Canonical scenes (in the provider's own CRS and pixel grid, cut to the AOI):
- sar.tif: VV, VH linear power (float32, NaN nodata)
- optical.tif: blue, green, red, nir surface reflectance (float32, NaN nodata)
- optical_mask.tif: 0 clear, 1 cloud, 2 cloud shadow, 255 nodata (uint8)
- scenes.json: which items were chosen, when, and why.
A modality with no scene in the window is written as an all-nodata raster and marked
missing in scenes.json, so MetaRS routes around it; a period with neither is an error.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from metaflood import optical as opt
from metaflood import sar
from metaflood.acquire.catalog import load_catalog, search_catalog
from metaflood.acquire.read import WindowRead, read_assets
from metaflood.acquire.select import choose
from metaflood.acquire.sources import SourceSpec, resolve_source
from metaflood.config import MODALITIES, aoi_polygon, event_grid, parse_day, window
from metaflood.errors import AcquisitionError, InputError
from metaflood.raster import atomic_path, write_cog

log = logging.getLogger(__name__)

SAR_BANDS = ("VV", "VH")
OPTICAL_BANDS = ("blue", "green", "red", "nir")


def _target_day(event: dict, period: str, key: str):
    """SAR nearest the flood: the latest pre scene and the earliest post scene."""
    win = window(event, period, key)
    if "event_date" in event:
        return parse_day(event["event_date"], f"{key}.event_date")
    return win.end if period == "pre" else win.start


def _read_modality(spec: SourceSpec, item, aoi) -> tuple[WindowRead, np.ndarray | None]:
    keys = [spec.bands[b] for b in (SAR_BANDS if spec.modality == "sar" else OPTICAL_BANDS)]
    if spec.mask_asset:
        keys.append(spec.mask_asset)
    read = read_assets(item, keys, aoi, categorical=(spec.mask_asset,) if spec.mask_asset else ())
    values = read.data[: len(keys) - (1 if spec.mask_asset else 0)]
    if np.isnan(values).all():
        raise InputError(f"item {item.id}: every pixel over the AOI is nodata")
    mask_band = read.data[-1] if spec.mask_asset else None
    read.data = values
    return read, mask_band


def _write_sar(read: WindowRead, spec: SourceSpec, path: Path) -> None:
    data = sar.to_linear(read.data) if spec.sar_scale == "db" else read.data
    write_cog(
        path,
        data.astype(np.float32),
        crs=read.crs,
        transform=read.transform,
        nodata=np.nan,
        descriptions=SAR_BANDS,
        units=("linear power",) * 2,
    )


def _write_optical(read: WindowRead, scl: np.ndarray | None, out: Path, out_mask: Path) -> None:
    data = read.data
    if scl is None:
        mask = np.zeros(data.shape[1:], dtype=np.uint8)
    else:
        mask = opt.mask_from_scl(np.nan_to_num(scl, nan=opt.SCL_NODATA).astype(np.uint8))
    mask[np.isnan(data).any(axis=0)] = opt.MASK_NODATA
    common = {"crs": read.crs, "transform": read.transform}
    write_cog(
        out, data, nodata=np.nan, descriptions=OPTICAL_BANDS, units=("reflectance",) * 4, **common
    )
    write_cog(
        out_mask,
        mask,
        nodata=opt.MASK_NODATA,
        descriptions=("cloud_mask",),
        categorical=True,
        tags={"codes": "0 clear, 1 cloud, 2 cloud shadow, 255 nodata"},
        **common,
    )


def _write_absent(event: dict, key: str, modality: str, paths: list[Path]) -> None:
    """All-nodata rasters on the event grid stand for a modality with no scene."""
    grid = event_grid(event, key)
    common = {"crs": grid.crs, "transform": grid.transform, "tags": {"absent": "true"}}
    shape = (grid.height, grid.width)
    if modality == "sar":
        nan = np.full((2, *shape), np.nan, np.float32)
        write_cog(paths[0], nan, nodata=np.nan, descriptions=SAR_BANDS, **common)
        return
    nan = np.full((4, *shape), np.nan, np.float32)
    write_cog(paths[0], nan, nodata=np.nan, descriptions=OPTICAL_BANDS, **common)
    none = np.full(shape, opt.MASK_NODATA, np.uint8)
    write_cog(
        paths[1],
        none,
        nodata=opt.MASK_NODATA,
        descriptions=("cloud_mask",),
        categorical=True,
        **common,
    )


def acquire_period(
    event: dict,
    name: str,
    period: str,
    *,
    demo_catalog: str | None,
    out_sar: Path,
    out_optical: Path,
    out_optical_mask: Path,
    out_scenes: Path,
) -> dict:
    key = f"events.{name}"
    aoi = aoi_polygon(event, key)
    win = window(event, period, key)
    target = _target_day(event, period, key)
    record: dict = {"event": name, "period": period, "window": str(win)}
    outputs = {"sar": [out_sar], "optical": [out_optical, out_optical_mask]}
    searched = []
    for modality in MODALITIES:
        spec = resolve_source(event[modality], modality, demo_catalog, f"{key}.{modality}")
        catalog = load_catalog(spec.catalog)
        items = search_catalog(catalog, spec.collection, win, aoi)
        searched.append(f"{spec.collection} ({len(items)} items)")
        choice = choose(items, aoi, modality, target)
        if choice is None:
            log.warning("%s %s: no %s scene in %s covers the AOI", name, period, modality, win)
            record[modality] = {
                "status": "missing",
                "collection": spec.collection,
                "reason": f"{len(items)} items in the window, none covering the AOI",
            }
            continue
        log.info("%s %s %s: %s (%s)", name, period, modality, choice.item.id, choice.reason)
        read, mask_band = _read_modality(spec, choice.item, aoi)
        if modality == "sar":
            _write_sar(read, spec, out_sar)
        else:
            _write_optical(read, mask_band, out_optical, out_optical_mask)
        record[modality] = {
            "status": "found",
            "source": spec.name,
            "collection": spec.collection,
            "item": choice.item.id,
            "datetime": choice.item.datetime.isoformat(),
            "coverage": round(choice.coverage, 4),
            "reason": choice.reason,
            "properties": {
                k: v
                for k, v in choice.item.properties.items()
                if k.startswith(("sat:", "sar:", "eo:cloud_cover", "platform"))
            },
        }
    if all(record[m]["status"] == "missing" for m in MODALITIES):
        raise AcquisitionError(
            f"{key}.{period}: no scene of either modality in the window {win} "
            f"(searched {', '.join(searched)})"
        )
    for modality in MODALITIES:
        if record[modality]["status"] == "missing":
            _write_absent(event, key, modality, outputs[modality])
    with atomic_path(out_scenes) as tmp:
        tmp.write_text(json.dumps(record, indent=2))
    return record
