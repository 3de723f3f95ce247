"""The products catalog: STAC that a browser or a script can read without this package."""

import json
import shutil
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pystac
import pytest
import yaml
from pystac.extensions.classification import ClassificationExtension
from pystac.extensions.projection import ProjectionExtension

from metaflood.core.errors import InputError
from metaflood.report.products_catalog import ASSETS, write_catalog
from tests.report import test_stats_report

products = test_stats_report.products  # the fixture: flood products of a small event
EVENT = {
    "pre": {"start": "2023-09-01", "end": "2023-09-09"},
    "post": {"start": "2023-09-11", "end": "2023-09-20"},
}


def offline_schema_config(tmp_path: Path) -> Path:
    """stac-validator fetches JSON schemas from the web; map the core STAC 1.1.0 and
    GeoJSON schemas to the copies pystac ships, so validation runs offline."""
    root = files("pystac.validation") / "jsonschemas"
    schemas = {}
    for path in (root / "stac-spec" / "v1.1.0").iterdir():
        for spec in ("item-spec", "catalog-spec", "collection-spec"):
            url = f"https://schemas.stacspec.org/v1.1.0/{spec}/json-schema/{path.name}"
            schemas[url] = str(path)
    for name in ("Feature", "Geometry"):
        schemas[f"https://geojson.org/schema/{name}.json"] = str(root / "geojson" / f"{name}.json")
    config = tmp_path / "schemas.yaml"
    config.write_text(yaml.safe_dump({"schemas": schemas}))
    return config


def stac_validator(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "stac-validator"
    command = [str(exe) if exe.exists() else shutil.which("stac-validator"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def event_folder(tmp_path: Path, products: dict) -> Path:
    """A results/{event} layout from the fixture's products."""
    event = tmp_path / "results" / "e"
    sources = {
        "flood/extent.tif": products["extent.tif"],
        "flood/confidence.tif": products["confidence.tif"],
        "flood/sar_change.tif": products["sar_evidence"],
        "flood/sar_logratio.tif": products["sar_ratio"],
        "landcover/pre.tif": products["pre"],
        "landcover/post.tif": products["post"],
        "flood/polygons.gpkg": products["polygons.gpkg"],
        "flood/transitions.csv": products["transitions.csv"],
        "flood/exclusion.tif": products["exclusion.tif"],
        "flood/reference_water.tif": products["reference_water.tif"],
        "flood/support.tif": products["support.tif"],
        "water/pre.tif": products["pre_water"],
        "water/post.tif": products["post_water"],
    }
    for rel, _title, *_ in ASSETS.values():
        target = event / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel in sources:
            shutil.copy(sources[rel], target)
        else:
            target.write_text("{}")
    return event


def test_catalog_is_valid_stac_with_projection_and_classification(products, tmp_path):
    event = event_folder(tmp_path, products)
    out = write_catalog("e", EVENT, event, event / "catalog.json")
    # Core schemas only: no package ships the extension schemas, and this runs offline.
    config = str(offline_schema_config(tmp_path))
    documents = [out, event / "flood-products" / "e-flood-products.json"]
    for document, kind in zip(documents, ("CATALOG", "ITEM"), strict=True):
        result = stac_validator("validate", str(document), "--core", "--schema-config", config)
        assert result.returncode == 0, result.stdout + result.stderr
        report = json.loads(result.stdout[result.stdout.index("[") : result.stdout.rindex("]") + 1])
        assert [(r["asset_type"], r["valid_stac"]) for r in report] == [(kind, True)]
    catalog = pystac.Catalog.from_file(str(out))
    (item,) = catalog.get_items()
    proj = ProjectionExtension.ext(item)
    assert proj.code == "EPSG:32634" and proj.shape == [64, 64]
    assert proj.transform[:3] == [2.0, 0.0, 600000.0]
    classes = ClassificationExtension.ext(item.assets["extent"]).classes
    assert [(c.value, c.name) for c in classes][:3] == [
        (0, "dry"),
        (1, "flooded"),
        (2, "permanent_water"),
    ]
    assert ClassificationExtension.ext(item.assets["landcover_post"]).classes[1].name == "building"
    exclusion = ClassificationExtension.ext(item.assets["exclusion"]).classes
    assert [c.name for c in exclusion] == [
        "not_excluded",
        "height_above_nearest_drainage",
        "steep_slope",
        "radar_shadow",
        "radar_layover",
        "nodata",
    ]
    support = ClassificationExtension.ext(item.assets["support"]).classes
    assert [(c.value, c.name) for c in support][:3] == [
        (0, "not_flooded"),
        (1, "water_maps_and_sar_change"),
        (2, "sar_change_only"),
    ]
    water = ClassificationExtension.ext(item.assets["reference_water"]).classes
    assert water[2].name == "water_in_the_reference_layer_only"
    # Relative hrefs that resolve to the products, and nothing outside the event folder.
    for asset in item.assets.values():
        assert not Path(asset.href).is_absolute()
        resolved = Path(asset.get_absolute_href()).resolve()
        assert resolved.is_file() and event.resolve() in resolved.parents
    assert item.properties["start_datetime"].startswith("2023-09-01")
    west, south, east, north = item.bbox
    assert 21 < west < east < 23 and 32 < south < north < 33


def test_the_flood_network_is_described_where_the_run_made_it(products, tmp_path):
    """`change.flood_network` is off by default: its probability is an asset only when
    the run made it (stats.json records it), and its absence is no missing product."""
    event = event_folder(tmp_path, products)
    write_catalog("e", EVENT, event, event / "catalog.json")
    (item,) = pystac.Catalog.from_file(str(event / "catalog.json")).get_items()
    assert "flood_network" not in item.assets
    assert {"water_pre", "water_post"} <= set(item.assets)
    # left by an earlier run with the option on: not this run's product
    shutil.copy(products["confidence.tif"], event / "flood" / "network.tif")
    write_catalog("e", EVENT, event, event / "catalog.json")
    (item,) = pystac.Catalog.from_file(str(event / "catalog.json")).get_items()
    assert "flood_network" not in item.assets
    # made by this run, as its stats.json records
    (event / "flood" / "stats.json").write_text(json.dumps({"flood_network": {}}))
    write_catalog("e", EVENT, event, event / "catalog.json")
    (item,) = pystac.Catalog.from_file(str(event / "catalog.json")).get_items()
    network = item.assets["flood_network"]
    assert network.title.startswith("Flood network probability")
    assert Path(network.get_absolute_href()).resolve() == (event / "flood/network.tif").resolve()


def test_catalog_refuses_missing_products(products, tmp_path):
    event = event_folder(tmp_path, products)
    (event / "mapbook.pdf").unlink()
    with pytest.raises(InputError, match="mapbook.pdf: product missing"):
        write_catalog("e", EVENT, event, event / "catalog.json")
    assert not (event / "catalog.json").exists()
