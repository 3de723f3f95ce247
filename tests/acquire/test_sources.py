"""Source settings (presets, checks that name the key), radiometry, local files."""

from __future__ import annotations

import re

import numpy as np
import pytest
import yaml
from rasterio.transform import from_origin
from shapely.geometry import shape

from metaflood.acquire.local import local_item
from metaflood.acquire.radiometry import plain_radiometry, reflectance_radiometry
from metaflood.acquire.scene import MASK
from metaflood.acquire.sources import resolve_source
from metaflood.core.config import DateRange, parse_day
from metaflood.core.errors import ConfigError, InputError
from metaflood.core.raster import write_cog
from metaflood.workflow import check_config_file
from tests.helpers.events import demo_event_config


def resolve(cfg: dict, modality: str = "optical"):
    return resolve_source(cfg, modality, None, f"events.x.{modality}")


def test_planetary_computer_preset():
    optical = resolve({"source": "stac", "preset": "planetary-computer"})
    assert optical.url == "https://planetarycomputer.microsoft.com/api/stac/v1"
    assert optical.collection == "sentinel-2-l2a" and optical.mask_asset == "SCL"
    assert optical.bands == {
        "blue": "B02",
        "green": "B03",
        "red": "B04",
        "nir": "B08",
        "swir16": "B11",
    }
    assert optical.band_names == ("blue", "green", "red", "nir", "swir16")
    assert optical.sign == "planetary-computer" and optical.scale == 0.0001
    assert optical.required == () and "Planetary Computer" in optical.provider
    sar = resolve({"source": "stac", "preset": "planetary-computer"}, "sar")
    assert sar.collection == "sentinel-1-rtc" and sar.bands == {"VV": "vv", "VH": "vh"}
    assert sar.required == ("pre", "post") and sar.sar_scale == "linear"


def test_earth_search_preset_and_overrides():
    spec = resolve(
        {
            "source": "stac",
            "preset": "earth-search",
            "assets": {"nir": "nir08"},
            "query": {"eo:cloud_cover": {"lt": 50}},
            "required": "post",
        }
    )
    assert spec.url.startswith("https://earth-search.aws.element84.com")
    assert spec.bands["nir"] == "nir08" and spec.bands["red"] == "red"
    assert spec.bands["swir16"] == "swir16"
    assert spec.mask_asset == "scl" and spec.sign is None and spec.required == ("post",)
    with pytest.raises(ConfigError, match="events.x.sar.preset: Element 84 Earth Search has no"):
        resolve({"source": "stac", "preset": "earth-search"}, "sar")


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"source": "stac"}, "events.x.optical: a stac source needs url"),
        ({"source": "stac", "url": "ftp://x"}, "events.x.optical.url: 'ftp://x' is not"),
        (
            {"source": "stac", "url": "https://x", "collection": "c", "assets": {"blue": "b"}},
            "events.x.optical.assets: no band given for green, nir (the optical modality needs "
            "green, nir; a source may also have blue, red, swir16)",
        ),
        (
            {"source": "stac", "preset": "earth-search", "assets": {"swir": "swir16"}},
            "events.x.optical.assets.swir: unknown optical band 'swir' (known: blue, green, "
            "red, nir, swir16)",
        ),
        (
            {"source": "stac", "preset": "planetary-computer", "assets": {"nir": None}},
            "events.x.optical.assets: no band given for nir",
        ),
        ({"source": "static", "collection": "c"}, "events.x.optical: a static source needs"),
        ({"source": "static", "catalog": "nowhere.json", "collection": "c"}, "does not exist"),
        ({"source": "local", "bands": {}}, "events.x.optical: a local source needs a file"),
    ],
)
def test_wrong_source_settings_name_the_key(cfg, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        resolve(cfg)


def test_a_source_has_the_bands_it_declares_in_canonical_order(tmp_path):
    """A preset's band dropped with null, a static catalog or a local file with only some
    of the optional bands: each has exactly those, in canonical order."""
    spec = resolve({"source": "stac", "preset": "planetary-computer", "assets": {"blue": None}})
    assert spec.band_names == ("green", "red", "nir", "swir16") and "blue" not in spec.bands
    catalog = tmp_path / "catalog.json"
    catalog.write_text("{}")
    ombria = {"swir16": "B11", "nir": "B08", "green": "B03"}
    spec = resolve(
        {"source": "static", "catalog": str(catalog), "collection": "c", "assets": ombria}
    )
    assert spec.band_names == ("green", "nir", "swir16")
    path = tmp_path / "s2.tif"
    path.write_bytes(b"")
    spec = resolve({"source": "local", "pre": str(path), "bands": {"nir": 2, "green": 1}})
    assert spec.band_names == ("green", "nir")
    with pytest.raises(ConfigError, match=r"events\.x\.optical\.bands\.B11: unknown optical band"):
        resolve({"source": "local", "pre": str(path), "bands": {"green": 1, "nir": 2, "B11": 3}})
    vv_only = {"source": "local", "pre": str(path), "bands": {"VV": 1}, "required": "pre"}
    assert resolve(vv_only, "sar").band_names == ("VV",)  # VH is optional (OMBRIA)
    with pytest.raises(ConfigError, match=r"events\.x\.sar\.bands: no band given for VV"):
        resolve(vv_only | {"bands": {"VH": 1}}, "sar")


def test_a_required_local_period_needs_its_file(tmp_path):
    path = tmp_path / "pre.tif"
    path.write_bytes(b"")
    with pytest.raises(ConfigError, match=r"events\.x\.sar\.post: the sar modality is required"):
        resolve({"source": "local", "pre": str(path), "bands": {"VV": 1, "VH": 2}}, "sar")


def test_the_configuration_checker_knows_the_sources(tmp_path):
    event = demo_event_config()
    event["sar"] = {"source": "stac", "preset": "planetary-computer", "required": "pre"}
    event["optical"] = {"source": "static", "collection": "c"}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"events": {"x": event}}))
    with pytest.raises(ConfigError, match="events.x.optical: a static source needs catalog"):
        check_config_file(path)
    event["optical"] = {"source": "stac", "preset": "mars-search"}
    path.write_text(yaml.safe_dump({"events": {"x": event}}))
    with pytest.raises(ConfigError, match="events.x.optical.preset: 'mars-search' is not one of"):
        check_config_file(path)
    event["optical"] = {"source": "stac", "preset": "earth-search", "assets": {"swir22": "x"}}
    path.write_text(yaml.safe_dump({"events": {"x": event}}))
    with pytest.raises(ConfigError, match=r"events\.x\.optical\.assets\.swir22: unknown optical"):
        check_config_file(path)


