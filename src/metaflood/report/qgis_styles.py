"""QGIS layer styles (.qml) for the continuous products, the images and the polygons.

Class rasters carry their colour table and open in QGIS coloured as they are; a
probability or a change in dB would open in grey, an image stack as its first three
bands (VV, VH and blue), and polygons in a colour QGIS picks at random. QGIS applies
`<name>.qml` beside a file as the layer's default style when it loads the file, so a
style written here draws its product as the report does, with a legend in the product's
unit, without a project file.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

from metaflood.core.config import PERIODS
from metaflood.core.errors import InputError
from metaflood.report.ramps import (
    CONFIDENCE,
    FLOOD_NETWORK,
    LOG_RATIO,
    SAR_GREY_DB,
    WATER,
    Ramp,
)

# Each styled product (its path in the event folder, "{period}" for one per period), the
# description of the band to colour, and its ramp.
STYLED: dict[str, tuple[str, Ramp]] = {
    "flood/confidence.tif": ("flood_confidence", CONFIDENCE),
    "flood/sar_logratio.tif": ("VV_log_ratio", LOG_RATIO),
    "water/{period}.tif": ("water_probability", WATER),
    "flood/network.tif": ("flood_network_probability", FLOOD_NETWORK),
}
# Made only when the configuration sets change.flood_network.
OPTIONAL = {"flood/network.tif"}
# The co-registered images: the report's optical composite where the stack has its bands
# and a clear pixel, else VV in grey over the report's range.
IMAGES = "aligned/{period}.tif"
# The composite's stretch is read from at most this many pixels a side (an overview).
STRETCH_SAMPLE_PX = 1024
# Filled in the extent's colour for flooded, outlined in its colour for permanent water.
POLYGONS = "flood/polygons.gpkg"
POLYGON_FILL_ALPHA = 140
# A polygon of which less than this share rests on both lines of evidence is outlined in
# red, to be checked against the images first.
CHECK_BELOW_BOTH_LINES = 0.5


def styled_products(*, flood_network: bool) -> list[str]:
    """The paths (in the event folder) of the products a run styles."""
    rasters = [
        pattern.format(period=period)
        for pattern in (*STYLED, IMAGES)
        if flood_network or pattern not in OPTIONAL
        for period in (PERIODS if "{period}" in pattern else (None,))
    ]
    return [*rasters, POLYGONS]


def style_path(product: str | Path) -> Path:
    """Where QGIS looks for a file's default style."""
    return Path(product).with_suffix(".qml")


def raster_style(ramp: Ramp, band: int) -> str:
    """A QGIS style (QML) colouring `band` through `ramp`, values between the stops
    interpolated; nodata stays transparent, as the raster declares it."""
    qgis, pipe = _raster_qml()
    renderer = _renderer(
        pipe,
        "singlebandpseudocolor",
        band=str(band),
        classificationMin=_number(ramp.minimum),
        classificationMax=_number(ramp.maximum),
    )
    shader = ET.SubElement(
        ET.SubElement(renderer, "rastershader"),
        "colorrampshader",
        colorRampType="INTERPOLATED",
        classificationMode="2",  # equal interval: the stops are evenly spaced
        clip="0",
        minimumValue=_number(ramp.minimum),
        maximumValue=_number(ramp.maximum),
        labelPrecision="0",
    )
    for value, (red, green, blue, alpha) in ramp.stops():
        ET.SubElement(
            shader,
            "item",
            value=_number(value),
            label=_number(value),
            color=f"#{red:02x}{green:02x}{blue:02x}",
            alpha=str(alpha),
        )
    return _raster_document(qgis, pipe)


def polygon_style() -> str:
    """A QGIS style (QML) filling the flood polygons half-transparent in the extent's
    colour, outlined in its permanent-water colour; a polygon less than half of which
    rests on both lines of evidence (`both_lines_share`) is outlined thick in red, to be
    checked against the images first."""
    from metaflood.flood.change import EXTENT_COLORMAP, FLOODED, PERMANENT
    from metaflood.flood.support import CODES, COLOURS

    fill = (*EXTENT_COLORMAP[FLOODED][:3], POLYGON_FILL_ALPHA)
    check = COLOURS[CODES["water_maps_only_sar_disagrees"]]
    qgis = ET.Element("qgis", version="3.22.0", styleCategories="Symbology")
    renderer = ET.SubElement(qgis, "renderer-v2", type="RuleRenderer", symbollevels="0")
    rules = ET.SubElement(renderer, "rules", key="{flood}")
    symbols = ET.SubElement(renderer, "symbols")
    for name, (label, expression, outline, width) in enumerate(
        [
            (
                f"less than {CHECK_BELOW_BOTH_LINES:.0%} on both lines of evidence: check first",
                f'"both_lines_share" < {CHECK_BELOW_BOTH_LINES}',
                check,
                "0.8",
            ),
            ("flooded", "ELSE", EXTENT_COLORMAP[PERMANENT], "0.3"),
        ]
    ):
        ET.SubElement(
            rules, "rule", key=f"{{rule{name}}}", symbol=str(name), label=label, filter=expression
        )
        _fill_symbol(symbols, str(name), fill, outline, width)
    ET.SubElement(qgis, "blendMode").text = "0"
    ET.SubElement(qgis, "featureBlendMode").text = "0"
    return _document(qgis)


