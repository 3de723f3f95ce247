"""Open files in QGIS as a user's QGIS opens them, and say how each is drawn.

Run by the system Python that has QGIS (Debian's python3-qgis), not by the project's
virtual environment: `python3 qgis_probe.py FILE...` prints, as JSON, for each file
whether the layer is valid and its renderer's type; for a raster, the bands drawn and the
colour (ARGB, 0 transparent) QGIS draws each pixel of its first row in; for a vector
layer (a GeoPackage), the fill colour of its symbol, or for a rule-based renderer each
rule's label, colours and the features (by `flood_id`) it draws; for a project (.qgs),
whether it was read, its CRS, and its layers from the top of the list: name, whether
drawn, valid, renderer, CRS and the file it reads.
"""

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (  # noqa: E402
    QgsApplication,
    QgsExpression,
    QgsExpressionContext,
    QgsExpressionContextUtils,
    QgsProject,
    QgsRasterLayer,
    QgsVectorLayer,
)


def probe(path: str) -> dict:
    if path.endswith(".qgs"):
        return probe_project(path)
    if path.endswith(".gpkg"):
        return probe_vector(path)
    return probe_raster(path)


def probe_project(path: str) -> dict:
    project = QgsProject.instance()
    project.clear()
    read = project.read(path)
    return {
        "read": read,
        "crs": project.crs().authid(),
        "layers": [
            {
                "name": node.name(),
                "visible": node.isVisible(),
                "valid": node.layer().isValid(),
                "renderer": node.layer().renderer().type(),
                "crs": node.layer().crs().authid(),
                "source": node.layer().source(),
            }
            for node in project.layerTreeRoot().findLayers()
        ],
    }


def probe_vector(path: str) -> dict:
    layer = QgsVectorLayer(path, os.path.basename(path), "ogr")  # loads the default style
    renderer = layer.renderer()
    drawn = {"valid": layer.isValid(), "renderer": renderer.type()}
    if renderer.type() == "singleSymbol":
        drawn["fill_argb"] = renderer.symbol().color().rgba()
    if renderer.type() == "RuleRenderer":
        drawn["rules"] = [rule_drawing(layer, rule) for rule in renderer.rootRule().children()]
    return drawn


def rule_drawing(layer: QgsVectorLayer, rule) -> dict:
    """A rule's label and colours, and the features it draws (an ELSE rule: those no
    other rule draws)."""
    context = QgsExpressionContext(QgsExpressionContextUtils.globalProjectLayerScopes(layer))
    siblings = [r for r in rule.parent().children() if not r.isElse()]
    drawn = []
    for feature in layer.getFeatures():
        context.setFeature(feature)
        if rule.isElse():
            hit = not any(QgsExpression(r.filterExpression()).evaluate(context) for r in siblings)
        else:
            hit = bool(QgsExpression(rule.filterExpression()).evaluate(context))
        if hit:
            drawn.append(feature["flood_id"])
    fill = rule.symbol().symbolLayer(0)
    return {
        "label": rule.label(),
        "fill_argb": fill.fillColor().rgba(),
        "outline_argb": fill.strokeColor().rgba(),
        "outline_width_mm": fill.strokeWidth(),
        "flood_ids": drawn,
    }


def probe_raster(path: str) -> dict:
    layer = QgsRasterLayer(path, os.path.basename(path), "gdal")  # loads the default style
    renderer = layer.renderer()
    block = renderer.block(1, layer.extent(), layer.width(), layer.height())
    return {
        "valid": layer.isValid(),
        "renderer": renderer.type(),
        "bands": renderer.usesBands(),
        "first_row_argb": [block.color(0, column) for column in range(layer.width())],
    }


def main() -> None:
    app = QgsApplication([], False)
    app.initQgis()
    print(json.dumps({path: probe(path) for path in sys.argv[1:]}), flush=True)
    # QGIS 3.22 can crash tearing down its application at exit: the answer is out.
    os._exit(0)


if __name__ == "__main__":
    main()
