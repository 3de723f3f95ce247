"""Finding items in a static STAC catalog (a local directory or files beside each other)."""

from __future__ import annotations

from pathlib import Path

import pystac
from shapely.geometry import Polygon, shape

from metaflood.config import Window
from metaflood.errors import AcquisitionError


def load_catalog(path: str | Path) -> pystac.Catalog:
    try:
        return pystac.Catalog.from_file(str(path))
    except Exception as err:  # pystac raises several types for missing or invalid JSON
        raise AcquisitionError(f"cannot read the STAC catalog {path}: {err}") from err


def search_catalog(
    catalog: pystac.Catalog, collection: str, window: Window, aoi: Polygon
) -> list[pystac.Item]:
    """Items of one collection acquired inside the window whose footprint touches the AOI."""
    found = []
    for item in catalog.get_items(recursive=True):
        if item.collection_id != collection or item.datetime is None:
            continue
        if window.contains(item.datetime) and shape(item.geometry).intersects(aoi):
            found.append(item)
    return found
