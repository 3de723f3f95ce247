"""Publishing a synthetic event as a static STAC catalog that looks like real providers."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from affine import Affine
from pystac.validation import validate_dict
from pystac.validation.stac_validator import GetSchemaError
from rasterio.warp import transform as warp_points
from shapely.geometry import Point, shape

from metaflood.core import classes
from metaflood.demo import catalog as demo_catalog
from metaflood.demo.catalog import (
    DEM_COLLECTION,
    OPTICAL_COLLECTION,
    REFERENCE_WATER_COLLECTION,
    SAR_COLLECTION,
    publish_demo_catalog,
)
from metaflood.demo.simulate import simulate_event
from metaflood.demo.spec import SceneSpec

CRS = "EPSG:32634"
# Derna-ish, UTM 34N; 5 m pixels.
TRANSFORM = Affine(5.0, 0.0, 640_000.0, 0.0, -5.0, 3_631_000.0)
DATES = {
    ("pre", "sar"): datetime(2023, 9, 5, 16, 31, tzinfo=UTC),
    ("pre", "optical"): datetime(2023, 9, 6, 9, 40, tzinfo=UTC),
    ("post", "sar"): datetime(2023, 9, 17, 16, 31, tzinfo=UTC),
    ("post", "optical"): datetime(2023, 9, 16, 9, 40, tzinfo=UTC),
}
COLLECTIONS = (SAR_COLLECTION, OPTICAL_COLLECTION, DEM_COLLECTION, REFERENCE_WATER_COLLECTION)
SPEC = SceneSpec(
    seed=11,
    height=120,
    width=150,
    resolution=5.0,
    post_offset_px=(0.4, -0.2),
    optical_offset_px=(0.1, 0.3),
)


@pytest.fixture(scope="module")
def event():
    return simulate_event(SPEC)


@pytest.fixture(scope="module")
def published(event, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "catalog"
    return publish_demo_catalog(event, out, crs=CRS, transform=TRANSFORM, dates=DATES)


@pytest.fixture(scope="module")
def items(published) -> dict[str, pystac.Item]:
    catalog = pystac.Catalog.from_file(str(published))
    return {item.id: item for item in catalog.get_items(recursive=True)}


def _read(asset: pystac.Asset) -> tuple[np.ndarray, dict]:
    with rasterio.open(asset.get_absolute_href()) as src:
        return src.read(1), {"crs": src.crs, "transform": src.transform, "nodata": src.nodata}


def test_catalog_has_the_scene_and_static_collections_and_the_expected_items(published, items):
    assert published.name == "catalog.json" and published.exists()
    catalog = pystac.Catalog.from_file(str(published))
    assert catalog.catalog_type == pystac.CatalogType.SELF_CONTAINED
    assert {c.id for c in catalog.get_children()} == set(COLLECTIONS)
    scenes = {i for i in items if i.startswith(("demo-s1", "demo-s2"))}
    assert scenes == {
        "demo-s1-20230905",
        "demo-s1-20230917",
        "demo-s2-20230906",
        "demo-s2-20230916",
    }
    assert len(items) == len(scenes) + 2  # one DEM item, one reference-water item
    for item_id in scenes:
        expected = SAR_COLLECTION if item_id.startswith("demo-s1") else OPTICAL_COLLECTION
        assert items[item_id].collection_id == expected
    assert items["demo-s1-20230917"].datetime == DATES[("post", "sar")]
    assert items["demo-s2-20230906"].datetime == DATES[("pre", "optical")]


def test_collection_extents_cover_their_items(published, items):
    catalog = pystac.Catalog.from_file(str(published))
    for collection in catalog.get_children():
        interval = collection.extent.temporal.intervals[0]
        members = [i for i in items.values() if i.collection_id == collection.id]
        starts = [i.common_metadata.start_datetime or i.datetime for i in members]
        ends = [i.common_metadata.end_datetime or i.datetime for i in members]
        assert interval[0] == min(starts)
        assert interval[1] == max(ends)
        bbox = collection.extent.spatial.bboxes[0]
        for item in members:
            assert bbox[0] <= item.bbox[0] and bbox[2] >= item.bbox[2]


def test_hrefs_are_relative_and_nothing_points_outside(published):
    root = published.parent
    for path in root.rglob("*.json"):
        text = path.read_text()
        assert str(root.parent) not in text, path
        for link in json.loads(text).get("links", []):
            assert not link["href"].startswith("/"), (path, link)


def test_items_validate_against_the_core_schema(published):
    """Offline: pystac ships the core schemas; extension schemas would need the network."""
    for path in published.parent.rglob("*.json"):
        if path.parent.name == demo_catalog.TRUTH_DIR:
            continue
        data = json.loads(path.read_text())
        data["stac_extensions"] = []
        validate_dict(data)


def test_validate_all_with_extension_schemas(published):
    catalog = pystac.Catalog.from_file(str(published))
    try:
        catalog.validate_all()
    except GetSchemaError as err:
        pytest.skip(f"extension JSON schemas cannot be fetched offline: {str(err)[:120]}")


def test_sar_items_look_like_sentinel_1_rtc(event, items):
    pre, post = items["demo-s1-20230905"], items["demo-s1-20230917"]
    for item in (pre, post):
        props = item.properties
        assert props["sar:instrument_mode"] == "IW"
        assert props["sar:polarizations"] == ["VV", "VH"]
        assert props["platform"].startswith("sentinel-1")
        assert props["sat:orbit_state"] in ("ascending", "descending")
        assert props["proj:code"] == CRS
        assert props["proj:shape"] == [SPEC.height, SPEC.width]
        assert props["proj:transform"][:6] == list(TRANSFORM)[:6]
        assert set(item.assets) == {"vv", "vh"}
    assert pre.properties["sat:relative_orbit"] == post.properties["sat:relative_orbit"]
    assert pre.properties["sat:orbit_state"] == post.properties["sat:orbit_state"]
    for key, band in (("vv", 0), ("vh", 1)):
        data, meta = _read(post.assets[key])
        assert data.dtype == np.float32
        assert np.isnan(meta["nodata"])
        assert np.array_equal(data, event.sar["post"][band])
        assert meta["transform"] == TRANSFORM and meta["crs"].to_string() == CRS


def test_optical_items_look_like_sentinel_2_l2a(event, items):
    post = items["demo-s2-20230916"]
    assert post.properties["eo:cloud_cover"] == pytest.approx(event.cloud_cover["post"], abs=1e-3)
    assert items["demo-s2-20230906"].properties["eo:cloud_cover"] == 0.0
    assert post.properties["platform"].startswith("sentinel-2")
    assert set(post.assets) == {"B02", "B03", "B04", "B08", "B11", "SCL"}
    for band, key in enumerate(("B02", "B03", "B04", "B08", "B11")):
        asset = post.assets[key]
        raster_band = asset.extra_fields["raster:bands"][0]
        data, meta = _read(asset)
        assert data.dtype == np.uint16 and meta["nodata"] == 0
        assert (data > 0).all()  # dark but valid pixels must not become nodata
        reflectance = data * raster_band["scale"] + raster_band["offset"]
        # Half a digital number, or one where reflectance 0 is raised to DN 1 (0 = nodata).
        assert np.abs(reflectance - event.optical["post"][band]).max() <= 1e-4 + 1e-7
        assert (
            asset.extra_fields["eo:bands"][0]["common_name"]
            == ("blue", "green", "red", "nir", "swir16")[band]
        )
    scl, meta = _read(post.assets["SCL"])
    assert scl.dtype == np.uint8 and meta["nodata"] == 0
    assert np.array_equal(scl, event.scl["post"])


def test_file_size_and_checksum_describe_the_files(items):
    for item in items.values():
        for asset in item.assets.values():
            path = Path(asset.get_absolute_href())
            assert asset.extra_fields["file:size"] == path.stat().st_size
            expected = "1220" + hashlib.sha256(path.read_bytes()).hexdigest()
            assert asset.extra_fields["file:checksum"] == expected
            assert path.parent.parent.name in COLLECTIONS
            assert path.parent.name == item.id


def test_footprint_is_in_lon_lat_around_the_raster(items):
    item = items["demo-s1-20230905"]
    centre_x, centre_y = TRANSFORM @ (SPEC.width / 2, SPEC.height / 2)
    lon, lat = warp_points(CRS, "EPSG:4326", [centre_x], [centre_y])
    footprint = shape(item.geometry)
    assert footprint.contains(Point(lon[0], lat[0]))
    west, south, east, north = item.bbox
    assert 20.0 < west < east < 23.0 and 32.0 < south < north < 33.5
    assert footprint.bounds == pytest.approx(tuple(item.bbox))


def test_truth_is_written_beside_the_catalog_and_never_linked(event, published):
    truth = published.parent / demo_catalog.TRUTH_DIR
    for name in ("landcover_pre", "landcover_post", "flood", "elevation"):
        assert (truth / f"{name}.tif").exists(), name
    with rasterio.open(truth / "landcover_post.tif") as src:
        assert src.nodata == classes.CLASS_NODATA
        assert np.array_equal(src.read(1), event.landcover["post"])
        assert src.colormap(1)[classes.WATER][:3] == classes.CLASS_COLORS[classes.WATER]
        assert src.transform == TRANSFORM
    with rasterio.open(truth / "flood.tif") as src:
        assert np.array_equal(src.read(1), event.flood)
    with rasterio.open(truth / "elevation.tif") as src:
        assert np.array_equal(src.read(1), event.elevation)
    offsets = json.loads((truth / "offsets.json").read_text())
    assert offsets["post_offset_px"] == list(SPEC.post_offset_px)
    assert offsets["optical_offset_px"] == list(SPEC.optical_offset_px)
    assert offsets["resolution"] == SPEC.resolution
    for path in published.parent.rglob("*.json"):
        assert "truth" not in path.read_text().lower() or path.parent == truth


def test_missing_post_optical_publishes_no_post_optical_item(tmp_path):
    ev = simulate_event(SceneSpec(seed=3, height=64, width=64, resolution=10.0, post_optical=False))
    dates = {k: v for k, v in DATES.items() if k != ("post", "optical")}
    path = publish_demo_catalog(ev, tmp_path / "cat", crs=CRS, transform=TRANSFORM, dates=dates)
    ids = {i.id for i in pystac.Catalog.from_file(str(path)).get_items(recursive=True)}
    assert {i for i in ids if i.startswith("demo-s")} == {
        "demo-s1-20230905",
        "demo-s1-20230917",
        "demo-s2-20230906",
    }


@pytest.fixture(scope="module")
def tiny_event():
    return simulate_event(SceneSpec(seed=5, height=48, width=48, resolution=10.0))


def test_a_failure_half_way_leaves_no_catalog(tiny_event, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = demo_catalog.write_cog

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(demo_catalog, "write_cog", flaky)
    out = tmp_path / "cat"
    with pytest.raises(OSError, match="disk full"):
        publish_demo_catalog(tiny_event, out, crs=CRS, transform=TRANSFORM, dates=DATES)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_republishing_replaces_the_old_catalog(tiny_event, tmp_path):
    out = tmp_path / "cat"
    publish_demo_catalog(tiny_event, out, crs=CRS, transform=TRANSFORM, dates=DATES)
    (out / "stale.txt").write_text("from an earlier run")
    publish_demo_catalog(tiny_event, out, crs=CRS, transform=TRANSFORM, dates=DATES)
    assert not (out / "stale.txt").exists()
    assert (out / "catalog.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["cat"]


def test_a_missing_date_is_an_error_before_anything_is_written(tiny_event, tmp_path):
    dates = {k: v for k, v in DATES.items() if k != ("post", "sar")}
    with pytest.raises(ValueError, match="post"):
        publish_demo_catalog(
            tiny_event, tmp_path / "cat", crs=CRS, transform=TRANSFORM, dates=dates
        )
    assert list(tmp_path.iterdir()) == []


def test_naive_dates_are_taken_as_utc(tiny_event, tmp_path):
    dates = {k: v.replace(tzinfo=None) for k, v in DATES.items()}
    path = publish_demo_catalog(
        tiny_event, tmp_path / "c", crs=CRS, transform=TRANSFORM, dates=dates
    )
    item = next(i for i in pystac.Catalog.from_file(str(path)).get_items(recursive=True))
    assert item.datetime.tzinfo is not None and item.datetime.utcoffset().total_seconds() == 0


def test_a_relative_out_dir_works(tiny_event, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = publish_demo_catalog(
        tiny_event, Path("nested/cat"), crs=CRS, transform=TRANSFORM, dates=DATES
    )
    assert path == Path("nested/cat/catalog.json")
    catalog = pystac.Catalog.from_file(str(tmp_path / path))
    item = next(iter(catalog.get_items(recursive=True)))
    assert Path(next(iter(item.assets.values())).get_absolute_href()).exists()