@pytest.mark.parametrize(
    ("properties", "band", "expected"),
    [
        ({"s2:processing_baseline": "05.09"}, {}, (0.0001, -0.1)),
        ({"s2:processing_baseline": "03.01"}, {}, (0.0001, 0.0)),
        ({"earthsearch:boa_offset_applied": True}, {"scale": 0.0001, "offset": -0.1}, (0.0001, 0)),
        (
            {"earthsearch:boa_offset_applied": False, "s2:processing_baseline": "04.00"},
            {"scale": 0.0001, "offset": -0.1},
            (0.0001, -0.1),
        ),
        ({}, {"scale": 0.0001, "offset": -0.1}, (0.0001, -0.1)),
    ],
)
def test_sentinel2_offset_follows_the_processing_baseline(properties, band, expected):
    result = reflectance_radiometry(properties, band, 0.0001)
    assert (result.scale, pytest.approx(result.offset)) == (expected[0], expected[1])


def test_radiometry_without_metadata_is_the_files_own():
    assert reflectance_radiometry({}, {}).scale is None
    assert plain_radiometry({}).why == "the file's own scale and offset"
    assert plain_radiometry({}, 2.0).offset == 0.0


def test_a_local_file_becomes_a_scene_item(tmp_path):
    data = np.ones((5, 20, 20), np.uint16)
    path = write_cog(
        tmp_path / "s2.tif",
        data,
        crs="EPSG:32634",
        transform=from_origin(640000, 3630000, 10, 10),
        nodata=0,
    )
    spec = resolve(
        {
            "source": "local",
            "pre": str(path),
            "bands": {"blue": 1, "green": 2, "red": 3, "nir": 4},
            "mask": {"band": 5, "kind": "binary"},
            "scale": 0.0001,
        }
    )
    window = DateRange(parse_day("2023-09-01", "x"), parse_day("2023-09-09", "x"))
    item = local_item(spec, "pre", window)
    assert item.when.date().isoformat() == "2023-09-05"
    assert item.bands["red"].band == 3 and item.bands["red"].scale == 0.0001
    assert item.bands[MASK].band == 5 and item.bands[MASK].scale == 1.0
    lon_min, lat_min, lon_max, lat_max = shape(item.footprint).bounds
    assert 22.49 < lon_min < lon_max < 22.5 and 32.78 < lat_min < lat_max < 32.8
    assert local_item(spec, "post", window) is None
    bad = resolve(
        {"source": "local", "pre": str(path), "bands": {"VV": 1, "VH": 9}, "required": "pre"}, "sar"
    )
    with pytest.raises(InputError, match="has 5 bands, so band VH = 9 does not exist"):
        local_item(bad, "pre", window)


def test_local_files_are_checked_against_file_size_and_checksum(tmp_path):
    from metaflood.acquire.download import Access, check_file
    from metaflood.acquire.scene import BandRef
    from metaflood.core.hashing import multihash_sha256

    path = tmp_path / "B04.tif"
    path.write_bytes(b"0123456789")
    right = multihash_sha256(path)
    check_file(BandRef(str(path), size=10, checksum=right), Access())
    with pytest.raises(InputError, match="is 10 bytes but the catalog says 12"):
        check_file(BandRef(str(path), size=12, checksum=right), Access())
    with pytest.raises(InputError, match="sha256 differs"):
        check_file(BandRef(str(path), size=10, checksum="1220" + "0" * 64), Access())
    with pytest.raises(InputError, match="does not exist"):
        check_file(BandRef(str(tmp_path / "gone.tif")), Access())


