import base64
import hashlib
import io
import json

import numpy as np
import pandas as pd
import pytest
import rasterio

from metaflood.core.datacube import open_raster
from metaflood.core.grid import Grid
from metaflood.core.raster import write_cog
from metaflood.core.reliability import HIGH_CONFIDENCE
from metaflood.core.settings import ExclusionSettings, section_defaults
from metaflood.flood.change import (
    EXTENT_NODATA,
    FLOODED,
    FLOODED_MIN_CONFIDENCE_TAG,
    map_flood,
)
from metaflood.flood.confidence import JOIN_FEATURES, load_calibration
from metaflood.flood.reference_water import write_reference_water
from metaflood.flood.sar_change import DARK_BEFORE, NO_SIGNAL
from metaflood.flood.stats import flooded_from, write_stats
from metaflood.flood.support import CODES, SUPPORT, case_codes, support_codes, write_support
from metaflood.report.figures import _nice_length, map_figure, map_png, optical_composite
from metaflood.report.mapbook import write_mapbook
from metaflood.report.maps import ReportInputs
from metaflood.report.page import write_report
from metaflood.terrain.stage import terrain_exclusion
from tests.helpers.flood_inputs import CRS, FLOOD, SIZE, TRANSFORM, write_inputs

EVENT = {
    "pre": {"start": "2023-09-01", "end": "2023-09-09"},
    "post": {"start": "2023-09-11", "end": "2023-09-20"},
}


@pytest.fixture
def products(tmp_path):
    paths = write_inputs(tmp_path)
    for name in ("extent.tif", "confidence.tif", "polygons.gpkg", "transitions.csv", "support.tif"):
        paths[name] = tmp_path / name
    map_flood(
        [paths["pre"], paths["post"]],
        [paths["pre_water"], paths["post_water"]],
        post_route=paths["route_post"],
        sar_evidence=paths["sar_evidence"],
        sar_ratio=paths["sar_ratio"],
        sar_summary=paths["sar_summary"],
        calibration=None,
        out_extent=paths["extent.tif"],
        out_confidence=paths["confidence.tif"],
        out_polygons=paths["polygons.gpkg"],
        out_transitions=paths["transitions.csv"],
        out_support=paths["support.tif"],
        min_area_m2=0,
        flooded_min_confidence=50,
    )
    scene = {
        "sar": {
            "status": "found",
            "item": "s1",
            "datetime": "2023-09-05T04:30:00",
            "reason": "nearest",
            "properties": {"sat:orbit_state": "ascending"},
        },
        "optical": {"status": "missing", "reason": "0 items in the window"},
    }
    for period in ("pre", "post"):
        paths[f"scenes_{period}"] = tmp_path / f"scenes_{period}.json"
        paths[f"scenes_{period}"].write_text(json.dumps(scene))
        reliable = period == "pre"
        shifts = {
            "optical_to_sar": {
                "shift": [0.1, -0.2] if reliable else [1.4, 2.2],
                "reliable": reliable,
                "spread": 0.1 if reliable else 1.8,
                "method": "m",
                "reason": "agree" if reliable else "sub-windows disagree",
                "applied": reliable,
            }
        }
        paths[f"coreg_{period}"] = tmp_path / f"coreg_{period}.json"
        paths[f"coreg_{period}"].write_text(json.dumps({"shifts": shifts}))
    paths["checkpoint"] = tmp_path / "model.pt"
    paths["checkpoint"].write_bytes(b"weights")
    write_terrain(paths, tmp_path)
    return paths


