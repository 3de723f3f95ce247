"""A STAC catalog of an event's products (results/{event}/catalog.json).

One item describes the flood products: its footprint and the event's time span, the
projection of the grid (projection extension), and for each class raster the meaning
and colour of every value (classification extension), so that a STAC browser, QGIS or
a script can find and read them without this package. Hrefs are relative, so the
folder can be moved or published as it is.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pystac
import rasterio
from pystac.extensions.classification import Classification, ClassificationExtension
from pystac.extensions.projection import ProjectionExtension
from rasterio.warp import transform_geom
from shapely.geometry import box, mapping, shape

from metaflood.core import exclusion_codes
from metaflood.core.classes import CLASS_COLORS, CLASS_NAMES, CLASS_NODATA
from metaflood.core.datacube import PRODUCTS
from metaflood.core.errors import InputError
from metaflood.core.raster import atomic_path
from metaflood.flood import reference_water, support
from metaflood.flood.change import EXTENT_COLORMAP, EXTENT_NODATA
from metaflood.flood.sar_change import EVIDENCE_COLORMAP, EVIDENCE_NODATA

ITEM_DIR = "flood-products"
COG = pystac.MediaType.COG
GPKG = "application/geopackage+sqlite3"


def _hex(rgb) -> str:
    return "".join(f"{c:02X}" for c in rgb[:3])


def _classes(entries: list[tuple[int, str, str, tuple]], nodata: int) -> list[Classification]:
    classes = [
        Classification.create(value=v, name=n, title=t, color_hint=_hex(c))
        for v, n, t, c in entries
    ]
    classes.append(Classification.create(value=nodata, name="nodata", nodata=True))
    return classes


EXTENT_CLASSES = [
    (0, "dry", "dry land", EXTENT_COLORMAP[0]),
    (1, "flooded", "flooded (new water)", EXTENT_COLORMAP[1]),
    (2, "permanent_water", "water before and after", EXTENT_COLORMAP[2]),
]
EVIDENCE_CLASSES = [
    (0, "no_flood_signal", "no flood signal", EVIDENCE_COLORMAP[0]),
    (1, "flood_signal", "backscatter fell to water level", EVIDENCE_COLORMAP[1]),
    (2, "dark_before", "excluded: water-dark before the event, did not fall", EVIDENCE_COLORMAP[2]),
]
EXCLUSION_CLASSES = [
    (
        code,
        exclusion_codes.NAMES[code].replace(" ", "_"),
        exclusion_codes.NAMES[code],
        exclusion_codes.COLOURS[code],
    )
    for code in (exclusion_codes.NOT_EXCLUDED, *exclusion_codes.EXCLUDING)
]
REFERENCE_WATER_CLASSES = [
    (code, name.replace(" ", "_").replace("-", "_"), name, reference_water.COLOURS[code])
    for code, name in reference_water.NAMES.items()
    if code != reference_water.NODATA
]
SUPPORT_CLASSES = [
    (support.NOT_FLOODED, "not_flooded", "not flooded", support.COLOURS[support.NOT_FLOODED]),
    *(
        (code, name, support.SUPPORT[name], support.COLOURS[code])
        for name, code in support.CODES.items()
    ),
]
LANDCOVER_CLASSES = [
    (i, name, name.capitalize(), CLASS_COLORS[i]) for i, name in enumerate(CLASS_NAMES)
]

# asset key -> (path under results/{event}, title, media type, roles, classes or None)
ASSETS: dict[str, tuple[str, str, str, list[str], list | None]] = {
    "extent": (
        "flood/extent.tif",
        "Flood extent",
        COG,
        ["data"],
        _classes(EXTENT_CLASSES, EXTENT_NODATA),
    ),
    "confidence": (
        "flood/confidence.tif",
        "Flood confidence (calibrated probability of new water, percent)",
        COG,
        ["data"],
        None,
    ),
    "sar_change": (
        "flood/sar_change.tif",
        "SAR change evidence",
        COG,
        ["data"],
        _classes(EVIDENCE_CLASSES, EVIDENCE_NODATA),
    ),
    "sar_logratio": (
        "flood/sar_logratio.tif",
        "SAR log-ratio of post- to pre-event backscatter (dB)",
        COG,
        ["data"],
        None,
    ),
    "exclusion": (
        "flood/exclusion.tif",
        "Terrain exclusion: where the SAR cannot say flood, and why",
        COG,
        ["data"],
        _classes(EXCLUSION_CLASSES, exclusion_codes.NODATA),
    ),
    "support": (
        "flood/support.tif",
        "What each flooded pixel rests on: both lines of evidence, or one",
        COG,
        ["data"],
        _classes(SUPPORT_CLASSES, support.NODATA),
    ),
    "reference_water": (
        "flood/reference_water.tif",
        "Water before the event, by source (reference layer, pre-event map)",
        COG,
        ["data"],
        _classes(REFERENCE_WATER_CLASSES, reference_water.NODATA),
    ),
    "water_pre": (
        "water/pre.tif",
        "Where the water is before the event: fused water probability (percent)",
        COG,
        ["data"],
        None,
    ),
    "water_post": (
        "water/post.tif",
        "Where the water is after the event: fused water probability (percent)",
        COG,
        ["data"],
        None,
    ),
    "landcover_pre": (
        "landcover/pre.tif",
        "Pre-event land cover (MetaRS)",
        COG,
        ["data"],
        _classes(LANDCOVER_CLASSES, CLASS_NODATA),
    ),
    "landcover_post": (
        "landcover/post.tif",
        "Post-event land cover (MetaRS)",
        COG,
        ["data"],
        _classes(LANDCOVER_CLASSES, CLASS_NODATA),
    ),
    "polygons": ("flood/polygons.gpkg", "Flood polygons", GPKG, ["data"], None),
    "transitions": (
        "flood/transitions.csv",
        "Land-cover transitions (km2)",
        "text/csv",
        ["metadata"],
        None,
    ),
    "impact": ("flood/impact.csv", "Impact figures", "text/csv", ["metadata"], None),
    "stats": (
        "flood/stats.json",
        "Statistics and provenance",
        pystac.MediaType.JSON,
        ["metadata"],
        None,
    ),
    "report": ("report.html", "Flood report", pystac.MediaType.HTML, ["overview"], None),
    "mapbook": ("mapbook.pdf", "Printable map book", "application/pdf", ["overview"], None),
}
# Products of an option that is off by default: described where the run made them (as
# its stats.json records; not where an earlier run with the option on left the file).
OPTIONAL_ASSETS: dict[str, tuple[str, str, str, list[str], list | None]] = {
    "flood_network": (
        "flood/network.tif",
        "Flood network probability (percent, not calibrated; change.flood_network)",
        COG,
        ["data"],
        None,
    ),
}


def _footprint(extent_path: Path) -> tuple[dict, list[float], dict]:
    with rasterio.open(extent_path) as src:
        bounds, crs = src.bounds, src.crs
        projection = {
            "code": crs.to_string() if crs.to_epsg() else None,
            "wkt2": None if crs.to_epsg() else crs.to_wkt(),
            "shape": [src.height, src.width],
            "transform": list(src.transform)[:6],
            "bbox": list(bounds),
        }
    geometry = transform_geom(crs, "EPSG:4326", mapping(box(*bounds)))
    return geometry, list(shape(geometry).bounds), projection


def _day(value: str, end: bool = False) -> dt.datetime:
    day = dt.date.fromisoformat(str(value))
    return dt.datetime.combine(day, dt.time.max if end else dt.time.min, dt.UTC)


def build_catalog(event: str, event_config: dict, event_dir: Path) -> pystac.Catalog:
    """The catalog and its one item, hrefs set for results/{event}."""
    event_dir = Path(event_dir).resolve()
    extent = event_dir / ASSETS["extent"][0]
    if not extent.exists():
        raise InputError(f"{extent}: the flood extent is missing")
    geometry, bbox, projection = _footprint(extent)
    item = pystac.Item(
        id=f"{event}-{ITEM_DIR}",
        geometry=geometry,
        bbox=bbox,
        datetime=None,
        start_datetime=_day(event_config["pre"]["start"]),
        end_datetime=_day(event_config["post"]["end"], end=True),
        properties={
            "title": f"Flood products: {event}",
            "description": "Flood extent, confidence, SAR change evidence, land cover before "
            "and after, polygons, statistics and report, mapped by metaflood.",
        },
    )
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    proj.apply(
        code=projection["code"],
        wkt2=projection["wkt2"],
        shape=projection["shape"],
        transform=projection["transform"],
        bbox=projection["bbox"],
    )
    item_dir = event_dir / ITEM_DIR
    optional = {k: v for k, v in OPTIONAL_ASSETS.items() if _made_by_run(k, event_dir)}
    for key, (rel, title, media, roles, classes) in (ASSETS | optional).items():
        path = event_dir / rel
        if not path.exists():
            raise InputError(f"{path}: product missing, cannot describe it in the catalog")
        asset = pystac.Asset(
            href=os.path.relpath(path, item_dir), title=title, media_type=media, roles=roles
        )
        item.add_asset(key, asset)
        if classes is not None:
            ClassificationExtension.ext(asset, add_if_missing=True).apply(classes=classes)
    catalog = pystac.Catalog(
        id=f"metaflood-{event}",
        description=f"Flood products of event {event}, mapped by metaflood.",
        title=f"metaflood: {event}",
    )
    catalog.add_item(item)
    catalog.set_self_href(str(event_dir / "catalog.json"))
    item.set_self_href(str(item_dir / f"{item.id}.json"))
    return catalog


def _made_by_run(name: str, event_dir: Path) -> bool:
    stats = event_dir / ASSETS["stats"][0]
    if not stats.is_file():
        return False  # the loop over ASSETS names it missing
    (product,) = (p for p in PRODUCTS if p.name == name)
    return product.made_by_run(json.loads(stats.read_text()))


def write_catalog(event: str, event_config: dict, event_dir: Path, out: Path) -> Path:
    """catalog.json and its item, written with relative links, each atomically."""
    catalog = build_catalog(event, event_config, event_dir)
    item = next(iter(catalog.get_items()))
    documents = {
        Path(out): catalog.to_dict(transform_hrefs=True),
        Path(item.get_self_href()): item.to_dict(transform_hrefs=True),
    }
    # Self-contained: no absolute self links, relative links between catalog and item.
    for path, document in documents.items():
        document["links"] = [
            link | {"href": _relative(link["href"], path)}
            for link in document["links"]
            if link["rel"] != "self"
        ]
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(document, indent=2))
    return Path(out)


def _relative(href: str, document: Path) -> str:
    if "://" in href or not os.path.isabs(href):
        return href
    relative = os.path.relpath(href, Path(document).resolve().parent)
    return relative if relative.startswith(".") else f"./{relative}"
