"""The static layers (DEM, reference water) read from a STAC API, a static catalog and
local files on loopback servers, onto a UTM event grid (`acquire.auxiliary`)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from rasterio.transform import from_origin

from metaflood.acquire.auxiliary import acquire_auxiliary, check_auxiliary_sources
from metaflood.acquire.stage import Retry
from metaflood.core.errors import ConfigError, InputError
from metaflood.core.settings import ExclusionSettings, section_defaults
from metaflood.demo.catalog import DEM_COLLECTION, REFERENCE_WATER_COLLECTION
from tests.helpers.acquire_provider import Provider, write_static_catalog
from tests.helpers.acquire_servers import RangeFileServer, StacApiServer
from tests.helpers.auxiliary_provider import (
    DEM,
    GSW,
    REFERENCE_EDGES,
    SEAM_LON,
    WORLDCOVER,
    StaticLayers,
    build_static_layers,
    elevation,
    third,
)

AOI = [21.995, 32.497, 22.005, 32.503]  # straddles the DEM tiles' seam at lon 22.0
RESOLUTION = 30.0
FAST = Retry(retries=1, backoff_s=0.01)
TOKEN = "tok-3f9a1c-secret"


@dataclass
class Servers:
    layers: StaticLayers
    files: RangeFileServer
    api: StacApiServer
    demo_catalog: Path


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    root = tmp_path_factory.mktemp("static-layers")
    (root / "served").mkdir()
    with RangeFileServer(root / "served") as files:
        layers = build_static_layers(root / "served", files.url)
        items = layers.write_item_collection(root / "items.json")
        # The demo source reads a static catalog on disk with the demo catalog's ids.
        demo = root / "demo"
        renamed = {DEM: DEM_COLLECTION, GSW: REFERENCE_WATER_COLLECTION}
        local = build_static_layers(demo, "http://unused", renamed)
        for item in local.items:
            for asset in item["assets"].values():
                asset["href"] = asset["href"].replace("http://unused/", "")
        catalog = write_static_catalog(Provider(demo, demo, local.items), demo, "")
        with StacApiServer(items, root / "rustac.log") as api:
            yield Servers(layers, files, api, catalog)


def exclusion(pad_m: float) -> ExclusionSettings:
    return ExclusionSettings.from_section(section_defaults("exclusion", {"pad_m": pad_m}))


def event(dem: dict, water: dict) -> dict:
    return {
        "aoi": {"bbox": AOI},
        "grid": {"crs": "auto", "resolution": RESOLUTION},
        "dem": dem,
        "reference_water": water,
    }


def run(ev: dict, out: Path, *, pad_m: float = 150.0, demo_catalog=None) -> dict:
    return acquire_auxiliary(
        ev,
        "aux",
        exclusion=exclusion(pad_m),
        reference_occurrence_min=50.0,
        demo_catalog=demo_catalog,
        cache_dir=out / "cache",
        out_dem=out / "aux" / "dem.tif",
        out_reference_water=out / "aux" / "reference_water.tif",
        out_record=out / "aux" / "auxiliary.json",
        workers=2,
        retry=FAST,
    )


def stac(url: str, **keys) -> dict:
    return {"source": "stac", "preset": "planetary-computer", "url": url, "sign": None, **keys}


def lonlat_of(src) -> tuple[np.ndarray, np.ndarray]:
    """Lon/lat of every pixel centre of an open raster."""
    rows, cols = np.mgrid[0 : src.height, 0 : src.width]
    x, y = rasterio.transform.xy(src.transform, rows.ravel(), cols.ravel())
    lon, lat = Transformer.from_crs(src.crs, "EPSG:4326", always_xy=True).transform(x, y)
    return np.reshape(lon, rows.shape), np.reshape(lat, rows.shape)


def test_dem_tiles_are_mosaicked_across_the_seam_onto_the_padded_utm_grid(servers, tmp_path):
    record = run(event(stac(servers.api.url), {"source": "none"}), tmp_path, pad_m=150.0)
    pad_px = math.ceil(150.0 / RESOLUTION)
    with rasterio.open(tmp_path / "aux" / "dem.tif") as src:
        dem = src.read(1)
        tags = src.tags()
        assert src.crs.to_epsg() == 32634 and src.dtypes[0] == "float32"
        assert src.res == (RESOLUTION, RESOLUTION)
        lon, lat = lonlat_of(src)
        transform, (height, width) = src.transform, dem.shape
    with rasterio.open(tmp_path / "aux" / "reference_water.tif") as ref:
        # the padded grid is the event grid extended by pad_px on the same lattice
        assert (width - ref.width, height - ref.height) == (2 * pad_px, 2 * pad_px)
        assert ref.transform.c - transform.c == pad_px * RESOLUTION
        assert transform.f - ref.transform.f == pad_px * RESOLUTION
    assert tags["pad_px"] == str(pad_px) and tags["absent"] == "false"
    assert np.isfinite(dem).all()
    # Bilinear reproduces the plane, on both sides of the seam and across it.
    np.testing.assert_allclose(dem, elevation(lon, lat), atol=0.05)
    assert (lon < SEAM_LON).any() and (lon > SEAM_LON).any()
    entry = record["dem"]
    assert entry["status"] == "found" and entry["collection"] == DEM and entry["asset"] == "data"
    assert entry["items"] == sorted(servers.layers.items[i]["id"] for i in (0, 1))
    assert entry["coverage"] == 1.0 and entry["pad_px"] == pad_px
    assert set(entry["padding_reached_m"].values()) == {pad_px * RESOLUTION}
    assert record["reference_water"]["status"] == "absent"
    saved = json.loads((tmp_path / "aux" / "auxiliary.json").read_text())
    assert saved == json.loads(json.dumps(record))


def test_padding_the_dem_does_not_reach_is_recorded(servers, tmp_path):
    # 1500 m west of the AOI is past the west tile's edge (lon 21.98); the other
    # sides are inside the tiles.
    record = run(event(stac(servers.api.url), {"source": "none"}), tmp_path, pad_m=1500.0)
    reached = record["dem"]["padding_reached_m"]
    assert reached["east"] == reached["north"] == reached["south"] == 1500.0
    assert 1000 < reached["west"] < 1500
    with rasterio.open(tmp_path / "aux" / "dem.tif") as src:
        dem = src.read(1)
    assert np.isnan(dem[:, 0]).all() and np.isfinite(dem[:, -1]).all()


def test_a_dem_that_misses_the_aoi_is_an_error_naming_it(servers, tmp_path):
    # only the western tile: about half of the AOI has no elevation
    only_west = stac(servers.api.url, max_items=1)
    with pytest.raises(InputError) as err:
        run(event(only_west, {"source": "none"}), tmp_path)
    message = str(err.value)
    assert "events.aux.dem" in message and DEM in message
    assert "Microsoft Planetary Computer" in message and "% of the AOI" in message
    assert not (tmp_path / "aux").exists() or not any((tmp_path / "aux").iterdir())


@pytest.mark.parametrize(
    ("water", "codes"),
    [
        ({}, (1, 0, 255)),  # jrc-gsw occurrence 90, 30, 255 with the minimum at 50
        ({"collection": WORLDCOVER}, (1, 0, 255)),  # classes 80, 10, 0
    ],
)
def test_reference_water_is_reprojected_and_read_as_water(servers, tmp_path, water, codes):
    record = run(event({"source": "none"}, stac(servers.api.url, **water)), tmp_path)
    with rasterio.open(tmp_path / "aux" / "reference_water.tif") as src:
        values = src.read(1)
        assert src.dtypes[0] == "uint8" and src.nodata == 255 and src.crs.to_epsg() == 32634
        assert src.tags()["absent"] == "false"
        lon, _ = lonlat_of(src)
    # away from the parts' borders (a pixel is 30 m, 0.0003 degrees of longitude)
    part = third(lon)
    border = np.min([np.abs(lon - edge) for edge in REFERENCE_EDGES], axis=0) < 0.0005
    for index, code in enumerate(codes):
        inside = (part == index) & ~border
        assert inside.sum() > 20
        assert (values[inside] == code).all(), (index, np.unique(values[inside]))
    entry = record["reference_water"]
    assert entry["status"] == "found" and entry["source_crs"] == "EPSG:4326"
    assert entry["reprojected"] is True
    assert entry["layer"] == ("worldcover" if water else "occurrence")
    assert entry["asset"] == ("map" if water else "occurrence")
    assert entry["permanent_water_share"] == round(float((values == 1).mean()), 4)
    assert 0 < entry["coverage"] < 1
    assert entry["coverage"] == round(float((values != 255).mean()), 4)
    with rasterio.open(tmp_path / "aux" / "dem.tif") as src:
        assert src.tags()["absent"] == "true" and np.isnan(src.read(1)).all()
    assert record["dem"]["status"] == "absent"


def test_source_none_writes_absent_layers(tmp_path):
    record = run(event({"source": "none"}, {"source": "none"}), tmp_path)
    with rasterio.open(tmp_path / "aux" / "reference_water.tif") as src:
        assert (src.read(1) == 255).all() and src.tags()["absent"] == "true"
    with rasterio.open(tmp_path / "aux" / "dem.tif") as src:
        assert src.tags() | {"pad_px": "5", "absent": "true"} == src.tags()
    assert record["dem"]["status"] == record["reference_water"]["status"] == "absent"
    assert record["dem"]["items"] == []


def test_a_local_reference_layer_in_lon_lat_goes_onto_the_utm_grid(tmp_path):
    data = np.zeros((60, 60), np.uint8)
    data[:, :30] = 1  # binary: west half water
    path = tmp_path / "water.tif"
    profile = {"driver": "GTiff", "width": 60, "height": 60, "count": 1, "dtype": "uint8"}
    transform = from_origin(21.97, 32.53, 0.001, 0.001)  # west half ends at lon 22.0
    with rasterio.open(path, "w", **profile, crs="EPSG:4326", transform=transform) as dst:
        dst.write(data, 1)
    water = {"source": "local", "file": str(path), "layer": "binary"}
    record = run(event({"source": "none"}, water), tmp_path)
    with rasterio.open(tmp_path / "aux" / "reference_water.tif") as src:
        values = src.read(1)
        lon, _ = lonlat_of(src)
    assert (values[lon < SEAM_LON - 0.0005] == 1).all()
    assert (values[lon > SEAM_LON + 0.0005] == 0).all()
    entry = record["reference_water"]
    assert entry["source"] == "local" and entry["source_crs"] == "EPSG:4326"
    assert entry["reprojected"] is True and entry["coverage"] == 1.0


def test_a_local_file_without_a_crs_is_an_error(tmp_path):
    path = tmp_path / "nocrs.tif"
    profile = {"driver": "GTiff", "width": 8, "height": 8, "count": 1, "dtype": "uint8"}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.ones((8, 8), np.uint8), 1)
    water = {"source": "local", "file": str(path), "layer": "binary"}
    with pytest.raises(InputError, match="no coordinate reference system"):
        run(event({"source": "none"}, water), tmp_path / "out")
    assert not (tmp_path / "out" / "aux").exists()


def test_no_credential_in_the_record_when_a_bearer_token_is_sent(servers, tmp_path, monkeypatch):
    monkeypatch.setenv("AUX_TOKEN", TOKEN)
    servers.files.state.token = TOKEN
    servers.files.state.clear()
    try:
        auth = {"auth": {"bearer_env": "AUX_TOKEN"}}
        run(event(stac(servers.api.url, **auth), stac(servers.api.url, **auth)), tmp_path)
        sent = [r.authorization for r in servers.files.state.requests(".tif")]
    finally:
        servers.files.state.token = None
    assert sent and all(a == f"Bearer {TOKEN}" for a in sent)
    text = (tmp_path / "aux" / "auxiliary.json").read_text()
    assert TOKEN not in text
    record = json.loads(text)
    assert record["dem"]["hrefs"][0].startswith(servers.files.url)


def test_the_demo_source_reads_the_demo_catalogs_layers(servers, tmp_path):
    catalog = str(servers.demo_catalog)
    record = run(event({"source": "demo"}, {"source": "demo"}), tmp_path, demo_catalog=catalog)
    assert record["dem"]["collection"] == DEM_COLLECTION and record["dem"]["coverage"] == 1.0
    assert record["reference_water"]["collection"] == REFERENCE_WATER_COLLECTION
    assert record["reference_water"]["layer"] == "occurrence"


@pytest.mark.parametrize(
    ("layer", "section", "message"),
    [
        ("dem", {"source": "stac", "preset": "planetary-computer", "collection": "x"}, "x"),
        ("reference_water", {"source": "stac", "preset": "earth-search"}, "Earth Search"),
        ("dem", {"source": "stac", "collection": DEM, "asset": "data"}, "needs url"),
        ("dem", {"source": "local"}, "needs file"),
        ("dem", {"source": "local", "file": "missing.tif"}, "does not exist"),
        ("dem", {"source": "stac", "preset": "planetary-computer", "layer": "binary"}, "layer"),
        ("reference_water", {"source": "static", "catalog": "c.json"}, "collection and asset"),
        ("dem", {"source": "demo"}, "sar or optical source is demo"),
    ],
)
def test_bad_sections_are_config_errors_naming_the_key(layer, section, message):
    ev = event({"source": "none"}, {"source": "none"})
    ev[layer] = section
    with pytest.raises(ConfigError, match=message) as err:
        check_auxiliary_sources(ev, "aux", None)
    assert f"events.aux.{layer}" in str(err.value)


def test_presets_resolve_to_the_real_collections():
    from metaflood.acquire.auxiliary_sources import resolve_auxiliary

    for preset in ("planetary-computer", "earth-search"):
        spec = resolve_auxiliary({"source": "stac", "preset": preset}, "dem", None, "k")
        assert (spec.source.collection, spec.asset) == (DEM, "data")
    pc = {"source": "stac", "preset": "planetary-computer"}
    gsw = resolve_auxiliary(pc, "reference_water", None, "k")
    assert (gsw.source.collection, gsw.asset, gsw.layer_kind) == (GSW, "occurrence", "occurrence")
    assert gsw.source.sign == "planetary-computer"
    wc = resolve_auxiliary({**pc, "collection": WORLDCOVER}, "reference_water", None, "k")
    assert (wc.asset, wc.layer_kind) == ("map", "worldcover")


def test_a_reference_layer_with_no_item_over_the_aoi_is_an_error(servers, tmp_path):
    far = event({"source": "none"}, stac(servers.api.url))
    far["aoi"]["bbox"] = [10.0, 45.0, 10.01, 45.01]
    with pytest.raises(InputError, match="no item of collection jrc-gsw"):
        run(far, tmp_path)
    assert not (tmp_path / "aux").exists()


def test_a_local_reference_layer_off_the_aoi_is_an_error(tmp_path):
    path = tmp_path / "elsewhere.tif"
    profile = {"driver": "GTiff", "width": 8, "height": 8, "count": 1, "dtype": "uint8"}
    transform = from_origin(10.0, 45.0, 0.001, 0.001)
    with rasterio.open(path, "w", **profile, crs="EPSG:4326", transform=transform) as dst:
        dst.write(np.ones((8, 8), np.uint8), 1)
    water = {"source": "local", "file": str(path), "layer": "binary"}
    with pytest.raises(InputError, match="no value over the AOI"):
        run(event({"source": "none"}, water), tmp_path / "out")
    assert not (tmp_path / "out" / "aux").exists()
