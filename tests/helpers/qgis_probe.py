"""Open files in QGIS as a user's QGIS opens them, and say how each is drawn.

Run by the system Python that has QGIS (Debian's python3-qgis), not by the project's
virtual environment: `python3 qgis_probe.py FILE...` prints, as JSON, for each file
whether the layer is valid and its renderer's type; for a raster, the bands drawn and the
colour (ARGB, 0 transparent) QGIS draws each pixel of its first row in; for a vector
layer (a GeoPackage), the fill colour of its symbol.
"""

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import QgsApplication, QgsRasterLayer, QgsVectorLayer  # noqa: E402


def probe(path: str) -> dict:
    if path.endswith(".gpkg"):
        return probe_vector(path)
    return probe_raster(path)


def probe_vector(path: str) -> dict:
    layer = QgsVectorLayer(path, os.path.basename(path), "ogr")  # loads the default style
    renderer = layer.renderer()
    return {
        "valid": layer.isValid(),
        "renderer": renderer.type(),
        "fill_argb": renderer.symbol().color().rgba()
        if renderer.type() == "singleSymbol"
        else None,
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
