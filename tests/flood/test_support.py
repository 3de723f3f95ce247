"""flood/support.tif: what each flooded pixel rests on, written block by block."""

import numpy as np
import pytest
import rasterio
from affine import Affine

from metaflood.core.datacube import parse_codes
from metaflood.core.errors import InputError
from metaflood.core.raster import write_cog
from metaflood.flood import support
from metaflood.flood.change import DRY, EXTENT_NODATA, FLOODED, PERMANENT
from metaflood.flood.sar_change import DARK_BEFORE, EVIDENCE_NODATA, FLOOD_SIGNAL, NO_SIGNAL
from metaflood.flood.support import CODES, NODATA, NOT_FLOODED, support_codes, write_support
from tests.helpers.flood_inputs import CRS, TRANSFORM


def test_each_flooded_pixel_gets_the_case_of_its_evidence():
    extent = np.array([[FLOODED] * 6 + [DRY, PERMANENT, EXTENT_NODATA]], np.uint8)
    pre = np.array([[10, 10, 10, 10, 10, 10, 10, 90, 10]], np.uint8)
    post = np.array([[90, 10, 90, 90, 90, 10, 90, 90, 90]], np.uint8)
    sar = np.array(
        [
            [FLOOD_SIGNAL, FLOOD_SIGNAL, DARK_BEFORE, EVIDENCE_NODATA, NO_SIGNAL, NO_SIGNAL]
            + [FLOOD_SIGNAL] * 3
        ],
        np.uint8,
    )
    codes = support_codes(extent, [pre, post], sar)
    assert codes.tolist() == [
        [
            CODES["water_maps_and_sar_change"],
            CODES["sar_change_only"],
            CODES["water_maps_only_sar_blind"],
            CODES["water_maps_only_sar_blind"],  # no SAR in a period
            CODES["water_maps_only_sar_disagrees"],
            CODES["neither_alone"],
            NOT_FLOODED,  # dry, whatever its evidence says
            NOT_FLOODED,  # permanent water
            NODATA,
        ]
    ]


def _write(path, data, nodata=255, transform=TRANSFORM):
    return write_cog(path, data, crs=CRS, transform=transform, nodata=nodata)


def test_the_product_block_by_block_is_the_whole_grid_computed_at_once(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    shape = (70, 90)  # blocks of 32 px: the last row and column of blocks are partial
    extent = rng.choice([DRY, FLOODED, PERMANENT, EXTENT_NODATA], shape).astype(np.uint8)
    pre, post = (rng.choice([0, 30, 60, 100, 255], shape).astype(np.uint8) for _ in "ab")
    sar = rng.choice([NO_SIGNAL, FLOOD_SIGNAL, DARK_BEFORE, 255], shape).astype(np.uint8)
    arrays = {"extent": extent, "pre": pre, "post": post, "sar": sar}
    paths = [_write(tmp_path / f"{name}.tif", a) for name, a in arrays.items()]
    monkeypatch.setattr(support, "BLOCK_PX", 32)
    out = tmp_path / "flood" / "support.tif"
    pixels = write_support(paths[0], paths[1:3], paths[3], out)
    expected = support_codes(extent, [pre, post], sar)
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(1), expected)
        assert src.nodata == NODATA and src.descriptions == ("flood_support",)
        assert src.colormap(1)[CODES["water_maps_only_sar_disagrees"]] == (215, 48, 39, 255)
        meanings = parse_codes(src.tags()["values"])
    assert meanings[CODES["neither_alone"]] == "neither_alone" and meanings[0] == "not flooded"
    assert pixels == {name: int((expected == code).sum()) for name, code in CODES.items()}
    assert sum(pixels.values()) == int((extent == FLOODED).sum())  # each in one case


def test_inputs_on_other_grids_are_refused_naming_them(tmp_path):
    block = np.zeros((8, 8), np.uint8)
    extent = _write(tmp_path / "extent.tif", block)
    moved = _write(tmp_path / "post.tif", block, transform=TRANSFORM * Affine.translation(1, 0))
    with pytest.raises(InputError, match="extent.tif and .*post.tif are not on the same grid"):
        write_support(extent, [extent, moved], extent, tmp_path / "support.tif")
    assert not (tmp_path / "support.tif").exists()