def _fill_symbol(
    symbols: ET.Element, name: str, fill: tuple[int, ...], outline: tuple[int, ...], width: str
) -> None:
    symbol = ET.SubElement(
        symbols,
        "symbol",
        type="fill",
        name=name,
        alpha="1",
        clip_to_extent="1",
        force_rhr="0",
    )
    layer = ET.SubElement(symbol, "layer", {"class": "SimpleFill", "enabled": "1", "pass": "0"})
    options = ET.SubElement(layer, "Option", type="Map")
    for key, value in (
        ("color", ",".join(map(str, fill))),
        ("style", "solid"),
        ("outline_color", ",".join(map(str, outline))),
        ("outline_style", "solid"),
        ("outline_width", width),
        ("outline_width_unit", "MM"),
    ):
        ET.SubElement(options, "Option", name=key, type="QString", value=value)


def image_style(stack: Path) -> str:
    """A QGIS style (QML) drawing a co-registered stack as the report draws it: its
    optical composite (true colour where red, green and blue are there), stretched
    linearly from 0 to the 99th percentile of its clear pixels (the report also lifts
    the dark tones), or where it has no clear optical pixel, VV in grey over SAR_GREY_DB."""
    import numpy as np
    import rasterio

    from metaflood.report.figures import COMPOSITES

    with rasterio.open(stack) as src:
        names = list(src.descriptions)
        chosen = next((bands for _, bands in COMPOSITES if set(bands) <= set(names)), None)
        values = np.empty(0)
        if chosen:
            factor = max(1, math.ceil(max(src.height, src.width) / STRETCH_SAMPLE_PX))
            shape = (math.ceil(src.height / factor), math.ceil(src.width / factor))
            indexes = [names.index(band) + 1 for band in chosen]
            sample = src.read(indexes, out_shape=(len(indexes), *shape))
            values = sample[:, np.isfinite(sample).all(axis=0)]
    if "VV" not in names and not values.size:
        raise InputError(f"{stack}: neither optical bands nor VV to draw (bands: {names})")
    qgis, pipe = _raster_qml()
    if values.size:
        high = float(np.percentile(values, 99))
        red, green, blue = (str(names.index(band) + 1) for band in chosen)
        renderer = _renderer(pipe, "multibandcolor", redBand=red, greenBand=green, blueBand=blue)
        for colour in ("red", "green", "blue"):
            _stretch(renderer, f"{colour}ContrastEnhancement", 0.0, high)
    else:
        renderer = _renderer(
            pipe, "singlebandgray", grayBand=str(names.index("VV") + 1), gradient="BlackToWhite"
        )
        _stretch(renderer, "contrastEnhancement", *SAR_GREY_DB)
    return _raster_document(qgis, pipe)


def _raster_qml() -> tuple[ET.Element, ET.Element]:
    """A raster style's document and its pipe, for a renderer to go in."""
    qgis = ET.Element("qgis", version="3.22.0", styleCategories="Symbology")
    return qgis, ET.SubElement(qgis, "pipe")


def _raster_document(qgis: ET.Element, pipe: ET.Element) -> str:
    """The raster style as text, closed with QGIS's neutral colour and resampling."""
    ET.SubElement(pipe, "brightnesscontrast", brightness="0", contrast="0", gamma="1")
    ET.SubElement(pipe, "rasterresampler", maxOversampling="2")
    ET.SubElement(qgis, "blendMode").text = "0"
    return _document(qgis)


def _renderer(pipe: ET.Element, kind: str, **attributes: str) -> ET.Element:
    renderer = ET.SubElement(
        pipe,
        "rasterrenderer",
        type=kind,
        opacity="1",
        alphaBand="-1",
        nodataColor="",
        **attributes,
    )
    ET.SubElement(renderer, "rasterTransparency")
    limits = ET.SubElement(renderer, "minMaxOrigin")
    for tag, text in (("limits", "None"), ("extent", "WholeRaster")):
        ET.SubElement(limits, tag).text = text
    return renderer


def _stretch(renderer: ET.Element, tag: str, low: float, high: float) -> None:
    enhancement = ET.SubElement(renderer, tag)
    for name, text in (
        ("minValue", _number(low)),
        ("maxValue", _number(high)),
        ("algorithm", "StretchToMinimumMaximum"),
    ):
        ET.SubElement(enhancement, name).text = text


def write_style(path: str | Path, product: str) -> Path:
    """The style of `product` (its path in the event folder, as `styled_products` gives
    it) beside `path`, written atomically. A raster's band to colour is found by its
    description, so a product whose bands change keeps the right one (an InputError
    naming the file when it is not there)."""
    from metaflood.core.raster import atomic_path

    path = Path(path)
    if product == POLYGONS:
        style = polygon_style()
    elif product in {IMAGES.format(period=period) for period in PERIODS}:
        style = image_style(path)
    else:
        style = _raster_style(path, product)
    out = style_path(path)
    with atomic_path(out) as tmp:
        tmp.write_text(style)
    return out


def _raster_style(raster: Path, product: str) -> str:
    import rasterio

    by_product = {
        pattern.format(period=period): style
        for pattern, style in STYLED.items()
        for period in PERIODS
    }
    description, ramp = by_product[product]
    with rasterio.open(raster) as src:
        descriptions = list(src.descriptions)
    if description not in descriptions:
        raise InputError(
            f"{raster}: no band '{description}' to style (bands: {descriptions}); "
            "is it the product it is named for?"
        )
    return raster_style(ramp, descriptions.index(description) + 1)


def _document(qgis: ET.Element) -> str:
    ET.indent(qgis)
    body = ET.tostring(qgis, encoding="unicode")
    return f"<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n{body}\n"


def _number(value: float) -> str:
    return f"{value:g}"
