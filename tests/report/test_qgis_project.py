"""The event's QGIS project: every product as a layer, relative to the project, with the
style beside it; refused, with nothing written, when a product is missing."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from rasterio.transform import from_origin

from metaflood.core.errors import InputError
from metaflood.core.raster import write_cog
from metaflood.report.qgis_project import LAYERS, build_project, write_project
from metaflood.report.qgis_styles import raster_style, style_path
from metaflood.report.ramps import CONFIDENCE


def event_products(event: Path) -> Path:
    """The project's files: a real extent (the grid is read from it), the rest stand-ins
    (the project names them and does not read them), one style beside the confidence."""
    for layer in LAYERS:
        (event / layer.path).parent.mkdir(parents=True, exist_ok=True)
        (event / layer.path).write_bytes(b"")
    write_cog(
        event / "flood" / "extent.tif",
        np.zeros((4, 6), np.uint8),
        crs="EPSG:32634",
        transform=from_origin(500000, 3600000, 10, 10),
        nodata=255,
    )
    style_path(event / "flood" / "confidence.tif").write_text(raster_style(CONFIDENCE, 1))
    return event


def test_every_product_is_a_layer_with_its_style(tmp_path):
    event = event_products(tmp_path / "e")
    project = ET.fromstring(build_project(event, "e"))
    assert project.find("projectCrs/spatialrefsys/authid").text == "EPSG:32634"
    extent = [float(project.find(f"mapcanvas/extent/{k}").text) for k in ("xmin", "ymax")]
    assert extent == [500000.0, 3600000.0]
    tree = project.findall("layer-tree-group/layer-tree-layer")
    assert [node.get("source") for node in tree] == [f"./{layer.path}" for layer in LAYERS]
    drawn = [node.get("name") for node in tree if node.get("checked") == "Qt::Checked"]
    assert drawn == ["Flood polygons", "Image after the event"]
    layers = {m.find("datasource").text: m for m in project.findall("projectlayers/maplayer")}
    confidence = layers["./flood/confidence.tif"].find("pipe/rasterrenderer")
    assert confidence.get("type") == "singlebandpseudocolor"
    assert layers["./flood/extent.tif"].find("pipe") is None  # its colour table
    assert layers["./flood/polygons.gpkg"].get("type") == "vector"
    assert project.find("properties/Paths/Absolute").text == "false"


def test_a_missing_product_is_named_and_nothing_is_written(tmp_path):
    event = event_products(tmp_path / "e")
    (event / "water" / "post.tif").unlink()
    out = event / "e.qgs"
    with pytest.raises(InputError, match=r"water/post\.tif: product missing"):
        write_project(event, "e", out)
    assert not out.exists()