def write_terrain(paths, tmp_path):
    """The exclusion (a steep ridge along the right edge, looking east) and the water
    before the event (no reference layer), as their stages write them."""
    pad = 4
    dem = np.zeros((SIZE + 2 * pad, SIZE + 2 * pad), np.float32)
    dem[:, -12:] = np.arange(12) * 8.0  # a 76° slope facing the radar: layover
    write_cog(
        tmp_path / "dem.tif",
        dem,
        crs=CRS,
        transform=TRANSFORM @ rasterio.Affine.translation(-pad, -pad),
        nodata=np.nan,
        tags={"pad_px": str(pad), "absent": "false"},
    )
    paths["exclusion.tif"] = tmp_path / "exclusion.tif"
    paths["exclusion.json"] = tmp_path / "exclusion.json"
    terrain_exclusion(
        tmp_path / "dem.tif",
        paths["scenes_post"],
        Grid(CRS, TRANSFORM, SIZE, SIZE),
        settings=ExclusionSettings.from_section(section_defaults("exclusion")),
        out_exclusion=paths["exclusion.tif"],
        out_record=paths["exclusion.json"],
    )
    layer = np.full((SIZE, SIZE), 255, np.uint8)
    write_cog(
        tmp_path / "layer.tif",
        layer,
        crs=CRS,
        transform=TRANSFORM,
        nodata=255,
        tags={"absent": "true"},
    )
    paths["reference_water.json"] = tmp_path / "reference_water.json"
    paths["reference_water.tif"] = tmp_path / "reference_water.tif"
    write_reference_water(
        tmp_path / "layer.tif",
        paths["pre_water"],
        paths["sar_evidence"],
        paths["reference_water.tif"],
        paths["reference_water.json"],
    )


def make_stats(p, tmp_path, **kwargs):
    return write_stats(
        "e",
        {"events": {"e": EVENT}},
        extent=p["extent.tif"],
        confidence=p["confidence.tif"],
        polygons=p["polygons.gpkg"],
        transitions=p["transitions.csv"],
        landcover=[p["pre"], p["post"]],
        routes=[p["route_pre"], p["route_post"]],
        scenes=[p["scenes_pre"], p["scenes_post"]],
        coregistration=[p["coreg_pre"], p["coreg_post"]],
        sar_summary=p["sar_summary"],
        water=[p["pre_water_summary"], p["post_water_summary"]],
        support=p["support.tif"],
        checkpoint=p["checkpoint"],
        calibration=kwargs.pop("calibration", None),
        validation=None,
        out=tmp_path / "stats.json",
        out_impact=tmp_path / "impact.csv",
        exclusion=p["exclusion.json"],
        reference_water=p["reference_water.json"],
        **kwargs,
    )


def report_inputs(p, tmp_path) -> ReportInputs:
    return ReportInputs(
        stacks=[p["stack"], p["stack"]],
        valid=[p["valid"], p["valid"]],
        landcover=[p["pre"], p["post"]],
        extent=p["extent.tif"],
        confidence=p["confidence.tif"],
        sar_evidence=p["sar_evidence"],
        sar_ratio=p["sar_ratio"],
        stats=tmp_path / "stats.json",
        exclusion=p["exclusion.tif"],
        support=p["support.tif"],
    )


