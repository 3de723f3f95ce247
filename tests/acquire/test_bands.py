"""Optical band sets through the acquisition: the canonical scene holds exactly the bands a
source has, in canonical order and named; a 20 m band is read onto the 10 m grid."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from rasterio.transform import from_origin

from metaflood.acquire.stage import acquire_period, search_scenes
from metaflood.core.config import event_grid
from metaflood.core.raster import write_cog
from tests.helpers.events import demo_event_config

SIZE = 200  # pixels of the 2 m test files (400 m, the tiny AOI and a margin)


def _sar_files(tmp_path: Path, grid) -> dict:
    left, _, _, top = grid.bounds
    transform = from_origin(left - 20, top + 20, 2, 2)
    sar = np.full((2, SIZE, SIZE), 0.05, np.float32)
    return {
        "source": "local",
        "bands": {"VV": 1, "VH": 2},
        **{
            p: str(
                write_cog(
                    tmp_path / f"s1_{p}.tif", sar, crs=grid.crs, transform=transform, nodata=None
                )
            )
            for p in ("pre", "post")
        },
    }


def _acquire(event: dict, out: Path) -> dict:
    search_scenes(
        event, "tiny", demo_catalog=None, cache_dir=out / "cache", out=out / "selection.json"
    )
    return {
        period: acquire_period(
            event,
            "tiny",
            period,
            selection=out / "selection.json",
            cache_dir=out / "cache",
            out_sar=out / period / "sar.tif",
            out_optical=out / period / "optical.tif",
            out_optical_mask=out / period / "optical_mask.tif",
            out_scenes=out / period / "scenes.json",
        )
        for period in ("pre", "post")
    }


@pytest.mark.parametrize(
    ("file_bands", "expected"),
    [
        # OMBRIA's optical image: SWIR, NIR and green only, stored in that order.
        ({"swir16": 1, "nir": 2, "green": 3}, ("green", "nir", "swir16")),
        (
            {"blue": 1, "green": 2, "red": 3, "nir": 4, "swir16": 5},
            ("blue", "green", "red", "nir", "swir16"),
        ),
    ],
)
def test_the_canonical_scene_holds_the_sources_bands_in_canonical_order(
    tmp_path, file_bands, expected
):
    grid = event_grid(demo_event_config(), "events.tiny")
    left, _, _, top = grid.bounds
    # Each band of the file is its index / 10, so where it lands tells which it was.
    data = np.stack([np.full((SIZE, SIZE), i / 10, np.float32) for i in range(1, 6)])
    transform = from_origin(left - 20, top + 20, 2, 2)
    path = write_cog(tmp_path / "s2.tif", data, crs=grid.crs, transform=transform, nodata=None)
    event = demo_event_config(
        sar=_sar_files(tmp_path, grid),
        optical={"source": "local", "pre": str(path), "bands": file_bands},
    )
    del event["demo"]
    scenes = _acquire(event, tmp_path / "out")
    with rasterio.open(tmp_path / "out" / "pre" / "optical.tif") as src:
        assert src.descriptions == expected
        values = [float(np.nanmedian(band)) for band in src.read()]
    assert values == pytest.approx([file_bands[name] / 10 for name in expected])
    assert set(scenes["pre"]["optical"]["items"][0]["assets"]) == set(file_bands)
    # No post-event file: written as absent, with the same bands, so both stacks match.
    with rasterio.open(tmp_path / "out" / "post" / "optical.tif") as src:
        assert src.descriptions == expected and src.tags()["absent"] == "true"


def _asset(path: Path, values: np.ndarray, transform, crs: str) -> str:
    dn = np.rint(values * 10000).astype(np.uint16)
    return str(write_cog(path, dn, crs=crs, transform=transform, nodata=0))


def test_a_20_m_band_is_resampled_onto_the_10_m_grid(tmp_path):
    """Sentinel-2's B11 is 20 m beside 10 m B03/B08: the scene is read on the 10 m
    lattice (the finest the catalog states) whatever order the assets are named in,
    and B11 is interpolated onto it (a linear ramp comes back as the ramp at the 10 m
    pixel centres), not taken from the nearest 20 m pixel."""
    grid = event_grid(demo_event_config(), "events.tiny")
    left, _, _, top = grid.bounds
    x0, y0 = left - 40, top + 40  # the tile's corner, shared by both lattices as on S2

    def ramp(res: float, n: int) -> np.ndarray:
        """0.1 + 0.0004 per metre east of x0 at the pixel centres."""
        x = (np.arange(n) + 0.5) * res
        return np.broadcast_to(0.1 + 0.0004 * x, (n, n)).astype(np.float32)

    item_dir = tmp_path / "catalog" / "s2" / "item"
    item_dir.mkdir(parents=True)
    fine, coarse = from_origin(x0, y0, 10, 10), from_origin(x0, y0, 20, 20)
    hrefs = {
        "B11": _asset(item_dir / "B11.tif", ramp(20, 30), coarse, grid.crs),
        "B03": _asset(item_dir / "B03.tif", np.full((60, 60), 0.08, np.float32), fine, grid.crs),
        "B08": _asset(item_dir / "B08.tif", np.full((60, 60), 0.3, np.float32), fine, grid.crs),
    }
    catalog = pystac.Catalog("c", "test catalog")
    collection = pystac.Collection(
        "s2",
        "test",
        pystac.Extent(
            pystac.SpatialExtent([[-180, -90, 180, 90]]), pystac.TemporalExtent([[None, None]])
        ),
    )
    lon0, lat0, lon1, lat1 = 22.62, 32.75, 22.64, 32.77
    item = pystac.Item(
        "item",
        {
            "type": "Polygon",
            "coordinates": [[[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]],
        },
        [lon0, lat0, lon1, lat1],
        dt.datetime(2023, 9, 5, 9, tzinfo=dt.UTC),
        {},
    )
    for key, href in hrefs.items():
        gsd = {"gsd": 20.0 if key == "B11" else 10.0}  # as Planetary Computer states it
        item.add_asset(key, pystac.Asset(href, media_type=pystac.MediaType.COG, extra_fields=gsd))
    collection.add_item(item)
    catalog.add_child(collection)
    catalog.normalize_and_save(str(tmp_path / "catalog"), pystac.CatalogType.SELF_CONTAINED)
    event = demo_event_config(
        sar=_sar_files(tmp_path, grid),
        optical={
            "source": "static",
            "catalog": str(tmp_path / "catalog" / "catalog.json"),
            "collection": "s2",
            "assets": {"swir16": "B11", "green": "B03", "nir": "B08"},  # the 20 m one first
            "scale": 0.0001,
        },
    )
    del event["demo"]
    out = tmp_path / "out"
    _acquire(event, out)
    record = json.loads((out / "selection.json").read_text())["periods"]["pre"]["optical"]
    assert record["bands"] == ["green", "nir", "swir16"]
    assert record["grid"]["transform"][0] == 10.0
    with rasterio.open(out / "pre" / "optical.tif") as src:
        assert src.descriptions == ("green", "nir", "swir16") and src.res == (10.0, 10.0)
        swir = src.read(3)
        col0 = round((src.transform.c - x0) / 10)
    expected = ramp(10, 60)[: swir.shape[0], col0 : col0 + swir.shape[1]]
    inner = (slice(1, -1), slice(1, -1))  # the edge pixels have no neighbour beyond
    np.testing.assert_allclose(swir[inner], expected[inner], atol=1.5e-4)
    assert len(np.unique(np.round(swir[inner], 4))) > swir.shape[1] - 3  # not blocky


def test_the_grid_band_is_the_finest_the_catalog_states():
    from metaflood.acquire.scene import BandRef, grid_band

    coarse, fine = BandRef("b20.tif", resolution=20.0), BandRef("b10.tif", resolution=10.0)
    assert grid_band([coarse, fine]) is fine
    # Where a band's resolution is not stated, the first band (in canonical order).
    assert grid_band([coarse, BandRef("unknown.tif")]) is coarse
