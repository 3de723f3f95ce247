"""QGIS styles beside the continuous products and the polygons: each draws its product as
the report does, and QGIS, opening the file, draws it so."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from matplotlib import colormaps
from rasterio.transform import from_origin

from metaflood.core.errors import InputError
from metaflood.core.raster import write_cog
from metaflood.flood.change import EXTENT_COLORMAP, FLOODED
from metaflood.flood.support import CODES, COLOURS
from metaflood.flood.vector import flood_polygons, write_polygons
from metaflood.report.qgis_styles import style_path, styled_products, write_style
from metaflood.report.ramps import CONFIDENCE, LOG_RATIO
from tests.helpers.qgis_drawing import argb, qgis_draws

GRID = {"crs": "EPSG:32634", "transform": from_origin(500000, 3600000, 10, 10)}


def percent_raster(path: Path, description: str) -> Path:
    """A row of 0, 50 and 100 percent, then nodata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    values = np.array([[0, 50, 100, 255]], np.uint8)
    write_cog(path, values, nodata=255, descriptions=(description,), **GRID)
    return path


def ratio_raster(path: Path) -> Path:
    """The SAR ratio's bands, VV's log-ratio the second: -15, 0 and +15 dB, then nodata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    vv = np.array([[-15, 0, 15, np.nan]], np.float32)
    bands = np.stack([np.zeros_like(vv), vv, np.full_like(vv, -12)])
    write_cog(
        path,
        bands,
        nodata=np.nan,
        descriptions=("VH_log_ratio", "VV_log_ratio", "VV_post_filtered"),
        **GRID,
    )
    return path


def rgb(colormap: str, position: float) -> tuple[int, int, int]:
    return tuple(int(round(c * 255)) for c in colormaps[colormap](float(position))[:3])


def test_a_run_styles_its_continuous_products():
    assert styled_products(flood_network=False) == [
        "flood/confidence.tif",
        "flood/sar_logratio.tif",
        "water/pre.tif",
        "water/post.tif",
        "aligned/pre.tif",
        "aligned/post.tif",
        "flood/polygons.gpkg",
    ]
    assert "flood/network.tif" in styled_products(flood_network=True)
    assert style_path("flood/confidence.tif") == Path("flood/confidence.qml")


def test_the_style_colours_the_named_band_through_the_reports_ramp(tmp_path):
    ratio = ratio_raster(tmp_path / "flood" / "sar_logratio.tif")
    style = ET.parse(write_style(ratio, "flood/sar_logratio.tif")).getroot()
    renderer = style.find("pipe/rasterrenderer")
    assert renderer.get("type") == "singlebandpseudocolor"
    assert renderer.get("band") == "2"  # found by its description, not its place
    items = style.findall(".//colorrampshader/item")
    assert [float(i.get("value")) for i in items] == list(np.linspace(-15, 15, 11))
    assert items[0].get("color") == "#{:02x}{:02x}{:02x}".format(*rgb(LOG_RATIO.colormap, 0))
    assert {i.get("alpha") for i in items} == {"255"}
    confidence = percent_raster(tmp_path / "flood" / "confidence.tif", "flood_confidence")
    items = ET.parse(write_style(confidence, "flood/confidence.tif")).findall(".//item")
    assert items[0].get("alpha") == "0"  # no confidence fades into the base map
    assert items[-1].get("color") == "#{:02x}{:02x}{:02x}".format(*rgb(CONFIDENCE.colormap, 1))


def test_a_raster_without_the_band_is_refused(tmp_path):
    wrong = percent_raster(tmp_path / "water" / "pre.tif", "flood_confidence")
    with pytest.raises(InputError, match=r"pre\.tif: no band 'water_probability' to style"):
        write_style(wrong, "water/pre.tif")
    assert not style_path(wrong).exists()


def test_qgis_draws_each_product_through_its_style(tmp_path):
    """QGIS applies the style beside a raster when it opens it; without the style the
    same raster is drawn in grey."""
    confidence = percent_raster(tmp_path / "flood" / "confidence.tif", "flood_confidence")
    water = percent_raster(tmp_path / "water" / "post.tif", "water_probability")
    ratio = ratio_raster(tmp_path / "flood" / "sar_logratio.tif")
    plain = percent_raster(tmp_path / "unstyled" / "confidence.tif", "flood_confidence")
    for raster, product in (
        (confidence, "flood/confidence.tif"),
        (water, "water/post.tif"),
        (ratio, "flood/sar_logratio.tif"),
    ):
        write_style(raster, product)
    drawn = qgis_draws(confidence, water, ratio, plain)
    assert all(layer["valid"] for layer in drawn.values())
    assert drawn[confidence]["renderer"] == "singlebandpseudocolor"
    transparent, half, full, nodata = drawn[confidence]["first_row_argb"]
    assert transparent == 0 and nodata == 0
    assert half == argb(*rgb("magma_r", 0.5)) and full == argb(*rgb("magma_r", 1.0))
    assert drawn[water]["first_row_argb"][2] == argb(*rgb("Blues", 1.0))
    assert drawn[ratio]["bands"] == [2]
    low, middle, high, _ = drawn[ratio]["first_row_argb"]
    assert (low, middle, high) == tuple(argb(*rgb("RdBu", p)) for p in (0.0, 0.5, 1.0))
    assert drawn[plain]["renderer"] == "singlebandgray"


def test_qgis_outlines_in_red_the_polygons_to_check_first(tmp_path):
    """Polygons fill in the extent's colour; one that rests less than half on both lines
    of evidence (flood/support.tif's code 1) gets a thick red outline."""
    flooded = np.zeros((40, 40), bool)
    flooded[5:15, 5:15] = flooded[25:35, 25:35] = True
    support = np.where(flooded, CODES["water_maps_and_sar_change"], 0).astype(np.uint8)
    support[25:35, 25:32] = CODES["water_maps_only_sar_disagrees"]  # 30% on both lines
    classes = np.zeros((40, 40), np.uint8)
    confidence = np.full((40, 40), 90, np.uint8)
    polygons = tmp_path / "flood" / "polygons.gpkg"
    polygons.parent.mkdir()
    frame = flood_polygons(flooded, classes, GRID["transform"], GRID["crs"], confidence, support)
    assert frame.both_lines_share.tolist() == [1.0, 0.3]
    write_polygons(frame, polygons)
    write_style(polygons, "flood/polygons.gpkg")
    drawn = qgis_draws(polygons)[polygons]
    assert drawn["valid"] and drawn["renderer"] == "RuleRenderer"
    check, flooded_rule = drawn["rules"]
    assert check["flood_ids"] == [2] and flooded_rule["flood_ids"] == [1]
    assert "check first" in check["label"]
    for rule in (check, flooded_rule):
        assert rule["fill_argb"] == argb(*EXTENT_COLORMAP[FLOODED][:3], 140)
    assert check["outline_argb"] == argb(*COLOURS[CODES["water_maps_only_sar_disagrees"]][:3])
    assert check["outline_width_mm"] > flooded_rule["outline_width_mm"]


def stack_raster(path: Path, optical: bool) -> Path:
    """A co-registered stack's bands: VV and VH, then (`optical`) true colour and NIR;
    its first row black, 0.2 reflectance and no value."""
    path.parent.mkdir(parents=True, exist_ok=True)
    names = ("VV", "VH", *(("blue", "green", "red", "nir") if optical else ()))
    row = np.array([[0.0, 0.2, np.nan]], np.float32)
    bands = np.stack(
        [np.full_like(row, -20.0), np.full_like(row, -25.0)] + [row] * (len(names) - 2)
    )
    write_cog(path, bands, nodata=np.nan, descriptions=names, **GRID)
    return path


def test_qgis_draws_the_images_as_the_report_does(tmp_path):
    """True colour over the red, green and blue bands, stretched to the image's own
    reflectance; VV in grey where the stack has no optical band."""
    optical = stack_raster(tmp_path / "aligned" / "post.tif", optical=True)
    sar = stack_raster(tmp_path / "sar" / "post.tif", optical=False)
    for stack in (optical, sar):
        write_style(stack, "aligned/post.tif")
    drawn = qgis_draws(optical, sar)
    assert drawn[optical]["renderer"] == "multibandcolor"
    assert drawn[optical]["bands"] == [5, 4, 3]  # red, green, blue
    black, bright, empty = drawn[optical]["first_row_argb"]
    assert black == argb(0, 0, 0) and bright == argb(255, 255, 255) and empty == 0
    assert drawn[sar]["renderer"] == "singlebandgray" and drawn[sar]["bands"] == [1]
    grey = round(255 * (-20 + 25) / 25)  # -20 dB on the report's -25..0 dB
    assert drawn[sar]["first_row_argb"][0] == argb(grey, grey, grey)
