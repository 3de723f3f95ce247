"""A stand-in provider for the acquisition tests: the demo event republished the way
Planetary Computer publishes Sentinel-1 RTC and Sentinel-2 L2A.

The demo generator's COGs are copied under a folder the range server serves, and STAC
items are written with the real collections' ids, asset keys and properties
(`sentinel-1-rtc` vv/vh with `sat:relative_orbit` and `sat:orbit_state`;
`sentinel-2-l2a` B02/B03/B04/B08/B11/SCL with `eo:cloud_cover` and
`s2:processing_baseline` 05.09, whose DNs carry the +1000 BOA offset). As on Sentinel-2,
B11 is at twice the pixel size of the other bands (2x2 block means of the demo's B11),
and each optical asset states its `gsd`. The same items are written as an
ItemCollection (for `rustac serve`) and as a static catalog.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pystac
import rasterio

from metaflood.demo.catalog import (
    DEM_COLLECTION,
    OPTICAL_COLLECTION,
    REFERENCE_WATER_COLLECTION,
    SAR_COLLECTION,
)
from metaflood.demo.events import build_demo_event

SAR = "sentinel-1-rtc"
OPTICAL = "sentinel-2-l2a"
COLLECTIONS = {
    SAR_COLLECTION: SAR,
    OPTICAL_COLLECTION: OPTICAL,
    DEM_COLLECTION: "cop-dem-glo-30",
    REFERENCE_WATER_COLLECTION: "jrc-gsw",
}
BOA_OFFSET_DN = 1000
COARSE_ASSET = "B11"  # SWIR 1.6 um: 20 m beside the 10 m bands on Sentinel-2


@dataclass
class Provider:
    demo_catalog: Path  # the demo event as the demo source reads it
    served: Path  # folder the range server serves
    items: list[dict]  # STAC items (dicts) with hrefs under base_url

    def write_item_collection(self, path: Path) -> Path:
        path.write_text(json.dumps({"type": "FeatureCollection", "features": self.items}))
        return path

    def item(self, item_id: str) -> dict:
        return next(i for i in self.items if i["id"] == item_id)


def _add_boa_offset(path: Path) -> None:
    """DN + 1000 where valid, as Sentinel-2 processing baseline >= 04.00 stores it."""
    with rasterio.open(path) as src:
        profile, data = src.profile, src.read()
    data = np.where(data > 0, data + BOA_OFFSET_DN, 0).astype(data.dtype)
    profile.update(driver="COG", compress="DEFLATE", blocksize=256)
    for key in ("blockxsize", "blockysize", "tiled", "interleave"):
        profile.pop(key, None)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def _coarsen(path: Path) -> float:
    """The file at twice its pixel size (2x2 block means of the valid DNs); returns the
    new pixel size."""
    with rasterio.open(path) as src:
        profile, data = src.profile, src.read(1)
    h, w = data.shape[0] // 2 * 2, data.shape[1] // 2 * 2
    blocks = data[:h, :w].reshape(h // 2, 2, w // 2, 2).astype(np.float64)
    coarse = np.rint(blocks.mean(axis=(1, 3))).astype(data.dtype)
    t = profile["transform"]
    profile.update(
        driver="COG",
        compress="DEFLATE",
        blocksize=256,
        width=w // 2,
        height=h // 2,
        transform=rasterio.Affine(2 * t.a, t.b, t.c, t.d, 2 * t.e, t.f),
    )
    for key in ("blockxsize", "blockysize", "tiled", "interleave"):
        profile.pop(key, None)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(coarse, 1)
    return 2 * abs(t.a)


def build_provider(event: dict, name: str, root: Path, base_url: str) -> Provider:
    """Generate the demo event under root/demo and republish it under root/served."""
    catalog_path = build_demo_event(event, name, root / "demo")
    served = root / "served"
    items = []
    for item in pystac.Catalog.from_file(str(catalog_path)).get_items(recursive=True):
        collection = COLLECTIONS[item.collection_id]
        folder = served / collection / item.id
        folder.mkdir(parents=True)
        stac = item.to_dict(include_self_link=False, transform_hrefs=False)
        stac["links"] = []
        stac["collection"] = collection
        for key, asset in item.assets.items():
            target = folder / Path(asset.get_absolute_href()).name
            shutil.copy(asset.get_absolute_href(), target)
            entry = stac["assets"][key]
            entry["href"] = f"{base_url}/{collection}/{item.id}/{target.name}"
            entry.pop("file:checksum", None)
            if collection == OPTICAL and key != "SCL":
                gsd = _coarsen(target) if key == COARSE_ASSET else item.properties["gsd"]
                _add_boa_offset(target)
                entry.pop("raster:bands", None)  # Planetary Computer gives none for S2 L2A
                entry["gsd"] = gsd
            entry["file:size"] = target.stat().st_size
        if collection == OPTICAL:
            stac["properties"]["s2:processing_baseline"] = "05.09"
        items.append(stac)
    return Provider(catalog_path, served, items)


def write_static_catalog(provider: Provider, folder: Path, base_url: str) -> Path:
    """The same items as a static catalog (catalog.json, collections, items) under
    `folder`, with asset hrefs relative to each item, for serving over HTTP."""
    catalog = {
        "type": "Catalog",
        "stac_version": "1.0.0",
        "id": "provider",
        "description": "test provider",
        "links": [{"rel": "root", "href": "./catalog.json", "type": "application/json"}],
    }
    by_collection: dict[str, list[dict]] = {}
    for item in provider.items:
        by_collection.setdefault(item["collection"], []).append(item)
    for collection_id, items in by_collection.items():
        catalog["links"].append({"rel": "child", "href": f"./{collection_id}/collection.json"})
        collection = {
            "type": "Collection",
            "stac_version": "1.0.0",
            "id": collection_id,
            "description": collection_id,
            "license": "other",
            "extent": {
                "spatial": {"bbox": [[-180, -90, 180, 90]]},
                "temporal": {"interval": [[None, None]]},
            },
            "links": [{"rel": "root", "href": "../catalog.json"}],
        }
        for item in items:
            relative = dict(item)
            relative["assets"] = {
                key: {**asset, "href": "./" + asset["href"].rsplit("/", 1)[-1]}
                for key, asset in item["assets"].items()
            }
            relative["links"] = [
                {"rel": "root", "href": "../../catalog.json"},
                {"rel": "collection", "href": "../collection.json"},
                {"rel": "parent", "href": "../collection.json"},
            ]
            item_dir = folder / collection_id / item["id"]
            item_dir.mkdir(parents=True, exist_ok=True)
            (item_dir / f"{item['id']}.json").write_text(json.dumps(relative))
            collection["links"].append({"rel": "item", "href": f"./{item['id']}/{item['id']}.json"})
        (folder / collection_id / "collection.json").write_text(json.dumps(collection))
    (folder / "catalog.json").write_text(json.dumps(catalog))
    return folder / "catalog.json"
