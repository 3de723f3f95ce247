"""Searching a STAC API (pystac-client), and turning STAC items into scene items.

An unreachable API stops the run with the provider named and a pointer to the offline
demo; one that refuses the credentials (401, 403) says so, and names the variable or
file they came from. `query` is sent to APIs that implement the query extension and
applied again to what comes back, so it also holds for APIs that do not.
"""

from __future__ import annotations

import logging
import operator
from typing import Any

import pystac
import requests
from pystac_client import Client
from pystac_client.exceptions import APIError
from shapely.geometry import Polygon, shape

from metaflood.acquire.download import Access
from metaflood.acquire.radiometry import Radiometry, plain_radiometry, reflectance_radiometry
from metaflood.acquire.scene import MASK, BandRef, SceneItem
from metaflood.acquire.security import resolve_href
from metaflood.acquire.sources import SourceSpec
from metaflood.core.config import DateRange
from metaflood.core.errors import AcquisitionError, InputError
from metaflood.core.redact import redact_text

log = logging.getLogger(__name__)

OFFLINE_HINT = (
    "without a network, run the embedded offline demo instead: "
    "`snakemake --cores all` (config.yaml; see README)"
)
KEPT_PROPERTIES = (
    "platform",
    "constellation",
    "eo:cloud_cover",
    "sat:",
    "sar:",
    "view:",
    "s1:",
    "s2:",
    "earthsearch:",
    "processing:",
)
QUERY_OPS = {
    "eq": operator.eq,
    "neq": operator.ne,
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
    "in": lambda value, options: value in options,
}


def unreachable(spec: SourceSpec, err: Exception, access: Access) -> AcquisitionError:
    status = getattr(err, "status_code", None)
    if status in (401, 403):
        what = f"{spec.provider}, searched for collection {spec.collection},"
        return AcquisitionError(access.refusal(what, spec.url, status))
    return AcquisitionError(
        f"cannot reach {spec.provider} for collection {spec.collection} "
        f"({type(err).__name__}: {redact_text(err)}); {OFFLINE_HINT}"
    )


def matches_query(properties: dict, query: dict[str, Any]) -> bool:
    """The STAC API query extension, evaluated on one item's properties."""
    for name, ops in query.items():
        value = properties.get(name)
        if not isinstance(ops, dict):
            ops = {"eq": ops}
        for op, expected in ops.items():
            if op not in QUERY_OPS:
                raise AcquisitionError(f"query: unknown operator {op!r} for {name}")
            if value is None or not QUERY_OPS[op](value, expected):
                return False
    return True


def _datetime_range(window: DateRange) -> str:
    return f"{window.start.isoformat()}T00:00:00Z/{window.end.isoformat()}T23:59:59Z"


def search_api(
    spec: SourceSpec, window: DateRange, aoi: Polygon, access: Access
) -> tuple[list[pystac.Item], str]:
    """Items of the collection in the window whose footprint meets the AOI, and a note
    on what the search found when that is nothing."""
    try:
        client = Client.open(spec.url, headers=access.headers(), timeout=access.timeout_s)
        server_query = spec.query if spec.query and client.conforms_to("QUERY") else None
        search = client.search(
            collections=[spec.collection],
            bbox=list(aoi.bounds),
            datetime=_datetime_range(window),
            query=server_query,
            max_items=spec.max_items,
        )
        found = list(search.items())
        note = ""
        if not found:
            anywhere = client.search(
                collections=[spec.collection], datetime=_datetime_range(window), max_items=1
            )
            if list(anywhere.items()):
                note = "the collection has items in the window, but none over the AOI"
            else:
                note = "the collection has no item at all in the window"
    except (APIError, requests.RequestException, OSError) as err:
        raise unreachable(spec, err, access) from None
    items = [
        item
        for item in found
        if item.datetime is not None
        and window.contains(item.datetime)
        and shape(item.geometry).intersects(aoi)
        and matches_query(item.properties, spec.query)
    ]
    log.info("%s: %d items of %s in %s", spec.provider, len(items), spec.collection, window)
    return items, note


def _asset(item: pystac.Item, key: str) -> pystac.Asset:
    if key not in item.assets:
        raise InputError(
            f"item {item.id} of {item.collection_id} has no asset {key!r} "
            f"(it has {', '.join(sorted(item.assets))})"
        )
    return item.assets[key]


def asset_resolution(asset: pystac.Asset) -> float | None:
    """The asset's pixel size as the catalog states it (raster:bands spatial_resolution,
    gsd, or proj:transform), None where it does not."""
    fields = asset.extra_fields
    raster = (fields.get("raster:bands") or [{}])[0]
    for value in (raster.get("spatial_resolution"), fields.get("gsd")):
        if isinstance(value, (int, float)) and value > 0:
            return float(value)
    transform = fields.get("proj:transform")
    if isinstance(transform, list) and transform and isinstance(transform[0], (int, float)):
        return abs(float(transform[0])) or None
    return None


def scene_item(item: pystac.Item, spec: SourceSpec, root: str | None) -> SceneItem:
    """The bands to read from an item; hrefs resolved against its catalog, escapes refused."""
    base = item.get_self_href() or root or ""
    bands: dict[str, BandRef] = {}
    keys = dict(spec.bands)
    if spec.mask_asset:
        keys[MASK] = spec.mask_asset
    for band, key in keys.items():
        asset = _asset(item, key)
        href = resolve_href(asset.href, base, root, where=f"item {item.id} asset {key}")
        raster = (asset.extra_fields.get("raster:bands") or [{}])[0]
        if band == MASK:
            radiometry = Radiometry(1.0, 0.0, "class codes")
        elif spec.modality == "optical" and spec.offset is None:
            radiometry = reflectance_radiometry(item.properties, raster, spec.scale)
        else:
            radiometry = plain_radiometry(raster, spec.scale, spec.offset)
        bands[band] = BandRef(
            href=href,
            band=1,
            scale=radiometry.scale,
            offset=radiometry.offset,
            radiometry=radiometry.why,
            size=asset.extra_fields.get("file:size"),
            checksum=asset.extra_fields.get("file:checksum"),
            resolution=asset_resolution(asset),
        )
    properties = {
        k: v
        for k, v in item.properties.items()
        if k.startswith(KEPT_PROPERTIES) and k != "datetime"
    }
    return SceneItem(
        id=item.id,
        datetime=item.datetime.isoformat(),
        footprint=item.geometry,
        bands=bands,
        properties=properties,
        collection=item.collection_id or spec.collection,
    )
