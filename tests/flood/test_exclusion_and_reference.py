"""The change stage with reference water and the terrain exclusion; validation's
with/without figures; the reference-water product."""

import json

import numpy as np
import pytest
import rasterio

from metaflood.core.errors import InputError
from metaflood.core.exclusion_codes import HAND, NODATA, SHADOW
from metaflood.core.raster import write_cog
from metaflood.flood.change import DRY, EXTENT_NODATA, FLOODED, PERMANENT, combined_extent
from metaflood.flood.reference_water import (
    BOTH,
    LAND,
    PRE_ONLY,
    REFERENCE_ONLY,
    reference_codes,
    write_reference_water,
)
from metaflood.flood.sar_change import FLOOD_SIGNAL, NO_SIGNAL
from metaflood.flood.validate import exclusion_effect, validate_against_truth
from tests.flood.test_change import run_change
from tests.helpers.flood_inputs import CRS, FLOOD, SIZE, TRANSFORM, write_inputs

HALF = {"flooded_min_probability": 0.5}


def cog(path, data, nodata, **tags):
    return write_cog(path, data, crs=CRS, transform=TRANSFORM, nodata=nodata, tags=tags or None)


def test_reference_codes_say_which_source_saw_water():
    layer = np.array([[1, 1, 0, 0, 1, 255]], np.uint8)
    pre = np.array([[90, 10, 90, 10, 255, 10]], np.uint8)
    codes = reference_codes(layer, pre)
    assert codes.tolist() == [[BOTH, REFERENCE_ONLY, PRE_ONLY, LAND, 255, LAND]]
    # where the backscatter then fell to water level the pre-event map's water does not
    # count (wet soil read as water by SAR alone); the reference layer still does
    sar = np.array([[FLOOD_SIGNAL, NO_SIGNAL, FLOOD_SIGNAL, NO_SIGNAL, NO_SIGNAL, NO_SIGNAL]])
    codes = reference_codes(layer, pre, sar.astype(np.uint8))
    assert codes.tolist() == [[REFERENCE_ONLY, REFERENCE_ONLY, LAND, LAND, 255, LAND]]


def test_reference_water_is_never_flooded_and_extends_permanent_water():
    probability = np.full((1, 4), 0.9)
    water_pre = np.array([[0.1, 0.1, 0.9, 0.1]])
    water_post = np.full((1, 4), 0.9)
    reference = np.array([[False, True, False, False]])
    extent = combined_extent(probability, water_pre, water_post, 0, reference=reference, **HALF)
    assert extent.tolist() == [[FLOODED, PERMANENT, PERMANENT, FLOODED]]
    # water before the event that is dry afterwards is dry, not flooded
    extent = combined_extent(
        probability, water_pre, np.full((1, 4), 0.1), 0, reference=reference, **HALF
    )
    assert extent[0, 1] == DRY and extent[0, 2] == DRY


def test_a_fall_to_water_level_is_not_held_back_by_the_pre_event_water_map():
    """Wet soil read as water before the event, then flooded: the backscatter fell to
    water level, so the ground was not open water; the reference layer still holds."""
    probability = np.full((1, 4), 0.9)
    water_pre = np.array([[0.9, 0.9, 0.9, 0.1]])
    water_post = np.full((1, 4), 0.9)
    reference = np.array([[False, False, True, False]])
    sar_flood = np.array([[True, False, True, True]])
    extent = combined_extent(
        probability, water_pre, water_post, 0, reference=reference, sar_flood=sar_flood, **HALF
    )
    assert extent.tolist() == [[FLOODED, PERMANENT, PERMANENT, FLOODED]]


def test_write_reference_water_records_an_absent_layer(tmp_path):
    paths = write_inputs(tmp_path / "in")
    layer = cog(tmp_path / "layer.tif", np.full((SIZE, SIZE), 255, np.uint8), 255, absent="true")
    record = write_reference_water(
        layer, paths["pre_water"], paths["sar_evidence"], tmp_path / "rw.tif", tmp_path / "rw.json"
    )
    assert record["reference_layer"] == "absent"
    assert record["permanent_water"] == "pre-event water map only"
    with rasterio.open(tmp_path / "rw.tif") as src:
        codes = src.read(1)
        assert src.colormap(1)[PRE_ONLY][3] == 255
    assert (codes[:8] == PRE_ONLY).all() and (codes[8:] == LAND).all()
    assert json.loads((tmp_path / "rw.json").read_text()) == record
    assert record["pre_event_water_not_counted"]["pixels"] == 0


def test_pre_event_water_where_sar_fell_to_water_level_is_recorded_as_not_counted(tmp_path):
    paths = write_inputs(tmp_path / "in")
    with rasterio.open(paths["sar_evidence"]) as src:
        evidence, profile = src.read(1), src.profile
    evidence[:2] = FLOOD_SIGNAL  # two rows of the pre-event sea
    sar = cog(tmp_path / "sar_change.tif", evidence, profile["nodata"])
    layer = cog(tmp_path / "layer.tif", np.full((SIZE, SIZE), 255, np.uint8), 255, absent="true")
    record = write_reference_water(
        layer, paths["pre_water"], sar, tmp_path / "rw.tif", tmp_path / "rw.json"
    )
    with rasterio.open(tmp_path / "rw.tif") as src:
        codes = src.read(1)
    assert (codes[:2] == LAND).all() and (codes[2:8] == PRE_ONLY).all()
    assert record["pre_event_water_not_counted"]["pixels"] == 2 * SIZE


