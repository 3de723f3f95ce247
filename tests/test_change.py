import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.transform import from_origin

from metaflood.change import DRY, EXTENT_NODATA, FLOODED, PERMANENT, flood_extent, map_flood
from metaflood.classes import BARREN, BUILDING, CLASS_NAMES, WATER, colormap
from metaflood.errors import InputError

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


def test_map_flood_writes_every_product(tmp_path, write_raster):
    pre, post = class_maps()
    kwargs = {"transform": TRANSFORM, "nodata": 255, "colormap": colormap()}
    pre_path = write_raster("pre.tif", pre, **kwargs)
    post_path = write_raster("post.tif", post, **kwargs)
    out = {n: tmp_path / n for n in ("extent.tif", "polygons.gpkg", "transitions.csv")}
    map_flood(
        pre_path,
        post_path,
        out_extent=out["extent.tif"],
        out_polygons=out["polygons.gpkg"],
        out_transitions=out["transitions.csv"],
        min_area_m2=40.0,
    )
    with rasterio.open(out["extent.tif"]) as src:
        assert src.nodata == EXTENT_NODATA and src.crs.to_epsg() == 32634
        assert src.colormap(1)[FLOODED][:3] == (0, 112, 255)
        assert (src.read(1)[15:35, 15:45] == FLOODED).all()
    polygons = gpd.read_file(out["polygons.gpkg"])
    assert len(polygons) == 1  # the speck (4 m2) is below the 40 m2 unit
    assert polygons.is_valid.all()
    assert polygons.area_m2.iloc[0] == pytest.approx(20 * 30 * 4.0)
    assert polygons.geometry.area.iloc[0] == pytest.approx(20 * 30 * 4.0)
    assert polygons.dominant_pre_class.iloc[0] == "barren"
    table = pd.read_csv(out["transitions.csv"], index_col=0)
    assert list(table.columns) == list(CLASS_NAMES)
    assert table.loc["building", "water"] == pytest.approx(200 * 4.0 / 1e6)
    assert table.loc["water", "water"] == pytest.approx(600 * 4.0 / 1e6)


def test_maps_on_different_grids_are_refused(tmp_path, write_raster):
    pre, post = class_maps()
    a = write_raster("a.tif", pre, transform=TRANSFORM, nodata=255)
    b = write_raster("b.tif", post, transform=from_origin(600002, 3630000, 2, 2), nodata=255)
    with pytest.raises(InputError, match="not on the same grid"):
        map_flood(
            a,
            b,
            out_extent=tmp_path / "e.tif",
            out_polygons=tmp_path / "p.gpkg",
            out_transitions=tmp_path / "t.csv",
            min_area_m2=0,
        )
    assert not (tmp_path / "e.tif").exists()
