"""The demo catalog's DEM and reference water: shaped like Copernicus GLO-30 and JRC
Global Surface Water, derived from the simulator, with realistic disagreements."""

from __future__ import annotations

import dataclasses

import numpy as np
import pystac
import pytest
import rasterio
from rasterio.warp import transform as warp_points
from scipy import ndimage

from metaflood.demo.catalog import (
    DEM_ASSET,
    DEM_COLLECTION,
    REFERENCE_WATER_ASSET,
    REFERENCE_WATER_COLLECTION,
    publish_demo_catalog,
)
from metaflood.demo.simulate import simulate_event
from metaflood.demo.spec import SceneSpec
from metaflood.demo.static_layers import DEM_FACTOR, coarse_dem, reference_water
from tests.demo.test_catalog import CRS, DATES, TRANSFORM

# 1.5 x 1.5 km at 5 m, with the look-alikes: their pond is the enclosed water body.
SPEC = SceneSpec(seed=11, height=300, width=300, resolution=5.0, lookalikes=True)


@pytest.fixture(scope="module")
def event():
    return simulate_event(SPEC)


@pytest.fixture(scope="module")
def items(event, tmp_path_factory) -> dict[str, pystac.Item]:
    out = tmp_path_factory.mktemp("static") / "cat"
    path = publish_demo_catalog(event, out, crs=CRS, transform=TRANSFORM, dates=DATES)
    catalog = pystac.Catalog.from_file(str(path))
    return {i.collection_id: i for i in catalog.get_items(recursive=True)}


def test_dem_item_is_shaped_like_copernicus_glo_30(event, items):
    item = items[DEM_COLLECTION]
    assert set(item.assets) == {DEM_ASSET}
    assert item.datetime.year == 2021 and item.properties["platform"] == "tandem-x"
    band = item.assets[DEM_ASSET].extra_fields["raster:bands"][0]
    assert band["data_type"] == "float32" and band["nodata"] == "nan" and band["unit"] == "metre"
    with rasterio.open(item.assets[DEM_ASSET].get_absolute_href()) as src:
        dem = src.read(1)
        assert src.crs.to_string() == CRS == item.properties["proj:code"]
        assert src.transform.a == TRANSFORM.a * DEM_FACTOR
        assert (src.transform.c, src.transform.f) == (TRANSFORM.c, TRANSFORM.f)
        assert np.isnan(src.nodata)
    assert dem.shape == (-(-SPEC.height // DEM_FACTOR), -(-SPEC.width // DEM_FACTOR))
    assert np.isfinite(dem).all()
    assert np.allclose(dem, coarse_dem(event.elevation))
    # The mesas are part of the elevation, so the DEM shows them (tens of metres).
    assert dem.max() - np.median(dem) > 25.0


def test_coarse_dem_is_a_block_mean_with_partial_edge_blocks():
    z = np.arange(30, dtype=np.float32).reshape(5, 6)
    out = coarse_dem(z, 4)
    assert out.shape == (2, 2)
    assert out[0, 0] == pytest.approx(z[:4, :4].mean())
    assert out[1, 1] == pytest.approx(z[4:, 4:].mean())
    z[0, 0] = np.nan
    assert coarse_dem(z, 4)[0, 0] == pytest.approx(np.nanmean(z[:4, :4]))


def test_reference_water_is_jrc_like_occurrence_in_lon_lat(event, items):
    item = items[REFERENCE_WATER_COLLECTION]
    assert set(item.assets) == {REFERENCE_WATER_ASSET}
    assert item.properties["proj:code"] == "EPSG:4326"
    assert item.common_metadata.start_datetime.year == 1984
    band = item.assets[REFERENCE_WATER_ASSET].extra_fields["raster:bands"][0]
    assert band["data_type"] == "uint8" and band["nodata"] == 255 and band["unit"] == "percent"
    with rasterio.open(item.assets[REFERENCE_WATER_ASSET].get_absolute_href()) as src:
        occ = src.read(1)
        assert src.crs.to_epsg() == 4326 and src.nodata == 255
        transform = src.transform
    valid = occ[occ != 255]
    assert valid.max() == 100 and valid.min() == 0 and (valid <= 100).all()
    assert ((valid > 0) & (valid < 50)).any()  # low occurrence along the shores
    # Nearest resampling: the lon/lat layer holds the native layer's values at its pixels.
    native = reference_water(event).occurrence
    rows, cols = np.nonzero(occ != 255)
    pick = slice(None, None, 97)
    lon, lat = transform @ (cols[pick] + 0.5, rows[pick] + 0.5)
    xs, ys = warp_points("EPSG:4326", CRS, list(lon), list(lat))
    c, r = ~TRANSFORM @ (np.array(xs), np.array(ys))
    inside = (r >= 0) & (r < SPEC.height - 0.5) & (c >= 0) & (c < SPEC.width - 0.5)
    expected = native[r[inside].astype(int), c[inside].astype(int)]
    assert np.mean(expected == occ[rows[pick], cols[pick]][inside]) > 0.95


def test_reference_water_disagrees_with_the_pre_scene_as_real_layers_do(event):
    ref = reference_water(event)
    permanent = event.flood == 2
    said = ref.occurrence >= 50
    # The coastline is a few metres off: land called water and water called land.
    sea = permanent & ~ref.missing
    shore = ndimage.binary_dilation(sea, iterations=3) & ~ndimage.binary_erosion(sea, iterations=3)
    assert (said & ~permanent & shore).any() and (~said & permanent & shore).any()
    assert np.abs(ref.coast_offset_m).max() < 30.0
    # A small permanent water body (the pond) is missing from the reference.
    assert ref.missing.any() and not said[ref.missing].any()
    assert ref.missing.sum() < 0.01 * ref.missing.size
    # A phantom pond on ground that is dry before the event.
    assert ref.phantom.any() and said[ref.phantom].all()
    assert not permanent[ref.phantom].any()
    # Never from the flood: the reference has no new flood water beyond its shore noise.
    flooded = event.flood == 1
    assert (said & flooded).sum() < 0.02 * flooded.sum()
    # Far from the shore the reference agrees with the truth.
    deep = ndimage.binary_erosion(sea, iterations=8)
    assert (ref.occurrence[deep] == 100).all()


def test_without_a_lake_nothing_goes_missing():
    event = simulate_event(dataclasses.replace(SPEC, lookalikes=False))
    ref = reference_water(event)
    assert not ref.missing.any()  # the sea touches the edge; no enclosed water body
    assert ref.phantom.any()
