"""flood/support.tif: what each flooded pixel rests on, from the change stage, and each
flood polygon's share resting on both lines of evidence."""

import geopandas as gpd
import numpy as np
import rasterio

from metaflood.core.datacube import parse_codes
from metaflood.core.raster import write_cog
from metaflood.flood import change
from metaflood.flood.change import DRY, EXTENT_NODATA, FLOODED, PERMANENT
from metaflood.flood.sar_change import DARK_BEFORE, EVIDENCE_NODATA, FLOOD_SIGNAL, NO_SIGNAL
from metaflood.flood.support import CODES, NODATA, NOT_FLOODED, case_codes, support_codes
from tests.flood.test_change import run_change
from tests.helpers.flood_inputs import CRS, FLOOD, TRANSFORM, write_inputs


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
    cases = case_codes([pre, post], sar)
    assert set(np.unique(cases)) <= set(CODES.values())  # every pixel in one case
    codes = support_codes(cases, extent == FLOODED, extent == EXTENT_NODATA)
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


def test_the_change_stage_writes_it_block_by_block_with_the_polygons_share(tmp_path, monkeypatch):
    """The stage weighs the evidence in blocks: its product is the codes computed on the
    whole grid at once, and each polygon says how much of it rests on both lines."""
    paths = write_inputs(tmp_path / "in")
    rows, cols = FLOOD
    # a strip of the flood where the SAR saw no fall: the water maps alone say flood there
    evidence = rasterio.open(paths["sar_evidence"]).read(1)
    evidence[rows, cols.start : cols.start + 7] = NO_SIGNAL
    paths["sar_evidence"] = write_cog(
        tmp_path / "in" / "evidence_edited.tif", evidence, crs=CRS, transform=TRANSFORM, nodata=255
    )
    monkeypatch.setattr(change, "BLOCK_PX", 24)  # blocks that cut the flood
    out = tmp_path / "out"
    run_change(paths, out, out_support=out / "support.tif")
    with rasterio.open(out / "extent.tif") as src:
        extent = src.read(1)
    water = [rasterio.open(paths[k]).read(1) for k in ("pre_water", "post_water")]
    expected = support_codes(
        case_codes(water, evidence), extent == FLOODED, extent == EXTENT_NODATA
    )
    with rasterio.open(out / "support.tif") as src:
        np.testing.assert_array_equal(src.read(1), expected)
        assert src.nodata == NODATA and src.descriptions == ("flood_support",)
        assert src.colormap(1)[CODES["water_maps_only_sar_disagrees"]] == (215, 48, 39, 255)
        meanings = parse_codes(src.tags()["values"])
    assert meanings[CODES["neither_alone"]] == "neither_alone" and meanings[0] == "not flooded"
    flooded = expected[extent == FLOODED]
    both = (flooded == CODES["water_maps_and_sar_change"]).mean()
    assert 0 < both < 1
    (polygon,) = gpd.read_file(out / "polygons.gpkg").itertuples()
    assert polygon.both_lines_share == round(both, 4)
