import pytest
from pyproj import CRS

from metaflood.core.config import (
    config_hash,
    date_range,
    event_grid,
    normalise_dates,
    utm_crs,
)
from metaflood.core.errors import ConfigError
from metaflood.workflow import check_config
from tests.helpers.events import demo_event_config


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


@pytest.mark.parametrize("bbox", [[22.63, 32.76, 22.63, 32.77], [22.63, 32.77, 22.64, 32.76]])
def test_empty_aoi_is_refused(bbox):
    with pytest.raises(ConfigError, match=r"events\.demo\.aoi\.bbox: the AOI is empty"):
        check_config(config_with(aoi={"bbox": bbox}))


@pytest.mark.parametrize("bbox", [[179.9, -16.8, -179.9, -16.6], [22.64, 32.76, 22.63, 32.77]])
def test_a_bbox_with_lon_min_east_of_lon_max_crosses_the_antimeridian(bbox):
    """Issue 21: it was called empty. West above east is how a bbox crosses 180°."""
    with pytest.raises(
        ConfigError,
        match=r"events\.demo\.aoi\.bbox: lon_min .* so the box crosses the antimeridian .*"
        r"not supported.*swap the two longitudes",
    ):
        check_config(config_with(aoi={"bbox": bbox}))


FIJI = [(179.90, -16.80), (179.90, -16.70), (-179.95, -16.70), (-179.95, -16.80)]


def _ring(points):
    return [[list(p) for p in [*points, points[0]]]]


@pytest.mark.parametrize(
    "geometry",
    [
        # RFC 7946: split at 180° into two parts
        {
            "type": "MultiPolygon",
            "coordinates": [
                _ring([(179.90, -16.80), (179.90, -16.70), (180.0, -16.70), (180.0, -16.80)]),
                _ring([(-180.0, -16.80), (-180.0, -16.70), (-179.95, -16.70), (-179.95, -16.80)]),
            ],
        },
        {"type": "Polygon", "coordinates": _ring(FIJI)},  # one ring drawn across it
        {  # longitudes beyond 180°
            "type": "Polygon",
            "coordinates": _ring(
                [(179.9, -16.8), (179.9, -16.7), (180.05, -16.7), (180.05, -16.8)]
            ),
        },
    ],
)
def test_an_aoi_file_across_the_antimeridian_is_refused_at_start_up(tmp_path, geometry):
    """Issue 21: it passed check-config and the search died in GEOS. Both start-up paths
    (check-config, and the Snakefile's semantic checks) refuse it with the reason."""
    import json

    import yaml

    from metaflood.workflow import check_config_file, semantic_errors

    aoi = tmp_path / "fiji.geojson"
    aoi.write_text(json.dumps({"type": "Feature", "properties": {}, "geometry": geometry}))
    config = config_with(aoi={"file": str(aoi)})
    message = semantic_errors(config)
    assert message is not None and "events.demo.aoi.file: the AOI in" in message
    assert "crosses the antimeridian (180° longitude)" in message
    assert "map each side as an event of its own" in message
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"c.yaml: events.demo.aoi.file: .* crosses the antim"):
        check_config_file(path)


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
    win = date_range(cfg, "pre", "events.x")
    assert win.contains(dt.datetime(2023, 9, 9, 23, 59))
    assert not win.contains(dt.datetime(2023, 9, 10, 0, 1))
    assert win.middle == dt.date(2023, 9, 5)


def test_config_hash_ignores_key_order():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
