"""A QGIS project of an event's products (results/{event}/{event}.qgs).

One file to open: the flood polygons over the post-event image, and beneath them, off
until ticked, the extent, the confidence, the water maps, the SAR change and the
pre-event image, each drawn with the style written beside it (qgis_styles). Paths are
relative to the project, so the event folder can be moved or shared as it is.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from metaflood.core.errors import InputError
from metaflood.report.qgis_styles import style_path


@dataclass(frozen=True)
class ProjectLayer:
    """A product in the project: its path in the event folder, its name in the layer
    list, and whether it is drawn when the project opens."""

    path: str
    name: str
    visible: bool = False

    @property
    def vector(self) -> bool:
        return self.path.endswith(".gpkg")


# Top of the layer list first: QGIS draws the list from the bottom up.
LAYERS: tuple[ProjectLayer, ...] = (
    ProjectLayer("flood/polygons.gpkg", "Flood polygons", visible=True),
    ProjectLayer("flood/extent.tif", "Flood extent"),
    ProjectLayer("flood/confidence.tif", "Flood confidence (%)"),
    ProjectLayer("flood/support.tif", "What the flood rests on"),
    ProjectLayer("water/post.tif", "Water after the event (%)"),
    ProjectLayer("water/pre.tif", "Water before the event (%)"),
    ProjectLayer("flood/sar_logratio.tif", "SAR change, post / pre (dB)"),
    ProjectLayer("aligned/post.tif", "Image after the event", visible=True),
    ProjectLayer("aligned/pre.tif", "Image before the event"),
)
# The file the project's CRS and extent are read from.
GRID_PRODUCT = "flood/extent.tif"


def write_project(event_dir: str | Path, event: str, out: str | Path) -> Path:
    """The project of the products in `event_dir`, written atomically to `out` (beside
    them); an InputError naming the first product that is not there."""
    from metaflood.core.raster import atomic_path

    document = build_project(Path(event_dir), event)
    with atomic_path(Path(out)) as tmp:
        tmp.write_text(document)
    return Path(out)


def build_project(event_dir: Path, event: str) -> str:
    """The project's XML: the event grid's CRS and extent, then every layer of LAYERS
    with the style beside its file (none for a class raster: its colour table)."""
    import rasterio

    absent = [layer.path for layer in LAYERS if not (event_dir / layer.path).is_file()]
    if absent:
        raise InputError(f"{event_dir / absent[0]}: product missing, cannot add it to the project")
    with rasterio.open(event_dir / GRID_PRODUCT) as src:
        crs, bounds = src.crs, src.bounds
    qgis = ET.Element("qgis", projectname=f"metaflood: {event}", version="3.22.0")
    ET.SubElement(qgis, "title").text = f"Flood products: {event}"
    _spatial_reference(ET.SubElement(qgis, "projectCrs"), crs)
    tree = ET.SubElement(qgis, "layer-tree-group")
    canvas = ET.SubElement(qgis, "mapcanvas", name="theMapCanvas")
    ET.SubElement(canvas, "units").text = "meters"
    extent = ET.SubElement(canvas, "extent")
    for name, value in zip(("xmin", "ymin", "xmax", "ymax"), bounds, strict=True):
        ET.SubElement(extent, name).text = repr(float(value))
    _spatial_reference(ET.SubElement(canvas, "destinationsrs"), crs)
    layers = ET.SubElement(qgis, "projectlayers")
    for layer in LAYERS:
        source = f"./{layer.path}"
        provider = "ogr" if layer.vector else "gdal"
        ET.SubElement(
            tree,
            "layer-tree-layer",
            id=_layer_id(layer),
            name=layer.name,
            source=source,
            providerKey=provider,
            checked="Qt::Checked" if layer.visible else "Qt::Unchecked",
            expanded="0",
        )
        map_layer = ET.SubElement(layers, "maplayer", type="vector" if layer.vector else "raster")
        for tag, text in (
            ("id", _layer_id(layer)),
            ("datasource", source),
            ("layername", layer.name),
            ("provider", provider),
        ):
            ET.SubElement(map_layer, tag).text = text
        _spatial_reference(ET.SubElement(map_layer, "srs"), crs)
        style = style_path(event_dir / layer.path)
        if style.is_file():
            map_layer.extend(ET.parse(style).getroot())
    properties = ET.SubElement(qgis, "properties")
    spatial_reference = ET.SubElement(properties, "SpatialRefSys")
    ET.SubElement(spatial_reference, "ProjectionsEnabled", type="int").text = "1"
    paths = ET.SubElement(properties, "Paths")
    ET.SubElement(paths, "Absolute", type="bool").text = "false"
    ET.indent(qgis)
    body = ET.tostring(qgis, encoding="unicode")
    return f"<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n{body}\n"


def _spatial_reference(parent: ET.Element, crs) -> None:
    """The CRS as QGIS writes it: WKT2, and the authority code where there is one."""
    system = ET.SubElement(parent, "spatialrefsys")
    ET.SubElement(system, "wkt").text = crs.to_wkt(version="WKT2_2018")
    if crs.to_epsg():
        ET.SubElement(system, "authid").text = f"EPSG:{crs.to_epsg()}"


def _layer_id(layer: ProjectLayer) -> str:
    return layer.path.replace("/", "_").replace(".", "_")