def _local_event(tmp_path, sar_pre_crs: str | None = None, cloud: bool = False) -> dict:
    """The tiny event with local SAR and optical files over its grid (the pre-event SAR
    file's header may name another CRS; the optical mask may be all cloud)."""
    from metaflood.core.config import event_grid

    grid = event_grid(demo_event_config(), "events.tiny")
    left, _, _, top = grid.bounds
    transform = from_origin(left - 20, top + 20, 2, 2)
    sar = np.full((2, 200, 200), 0.05, np.float32)
    optical = np.concatenate(
        [np.full((4, 200, 200), 0.1), np.full((1, 200, 200), 9 if cloud else 4)]
    ).astype(np.float32)  # SCL 9: cloud, high probability; 4: vegetation

    def write(name, data, crs=grid.crs):
        return str(write_cog(tmp_path / name, data, crs=crs, transform=transform, nodata=None))

    sar_files = {"pre": write("s1_pre.tif", sar, sar_pre_crs or grid.crs)}
    sar_files["post"] = write("s1_post.tif", sar)
    event = demo_event_config(
        sar={"source": "local", **sar_files, "bands": {"VV": 1, "VH": 2}},
        optical={
            "source": "local",
            "pre": write("s2_pre.tif", optical),
            "post": write("s2_post.tif", optical),
            "bands": {"blue": 1, "green": 2, "red": 3, "nir": 4},
            "mask": {"band": 5, "kind": "scl"},
            "required": True,
        },
    )
    del event["demo"]
    return event


def test_a_local_file_in_a_wrong_crs_is_named_with_both_extents(tmp_path):
    from metaflood.acquire.stage import search_scenes

    # The same coordinates labelled one UTM zone west: 6 degrees of longitude away.
    event = _local_event(tmp_path, sar_pre_crs="EPSG:32633")
    with pytest.raises(
        InputError,
        match=r"s1_pre.tif: does not overlap the AOI. Read in its CRS \(EPSG:32633\) it covers "
        r"lon 16\.\d+ to 16\.\d+, lat 32\.\d+ to 32\.\d+; the AOI is lon 22\.6300 to 22\.6332",
    ):
        search_scenes(
            event, "tiny", demo_catalog=None, cache_dir=tmp_path / "c", out=tmp_path / "sel.json"
        )
    assert not (tmp_path / "sel.json").exists()


def test_a_required_optical_modality_all_under_cloud_stops_the_search(tmp_path):
    from metaflood.acquire.stage import search_scenes
    from metaflood.core.errors import AcquisitionError

    search = {"demo_catalog": None, "cache_dir": tmp_path / "c", "out": tmp_path / "sel.json"}
    search_scenes(_local_event(tmp_path), "tiny", **search)  # clear: found and used
    cloudy = _local_event(tmp_path, cloud=True)
    with pytest.raises(
        AcquisitionError,
        match=r"events.tiny.optical: no optical scene for the pre window .*: .*it is all cloud "
        r"over the AOI. The optical modality is required",
    ):
        search_scenes(cloudy, "tiny", **{**search, "out": tmp_path / "cloudy.json"})
    cloudy["optical"]["required"] = False  # not required: mapped from SAR alone
    selection = search_scenes(cloudy, "tiny", **{**search, "out": tmp_path / "cloudy.json"})
    assert selection["periods"]["post"]["optical"]["cloud_over_aoi"] == 1.0


def test_local_files_are_opened_at_start_up(tmp_path):
    """check-config and the Snakefile's start-up check open each local file's header: a
    file off the AOI, unreadable, or lacking a configured band stops the run before any
    job, with the key and the file named."""
    from metaflood.workflow import check_config

    check_config({"events": {"tiny": _local_event(tmp_path)}})  # good files pass
    shifted = _local_event(tmp_path, sar_pre_crs="EPSG:32633")
    with pytest.raises(
        ConfigError,
        match=r"events.tiny.sar.pre: .*s1_pre.tif: does not overlap the AOI. Read in its CRS "
        r"\(EPSG:32633\)",
    ):
        check_config({"events": {"tiny": shifted}})

    event = _local_event(tmp_path)
    (tmp_path / "s2_post.tif").write_bytes(b"II*\0 truncated")
    config_file = tmp_path / "case.yaml"
    config_file.write_text(yaml.safe_dump({"events": {"tiny": event}}))
    with pytest.raises(
        ConfigError,
        match=r"case.yaml: events.tiny.optical.post: .*s2_post.tif: cannot be read as a raster",
    ):
        check_config_file(config_file)

    event = _local_event(tmp_path)
    event["optical"]["mask"]["band"] = 6
    with pytest.raises(
        ConfigError, match=r"events.tiny.optical.pre: .*has 5 bands, so band mask = 6 does not"
    ):
        check_config({"events": {"tiny": event}})
