import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.transform import from_origin

from metaflood.core.classes import BARREN, BUILDING, CLASS_NAMES, WATER
from metaflood.core.errors import InputError
from metaflood.flood.change import (
    DRY,
    EXTENT_NODATA,
    FLOODED,
    NETWORK_NODATA,
    PERMANENT,
    combined_extent,
    flood_extent,
    joined_probability,
    map_flood,
)
from tests.helpers.flood_inputs import FLOOD, write_inputs, write_network
from tests.helpers.flood_inputs import class_maps as product_class_maps

TRANSFORM = from_origin(600000, 3630000, 2.0, 2.0)


def class_maps():
    pre = np.full((60, 60), BARREN, np.uint8)
    pre[:10] = WATER  # sea
    pre[20:30, 20:40] = BUILDING
    post = pre.copy()
    post[15:35, 15:45] = WATER  # a flood over barren ground and the buildings
    post[50, 50] = WATER  # a single-pixel speck
    pre[59, :] = 255  # a nodata row
    return pre, post


def test_extent_values():
    pre, post = class_maps()
    extent = flood_extent(pre, post, min_pixels=1)
    assert (extent[:10, :] == PERMANENT).all()
    assert (extent[15:35, 15:45] == FLOODED).all()
    assert extent[50, 50] == FLOODED
    assert (extent[59] == EXTENT_NODATA).all()
    assert extent[40, 5] == DRY


def test_minimum_mapping_unit_removes_specks_only():
    pre, post = class_maps()
    extent = flood_extent(pre, post, min_pixels=50)
    assert extent[50, 50] == DRY
    assert (extent[15:35, 15:45] == FLOODED).all()


def run_change(paths, out_dir, **overrides):
    landcover = [overrides.pop("pre", paths["pre"]), overrides.pop("post", paths["post"])]
    kwargs = {
        "post_route": paths["route_post"],
        "sar_evidence": paths["sar_evidence"],
        "sar_ratio": paths["sar_ratio"],
        "sar_summary": paths["sar_summary"],
        "calibration": None,
        "out_extent": out_dir / "extent.tif",
        "out_confidence": out_dir / "confidence.tif",
        "out_polygons": out_dir / "polygons.gpkg",
        "out_transitions": out_dir / "transitions.csv",
        "min_area_m2": 40.0,
        "flooded_min_confidence": 50,
    } | overrides
    return map_flood(landcover, [paths["pre_water"], paths["post_water"]], **kwargs)


def test_combined_extent_keeps_permanent_water_apart_and_drops_specks():
    pre, post = class_maps()
    probability = np.zeros(pre.shape)
    probability[15:35, 15:45] = 0.9
    probability[:10] = 0.8  # the sea: permanent, whatever the probability says
    probability[50, 50] = 0.9  # a speck
    probability[40, 5] = np.nan  # no estimate
    probability[59] = np.nan  # no water map there, so no confidence
    water_pre = np.where(pre == WATER, 0.9, 0.1)
    water_post = np.where(post == WATER, 0.9, 0.1)
    extent = combined_extent(
        probability, water_pre, water_post, min_pixels=10, flooded_min_probability=0.5
    )
    assert (extent[15:35, 15:45] == FLOODED).all()
    assert (extent[:10] == PERMANENT).all()
    assert extent[50, 50] == DRY
    assert extent[40, 5] == EXTENT_NODATA
    assert (extent[59] == EXTENT_NODATA).all()


def test_map_flood_writes_every_product(tmp_path):
    paths = write_inputs(tmp_path / "in")
    out = tmp_path / "out"
    summary = run_change(paths, out)
    assert summary["polygons"] == 1
    with rasterio.open(out / "extent.tif") as src:
        assert src.nodata == EXTENT_NODATA and src.crs.to_epsg() == 32634
        assert src.colormap(1)[FLOODED][:3] == (0, 112, 255)
        extent = src.read(1)
    assert (extent[FLOOD] == FLOODED).all()
    assert (extent[:8] == PERMANENT).all()
    assert (extent[40:44, 40:44] == DRY).all()  # destroyed, not flooded
    with rasterio.open(out / "confidence.tif") as src:
        assert src.nodata == 255 and src.descriptions == ("flood_confidence",)
        confidence = src.read(1)
    # Both lines of evidence agree in the flood block: flooded, and where the optical image
    # is missing the SAR's drop decides with high confidence; dry land: low.
    assert confidence[FLOOD].min() >= 50
    assert confidence[FLOOD][:, 32 - FLOOD[1].start :].min() >= 80
    assert confidence[50:60, 5:15].max() < 20
    polygons = gpd.read_file(out / "polygons.gpkg")
    assert polygons.is_valid.all()
    assert polygons.area_m2.iloc[0] == pytest.approx(18 * 28 * 4.0)
    assert polygons.geometry.area.iloc[0] == pytest.approx(18 * 28 * 4.0)
    assert polygons.mean_confidence.iloc[0] == pytest.approx(confidence[FLOOD].mean(), abs=0.01)
    assert polygons.dominant_pre_class.iloc[0] == "barren"
    table = pd.read_csv(out / "transitions.csv", index_col=0)
    assert list(table.columns) == list(CLASS_NAMES)
    assert table.loc["building", "water"] == pytest.approx(200 * 4.0 / 1e6)
    assert table.loc["building", "barren"] == pytest.approx(16 * 4.0 / 1e6)