def test_stats_impact_and_report(products, tmp_path):
    p = products
    stats = make_stats(p, tmp_path)
    flood = stats["flood"]
    new_water_px = 18 * 28  # the flooded block; buildings inside it count too
    assert flood["flooded_area_km2"] == pytest.approx(new_water_px * 4 / 1e6)
    assert flood["flooded_min_confidence"] == 50  # as the confidence product records it
    # High confidence: the flooded pixels the calibrated confidence puts at 80% or more
    # (how many depends on the shipped calibration; the stage must count them all).
    with rasterio.open(p["extent.tif"]) as extent, rasterio.open(p["confidence.tif"]) as conf:
        high = int(((extent.read(1) == 1) & (conf.read(1) >= HIGH_CONFIDENCE)).sum())
    assert high > 0
    assert flood["flooded_high_confidence_km2"] == pytest.approx(high * 4 / 1e6)
    assert flood["flooded_lower_confidence_km2"] == pytest.approx((new_water_px - high) * 4 / 1e6)
    assert flood["flooded_by_pre_class_km2"]["building"] == pytest.approx(200 * 4 / 1e6)
    assert flood["buildings"]["building_to_barren_km2"] == pytest.approx(16 * 4 / 1e6)
    assert flood["permanent_water_km2"] == pytest.approx(8 * 64 * 4 / 1e6)
    water = stats["water"]
    assert water["pre"]["water_km2"] == pytest.approx(8 * 64 * 4 / 1e6)  # the sea
    assert water["post"]["water_km2"] == pytest.approx((8 * 64 + new_water_px) * 4 / 1e6)
    assert water["post"]["thresholds_from_fallback"] == ["index"]
    # The block spans columns 16..43; the right half (32..) was mapped from SAR alone.
    assert flood["flooded_by_post_route"]["sar_only"] == pytest.approx(12 / 28)
    assert stats["coverage"]["post"] == {
        "both": 0.5,
        "sar_only": 0.5,
        "optical_only": 0.0,
        "none": 0.0,
    }
    assert stats["sar_change"]["ratio_threshold_db"]["value"] == -6.0
    assert stats["confidence_calibration"]["file"] == "packaged default"
    assert not stats["confidence_calibration"]["fitted_with_this_checkpoint"]
    assert stats["provenance"]["model"]["sha256"] == hashlib.sha256(b"weights").hexdigest()
    assert stats["provenance"]["software"]["numpy"] == np.__version__
    assert json.loads((tmp_path / "stats.json").read_text())["event"] == "e"
    impact = pd.read_csv(tmp_path / "impact.csv")
    assert list(impact.columns) == ["section", "measure", "value", "unit"]
    row = impact[impact.measure == "flooded area"].iloc[0]
    assert row.value == pytest.approx(flood["flooded_area_km2"]) and row.unit == "km2"
    assert "building to barren (likely destroyed)" in set(impact.measure)

    out = write_report("e", report_inputs(p, tmp_path), tmp_path / "report.html")
    html = out.read_text()
    assert html.count('src="data:image/png;base64,') == 15  # 14 maps, 1 chart
    assert "http" not in html.replace("http-equiv", "")
    assert "0.0020 km&sup2;" in html  # flooded area, as the key figure
    assert "mapped as flooded where the confidence reaches 50%" in html
    assert "missing" in html  # the optical scene that was not found is shown as such
    # The unreliable shift is named in plain words.
    assert "post-event optical to sar: the estimated shift (+1.40, +2.20) px was judged" in html
    assert "fitted with another checkpoint" in html
    # The terrain exclusion: what it removed and why, in the statistics and the report.
    terrain = stats["terrain"]
    layover = terrain["exclusion"]["areas"]["radar layover"]
    assert layover["pixels"] > 0 and terrain["exclusion"]["absent"] == []
    assert terrain["exclusion"]["viewing_geometry"]["look_azimuth_deg"] == pytest.approx(80.0)
    assert terrain["reference_water"]["reference_layer"] == "absent"
    assert "Terrain exclusion and water before the event" in html
    assert "no reference layer was configured" in html
    assert "are not counted" not in html  # the SAR contradicts no pre-event water here
    assert "the median log-ratio,\n+0.2 dB in VV, was taken off." in html
    assert "check that\nboth periods come from the same product" not in html


def test_the_statistics_read_where_the_extent_was_cut_from_the_confidence(tmp_path):
    """A confidence product records the cut of its extent; one written before the cut
    was a setting was cut at one half."""
    confidence = np.full((4, 4), 40, np.uint8)
    grid = {"crs": CRS, "transform": TRANSFORM, "nodata": 255}
    cut = write_cog(
        tmp_path / "cut.tif", confidence, tags={FLOODED_MIN_CONFIDENCE_TAG: "35"}, **grid
    )
    before = write_cog(tmp_path / "before.tif", confidence, **grid)
    assert flooded_from(open_raster(cut)) == 35
    assert flooded_from(open_raster(before)) == 50


def test_report_says_when_the_two_periods_are_on_different_scales(products, tmp_path):
    summary = json.loads(products["sar_summary"].read_text())
    summary["level_offset_db"] |= {"offsets": {"VV": 11.4, "VH": 10.9}, "scales_differ": True}
    edited = tmp_path / "sar_change.json"
    edited.write_text(json.dumps(summary))
    make_stats(products | {"sar_summary": edited}, tmp_path)
    html = write_report("e", report_inputs(products, tmp_path), tmp_path / "r.html").read_text()
    assert "+11.4 dB in VV, was taken off" in html
    assert "check that\nboth periods come from the same product" in html