def test_write_reference_water_refuses_another_grid(tmp_path):
    paths = write_inputs(tmp_path / "in")
    layer = cog(tmp_path / "layer.tif", np.zeros((SIZE, SIZE - 1), np.uint8), 255)
    with pytest.raises(InputError):
        write_reference_water(
            layer, paths["pre_water"], paths["sar_evidence"], tmp_path / "rw.tif", tmp_path / "j"
        )


def test_excluded_pixels_are_nodata_in_extent_and_confidence(tmp_path):
    paths = write_inputs(tmp_path / "in")
    codes = np.zeros((SIZE, SIZE), np.uint8)
    codes[FLOOD[0], 16:24] = SHADOW  # the flood's left part falls in radar shadow
    codes[50:60, 50:60] = HAND
    codes[0, 0] = NODATA  # no DEM there: not a reason to remove anything
    exclusion = cog(tmp_path / "exclusion.tif", codes, NODATA)
    out = tmp_path / "out"
    summary = run_change(paths, out, exclusion=exclusion, out_unexcluded=out / "unexcluded.tif")
    with rasterio.open(out / "extent.tif") as src:
        extent = src.read(1)
    with rasterio.open(out / "confidence.tif") as src:
        confidence = src.read(1)
    with rasterio.open(out / "unexcluded.tif") as src:
        unexcluded = src.read(1)
    assert (extent[FLOOD[0], 16:24] == EXTENT_NODATA).all()
    assert (confidence[FLOOD[0], 16:24] == 255).all()
    assert (extent[FLOOD[0], 24:44] == FLOODED).all()
    assert (unexcluded[FLOOD] == FLOODED).all()
    assert extent[0, 0] == PERMANENT
    assert summary["excluded_pixels"] == 18 * 8 + 100
    effect = exclusion_effect(
        extent, unexcluded, np.zeros_like(extent, bool), unexcluded != EXTENT_NODATA, 4.0
    )
    # no true flood here: every flooded pixel is a false positive
    assert effect["without_exclusion"]["false_positive_px"] == 18 * 28
    assert effect["with_exclusion"]["false_positive_px"] == 18 * 20
    assert effect["false_positive_reduction"] == pytest.approx(8 / 28)
    assert effect["with_exclusion"]["false_positive_km2"] == pytest.approx(18 * 20 * 4 / 1e6)


def test_validation_by_hand_gives_the_workflows_figures_when_pixels_are_excluded(tmp_path):
    """The workflow validates with the unexcluded extent beside it, a hand run without:
    both score the pixels the product maps, so one file holds one figure."""
    paths = write_inputs(tmp_path / "in")
    codes = np.zeros((SIZE, SIZE), np.uint8)
    codes[FLOOD[0], 16:24] = SHADOW
    exclusion = cog(tmp_path / "exclusion.tif", codes, NODATA)
    out = tmp_path / "out"
    run_change(
        paths,
        out,
        exclusion=exclusion,
        out_unexcluded=out / "unexcluded.tif",
        out_support=out / "support.tif",
    )
    truth = tmp_path / "truth"
    truth.mkdir()
    flood = np.zeros((SIZE, SIZE), np.uint8)
    flood[FLOOD] = 1
    cog(truth / "flood.tif", flood, 255)
    for period in ("pre", "post"):
        with rasterio.open(paths[period]) as src:
            cog(truth / f"landcover_{period}.tif", src.read(1), 255)
    inputs = [out / "extent.tif", out / "confidence.tif", paths["sar_evidence"]]
    inputs += [paths["pre"], paths["post"], truth]
    workflow = validate_against_truth(
        *inputs,
        out / "validation.json",
        support_path=out / "support.tif",
        min_area_m2=0,
        unexcluded_path=out / "unexcluded.tif",
    )
    by_hand = validate_against_truth(
        *inputs, out / "validation.json", support_path=out / "support.tif", min_area_m2=0
    )
    assert by_hand == workflow
    assert workflow["flood"]["false_negative_px"] == 0  # the excluded part is no claim
    # Every flooded pixel the product maps rests on both lines here, and is truly flooded.
    by_evidence = workflow["flood_by_evidence"]
    assert by_evidence["water_maps_and_sar_change"] == {"flooded_px": 18 * 20, "truly_flooded": 1.0}
    assert by_evidence["sar_change_only"] == {"flooded_px": 0, "truly_flooded": None}
    effect = workflow["exclusion_effect"]["with_exclusion"]
    assert effect["false_negative_px"] == 18 * 8  # counted as not flooded there


def test_without_exclusion_the_extent_is_the_unexcluded_one(tmp_path):
    paths = write_inputs(tmp_path / "in")
    out = tmp_path / "out"
    run_change(paths, out, out_unexcluded=out / "unexcluded.tif")
    with rasterio.open(out / "extent.tif") as a, rasterio.open(out / "unexcluded.tif") as b:
        np.testing.assert_array_equal(a.read(), b.read())
