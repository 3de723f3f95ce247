import pytest
from pyproj import CRS

from metaflood.config import (
    check_config,
    config_hash,
    event_grid,
    normalise_dates,
    utm_crs,
    window,
)
from metaflood.errors import ConfigError
from tests.conftest import demo_event_config


def config_with(**event_overrides):
    return {"events": {"demo": demo_event_config(**event_overrides)}, "model": {}}


def test_valid_config_passes():
    check_config(config_with())


def test_inverted_window_names_the_key():
    cfg = config_with(pre={"start": "2023-09-09", "end": "2023-09-01"})
    with pytest.raises(ConfigError, match=r"events\.demo\.pre: the date window is inverted"):
        check_config(cfg)


def test_post_window_must_follow_pre():
    cfg = config_with(post={"start": "2023-09-05", "end": "2023-09-20"})
    with pytest.raises(ConfigError, match=r"events\.demo\.post: .*must start after"):
        check_config(cfg)


def test_event_date_outside_the_gap():
    with pytest.raises(ConfigError, match=r"events\.demo\.event_date"):
        check_config(config_with(event_date="2023-09-15"))


@pytest.mark.parametrize(
    "bbox",
    [[22.63, 32.76, 22.63, 32.77], [22.64, 32.76, 22.63, 32.77], [22.63, 32.77, 22.64, 32.76]],
)
def test_empty_aoi_is_refused(bbox):
    with pytest.raises(ConfigError, match=r"events\.demo\.aoi\.bbox: the AOI is empty"):
        check_config(config_with(aoi={"bbox": bbox}))


def test_tiny_aoi_is_refused():
    with pytest.raises(ConfigError, match=r"events\.demo\.aoi: the AOI is only"):
        check_config(config_with(aoi={"bbox": [22.63, 32.76, 22.6301, 32.7601]}))


def test_aoi_file_must_be_a_valid_polygon(tmp_path):
    bowtie = tmp_path / "bowtie.geojson"
    bowtie.write_text(
        '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},'
        ' "geometry": {"type": "Polygon", "coordinates": [[[22.63, 32.76], [22.64, 32.77],'
        " [22.64, 32.76], [22.63, 32.77], [22.63, 32.76]]]}}]}"
    )
    with pytest.raises(ConfigError, match=r"events\.demo\.aoi\.file: the AOI polygon is not valid"):
        check_config(config_with(aoi={"file": str(bowtie)}))
    line = tmp_path / "line.geojson"
    line.write_text(
        '{"type": "Feature", "properties": {}, "geometry": {"type": "LineString",'
        ' "coordinates": [[22.63, 32.76], [22.64, 32.77]]}}'
    )
    with pytest.raises(ConfigError, match=r"must be a polygon, got LineString"):
        check_config(config_with(aoi={"file": str(line)}))
    with pytest.raises(ConfigError, match=r"does not exist"):
        check_config(config_with(aoi={"file": str(tmp_path / "missing.geojson")}))


def test_aoi_file_gives_the_same_grid_as_its_bbox(tmp_path):
    square = tmp_path / "aoi.geojson"
    square.write_text(
        '{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates":'
        " [[[22.63, 32.76], [22.6332, 32.76], [22.6332, 32.7627], [22.63, 32.7627],"
        " [22.63, 32.76]]]}}"
    )
    from_file = event_grid(demo_event_config(aoi={"file": str(square)}), "e")
    from_bbox = event_grid(demo_event_config(), "e")
    assert from_file == from_bbox


def test_missing_checkpoint_is_named():
    cfg = config_with()
    cfg["model"] = {"checkpoint": "nowhere/model.pt"}
    with pytest.raises(ConfigError, match=r"model\.checkpoint: nowhere/model.pt does not exist"):
        check_config(cfg)


def test_utm_zone():
    assert utm_crs(22.64, 32.76) == CRS.from_epsg(32634)
    assert utm_crs(-70.6, -33.4) == CRS.from_epsg(32719)
    assert utm_crs(179.9, 10) == CRS.from_epsg(32660)


def test_grid_is_snapped_and_covers_the_aoi():
    grid = event_grid(demo_event_config(), "e")
    assert grid.crs == "EPSG:32634"
    left, bottom, right, top = grid.bounds
    for value in (left, bottom, right, top):
        assert value % 2.0 == pytest.approx(0.0)
    assert 140 <= grid.width <= 160 and 140 <= grid.height <= 160


def test_dates_become_strings_and_windows_parse():
    import datetime as dt

    cfg = normalise_dates({"pre": {"start": dt.date(2023, 9, 1), "end": dt.date(2023, 9, 9)}})
    assert cfg == {"pre": {"start": "2023-09-01", "end": "2023-09-09"}}
    win = window(cfg, "pre", "events.x")
    assert win.contains(dt.datetime(2023, 9, 9, 23, 59))
    assert not win.contains(dt.datetime(2023, 9, 10, 0, 1))
    assert win.middle == dt.date(2023, 9, 5)


def test_config_hash_ignores_key_order():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