def test_block_by_block_equals_the_whole_grid_at_once(tmp_path, monkeypatch):
    """Blocks smaller than the flood, so a flooded region spans several of them: the
    minimum mapping unit, polygons and transitions must not see the block edges."""
    import metaflood.flood.change

    paths = write_inputs(tmp_path / "in")
    whole = run_change(paths, tmp_path / "whole")
    monkeypatch.setattr(metaflood.flood.change, "BLOCK_PX", 7)
    blocked = run_change(paths, tmp_path / "blocked")
    assert blocked == whole
    for name in ("extent.tif", "confidence.tif"):
        with (
            rasterio.open(tmp_path / "whole" / name) as a,
            rasterio.open(tmp_path / "blocked" / name) as b,
        ):
            np.testing.assert_array_equal(a.read(), b.read())
    transitions = [(tmp_path / d / "transitions.csv").read_text() for d in ("whole", "blocked")]
    assert transitions[0] == transitions[1]
    polygons = [gpd.read_file(tmp_path / d / "polygons.gpkg") for d in ("whole", "blocked")]
    pd.testing.assert_frame_equal(
        polygons[0].drop(columns="geometry"), polygons[1].drop(columns="geometry")
    )
    assert polygons[0].geometry.equals(polygons[1].geometry)


def test_without_sar_evidence_the_land_cover_decides(tmp_path, write_raster):
    paths = write_inputs(tmp_path / "in")
    paths["sar_evidence"] = write_raster(
        "nosar.tif", np.full((64, 64), 255, np.uint8), transform=TRANSFORM, nodata=255
    )
    out = tmp_path / "out"
    run_change(paths, out)
    with rasterio.open(out / "extent.tif") as src:
        assert (src.read(1)[FLOOD] == FLOODED).all()


def test_maps_on_different_grids_are_refused(tmp_path, write_raster):
    paths = write_inputs(tmp_path / "in")
    pre, _ = product_class_maps()
    shifted = write_raster(
        "shifted.tif", pre, transform=from_origin(600002, 3630000, 2, 2), nodata=255
    )
    with pytest.raises(InputError, match="not on the same grid"):
        run_change(paths, tmp_path / "out", post=shifted)
    assert not (tmp_path / "out" / "extent.tif").exists()


def test_the_extent_floods_from_the_configured_confidence(tmp_path):
    """Lowering change.flooded_min_confidence maps more flood, each flooded pixel at or
    above it; the confidence product says where the extent was cut."""
    paths = write_inputs(tmp_path / "in")
    flooded = {}
    for percent in (1, 50, 95):
        out = tmp_path / str(percent)
        summary = run_change(paths, out, flooded_min_confidence=percent)
        with rasterio.open(out / "extent.tif") as src:
            extent = src.read(1)
        with rasterio.open(out / "confidence.tif") as src:
            confidence = src.read(1)
            assert src.tags()["flooded_at"] == f"{percent} and above"
        assert summary["flooded_min_confidence"] == percent
        assert (confidence[extent == FLOODED] >= percent).all()
        flooded[percent] = int((extent == FLOODED).sum())
    assert flooded[1] > flooded[50] > flooded[95] > 0


def _band(path):
    with rasterio.open(path) as src:
        return src.read(1)


def test_the_flood_network_adds_flood_the_evidence_missed_and_nothing_it_cannot_weigh(tmp_path):
    """With a flood network, a pixel's confidence is the higher of the calibrated one and
    the network's: a flood the other lines missed is mapped, the sea stays permanent water,
    and where the network says nothing (255) or says less, the evidence stands alone."""
    paths = write_inputs(tmp_path / "in")
    alone = tmp_path / "alone"
    run_change(paths, alone)
    network = np.zeros((64, 64), np.uint8)
    network[50:60, 5:25] = 90  # dry land to every other line: a flood they missed
    network[:8] = 95  # the sea
    network[FLOOD] = 10  # the flood the evidence found, which the network doubts
    network[0:64, 60:64] = NETWORK_NODATA
    paths["network"] = write_network(tmp_path / "in" / "network.tif", network)
    joined = tmp_path / "joined"
    summary = run_change(paths, joined, network=paths["network"])
    assert summary["flood_network"] is True
    (extent, confidence), (extent_alone, confidence_alone) = (
        [_band(out / name) for name in ("extent.tif", "confidence.tif")] for out in (joined, alone)
    )
    assert (extent[50:60, 5:25] == FLOODED).all() and (extent_alone[50:60, 5:25] == DRY).all()
    assert (confidence[50:60, 5:25] == 90).all()
    assert (extent[:8] == PERMANENT).all()
    assert (extent[FLOOD] == extent_alone[FLOOD]).all()
    assert (confidence[FLOOD] == confidence_alone[FLOOD]).all()
    assert (confidence[:, 60:] == confidence_alone[:, 60:]).all()
    with rasterio.open(joined / "confidence.tif") as src:
        assert "flood network" in src.tags()["definition"]


def test_joined_probability_keeps_unknown_pixels_unknown():
    probability = np.array([np.nan, 0.2, 0.7, 0.3])
    network = np.array([90, NETWORK_NODATA, 40, 60], np.uint8)
    joined = joined_probability(probability, network)
    assert np.isnan(joined[0])
    assert joined[1:] == pytest.approx([0.2, 0.7, 0.6])