def test_the_statistics_and_report_say_when_a_flood_network_was_joined(products, tmp_path):
    stats = make_stats(products, tmp_path)
    assert stats["flood_network"] is None
    html = write_report("e", report_inputs(products, tmp_path), tmp_path / "r.html").read_text()
    assert "flood network" not in html
    summary = tmp_path / "network.json"
    summary.write_text(json.dumps({"checkpoint": "models/flood.pt", "pixels": {"mapped": 9}}))
    stats = make_stats(products, tmp_path, network_summary=summary)
    assert stats["flood_network"]["checkpoint"] == "models/flood.pt"
    html = write_report("e", report_inputs(products, tmp_path), tmp_path / "r.html").read_text()
    assert "A flood network trained on flood masks\n(models/flood.pt) is joined" in html
    assert stats["flood_network"]["joined_by"] == "the higher of the two"
    assert "where its probability is the higher" in html
    # A calibration with a join fitted for the network (metaflood fit-flood-join).
    calibration = load_calibration() | {"network_join": {"features": list(JOIN_FEATURES)}}
    (tmp_path / "cal.json").write_text(json.dumps(calibration))
    stats = make_stats(
        products, tmp_path, network_summary=summary, calibration=tmp_path / "cal.json"
    )
    assert stats["flood_network"]["joined_by"] == "fitted join"
    html = write_report("e", report_inputs(products, tmp_path), tmp_path / "r.html").read_text()
    assert "by a join fitted on real flood masks" in html
    assert "their margins weighed together, or the flood network</td>" in html
    assert "where its probability is the higher" not in html


def test_report_says_where_pre_event_water_is_not_counted(products, tmp_path):
    record = json.loads(products["reference_water.json"].read_text())
    record["pre_event_water_not_counted"] |= {"pixels": 40, "area_km2": 40 * 4 / 1e6}
    edited = tmp_path / "reference_water.json"
    edited.write_text(json.dumps(record))
    make_stats(products | {"reference_water.json": edited}, tmp_path)
    html = write_report("e", report_inputs(products, tmp_path), tmp_path / "r.html").read_text()
    assert "0.0002 km&sup2; that the pre-event water map called water are not counted" in html


def test_mapbook_is_a_pdf_with_a_page_per_map(products, tmp_path):
    make_stats(products, tmp_path)
    out = write_mapbook("e", report_inputs(products, tmp_path), tmp_path / "mapbook.pdf")
    data = out.read_bytes()
    assert data.startswith(b"%PDF")
    assert data.count(b"/Type /Page\n") + data.count(b"/Type /Page ") >= 14


@pytest.mark.parametrize(("width", "expected"), [(1300, 200), (300, 50), (90, 10), (5000, 1000)])
def test_scale_bar_lengths_are_round(width, expected):
    assert _nice_length(width) == expected


def test_true_colour_marks_nodata_transparent():
    stack = np.full((6, 4, 4), 0.1, np.float32)
    stack[:, 0, 0] = np.nan
    image, caption = optical_composite(stack, ("VV", "VH", "blue", "green", "red", "nir"))
    assert image.shape == (4, 4, 4) and caption == "true colour"
    assert image[0, 0, 3] == 0 and image[1, 1, 3] == 1


@pytest.mark.parametrize("width_in", [5.2, 6.8])  # the report's maps, the map book's
def test_the_north_arrow_points_north(width_in):
    """Issue 21: every map's arrow pointed down at the N. Read from the rendered PNG."""
    from tests.helpers.figure_pixels import assert_points_north

    green = np.zeros((160, 200, 4))
    green[...] = (0, 0.6, 0.27, 1)  # a plain map, so only the arrow and the N are dark
    legend = [("both", (0, 153, 68))]
    fig = map_figure(green, title="", pixel_size=2.0, legend=legend, width_in=width_in)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    assert_points_north(buffer.getvalue())
    png = base64.b64decode(map_png(green, title="", pixel_size=2.0).split(",", 1)[1])
    assert_points_north(png)  # as report.html embeds it


@pytest.mark.parametrize(
    ("optical", "caption"),
    [
        (("blue", "green", "red", "nir", "swir16"), "true colour"),
        (("green", "nir", "swir16"), "false colour: SWIR 1.6 um, NIR, green as red, green, blue"),
        (("green", "nir"), "false colour: NIR, green, green as red, green, blue"),
    ],
)
def test_the_optical_map_is_true_colour_where_it_can_be_and_says_when_not(optical, caption):
    """Bands found by name: each optical band i is 0.1 i, so the image tells which one
    went into which channel."""
    bands = ("VV", "VH", *optical)
    stack = np.stack([np.full((2, 2), 0.1 * i, np.float32) for i in range(len(bands))])
    image, said = optical_composite(stack, bands)
    assert said == caption
    shown = {"true colour": ("red", "green", "blue")}.get(
        caption, ("swir16", "nir", "green") if "SWIR" in caption else ("nir", "green", "green")
    )
    values = [0.1 * bands.index(b) for b in shown]
    expected = (np.array(values) / max(values)) ** (1 / 1.4)
    np.testing.assert_allclose(image[0, 0, :3], expected, atol=0.02)


