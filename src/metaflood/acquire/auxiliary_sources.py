"""Where an event's static layers (the DEM, the reference water) come from.

An `events.<name>.dem` or `.reference_water` section (schema `$defs/auxiliary`) becomes an
`AuxSpec`: a `SourceSpec` (so the STAC, static-catalog, signing and credential code of
the scenes serves these layers too) naming the one asset to read, plus what the layer is.
The layers have no date: a search takes every item of the collection whose footprint
meets the area to fill, whatever its datetime, and the items are mosaicked (GLO-30 comes
as 1 x 1 degree tiles). Checked at start-up, so a wrong key stops the run with its name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pystac
import requests
from pystac_client import Client
from pystac_client.exceptions import APIError
from shapely.geometry import Polygon, shape

from metaflood.acquire.download import Access
from metaflood.acquire.presets import PRESETS
from metaflood.acquire.scene import BandRef, SceneItem
from metaflood.acquire.sources import SourceSpec
from metaflood.acquire.stac import scene_item, unreachable
from metaflood.acquire.static import collection_items
from metaflood.core.errors import ConfigError
from metaflood.core.redact import redact_url, refuse_url_credentials
from metaflood.core.settings import event_section
from metaflood.demo.catalog import (
    DEM_ASSET,
    DEM_COLLECTION,
    REFERENCE_WATER_ASSET,
    REFERENCE_WATER_COLLECTION,
)

log = logging.getLogger(__name__)

LAYERS = ("dem", "reference_water")
LAYER_KINDS = ("occurrence", "worldcover", "binary")
TITLES = {"dem": "DEM", "reference_water": "reference water"}
# Items read from one search when `max_items` is not set: an AOI meets a few tiles.
MAX_ITEMS = 100
DEMO = {
    "dem": (DEM_COLLECTION, DEM_ASSET, None),
    "reference_water": (REFERENCE_WATER_COLLECTION, REFERENCE_WATER_ASSET, "occurrence"),
}


@dataclass(frozen=True)
class AuxSpec:
    """One static layer's source: `source.bands` maps the layer to its asset key."""

    layer: str  # dem | reference_water
    source: SourceSpec  # kind demo | stac | static | local | none
    layer_kind: str | None = None  # reference_water: occurrence | worldcover | binary
    file: str | None = None  # local: the GeoTIFF
    band: int = 1  # local: 1-based band

    @property
    def kind(self) -> str:
        return self.source.kind

    @property
    def asset(self) -> str:
        return self.source.bands.get(self.layer, "")


def _spec(layer: str, kind: str, provider: str, collection: str = "", **fields) -> SourceSpec:
    asset = fields.pop("asset", None)
    bands = {layer: asset} if asset else {}
    return SourceSpec(kind, layer, provider, collection, bands=bands, **fields)


def _layer_kind(cfg: dict, layer: str, key: str, default: str | None) -> str | None:
    given = cfg.get("layer")
    if layer == "dem":
        if given is not None:
            raise ConfigError(f"{key}.layer: only reference_water has a layer kind, not the dem")
        return None
    kind = given or default
    if kind is None:
        raise ConfigError(
            f"{key}: reference water needs layer ({', '.join(LAYER_KINDS)}): how its values "
            f"read as permanent water"
        )
    return kind


def _demo(cfg: dict, layer: str, demo_catalog: str | None, key: str) -> AuxSpec:
    if demo_catalog is not None and not Path(demo_catalog).exists():
        raise ConfigError(f"{key}: source demo needs the generated catalog ({demo_catalog})")
    collection, asset, kind = DEMO[layer]
    spec = _spec(layer, "demo", "the demo catalog", collection, asset=asset, url=demo_catalog or "")
    return AuxSpec(layer, spec, _layer_kind(cfg, layer, key, kind))


def _preset_entry(cfg: dict, layer: str, key: str) -> tuple[dict, dict]:
    """The preset (or {}) and its entry for the configured collection of this layer."""
    name = cfg.get("preset")
    if not name:
        return {}, {}
    if name not in PRESETS:
        raise ConfigError(f"{key}.preset: unknown preset {name!r} ({', '.join(PRESETS)})")
    preset = PRESETS[name]
    table = preset.get(layer, {})
    if not table:
        raise ConfigError(
            f"{key}.preset: {preset['title']} has no {TITLES[layer]} collection in metaflood's "
            f"presets (planetary-computer has jrc-gsw and esa-worldcover); give url, "
            f"collection and asset instead, or a local file"
        )
    collection = cfg.get("collection") or next(iter(table))
    if collection not in table and not cfg.get("asset"):
        raise ConfigError(
            f"{key}.collection: {preset['title']} has no {TITLES[layer]} collection "
            f"{collection!r} in metaflood's presets ({', '.join(table)}); give asset too "
            f"to read another"
        )
    return preset, {"collection": collection, **table.get(collection, {})}


def _stac(cfg: dict, layer: str, key: str) -> AuxSpec:
    preset, entry = _preset_entry(cfg, layer, key)
    url = cfg.get("url") or preset.get("url")
    if not url:
        raise ConfigError(f"{key}: a stac source needs url (the STAC API root) or a preset")
    refuse_url_credentials(url, f"{key}.url")
    if urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(f"{key}.url: {url!r} is not an http(s) URL")
    collection = cfg.get("collection") or entry.get("collection")
    asset = cfg.get("asset") or entry.get("asset")
    if not collection or not asset:
        raise ConfigError(f"{key}: a stac source needs collection and asset (or a preset)")
    host = urlsplit(url).hostname or ""
    sign = cfg.get("sign", preset.get("sign"))
    if sign is None and host.endswith("planetarycomputer.microsoft.com"):
        sign = "planetary-computer"
    spec = _spec(
        layer,
        "stac",
        f"{preset.get('title') or host} ({redact_url(url)})",
        collection,
        asset=asset,
        url=url,
        sign=sign or None,
        bearer_env=(cfg.get("auth") or {}).get("bearer_env"),
        max_items=int(cfg.get("max_items", MAX_ITEMS)),
    )
    return AuxSpec(layer, spec, _layer_kind(cfg, layer, key, entry.get("layer")))