def test_report_inputs_from_a_rules_named_inputs():
    """The report and map-book scripts build their inputs from Snakemake's named inputs."""
    from pathlib import Path
    from types import SimpleNamespace

    named = SimpleNamespace(
        stacks=["a/pre.tif", "a/post.tif"],
        valid=["a/pre_valid.tif", "a/post_valid.tif"],
        landcover=["l/pre.tif", "l/post.tif"],
        extent="f/extent.tif",
        confidence="f/confidence.tif",
        sar_evidence="f/sar_change.tif",
        sar_ratio="f/sar_logratio.tif",
        stats="f/stats.json",
        exclusion="f/exclusion.tif",
        support="f/support.tif",
    )
    inputs = ReportInputs.from_named(named)
    assert inputs.stacks == [Path("a/pre.tif"), Path("a/post.tif")]
    assert inputs.landcover == [Path("l/pre.tif"), Path("l/post.tif")]
    assert inputs.sar_ratio == Path("f/sar_logratio.tif")
    assert inputs.stats == Path("f/stats.json")
    assert inputs.exclusion == Path("f/exclusion.tif")


def test_the_statistics_and_report_say_what_the_flooded_area_rests_on(products, tmp_path):
    """Each flooded pixel is counted under one case of the two lines of evidence: the
    flood block is cut into strips where the SAR and the water maps say different things."""
    p = products
    rows, cols = FLOOD
    evidence = rasterio.open(p["sar_evidence"]).read(1)
    post_water = rasterio.open(p["post_water"]).read(1)
    evidence[rows, 16:20] = NO_SIGNAL  # the water maps alone, the SAR saw no fall
    evidence[rows, 20:24] = DARK_BEFORE  # the water maps alone, the SAR blind there
    post_water[rows, 24:28] = 10  # the SAR change alone
    post_water[rows, 28:32] = 10
    evidence[rows, 28:32] = NO_SIGNAL  # neither alone
    extent = rasterio.open(p["extent.tif"]).read(1)
    pre_water = rasterio.open(p["pre_water"]).read(1)
    cases = case_codes([pre_water, post_water], evidence)
    support = support_codes(cases, extent == FLOODED, extent == EXTENT_NODATA)
    grid = {"crs": CRS, "transform": TRANSFORM}
    edited = {
        "sar_evidence": write_cog(tmp_path / "evidence_edited.tif", evidence, nodata=255, **grid),
        "post_water": write_cog(tmp_path / "post_water_edited.tif", post_water, nodata=255, **grid),
        "support.tif": write_support(tmp_path / "support_edited.tif", support, **grid),
    }
    stats = make_stats(p | edited, tmp_path)
    strip, flooded = 18 * 4, 18 * 28
    assert stats["flood"]["flooded_by_evidence"] == pytest.approx(
        {
            "water_maps_and_sar_change": (flooded - 4 * strip) / flooded,
            "sar_change_only": strip / flooded,
            "water_maps_only_sar_blind": strip / flooded,
            "water_maps_only_sar_disagrees": strip / flooded,
            "neither_alone": strip / flooded,
        },
        abs=1e-6,
    )
    # flood/support.tif maps each strip's case where the statistics count it
    for first, case in [
        (16, "water_maps_only_sar_disagrees"),
        (20, "water_maps_only_sar_blind"),
        (24, "sar_change_only"),
        (28, "neither_alone"),
        (32, "water_maps_and_sar_change"),
    ]:
        assert (support[rows, first : first + 4] == CODES[case]).all()
    impact = pd.read_csv(tmp_path / "impact.csv")
    by_evidence = impact[impact.section == "evidence of the flooded area"]
    assert by_evidence.value.sum() == pytest.approx(1.0, abs=1e-5)
    assert set(by_evidence.measure) == set(SUPPORT.values())
    html = write_report("e", report_inputs(p | edited, tmp_path), tmp_path / "r.html").read_text()
    assert "What the flooded area rests on" in html
    assert 'alt="what the flooded area rests on"' in html  # the map of where each case lies
    # the SAR-blind strip: its share and area (72 of 504 px at 4 m2)
    assert f"{SUPPORT['water_maps_only_sar_blind']}</td><td>14.3%</td>" in html
    assert "<td>0.0003</td>" in html