def _static(cfg: dict, layer: str, key: str, base_dir: Path) -> AuxSpec:
    catalog = cfg.get("catalog")
    if not catalog:
        raise ConfigError(f"{key}: a static source needs catalog (a catalog.json path or URL)")
    refuse_url_credentials(catalog, f"{key}.catalog")
    if not cfg.get("collection") or not cfg.get("asset"):
        raise ConfigError(f"{key}: a static source needs collection and asset")
    if urlsplit(catalog).scheme not in ("http", "https"):
        path = Path(base_dir) / catalog
        if not path.is_file():
            raise ConfigError(f"{key}.catalog: {path} does not exist")
        catalog = str(path)
    spec = _spec(
        layer,
        "static",
        f"the static catalog {redact_url(catalog)}",
        cfg["collection"],
        asset=cfg["asset"],
        url=catalog,
        bearer_env=(cfg.get("auth") or {}).get("bearer_env"),
        max_items=int(cfg.get("max_items", MAX_ITEMS)),
    )
    return AuxSpec(layer, spec, _layer_kind(cfg, layer, key, None))


def _local(cfg: dict, layer: str, key: str, base_dir: Path) -> AuxSpec:
    if not cfg.get("file"):
        raise ConfigError(f"{key}: a local source needs file (the GeoTIFF)")
    path = Path(base_dir) / cfg["file"]
    if not path.is_file():
        raise ConfigError(f"{key}.file: {path} does not exist")
    spec = _spec(layer, "local", f"the local file {path}", "local", asset="file")
    kind = _layer_kind(cfg, layer, key, None)
    band = event_section({layer: cfg}, layer)["band"]  # the schema's default where unset
    return AuxSpec(layer, spec, kind, file=str(path), band=int(band))


def resolve_auxiliary(
    cfg: dict, layer: str, demo_catalog: str | None, key: str, base_dir: Path | str = "."
) -> AuxSpec:
    """The checked source of one static layer; ConfigError naming the key when wrong."""
    kind = cfg["source"]
    if kind == "demo":
        return _demo(cfg, layer, demo_catalog, key)
    if kind == "stac":
        return _stac(cfg, layer, key)
    if kind == "static":
        return _static(cfg, layer, key, Path(base_dir))
    if kind == "local":
        return _local(cfg, layer, key, Path(base_dir))
    if kind == "none":
        return AuxSpec(layer, _spec(layer, "none", "no source", "none"))
    raise ConfigError(f"{key}.source: unknown source {kind!r}")


def check_auxiliary_sources(
    event: dict, name: str, demo_catalog: str | None, base_dir: Path | str = "."
) -> None:
    """Each static layer's section at start-up (a section left out is the schema's
    default, source none, which has nothing to check)."""
    key = f"events.{name}"
    for layer in LAYERS:
        cfg = event.get(layer)
        if cfg is None:
            continue
        spec = resolve_auxiliary(cfg, layer, demo_catalog, f"{key}.{layer}", base_dir)
        scenes_demo = any((event.get(m) or {}).get("source") == "demo" for m in ("sar", "optical"))
        if spec.kind == "demo" and not scenes_demo:
            raise ConfigError(
                f"{key}.{layer}.source: demo reads the demo event's catalog, which is made "
                f"only for an event whose sar or optical source is demo"
            )


# ---------------------------------------------------------------------------------------
# Search: every item over the area, whatever its date


def _search_api(spec: SourceSpec, area: Polygon, access: Access) -> list[pystac.Item]:
    try:
        client = Client.open(spec.url, headers=access.headers(), timeout=access.timeout_s)
        search = client.search(
            collections=[spec.collection], bbox=list(area.bounds), max_items=spec.max_items
        )
        return list(search.items())
    except (APIError, requests.RequestException, OSError) as err:
        raise unreachable(spec, err, access) from None


def search_auxiliary(spec: AuxSpec, area: Polygon, access: Access) -> list[SceneItem]:
    """The items whose footprint meets `area` (lon/lat), by id, as scene items holding
    the one band `spec.layer`; the local file as one item."""
    source = spec.source
    if spec.kind == "none":
        return []
    if spec.kind == "local":
        ref = BandRef(href=spec.file, band=spec.band, radiometry="the file's own")
        item = SceneItem(f"local-{spec.layer}", "", {}, {spec.layer: ref}, {"file": spec.file})
        return [item]
    if spec.kind == "stac":
        found, root = _search_api(source, area, access), None
    else:
        found, root = collection_items(source, access)
    items = [
        scene_item_undated(item, source, root)
        for item in sorted(found, key=lambda i: i.id)
        if item.geometry is not None and shape(item.geometry).intersects(area)
    ]
    log.info("%s: %d items of %s over the area", source.provider, len(items), source.collection)
    return items[: source.max_items]


def scene_item_undated(item: pystac.Item, spec: SourceSpec, root: str | None) -> SceneItem:
    """`stac.scene_item` for an item that may carry a date range instead of a datetime
    (static layers often give only start_datetime and end_datetime)."""
    if item.datetime is None:
        item = item.clone()
        item.datetime = pystac.utils.str_to_datetime(
            item.properties.get("start_datetime") or "1970-01-01T00:00:00Z"
        )
    return scene_item(item, spec, root)
